// The records between their write to the sink and their acknowledgement to the source, in source
// order: what the host may acknowledge, what it must write again, and the per-key ordering rule.
//
// Acknowledgement. Records are delivered out of order, but the source may only forget the
// unbroken prefix of delivered records, so that a crash never loses a record that was
// acknowledged before an earlier one was delivered.
//
// Parking (on_permanent_failure=park). A record that failed permanently is *set aside*: it stays
// unconfirmed (acknowledgement stops before it) while the host parks it in the source and,
// with a dead-letter topic, writes its dead letter in its place (same position, another
// record); it is confirmed when that dead letter is delivered, or at once without one. Every
// later record of its topic and key still here is set aside with it (held), whatever its
// state, to be parked behind it: the parked records then reach consumers in order after a
// retry, and one that already arrived arrives again there (consumers keep the last copy, as
// after a retry); an outcome the sink still reports for a held record is ignored.
//
// Ordering after a retry (plugin.h, p2k_host.report). A record the sink reports RETRY is written
// again, but only once no record written before is still awaiting its outcome, so that it goes out
// after all of them; and every later record with the same topic and key that the sink reported
// OK meanwhile (it reached the destination before the failed one) is written again with it, in
// position order, and counts as undelivered until that second write is confirmed. Consumers then
// see the per-key order, with duplicates they drop by event id. Since acknowledgement stops at the
// first undelivered record, such a later record is always still here when the rule needs it.
#pragma once

#include <pg2kafka/plugin.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace pg2kafka::runtime {

class DeliveryWindow {
 public:
  enum class State : uint8_t {
    kWritten,        // handed to the sink, outcome not known yet
    kAwaitingRetry,  // failed transiently (reported RETRY, or its write failed): to write again
    kDelivered,      // reported OK, not acknowledged yet (an earlier record is not delivered)
    kSetAside,       // failed permanently: being parked, its dead letter not written yet
  };
  // What a position holds: the source's record, or the dead letter written in its place.
  enum class Letter : uint8_t { kNone, kWithValue, kWithoutValue };

  // A record the host is about to write: a shallow copy whose memory `holder` keeps alive (the
  // source's batch). Returns false, adding nothing, when its position does not exceed every
  // position added before (a source bug).
  bool add(const p2k_record& record, std::shared_ptr<void> holder);

  // The sink reported the record OK. Returns false when the position is not awaiting an outcome
  // (reported twice, or never written).
  bool delivered(uint64_t position);
  // The sink reported the record RETRY (or the write of it failed as a whole); same return.
  bool failed(uint64_t position);
  // The record of a position that is awaiting an outcome, or nullptr.
  const p2k_record* awaiting(uint64_t position) const;

  // Parking. set_aside: a record awaiting its outcome failed permanently; add_set_aside: a record
  // the source marked unusable, never written (positions increase, as for add). Both false when
  // the record is not in that state (add_set_aside: when add would refuse it).
  bool set_aside(uint64_t position);
  bool add_set_aside(const p2k_record& record, std::shared_ptr<void> holder);
  // The record set aside at `position` (or nullptr) and what keeps its memory.
  const p2k_record* set_aside_record(uint64_t position) const;
  std::shared_ptr<void> holder(uint64_t position) const;
  // Puts a dead letter in place of the record set aside at `position`, awaiting its outcome (to
  // be written now); `holder` keeps its memory. False when nothing is set aside there.
  bool replace(uint64_t position, const p2k_record& letter, std::shared_ptr<void> holder,
               Letter kind);
  // Confirms a record set aside (parked, without a dead letter).
  bool settle(uint64_t position);
  // Sets aside every later record of the same topic and key as the record at `position` that
  // is not set aside yet (held behind it), returning their positions in order.
  std::vector<uint64_t> hold_later_of_key(uint64_t position);
  // Whether the sink's outcome for `position` is one to ignore: the record was held while its
  // write was awaiting an outcome. True once per such record; until it came, the record is not
  // acknowledged (its report must find it here).
  bool take_stray_outcome(uint64_t position);
  // Whether an earlier record of the same topic and key as the one at `position` may still be
  // delivered or fail (written, or awaiting a retry): parking must wait for it, so that a key's
  // records are parked in their order.
  bool earlier_of_key_unresolved(uint64_t position) const;
  // Whether the position holds a dead letter, and which.
  Letter letter(uint64_t position) const;

  // The records to write again now, in position order, marked written: every record awaiting a
  // retry, plus the later records of the same topic and key that were delivered meanwhile (the
  // ordering rule). Empty while any record awaits an outcome: a retry waits for everything
  // written before it.
  std::vector<p2k_record> take_rewrites();

  // The highest position such that it and every position before it are delivered, and forgets
  // those records (releasing their memory); nullopt when the oldest record is not delivered.
  // `count`, when given, receives how many records were forgotten.
  std::optional<uint64_t> take_ackable(size_t* count = nullptr);

  // The record of the lowest position that awaits an outcome, or nullptr.
  const p2k_record* oldest_awaiting_outcome() const;

  // Forgets everything (releasing the memory of every record).
  void clear();

  size_t awaiting_outcome() const { return written_; }
  size_t awaiting_retry() const { return retry_; }
  size_t set_aside_count() const { return set_aside_; }
  // Records written and not yet confirmed: what max_in_flight bounds.
  size_t unconfirmed() const { return written_ + retry_ + set_aside_; }
  // Their keys and values: what max_in_flight_bytes bounds.
  size_t unconfirmed_bytes() const { return unconfirmed_bytes_; }
  // Records not acknowledged yet (unconfirmed, or delivered behind an unconfirmed one).
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::optional<uint64_t> last_added() const { return last_added_; }

 private:
  struct Entry {
    p2k_record record;
    std::shared_ptr<void> holder;
    State state;
    Letter letter = Letter::kNone;
    bool stray_outcome = false;  // held while written: its outcome will come, and be ignored
    bool parked = false;         // settled by parking: never written again
  };
  Entry* find(uint64_t position);
  const Entry* find(uint64_t position) const;
  static size_t bytes(const p2k_record& r) { return r.key.size + r.value.size; }

  std::deque<Entry> entries_;  // sorted by position
  size_t written_ = 0;
  size_t retry_ = 0;
  size_t set_aside_ = 0;
  size_t unconfirmed_bytes_ = 0;
  std::optional<uint64_t> last_added_;
};

}  // namespace pg2kafka::runtime
