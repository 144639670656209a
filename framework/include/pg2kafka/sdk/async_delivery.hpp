// Helpers for sinks that deliver after write() returned, on threads of their own: OwnedRecord,
// InFlight and AsyncDelivery.
#pragma once

#include <pg2kafka/plugin.h>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pg2kafka/sdk/errors.hpp>
#include <pg2kafka/sdk/host.hpp>
#include <pg2kafka/sdk/json.hpp>

namespace pg2kafka::sdk {

// A record copied out of the host's memory, which a sink may keep as long as it likes.
struct OwnedRecord {
  uint64_t position = 0;
  std::string topic;
  std::optional<std::string> key;  // nullopt: a null key
  std::string value;
  int64_t timestamp_ms = 0;
  std::string id;
  std::vector<std::pair<std::string, std::string>> headers;

  OwnedRecord() = default;
  explicit OwnedRecord(const p2k_record& r)
      : position(r.position),
        topic(view(r.topic)),
        value(view(r.value)),
        timestamp_ms(r.timestamp_ms),
        id(view(r.id)) {
    if (r.key.data) key.emplace(r.key.data, r.key.size);
    headers.reserve(r.header_count);
    for (size_t i = 0; i < r.header_count; ++i)
      headers.emplace_back(view(r.headers[i].name), view(r.headers[i].value));
  }
};

// Counts records written and not yet reported, and waits until none is left: the bookkeeping
// behind flush() for a sink whose deliveries complete on other threads. Call add() in write()
// before handing records on, and done() after reporting them. Thread-safe.
class InFlight {
 public:
  void add(size_t n = 1) {
    std::lock_guard lock(mutex_);
    count_ += n;
  }
  void done(size_t n = 1) {
    {
      std::lock_guard lock(mutex_);
      count_ -= std::min(n, count_);
    }
    idle_.notify_all();
  }
  size_t count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  // True once nothing is in flight; false when `timeout` ran out first.
  bool wait_until_empty(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [&] { return count_ == 0; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  size_t count_ = 0;
};

// A delivery queue served by worker threads, for sinks whose client blocks (an HTTP request, a
// file write with fsync): write() hands the records to enqueue() and returns; workers take them
// in order, in batches of up to `max_batch`, and call `deliver` with each batch. When deliver
// returns, every record of the batch is reported OK; when it throws, every record is reported
// with the exception's status (RetryError: RETRY; anything else: FATAL) and its message, prefixed
// with the record's event id. flush() waits until every record was reported.
//
// With several workers, batches complete out of order: that is fine, the host keeps the per-key
// order (ABI 1.1). Call start() from open() (create may not start threads) and stop() from
// close(); the destructor stops too. Declare the AsyncDelivery as the LAST member of your sink,
// so that it is destroyed (and its workers joined) before the members `deliver` uses.
class AsyncDelivery {
 public:
  using Deliver = std::function<void(std::span<const OwnedRecord> batch)>;

  AsyncDelivery(Host host, Deliver deliver, size_t workers = 1, size_t max_batch = 1)
      : host_(host),
        deliver_(std::move(deliver)),
        workers_(std::max<size_t>(workers, 1)),
        max_batch_(std::max<size_t>(max_batch, 1)) {}
  ~AsyncDelivery() { stop(); }
  AsyncDelivery(const AsyncDelivery&) = delete;
  AsyncDelivery& operator=(const AsyncDelivery&) = delete;

  void start() {
    std::lock_guard lock(mutex_);
    if (!threads_.empty()) return;
    stopping_ = false;
    for (size_t i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
  }

  // Copies the records into the queue. Throws FatalError when not started (or stopped).
  void enqueue(std::span<const p2k_record> records) {
    {
      std::lock_guard lock(mutex_);
      if (threads_.empty() || stopping_)
        throw FatalError("the sink is not open: write() before open() or after close()");
      for (const auto& r : records) queue_.emplace_back(r);
      in_flight_.add(records.size());
    }
    work_.notify_all();
  }

  // True once every enqueued record was reported; false when `timeout` ran out first.
  bool flush(std::chrono::milliseconds timeout) { return in_flight_.wait_until_empty(timeout); }

  // Records enqueued and not yet reported.
  size_t in_flight() const { return in_flight_.count(); }

  // Lets the workers finish the batches they are delivering, reports every record still queued
  // RETRY (it was not delivered) and joins the workers. Safe to call more than once.
  void stop() {
    std::deque<OwnedRecord> left;
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      left.swap(queue_);
      threads.swap(threads_);
    }
    work_.notify_all();
    for (const auto& r : left)
      host_.report(r.position, P2K_RETRY,
                   "event " + r.id + " was not delivered: the sink closed before it was sent");
    in_flight_.done(left.size());
    for (auto& t : threads) t.join();
  }

 private:
  void work() {
    std::vector<OwnedRecord> batch;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        size_t n = std::min(max_batch_, queue_.size());
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + static_cast<ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      }
      p2k_status status = P2K_OK;
      std::string why;
      try {
        deliver_(batch);
      } catch (const Error& e) {
        status = e.status() == P2K_RETRY ? P2K_RETRY : P2K_FATAL;
        why = e.what();
      } catch (const std::exception& e) {
        status = P2K_FATAL;
        why = e.what();
      } catch (...) {
        status = P2K_FATAL;
        why = "unknown exception";
      }
      for (const auto& r : batch)
        host_.report(r.position, status, status == P2K_OK ? "" : "event " + r.id + ": " + why);
      in_flight_.done(batch.size());
    }
  }

  Host host_;
  Deliver deliver_;
  size_t workers_;
  size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::deque<OwnedRecord> queue_;
  bool stopping_ = false;
  InFlight in_flight_;
  std::vector<std::thread> threads_;
};

}  // namespace pg2kafka::sdk
