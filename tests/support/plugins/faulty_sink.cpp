// test-faulty and test-faulty-async: sinks for testing the host. They record what they delivered
// in a file and fail in the ways a real sink fails: transient and permanent per-record failures,
// whole-call failures, out-of-order completion, and (to test the host's guard) reporting twice.
//
// Both only report outcomes as they happen, like a naive sink written against ABI 1.1: a record
// that fails transiently is reported RETRY and the records after it are reported OK; keeping the
// per-key order after a retry is the host's job.
//
// test-faulty (built without FAULTY_ASYNC) reports from poll() and flush(), on the host's thread.
// test-faulty-async (built with FAULTY_ASYNC) has no poll at all: it reports from a thread of its
// own, after `report_delay`, as a sink whose client library completes requests in the
// background does. The host must then wait for its reports without spinning.
#include <pg2kafka/sdk/plugin.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace {

using namespace pg2kafka;
using std::chrono::milliseconds;

// What both sinks share: options, the failure script, the delivery log and the report queue.
class FaultyCore {
 public:
  struct Report {
    uint64_t position;
    p2k_status status;
    std::string message;
  };

  FaultyCore(sdk::Host host, const sdk::Options& o)
      : host_(host),
        output_(o.string("output_file")),
        fatal_position_(o.integer("fatal_position")),
        write_retries_(o.integer("write_retries")),
        reverse_(o.boolean("reverse")),
        report_twice_(o.integer("report_twice_position")),
        topic_error_(o.string("topic_error")),
        report_delay_(o.duration("report_delay")),
        silent_from_(o.has("silent_from") ? o.integer("silent_from") : 0),
        fatal_on_topic_(o.find("fatal_on_topic").value_or("")),
        refuse_values_on_topic_(o.find("refuse_values_on_topic").value_or("")),
        log_headers_(o.has("log_headers") && o.boolean("log_headers")) {
    for (const auto& p : o.list("retry_positions")) retry_positions_.insert(std::stoull(p));
  }

  void prepare_topic(std::string_view topic) {
    if (topic_error_ == "fatal")
      throw sdk::FatalError("topic " + std::string(topic) + " is missing");
    std::ofstream(output_, std::ios::app) << "topic " << topic << "\n";
  }

  // Decides each record's outcome and queues its report.
  void write(std::span<const p2k_record> records) {
    if (write_retries_ > 0) {
      --write_retries_;
      throw sdk::RetryError("test-faulty: simulated transient write failure");
    }
    std::lock_guard lock(mutex_);
    for (const auto& r : records) {
      Report rep{r.position, P2K_OK, {}};
      std::string id(sdk::view(r.id));
      if (silent_from_ > 0 && r.position >= static_cast<uint64_t>(silent_from_)) {
        continue;  // never reported: a sink whose destination hangs
      } else if (retry_positions_.erase(r.position)) {
        rep.status = P2K_RETRY;
        rep.message = "test-faulty: simulated transient failure of event " + id;
      } else if (r.position == static_cast<uint64_t>(fatal_position_) &&
                 (fatal_on_topic_.empty() || sdk::view(r.topic) == fatal_on_topic_)) {
        rep.status = P2K_FATAL;
        rep.message = "test-faulty: simulated permanent failure of event " + id;
      } else if (!refuse_values_on_topic_.empty() &&
                 sdk::view(r.topic) == refuse_values_on_topic_ && r.value.size > 0) {
        rep.status = P2K_FATAL;
        rep.message =
            "test-faulty: event " + id + " is too large for topic " + refuse_values_on_topic_;
      } else {
        std::ofstream out(output_, std::ios::app);
        out << "deliver " << r.position << " "
            << (r.key.data ? std::string(sdk::view(r.key)) : std::string("(null)")) << " "
            << sdk::view(r.value) << "\n";
        if (log_headers_) {
          out << "topic-of " << r.position << " " << sdk::view(r.topic) << "\n";
          for (size_t h = 0; h < r.header_count; ++h)
            out << "header " << r.position << " " << sdk::view(r.headers[h].name) << "="
                << sdk::view(r.headers[h].value) << "\n";
        }
      }
      queue_.push_back(rep);
      if (r.position == static_cast<uint64_t>(report_twice_)) queue_.push_back(rep);
    }
    cv_.notify_all();
  }

  // Reports everything queued (reversed when asked), on the calling thread; false when nothing
  // was queued.
  bool drain() {
    std::deque<Report> reports;
    {
      std::lock_guard lock(mutex_);
      reports.swap(queue_);
    }
    send(reports);
    return !reports.empty();
  }

