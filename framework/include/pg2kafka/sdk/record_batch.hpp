// RecordBatch: owns the memory behind the records a source returns from poll().
#pragma once

#include <pg2kafka/plugin.h>

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pg2kafka::sdk {

class RecordBatch {
 public:
  RecordBatch() = default;
  // Records point into the batch's own strings: a batch moves (keeping them) but never copies.
  RecordBatch(const RecordBatch&) = delete;
  RecordBatch& operator=(const RecordBatch&) = delete;
  RecordBatch(RecordBatch&&) = default;
  RecordBatch& operator=(RecordBatch&&) = default;

  // A header as add() takes it: views that must stay valid until add() returns (the batch copies
  // them). Careful with temporaries: a std::vector<Header> built from std::to_string(...) points
  // to strings that are gone by the time add() runs; keep such strings in variables.
  struct Header {
    std::string_view name;
    std::string_view value;
  };

  // Appends a record; the batch keeps its own copies of all strings (a topic, header name or
  // header value equal to the previous record's is stored once). Positions must increase.
  void add(uint64_t position, std::string_view topic, std::optional<std::string> key,
           std::string value, int64_t timestamp_ms, std::string id,
           std::initializer_list<Header> headers = {}) {
    add_record(position, topic, std::move(key), std::move(value), timestamp_ms, std::move(id),
               headers.begin(), headers.size());
  }
  void add(uint64_t position, std::string_view topic, std::optional<std::string> key,
           std::string value, int64_t timestamp_ms, std::string id,
           const std::vector<Header>& headers) {
    add_record(position, topic, std::move(key), std::move(value), timestamp_ms, std::move(id),
               headers.data(), headers.size());
  }

  // Since ABI 1.5 (plugin.h, p2k_record.value): appends a record with a null value
  // (value.data == NULL), which Kafka's log compaction reads as "delete this key" (a tombstone).
  // With a host older than 1.5, the poll that returns this batch fails instead: such a host would
  // take the absent value for an empty one.
  void add_null_value(uint64_t position, std::string_view topic, std::optional<std::string> key,
                      int64_t timestamp_ms, std::string id, const std::vector<Header>& headers) {
    add_record(position, topic, std::move(key), std::nullopt, timestamp_ms, std::move(id),
               headers.data(), headers.size());
    any_null_value_ = true;
  }
  // Whether a record with a null value was added.
  bool has_null_values() const { return any_null_value_; }

  // Since ABI 1.4 (plugin.h, p2k_batch.unusable): marks the record added last as one that cannot
  // be delivered at all, saying why and what to do; the host never writes it and handles it as
  // a permanent failure (it parks it, or stops). With a host older than 1.4, the poll that
  // returns this batch fails with the first such message instead.
  void mark_last_unusable(std::string why) {
    if (owned_.empty()) return;
    unusable_.resize(owned_.size());
    unusable_.back() = std::move(why);
    any_unusable_ = true;
    records_.clear();
  }
  // NULL when every record is deliverable, else one pointer per record (NULL: deliverable).
  const char* const* unusable() {
    if (!any_unusable_) return nullptr;
    if (records_.size() != owned_.size()) build();
    return unusable_ptrs_.data();
  }

  size_t size() const { return owned_.size(); }
  bool empty() const { return owned_.empty(); }
  uint64_t last_position() const { return owned_.empty() ? 0 : owned_.back().position; }

  // The records in C form; pointers stay valid while the batch lives and is not added to.
  const p2k_record* records() {
    if (records_.size() != owned_.size()) build();
    return records_.data();
  }

 private:
  struct Owned {
    uint64_t position;
    const std::string* topic;
    std::optional<std::string> key;
    std::optional<std::string> value;
    int64_t timestamp_ms;
    std::string id;
    size_t first_header;  // index into headers_
    size_t header_count;
  };

  static p2k_slice slice(const std::string& s) { return p2k_slice{s.data(), s.size()}; }

  // A stored copy of `text`, shared with the previous record when it holds the same text at
  // the same place (`previous`: that copy or nullptr).
  const std::string* keep(std::string_view text, const std::string* previous) {
    if (previous && *previous == text) return previous;
    return &strings_.emplace_back(text);
  }

  void add_record(uint64_t position, std::string_view topic, std::optional<std::string> key,
                  std::optional<std::string> value, int64_t timestamp_ms, std::string id,
                  const Header* headers, size_t header_count) {
    const Owned* prev = owned_.empty() ? nullptr : &owned_.back();
    const std::string* kept_topic = keep(topic, prev ? prev->topic : nullptr);
    size_t first = headers_.size();
    for (size_t i = 0; i < header_count; ++i) {
      const std::pair<const std::string*, const std::string*>* same =
          prev && i < prev->header_count ? &headers_[prev->first_header + i] : nullptr;
      headers_.emplace_back(keep(headers[i].name, same ? same->first : nullptr),
                            keep(headers[i].value, same ? same->second : nullptr));
    }
    owned_.push_back(Owned{position, kept_topic, std::move(key), std::move(value), timestamp_ms,
                           std::move(id), first, header_count});
    records_.clear();
  }

  void build() {
    records_.clear();
    records_.reserve(owned_.size());
    c_headers_.clear();
    c_headers_.reserve(headers_.size());  // no reallocation below: records point into it
    for (const auto& [name, value] : headers_)
      c_headers_.push_back(p2k_header{slice(*name), slice(*value)});
    for (const auto& o : owned_) {
      p2k_record r{};
      r.struct_size = sizeof(p2k_record);
      r.position = o.position;
      r.topic = slice(*o.topic);
      r.key = o.key ? slice(*o.key) : p2k_slice{nullptr, 0};
      r.value = o.value ? slice(*o.value) : p2k_slice{nullptr, 0};
      r.timestamp_ms = o.timestamp_ms;
      r.id = slice(o.id);
      r.headers = o.header_count ? c_headers_.data() + o.first_header : nullptr;
      r.header_count = o.header_count;
      records_.push_back(r);
    }
    if (any_unusable_) {
      unusable_.resize(owned_.size());
      unusable_ptrs_.clear();
      for (const auto& u : unusable_) unusable_ptrs_.push_back(u ? u->c_str() : nullptr);
    }
  }

  std::deque<Owned> owned_;
  std::deque<std::string> strings_;  // topics and headers; deque: stable addresses
  std::vector<std::pair<const std::string*, const std::string*>> headers_;
  std::vector<p2k_header> c_headers_;
  std::vector<p2k_record> records_;
  bool any_unusable_ = false;
  bool any_null_value_ = false;
  std::vector<std::optional<std::string>> unusable_;  // by record, once one is marked
  std::vector<const char*> unusable_ptrs_;
};

}  // namespace pg2kafka::sdk
