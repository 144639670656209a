#include "runtime/ack_tracker.hpp"

#include <algorithm>

namespace pg2kafka::runtime {

bool AckTracker::add(uint64_t position) {
  if (last_added_ && position <= *last_added_) return false;
  entries_.emplace_back(position, false);
  last_added_ = position;
  return true;
}

bool AckTracker::delivered(uint64_t position) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), position,
                             [](const auto& e, uint64_t p) { return e.first < p; });
  if (it == entries_.end() || it->first != position || it->second) return false;
  it->second = true;
  return true;
}

std::optional<uint64_t> AckTracker::take_ackable() {
  std::optional<uint64_t> through;
  while (!entries_.empty() && entries_.front().second) {
    through = entries_.front().first;
    entries_.pop_front();
  }
  return through;
}

}  // namespace pg2kafka::runtime
