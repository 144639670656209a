#include "event_ledger.hpp"

#include <algorithm>

namespace pg2kafka::pg_outbox {

void EventLedger::add_batch(int64_t batch_id, const TableNames& names, const std::string& statement,
                            std::vector<Event> events) {
  for (Event& e : events) {
    const std::string* header = e.statement ? e.statement : &statement;
    pending_.push_back(
        Pending{next_position_++, batch_id, false, &names, header, std::move(e), 0, std::nullopt});
  }
  if (!events.empty()) {
    pending_.back().last_of_batch = true;
    batches_.insert(batch_id);
  }
}

void EventLedger::add_unusable(int64_t batch_id, const TableNames& names,
                               const std::string& statement, Event event, std::string why) {
  pending_.push_back(Pending{next_position_++, batch_id, true, &names, &statement, std::move(event),
                             0, std::move(why)});
  batches_.insert(batch_id);
}

void EventLedger::add_parked(int64_t parked_id, const TableNames& names,
                             const std::string& statement, Event event) {
  pending_.push_back(Pending{next_position_++, 0, false, &names, &statement, std::move(event),
                             parked_id, std::nullopt});
  ++parked_outstanding_;
}

std::unique_ptr<sdk::RecordBatch> EventLedger::take(size_t limit, const HoldCheck& hold,
                                                    std::vector<int64_t>* completed) {
  auto batch = std::make_unique<sdk::RecordBatch>();
  std::vector<sdk::RecordBatch::Header> headers;
  while (!pending_.empty() && batch->size() < limit) {
    Pending& p = pending_.front();
    bool malformed = p.unusable.has_value();
    bool held = false;
    if (hold) {
      try {
        held = hold(
            {*p.names, p.event.key, p.event.value, p.batch_id, p.parked_id, malformed, p.event});
      } catch (...) {
        if (batch->empty()) throw;
        break;  // what was taken goes out; this event is offered again next time
      }
    }
    if (held) {
      if (p.parked_id > 0) --parked_outstanding_;
      if (p.last_of_batch) {
        // The batch completes with its last event still here (in flight), or now.
        auto earlier = std::find_if(in_flight_.rbegin(), in_flight_.rend(), [&](const InFlight& f) {
          return f.batch_id == p.batch_id && p.parked_id == 0;
        });
        if (earlier != in_flight_.rend()) {
          earlier->last_of_batch = true;
        } else {
          batches_.erase(p.batch_id);
          if (completed && p.parked_id == 0) completed->push_back(p.batch_id);
        }
      }
      pending_.pop_front();
      continue;
    }
    in_flight_.push_back(
        {p.position, p.batch_id, p.last_of_batch, p.names, p.parked_id, malformed, false});
    if (!p.event.headers && !p.event.null_value) {
      batch->add(p.position, p.names->topic, std::move(p.event.key), std::move(p.event.value),
                 p.event.timestamp_ms, std::move(p.event.uuid),
                 {{"statement", *p.statement}, {"table", p.names->qualified}});
    } else {
      headers.assign({{"statement", *p.statement}, {"table", p.names->qualified}});
      if (p.event.headers)
        for (const auto& [name, value] : *p.event.headers) headers.push_back({name, value});
      if (p.event.null_value)
        batch->add_null_value(p.position, p.names->topic, std::move(p.event.key),
                              p.event.timestamp_ms, std::move(p.event.uuid), headers);
      else
        batch->add(p.position, p.names->topic, std::move(p.event.key), std::move(p.event.value),
                   p.event.timestamp_ms, std::move(p.event.uuid), headers);
    }
    if (malformed) batch->mark_last_unusable(std::move(*p.unusable));
    pending_.pop_front();
  }
  return batch;
}

EventLedger::InFlight* EventLedger::in_flight(uint64_t position) {
  auto it = std::lower_bound(in_flight_.begin(), in_flight_.end(), position,
                             [](const InFlight& f, uint64_t p) { return f.position < p; });
  return it == in_flight_.end() || it->position != position ? nullptr : &*it;
}

std::vector<int64_t> EventLedger::parked_delivered_through(uint64_t through) const {
  std::vector<int64_t> done;
  for (const InFlight& f : in_flight_) {
    if (f.position > through) break;
    if (f.parked_id > 0 && !f.parked) done.push_back(f.parked_id);
  }
  return done;
}

std::vector<int64_t> EventLedger::completed_through(uint64_t through) const {
  std::vector<int64_t> done;
  for (const InFlight& f : in_flight_) {
    if (f.position > through) break;
    if (f.last_of_batch) done.push_back(f.batch_id);
  }
  return done;
}

void EventLedger::forget_through(uint64_t through) {
  while (!in_flight_.empty() && in_flight_.front().position <= through) {
    if (in_flight_.front().last_of_batch) batches_.erase(in_flight_.front().batch_id);
    if (in_flight_.front().parked_id > 0) --parked_outstanding_;
    in_flight_.pop_front();
  }
}

}  // namespace pg2kafka::pg_outbox
