// The drain's window cursor (outbox_source.hpp, "How draining works"): which pair of snapshots
// and which id range the next page of the queue reads, and the horizons that bound where a new
// window's scan starts. No I/O: the source tells it what it read, and it says what to read next,
// so the rules are tested without a database.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

namespace pg2kafka::pg_outbox {

class DrainWindow {
 public:
  using Clock = std::chrono::steady_clock;
  // How often a horizon is taken: each costs one transaction id, ten a second, so about 0.9
  // million a day; a window's scan starts at most about this far back.
  static constexpr std::chrono::milliseconds kHorizonInterval{100};

  // Forgets the cursor: the next window scans the whole queue (after taking the drain lock, or
  // losing it with the connection: another instance may have drained meanwhile). What this
  // instance returned and not yet saw acknowledged is kept from being returned twice by the
  // source's ledger, not here.
  void reset();

  // Whether a window is being read (its snapshot was taken and it is not done).
  bool reading() const { return current_.has_value(); }
  // Starts a window: `snapshot` (as PostgreSQL prints it), its xmin, and the largest queue id
  // read in that snapshot. The window's first page starts after start_id().
  void start(std::string snapshot, uint64_t xmin, int64_t max_id);
  // The next page's parameters: events visible in current() and not in previous(), with
  // after_id() < id <= max_id().
  const std::optional<std::string>& previous() const { return previous_; }
  const std::optional<std::string>& current() const { return current_; }
  int64_t after_id() const { return after_id_; }
  int64_t max_id() const { return max_id_; }
  // A row of the page was read (ids come in increasing order).
  void read(int64_t id);
  // The window is done: its snapshot becomes the previous one; the next call to start() opens a
  // new window.
  void finish();

  // Whether a horizon is due (at most one per kHorizonInterval); when it is, the caller reads
  // the largest id F, then has one transaction id X assigned, and calls add_horizon(X, F).
  bool horizon_due(Clock::time_point now);
  // `floor` is at least as large as every id taken before it was read; the floor used is also at
  // least every id this instance read.
  void add_horizon(uint64_t xid, int64_t floor);

  // Where a new window's scan may start without missing an event (see the .cpp).
  int64_t start_id();

 private:
  struct Horizon {
    uint64_t xid;   // assigned right after `floor` was read
    int64_t floor;  // no id taken after it was read is <= it
  };

  std::optional<std::string> previous_;
  std::optional<std::string> current_;
  uint64_t previous_xmin_ = 0, current_xmin_ = 0;
  int64_t max_id_ = 0;
  int64_t after_id_ = 0;
  int64_t max_read_id_ = 0;       // the largest id this instance read, over its whole life
  std::deque<Horizon> horizons_;  // oldest first
  Clock::time_point next_horizon_at_{};
};

}  // namespace pg2kafka::pg_outbox
