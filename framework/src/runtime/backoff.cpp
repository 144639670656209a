#include "runtime/backoff.hpp"

#include <algorithm>

namespace pg2kafka::runtime {

std::chrono::milliseconds Backoff::next() {
  // Shift at most 30 times: past that the cap applies anyway and the shift would overflow.
  int shift = std::min(failures_, 30);
  ++failures_;
  auto wait = initial_.count() * (int64_t{1} << shift);
  return std::chrono::milliseconds(std::min<int64_t>(wait, max_.count()));
}

}  // namespace pg2kafka::runtime
