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
#include <functional>
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
  std::string schema, table;
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
    // Capture options: a null value (a tombstone; `value` is then the DELETE's message, kept
    // for parking), and the batch's provenance headers, sent after "statement" and "table".
    bool null_value = false;
    std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> headers;
  };
  // What the source knows of a record in flight, for parking it.
  struct InFlight {
    uint64_t position;
    int64_t batch_id;  // the queue batch (0 for an event retried from pg2kafka.parked_events)
    bool last_of_batch;
    const TableNames* names;
    int64_t parked_id = 0;  // > 0: retried from pg2kafka.parked_events, this row
    bool malformed = false;
    bool parked = false;  // parked (again) while in flight: not delivered
  };

  // Adds the events of one queue batch (at least one), in order, numbered with the next
  // positions. `names` and `statement` must outlive the ledger's use of them.
  void add_batch(int64_t batch_id, const TableNames& names, const std::string& statement,
                 std::vector<Event> events);
  // Adds the one event of a queue batch that cannot be delivered (a malformed row, whose value
  // is then the row itself), with why, for the host (p2k_batch.unusable).
  void add_unusable(int64_t batch_id, const TableNames& names, const std::string& statement,
                    Event event, std::string why);
  // Adds an event retried from pg2kafka.parked_events (row `parked_id`), numbered with the next
  // position.
  void add_parked(int64_t parked_id, const TableNames& names, const std::string& statement,
                  Event event);
  // The record in flight at `position`, or nullptr.
  InFlight* in_flight(uint64_t position);
  // Events retried from pg2kafka.parked_events that are pending or in flight.
  size_t parked_outstanding() const { return parked_outstanding_; }
  // Whether the batch has events here (pending or returned and not acknowledged).
  bool holds(int64_t batch_id) const { return batches_.count(batch_id) > 0; }
  bool has_pending() const { return !pending_.empty(); }
  // No event pending or awaiting its acknowledgement.
  bool idle() const { return pending_.empty() && in_flight_.empty(); }
  // What `take` shows its hold check of a pending event.
  struct PendingView {
    const TableNames& names;
    const std::optional<std::string>& key;
    const std::string& value;  // the message
    int64_t batch_id;          // the queue batch (negative: a backfill chunk; 0: a retried one)
    int64_t parked_id;         // > 0: retried from pg2kafka.parked_events
    bool unusable;
    const Event& event;  // its null value and provenance headers (capture options)
  };
  // Returns true when it kept the event elsewhere (parked it): the ledger then drops it. It may
  // throw, leaving that event and those after it pending.
  using HoldCheck = std::function<bool(const PendingView&)>;

  // Up to `limit` pending events as records (with the "statement" and "table" headers); they
  // are in flight from then on. With `hold`, each is first offered to it (parking: events of a
  // held key never leave). A batch whose last events were held is complete once its earlier ones
  // are acknowledged; when none of its events is left at all, its id goes to `completed` (the
  // caller removes it from the queue).
  std::unique_ptr<sdk::RecordBatch> take(size_t limit, const HoldCheck& hold = nullptr,
                                         std::vector<int64_t>* completed = nullptr);
  // The batches whose last event is at or before position `through`: every event of theirs is
  // acknowledged (acks come in position order). Changes nothing: call forget() once they are
  // removed from the queue.
  std::vector<int64_t> completed_through(uint64_t through) const;
  // The pg2kafka.parked_events rows retried and delivered at or before `through` (not those
  // parked again). Changes nothing.
  std::vector<int64_t> parked_delivered_through(uint64_t through) const;
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
    int64_t parked_id = 0;
    std::optional<std::string> unusable;
  };
  uint64_t next_position_ = 1;
  std::deque<Pending> pending_;
  std::deque<InFlight> in_flight_;  // in position order
  std::unordered_set<int64_t> batches_;
  size_t parked_outstanding_ = 0;
};

}  // namespace pg2kafka::pg_outbox
