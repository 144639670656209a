// test-faulty: a sink for testing the host. It records what it delivered in a file and fails in
// the ways a real sink fails: transient and permanent per-record failures, whole-call failures,
// out-of-order and asynchronous completion, and (to test the host's guard) reporting twice.
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

class FaultySink : public sdk::Sink {
 public:
  FaultySink(sdk::Host host, const sdk::Options& o)
      : host_(host),
        output_(o.string("output_file")),
        fatal_position_(o.integer("fatal_position")),
        write_retries_(o.integer("write_retries")),
        reverse_(o.boolean("reverse")),
        async_(o.boolean("async")),
        report_twice_(o.integer("report_twice_position")),
        topic_error_(o.string("topic_error")) {
    for (const auto& p : o.list("retry_positions")) retry_positions_.insert(std::stoull(p));
    if (async_) worker_ = std::thread([this] { work(); });
  }

  ~FaultySink() override {
    if (async_) {
      {
        std::lock_guard lock(mutex_);
        stopping_ = true;
      }
      cv_.notify_all();
      worker_.join();
    }
  }

  void prepare_topic(std::string_view topic) override {
    if (topic_error_ == "fatal")
      throw sdk::FatalError("topic " + std::string(topic) + " is missing");
    std::ofstream(output_, std::ios::app) << "topic " << topic << "\n";
  }

  void write(std::span<const p2k_record> records) override {
    if (write_retries_ > 0) {
      --write_retries_;
      throw sdk::RetryError("test-faulty: simulated transient write failure");
    }
    std::lock_guard lock(mutex_);
    // Like a connection lost mid-batch: a transient failure fails the rest of the call too, so
    // no later record overtakes the failed one (the ordering rule of plugin.h).
    bool failing = false;
    for (const auto& r : records) {
      Report rep{r.position, P2K_OK, {}};
      if (retry_positions_.erase(r.position)) failing = true;
      if (failing) {
        rep.status = P2K_RETRY;
        rep.message = "test-faulty: simulated transient failure";
      } else if (r.position == static_cast<uint64_t>(fatal_position_)) {
        rep.status = P2K_FATAL;
        rep.message = "test-faulty: simulated permanent failure";
      } else {
        std::ofstream(output_, std::ios::app)
            << "deliver " << r.position << " "
            << std::string(r.key.data ? r.key.data : "(null)", r.key.data ? r.key.size : 6) << " "
            << std::string(r.value.data, r.value.size) << "\n";
      }
      queue_.push_back(rep);
      if (r.position == static_cast<uint64_t>(report_twice_)) queue_.push_back(rep);
    }
    cv_.notify_all();
  }

  void poll(std::chrono::milliseconds timeout) override {
    if (async_) {
      std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(5)));
      return;
    }
    drain();
  }

  bool flush(std::chrono::milliseconds timeout) override {
    if (!async_) {
      drain();
      return true;
    }
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !busy_; });
  }

 private:
  struct Report {
    uint64_t position;
    p2k_status status;
    std::string message;
  };

  void drain() {
    std::deque<Report> reports;
    {
      std::lock_guard lock(mutex_);
      reports.swap(queue_);
    }
    if (reverse_) std::reverse(reports.begin(), reports.end());
    for (const auto& r : reports) host_.report(r.position, r.status, r.message);
  }

  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::deque<Report> reports;
      reports.swap(queue_);
      busy_ = true;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      if (reverse_) std::reverse(reports.begin(), reports.end());
      for (const auto& r : reports) host_.report(r.position, r.status, r.message);
      lock.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  sdk::Host host_;
  std::string output_;
  int64_t fatal_position_, write_retries_;
  bool reverse_, async_;
  int64_t report_twice_;
  std::string topic_error_;
  std::set<uint64_t> retry_positions_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Report> queue_;
  bool busy_ = false, stopping_ = false;
  std::thread worker_;
};

using sdk::option;
const char* const kTopicErrors[] = {"none", "fatal", nullptr};
const p2k_option kOptions[] = {
    option("output_file", P2K_OPT_STRING, nullptr, "File that receives one line per delivery.",
           P2K_OPT_REQUIRED),
    option("retry_positions", P2K_OPT_LIST, "",
           "Positions that fail transiently on first write, with the rest of that write call."),
    option("fatal_position", P2K_OPT_INT, "0", "Position that fails permanently (0: none)."),
    option("write_retries", P2K_OPT_INT, "0", "The first N write calls fail as a whole."),
    option("reverse", P2K_OPT_BOOL, "false", "Report each batch's outcomes in reverse order."),
    option("async", P2K_OPT_BOOL, "false", "Report from a thread of the sink's own."),
    option("report_twice_position", P2K_OPT_INT, "0", "Position reported twice (a sink bug)."),
    option("topic_error", P2K_OPT_ENUM, "none", "How prepare_topic fails.", 0, kTopicErrors),
    option("secret_token", P2K_OPT_SECRET, nullptr, "A secret, to test that it is never shown."),
    option("extra.", P2K_OPT_PREFIX, nullptr, "Passthrough options, accepted and ignored."),
};

}  // namespace

P2K_SINK_PLUGIN(FaultySink, "test-faulty", "1.0.0",
                "Records deliveries in a file, with injectable failures (tests only).", kOptions)