  // The async sink's worker: reports each batch of queued outcomes after report_delay.
  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::deque<Report> reports;
      reports.swap(queue_);
      busy_ = true;
      lock.unlock();
      std::this_thread::sleep_for(report_delay_);
      send(reports);
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  bool wait_idle(milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !busy_; });
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

 private:
  void send(std::deque<Report>& reports) {
    if (reverse_) std::reverse(reports.begin(), reports.end());
    for (const auto& r : reports) host_.report(r.position, r.status, r.message);
  }

  sdk::Host host_;
  std::string output_;
  int64_t fatal_position_, write_retries_;
  bool reverse_;
  int64_t report_twice_;
  std::string topic_error_;
  milliseconds report_delay_;
  int64_t silent_from_;
  std::string fatal_on_topic_, refuse_values_on_topic_;
  bool log_headers_;
  std::set<uint64_t> retry_positions_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Report> queue_;
  bool busy_ = false, stopping_ = false;
};

#ifndef FAULTY_ASYNC

class FaultySink : public sdk::Sink {
 public:
  FaultySink(sdk::Host host, const sdk::Options& o)
      : core_(host, o), poll_returns_at_once_(o.boolean("poll_returns_at_once")) {}
  void prepare_topic(std::string_view topic) override { core_.prepare_topic(topic); }
  void write(std::span<const p2k_record> records) override { core_.write(records); }
  // Every outcome is known once write returned: report what is queued, else wait as asked (a
  // poll that returned at once with nothing to do would make the host spin).
  void poll(milliseconds timeout) override {
    if (!core_.drain() && !poll_returns_at_once_) std::this_thread::sleep_for(timeout);
  }
  bool flush(milliseconds) override {
    core_.drain();
    return true;
  }

 private:
  FaultyCore core_;
  bool poll_returns_at_once_;  // the bug the conformance suite must catch
};
#define FAULTY_NAME "test-faulty"
#define FAULTY_SUMMARY "Records deliveries in a file, with injectable failures (tests only)."

#else

class FaultySink : public sdk::Sink {
 public:
  FaultySink(sdk::Host host, const sdk::Options& o) : core_(host, o) {}
  ~FaultySink() override { stop(); }
  void open() override {
    if (!worker_.joinable()) worker_ = std::thread([this] { core_.work(); });
  }
  void prepare_topic(std::string_view topic) override { core_.prepare_topic(topic); }
  void write(std::span<const p2k_record> records) override { core_.write(records); }
  // No poll(): reports come from the worker thread.
  bool flush(milliseconds timeout) override { return core_.wait_idle(timeout); }
  void close() override { stop(); }

 private:
  void stop() {
    core_.stop();
    if (worker_.joinable()) worker_.join();
  }
  FaultyCore core_;
  std::thread worker_;
};
#define FAULTY_NAME "test-faulty-async"
#define FAULTY_SUMMARY \
  "Records deliveries in a file and reports from its own thread, with injectable failures."

#endif

using sdk::option;
const char* const kTopicErrors[] = {"none", "fatal", nullptr};
const p2k_option kOptions[] = {
    option("output_file", P2K_OPT_STRING, nullptr, "File that receives one line per delivery.",
           P2K_OPT_REQUIRED),
    option("retry_positions", P2K_OPT_LIST, "",
           "Positions that fail transiently on their first write (only those)."),
    option("fatal_position", P2K_OPT_INT, "0", "Position that fails permanently (0: none)."),
    option("fatal_on_topic", P2K_OPT_STRING, nullptr,
           "fatal_position fails only on records of this topic (default: any)."),
    option("refuse_values_on_topic", P2K_OPT_STRING, nullptr,
           "Records with a non-empty value to this topic fail permanently (too large)."),
    option("log_headers", P2K_OPT_BOOL, "false",
           "After each delivery line, a topic-of line and one header line per header."),
    option("write_retries", P2K_OPT_INT, "0", "The first N write calls fail as a whole."),
    option("reverse", P2K_OPT_BOOL, "false", "Report each batch's outcomes in reverse order."),
    option("report_delay", P2K_OPT_DURATION, "2ms",
           "test-faulty-async: how long the worker waits before it reports a batch."),
    option("report_twice_position", P2K_OPT_INT, "0", "Position reported twice (a sink bug)."),
    option("silent_from", P2K_OPT_INT, "0",
           "Records from this position on are never reported (0: all are)."),
    option("poll_returns_at_once", P2K_OPT_BOOL, "false",
           "test-faulty: poll returns at once even with nothing to report (a sink bug)."),
    option("topic_error", P2K_OPT_ENUM, "none", "How prepare_topic fails.", 0, kTopicErrors),
    option("secret_token", P2K_OPT_SECRET, nullptr, "A secret of ABI 1.0's kind (the type)."),
    option("secret_tokens", P2K_OPT_LIST, nullptr, "A secret list.", P2K_OPT_IS_SECRET),
    option("headers.", P2K_OPT_PREFIX, nullptr, "A secret map: every value under it is secret.",
           P2K_OPT_IS_SECRET),
    option("extra.sasl.password", P2K_OPT_STRING, nullptr, "One passthrough key declared secret.",
           P2K_OPT_IS_SECRET),
    option("extra.", P2K_OPT_PREFIX, nullptr, "Passthrough options, accepted and ignored."),
};

}  // namespace

P2K_SINK_PLUGIN(FaultySink, FAULTY_NAME, "1.0.0", FAULTY_SUMMARY, kOptions)
