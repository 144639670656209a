// In-order acknowledgement: records are delivered out of order, but the source may only forget
// the unbroken prefix of delivered records, so that a crash never loses a record that was
// acknowledged before an earlier one was delivered.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace pg2kafka::runtime {

class AckTracker {
 public:
  // A record was written; positions must strictly increase. Returns false when they do not.
  bool add(uint64_t position);
  // The record's delivery was confirmed. Returns false for a position that is not tracked or was
  // already confirmed.
  bool delivered(uint64_t position);
  // The highest position such that it and every tracked position before it are delivered, and
  // forgets those positions; nullopt when the oldest record is still undelivered.
  std::optional<uint64_t> take_ackable();
  // Records added and not yet forgotten by take_ackable.
  size_t tracked() const { return entries_.size(); }
  std::optional<uint64_t> last_added() const { return last_added_; }

 private:
  std::deque<std::pair<uint64_t, bool>> entries_;  // (position, delivered), sorted
  std::optional<uint64_t> last_added_;
};

}  // namespace pg2kafka::runtime
