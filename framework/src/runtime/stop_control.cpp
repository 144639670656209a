#include "runtime/stop_control.hpp"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "runtime/exit_codes.hpp"
#include "runtime/log.hpp"

namespace pg2kafka::runtime {
namespace {

constexpr std::chrono::milliseconds kTick{50};

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaddset(&set, s);
  return set;
}

std::string signal_name(int s) {
  switch (s) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
  }
  return "signal " + std::to_string(s);
}

std::string millis(std::chrono::milliseconds d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

StopControl::StopControl(std::chrono::milliseconds shutdown_timeout, bool take_signals)
    : shutdown_timeout_(shutdown_timeout), take_signals_(take_signals) {
  if (take_signals_) {
    sigset_t set = stop_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  thread_ = std::thread([this] { run(); });
}

StopControl::~StopControl() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
  // Signals stay blocked: the process is about to exit, and one arriving now must not kill it
  // with another exit code than the one the pipeline chose.
}

void StopControl::set_interrupt(std::function<void()> interrupt) {
  std::lock_guard lock(interrupt_->mutex);
  interrupt_->call = std::move(interrupt);
}

void StopControl::request_stop(const std::string& why) {
  std::lock_guard lock(mutex_);
  if (level_.load() >= kStopping) return;
  level_ = kStopping;
  auto deadline = Clock::now() + shutdown_timeout_;
  if (!deadline_ || deadline < *deadline_) deadline_ = deadline;
  log::info(why + ": stopping (up to shutdown_timeout, " + millis(shutdown_timeout_) +
            ", to settle what is in flight; a second signal or SIGQUIT stops at once)");
}

StopControl::Clock::time_point StopControl::shutting_down() {
  std::lock_guard lock(mutex_);
  if (!deadline_) deadline_ = Clock::now() + shutdown_timeout_;
  return *deadline_;
}

void StopControl::on_signal(int s) {
  if (s == SIGQUIT || level_.load() >= kStopping) {
    force("received " + signal_name(s));
    return;
  }
  request_stop("received " + signal_name(s));
}

void StopControl::force(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (level_.load() >= kForced) return;
    level_ = kForced;
    exit_at_ = Clock::now() + kGrace;
  }
  log::warn(why +
            ": forcing the stop; interrupting whatever plugin call is blocked, "
            "acknowledging nothing more (what is not acknowledged is delivered again by "
            "the next run)");
  std::thread([state = interrupt_] {
    std::lock_guard lock(state->mutex);
    if (state->call) state->call();
  }).detach();
}

void StopControl::run() {
  sigset_t set = stop_signals();
  while (true) {
    {
      std::unique_lock lock(mutex_);
      if (quit_) return;
      if (!take_signals_) wake_.wait_for(lock, kTick, [&] { return quit_; });
      if (quit_) return;
    }
    if (take_signals_) {
      timespec tick{0, static_cast<long>(
                           std::chrono::duration_cast<std::chrono::nanoseconds>(kTick).count())};
      int s = sigtimedwait(&set, nullptr, &tick);
      if (s > 0) on_signal(s);
    }
    auto now = Clock::now();
    std::optional<Clock::time_point> deadline, exit_at;
    {
      std::lock_guard lock(mutex_);
      deadline = deadline_;
      exit_at = exit_at_;
    }
    if (level_.load() < kForced && deadline && now >= *deadline + kForceMargin)
      force("the stop did not finish within shutdown_timeout (" + millis(shutdown_timeout_) + ")");
    if (exit_at && now >= *exit_at) {
      log::error("a plugin call did not return within " + millis(kGrace) +
                 " of being interrupted: exiting now, without closing the plugins (nothing more "
                 "was acknowledged; what was not is delivered again by the next run)");
      _exit(kExitRuntime);
    }
  }
}

}  // namespace pg2kafka::runtime
