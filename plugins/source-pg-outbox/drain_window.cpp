#include "drain_window.hpp"

#include <algorithm>

namespace pg2kafka::pg_outbox {

void DrainWindow::reset() {
  previous_.reset();
  current_.reset();
  horizons_.clear();
  after_id_ = 0;
}

void DrainWindow::start(std::string snapshot, uint64_t xmin, int64_t max_id) {
  current_ = std::move(snapshot);
  current_xmin_ = xmin;
  max_id_ = max_id;
  after_id_ = start_id();
}

void DrainWindow::read(int64_t id) {
  after_id_ = id;
  max_read_id_ = std::max(max_read_id_, id);
}

void DrainWindow::finish() {
  previous_ = std::move(current_);
  previous_xmin_ = current_xmin_;
  current_.reset();
  after_id_ = 0;
}

bool DrainWindow::horizon_due(Clock::time_point now) {
  if (now < next_horizon_at_) return false;
  next_horizon_at_ = now + kHorizonInterval;
  return true;
}

void DrainWindow::add_horizon(uint64_t xid, int64_t floor) {
  horizons_.push_back({xid, std::max(floor, max_read_id_)});
}

// A new window's events come from transactions not visible in the previous snapshot, so with an
// xid >= that snapshot's xmin. A horizon pairs a floor F (an id at least as large as every id
// taken before it was read: the largest committed id, or the largest this instance read) with a
// transaction id X assigned right after reading F. A transaction whose xid is above X got it
// after F was read, so took all its event ids later, and they exceed F. (A snapshot's own xmax
// cannot serve as X: a running transaction may hold an xid above it.) Without such a bound every
// window would scan from the queue's head, through the rows of everything delivered before that
// vacuum has not removed yet.
int64_t DrainWindow::start_id() {
  if (!previous_) return 0;
  // The latest horizon below the previous xmin gives the bound; older ones will never be needed
  // again (xmin never decreases).
  while (horizons_.size() > 1 && horizons_[1].xid < previous_xmin_) horizons_.pop_front();
  if (horizons_.empty() || horizons_.front().xid >= previous_xmin_) return 0;
  return horizons_.front().floor;
}

}  // namespace pg2kafka::pg_outbox
