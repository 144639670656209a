// Interrupter: how another thread cuts short what a PgConnection waits for (the host's interrupt,
// plugin.h p2k_source_ops.interrupt).
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace pg2kafka::pg_outbox {

// A wait that Interrupter::interrupt() cut short. When it interrupted a query, the connection is
// unusable (the query may run on until the cancel request reaches the server): drop it.
class PgInterrupted : public std::runtime_error {
 public:
  explicit PgInterrupted(const std::string& message) : std::runtime_error(message) {}
};

// Lets another thread stop what a PgConnection waits for: the query running (a cancel request is
// sent to the server), a notification, a sleep. Sticky: once interrupted, every later wait and
// query of the connections using it fails at once with PgInterrupted. interrupt() and
// interrupted() are thread-safe and never block; the rest belongs to the connection's thread.
class Interrupter {
 public:
  // Throws std::system_error when no eventfd can be had.
  Interrupter();
  // Waits up to 2 s for a cancel request still being sent (see interrupt()).
  ~Interrupter();
  Interrupter(const Interrupter&) = delete;
  Interrupter& operator=(const Interrupter&) = delete;

  // Wakes every wait, now and later, and has the query running (if any) cancelled. The cancel
  // request (PQcancel: a connection to the server) goes out on a thread of its own, so that this
  // returns at once even when the server does not answer.
  void interrupt() noexcept;
  bool interrupted() const noexcept { return interrupted_.load(std::memory_order_acquire); }
  // Readable once interrupted (and from then on), for poll(2).
  int fd() const noexcept { return fd_; }
  // Sleeps for `duration` or until interrupted; returns false when interrupted.
  bool sleep(std::chrono::milliseconds duration) const;

  // The connection's thread: `cancel` (of the connection about to run a query) is what
  // interrupt() cancels until query_ended(). Returns false, registering nothing, when interrupted.
  bool query_started(std::shared_ptr<PGcancel> cancel);
  void query_ended();

 private:
  struct CancelJob;
  std::atomic<bool> interrupted_{false};
  int fd_ = -1;
  std::mutex mutex_;
  std::shared_ptr<PGcancel> running_;  // the query's connection, between the two calls above
  std::shared_ptr<CancelJob> job_;     // the cancel request sent by interrupt(), if any
};

}  // namespace pg2kafka::pg_outbox
