// The host's stop: stop signals, the bounded shutdown, and the forced exit when a plugin call
// does not return.
//
//   SIGTERM, SIGINT, SIGHUP  a graceful stop: the pipeline stops polling and has until
//                            shutdown_timeout (from the signal) to settle what is in flight.
//   a second one, SIGQUIT    a forced stop, at once.
//   shutdown_timeout passed  a forced stop (also when the pipeline shuts down on its own, say
//                            after a failure, and a call blocks).
//
// A forced stop interrupts the plugin calls that are blocked (p2k_*_ops.interrupt), after which
// the pipeline acknowledges nothing more and exits 4; if the pipeline has still not returned
// after a grace period, the process exits 4 at once, abandoning the blocked call. Either way
// nothing is lost: what was not acknowledged stays in the source.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace pg2kafka::runtime {

class StopControl {
 public:
  using Clock = std::chrono::steady_clock;
  enum Level : int { kRunning = 0, kStopping = 1, kForced = 2 };
  // Between the deadline passing and the forced stop: the pipeline's own waits end at the
  // deadline, so it normally returns before this runs out.
  static constexpr std::chrono::milliseconds kForceMargin{200};
  // Between the interrupt and the forced exit.
  static constexpr std::chrono::milliseconds kGrace{700};

  // Starts the thread that watches the deadline. With `take_signals`, it first blocks SIGTERM,
  // SIGINT, SIGHUP and SIGQUIT in the calling thread (threads started later, the plugins'
  // included, inherit the mask) and the thread takes them: construct it before any plugin opens.
  StopControl(std::chrono::milliseconds shutdown_timeout, bool take_signals);
  ~StopControl();
  StopControl(const StopControl&) = delete;
  StopControl& operator=(const StopControl&) = delete;

  // What a forced stop interrupts (run on a thread of its own, under a lock:
  // set_interrupt(nullptr) waits until a running call ended, so the callback never outlives what
  // it refers to).
  void set_interrupt(std::function<void()> interrupt);

  // kRunning, kStopping or kForced. Only grows.
  int level() const { return level_.load(); }

  // The pipeline shuts down (for whatever reason): starts the shutdown_timeout clock unless a
  // stop request started it already. Returns the deadline.
  Clock::time_point shutting_down();

 private:
  void run();
  void on_signal(int signal);
  // A graceful stop: starts the shutdown_timeout clock.
  void request_stop(const std::string& why);
  void force(const std::string& why);

  const std::chrono::milliseconds shutdown_timeout_;
  std::atomic<int> level_{kRunning};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<Clock::time_point> deadline_;
  std::optional<Clock::time_point> exit_at_;  // forced: when the process exits regardless
  bool quit_ = false;
  const bool take_signals_;
  // Shared with the thread that runs the interrupt, so that a plugin whose interrupt blocks
  // (against its contract) cannot hold up the forced exit.
  struct Interrupt {
    std::mutex mutex;
    std::function<void()> call;
  };
  std::shared_ptr<Interrupt> interrupt_ = std::make_shared<Interrupt>();
  std::thread thread_;
};

}  // namespace pg2kafka::runtime
