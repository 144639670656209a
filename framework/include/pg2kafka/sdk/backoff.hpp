// Backoff: exponential waits for retrying transient failures (initial, doubling, capped; reset on
// success). The host retries with it; a plugin that retries something itself (a reconnect) uses
// the same.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace pg2kafka::sdk {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max) {}
  // The wait before the next attempt; each call doubles the following one, up to the cap.
  std::chrono::milliseconds next() {
    // Shift at most 30 times: past that the cap applies anyway and the shift would overflow.
    int shift = std::min(failures_, 30);
    ++failures_;
    auto wait = initial_.count() * (int64_t{1} << shift);
    return std::chrono::milliseconds(std::min<int64_t>(wait, max_.count()));
  }
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  int failures_ = 0;
};

}  // namespace pg2kafka::sdk
