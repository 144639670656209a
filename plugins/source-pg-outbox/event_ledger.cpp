#include "event_ledger.hpp"

namespace pg2kafka::pg_outbox {

void EventLedger::add_batch(int64_t batch_id, const TableNames& names, const std::string& statement,
                            std::vector<Event> events) {
  for (Event& e : events) {
    const std::string* header = e.statement ? e.statement : &statement;
    pending_.push_back(Pending{next_position_++, batch_id, false, &names, header, std::move(e)});
  }
  if (!events.empty()) {
    pending_.back().last_of_batch = true;
    batches_.insert(batch_id);
  }
}

std::unique_ptr<sdk::RecordBatch> EventLedger::take(size_t limit) {
  auto batch = std::make_unique<sdk::RecordBatch>();
  while (!pending_.empty() && batch->size() < limit) {
    Pending& p = pending_.front();
    in_flight_.push_back({p.position, p.batch_id, p.last_of_batch});
    batch->add(p.position, p.names->topic, std::move(p.event.key), std::move(p.event.value),
               p.event.timestamp_ms, std::move(p.event.uuid),
               {{"statement", *p.statement}, {"table", p.names->qualified}});
    pending_.pop_front();
  }
  return batch;
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
    in_flight_.pop_front();
  }
}

}  // namespace pg2kafka::pg_outbox
