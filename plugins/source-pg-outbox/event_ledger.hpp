// The source's bookkeeping between reading a queue batch and removing it: events read but not
// returned yet (a batch may hold more than a poll asks for), events returned but not
// acknowledged, and which batches they come from. A batch is removed from the queue once its
// last event is acknowledged; a batch with events here is never read again by this instance. No
// I/O, so the rules are tested without a database.
#pragma once

#include <pg2kafka/sdk/record_batch.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace pg2kafka::pg_outbox {

// What a table's events are sent with; the source keeps one per table for its whole life, so
// events point to it.
struct TableNames {
  std::string topic;
  std::string qualified;  // schema.table, the "table" header
};

class EventLedger {
 public:
  struct Event {
    std::optional<std::string> key;
    std::string value;
    int64_t timestamp_ms;
    std::string uuid;
    // The "statement" header when it is not the batch's (a backfill's SNAPSHOT of a row whose
    // key an UPDATE changed); must outlive the ledger's use of it.
    const std::string* statement = nullptr;
  };

  // Adds the events of one queue batch (at least one), in order, numbered with the next
  // positions. `names` and `statement` must outlive the ledger's use of them.
  void add_batch(int64_t batch_id, const TableNames& names, const std::string& statement,
                 std::vector<Event> events);
  // Whether the batch has events here (pending or returned and not acknowledged).
  bool holds(int64_t batch_id) const { return batches_.count(batch_id) > 0; }
  bool has_pending() const { return !pending_.empty(); }
  // No event pending or awaiting its acknowledgement.
  bool idle() const { return pending_.empty() && in_flight_.empty(); }
  // Up to `limit` pending events as records (with the "statement" and "table" headers); they
  // are in flight from then on.
  std::unique_ptr<sdk::RecordBatch> take(size_t limit);
  // The batches whose last event is at or before position `through`: every event of theirs is
  // acknowledged (acks come in position order). Changes nothing: call forget() once they are
  // removed from the queue.
  std::vector<int64_t> completed_through(uint64_t through) const;
  // Forgets the events at or before `through`.
  void forget_through(uint64_t through);

 private:
  struct Pending {
    uint64_t position;
    int64_t batch_id;
    bool last_of_batch;
    const TableNames* names;
    const std::string* statement;
    Event event;
  };
  struct InFlight {
    uint64_t position;
    int64_t batch_id;
    bool last_of_batch;
  };
  uint64_t next_position_ = 1;
  std::deque<Pending> pending_;
  std::deque<InFlight> in_flight_;  // in position order
  std::unordered_set<int64_t> batches_;
};

}  // namespace pg2kafka::pg_outbox
