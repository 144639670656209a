// Exponential backoff for transient failures: initial, doubling, capped; reset on success.
#pragma once

#include <chrono>

namespace pg2kafka::runtime {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max) {}
  // The wait before the next attempt; each call doubles the following one, up to the cap.
  std::chrono::milliseconds next();
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  int failures_ = 0;
};

}  // namespace pg2kafka::runtime
