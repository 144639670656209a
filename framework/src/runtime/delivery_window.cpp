#include "runtime/delivery_window.hpp"

#include <pg2kafka/sdk/plugin.hpp>

#include <algorithm>
#include <set>
#include <string>
#include <string_view>

namespace pg2kafka::runtime {
namespace {

// What the per-key order is about: the topic and the key (a null key is a key of its own, so
// null-keyed records keep their order too, as a destination without partitions would show them).
std::string order_key(const p2k_record& r) {
  std::string k(sdk::view(r.topic));
  k += '\0';
  if (r.key.data) {
    k += '1';
    k += sdk::view(r.key);
  } else {
    k += '0';
  }
  return k;
}

}  // namespace

bool DeliveryWindow::add(const p2k_record& record, std::shared_ptr<void> holder) {
  if (last_added_ && record.position <= *last_added_) return false;
  entries_.push_back(Entry{record, std::move(holder), State::kWritten});
  last_added_ = record.position;
  ++written_;
  unconfirmed_bytes_ += bytes(record);
  return true;
}

DeliveryWindow::Entry* DeliveryWindow::find(uint64_t position) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), position,
                             [](const Entry& e, uint64_t p) { return e.record.position < p; });
  return it == entries_.end() || it->record.position != position ? nullptr : &*it;
}

const DeliveryWindow::Entry* DeliveryWindow::find(uint64_t position) const {
  return const_cast<DeliveryWindow*>(this)->find(position);
}

const p2k_record* DeliveryWindow::awaiting(uint64_t position) const {
  const Entry* e = find(position);
  return e && e->state == State::kWritten ? &e->record : nullptr;
}

const p2k_record* DeliveryWindow::oldest_awaiting_outcome() const {
  if (written_ == 0) return nullptr;
  for (const auto& e : entries_)  // a linear scan: called only to name a record in a warning
    if (e.state == State::kWritten) return &e.record;
  return nullptr;
}

bool DeliveryWindow::delivered(uint64_t position) {
  Entry* e = find(position);
  if (!e || e->state != State::kWritten) return false;
  e->state = State::kDelivered;
  --written_;
  unconfirmed_bytes_ -= bytes(e->record);
  return true;
}

bool DeliveryWindow::failed(uint64_t position) {
  Entry* e = find(position);
  if (!e || e->state != State::kWritten) return false;
  e->state = State::kAwaitingRetry;
  --written_;
  ++retry_;
  return true;
}

bool DeliveryWindow::set_aside(uint64_t position) {
  Entry* e = find(position);
  if (!e || e->state != State::kWritten) return false;
  e->state = State::kSetAside;
  --written_;
  ++set_aside_;
  return true;
}

bool DeliveryWindow::add_set_aside(const p2k_record& record, std::shared_ptr<void> holder) {
  if (!add(record, std::move(holder))) return false;
  return set_aside(record.position);
}

const p2k_record* DeliveryWindow::set_aside_record(uint64_t position) const {
  const Entry* e = find(position);
  return e && e->state == State::kSetAside ? &e->record : nullptr;
}

std::shared_ptr<void> DeliveryWindow::holder(uint64_t position) const {
  const Entry* e = find(position);
  return e ? e->holder : nullptr;
}

bool DeliveryWindow::replace(uint64_t position, const p2k_record& letter,
                             std::shared_ptr<void> holder, Letter kind) {
  Entry* e = find(position);
  if (!e || e->state != State::kSetAside) return false;
  unconfirmed_bytes_ -= bytes(e->record);
  e->record = letter;
  e->record.position = position;
  e->holder = std::move(holder);
  e->letter = kind;
  e->state = State::kWritten;
  unconfirmed_bytes_ += bytes(e->record);
  --set_aside_;
  ++written_;
  return true;
}

bool DeliveryWindow::settle(uint64_t position) {
  Entry* e = find(position);
  if (!e || e->state != State::kSetAside) return false;
  e->state = State::kDelivered;
  e->parked = true;
  --set_aside_;
  unconfirmed_bytes_ -= bytes(e->record);
  return true;
}

std::vector<uint64_t> DeliveryWindow::hold_later_of_key(uint64_t position) {
  std::vector<uint64_t> held;
  const Entry* first = find(position);
  if (!first) return held;
  std::string key = order_key(first->record);
  for (auto& e : entries_) {
    if (e.record.position <= position || e.state == State::kSetAside) continue;
    if (order_key(e.record) != key) continue;
    switch (e.state) {
      case State::kWritten:
        --written_;
        e.stray_outcome = true;
        break;
      case State::kAwaitingRetry:
        --retry_;
        break;
      case State::kDelivered:
        unconfirmed_bytes_ += bytes(e.record);  // settle() takes them off again
        break;
      case State::kSetAside:
        break;
    }
    e.state = State::kSetAside;
    ++set_aside_;
    held.push_back(e.record.position);
  }
  return held;
}

bool DeliveryWindow::earlier_of_key_unresolved(uint64_t position) const {
  const Entry* at = find(position);
  if (!at) return false;
  std::string key = order_key(at->record);
  for (const auto& e : entries_) {
    if (e.record.position >= position) break;
    if ((e.state == State::kWritten || e.state == State::kAwaitingRetry) &&
        order_key(e.record) == key)
      return true;
  }
  return false;
}

bool DeliveryWindow::take_stray_outcome(uint64_t position) {
  Entry* e = find(position);
  if (!e || !e->stray_outcome) return false;
  e->stray_outcome = false;
  return true;
}

DeliveryWindow::Letter DeliveryWindow::letter(uint64_t position) const {
  const Entry* e = find(position);
  return e ? e->letter : Letter::kNone;
}

std::vector<p2k_record> DeliveryWindow::take_rewrites() {
  std::vector<p2k_record> out;
  if (retry_ == 0 || written_ > 0) return out;
  std::set<std::string, std::less<>> failed_keys;
  for (auto& e : entries_) {
    if (e.state == State::kAwaitingRetry) {
      failed_keys.insert(order_key(e.record));
      e.state = State::kWritten;
      --retry_;
      ++written_;
      out.push_back(e.record);
    } else if (e.state == State::kDelivered && !e.parked && e.letter == Letter::kNone &&
               !failed_keys.empty() && failed_keys.count(order_key(e.record))) {
      // Delivered before an earlier record of its key: it goes out again behind that one.
      e.state = State::kWritten;
      ++written_;
      unconfirmed_bytes_ += bytes(e.record);
      out.push_back(e.record);
    }
  }
  return out;
}

std::optional<uint64_t> DeliveryWindow::take_ackable(size_t* count) {
  std::optional<uint64_t> through;
  size_t n = 0;
  while (!entries_.empty() && entries_.front().state == State::kDelivered &&
         !entries_.front().stray_outcome) {
    through = entries_.front().record.position;
    entries_.pop_front();
    ++n;
  }
  if (count) *count = n;
  return through;
}

void DeliveryWindow::clear() {
  entries_.clear();
  written_ = 0;
  retry_ = 0;
  set_aside_ = 0;
  unconfirmed_bytes_ = 0;
}

}  // namespace pg2kafka::runtime
