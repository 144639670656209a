// test-sequence: a source for testing the host. It emits `count` numbered records and can be
// told to fail in the ways a real source fails. With `state_file` it remembers what was
// acknowledged across runs, like a durable queue, so re-delivery after a crash can be tested.
#include <pg2kafka/sdk/plugin.hpp>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

namespace {

using namespace pg2kafka;

class SequenceSource : public sdk::Source {
 public:
  SequenceSource(sdk::Host host, const sdk::Options& o)
      : host_(host),
        count_(o.integer("count")),
        keys_(o.integer("keys")),
        topic_(o.string("topic")),
        state_file_(o.find("state_file").value_or("")),
        ack_log_(o.find("ack_log").value_or("")),
        poll_retries_(o.integer("poll_retries")),
        ack_retries_(o.integer("ack_retries")),
        open_error_(o.string("open_error")),
        value_size_(o.integer("value_size")),
        fatal_poll_at_(o.integer("fatal_poll_at")),
        // Read with fallbacks: the ABI tests' 1.0 host passes only the options it is given.
        block_poll_at_(o.has("block_poll_at") ? o.integer("block_poll_at") : 0),
        honour_interrupt_(!o.has("honour_interrupt") || o.boolean("honour_interrupt")),
        throw_in_close_(o.has("throw_in_close") && o.boolean("throw_in_close")),
        blocked_file_(o.find("blocked_file").value_or("")),
        unready_(o.has("unready") && o.boolean("unready")),
        status_problem_(o.find("status_problem").value_or("")),
        park_log_(o.find("park_log").value_or("")),
        unusable_at_(o.has("unusable_at") ? o.integer("unusable_at") : 0),
        null_value_at_(o.has("null_value_at") ? o.integer("null_value_at") : 0),
        park_retries_(o.has("park_retries") ? o.integer("park_retries") : 0) {
    if (o.boolean("throw_in_create")) throw std::runtime_error("test-sequence was told to throw");
    if (keys_ < 1) throw sdk::ConfigError("keys", "must be at least 1");
    if (o.boolean("two_config_errors"))
      throw sdk::ConfigError(
          sdk::ConfigError::Problems{{"topic", "is not a topic this source may use"},
                                     {"", "the options do not work together"}});
  }

  void open() override {
    if (open_error_ == "retry_once" && !opened_once_) {
      opened_once_ = true;
      throw sdk::RetryError("test-sequence: simulated transient open failure");
    }
    if (open_error_ == "retry_always")
      throw sdk::RetryError("test-sequence: simulated unreachable service");
    if (open_error_ == "fatal")
      throw sdk::FatalError("test-sequence: simulated fatal open failure");
    if (open_error_ == "config")
      throw sdk::ConfigError("open_error", "test-sequence: simulated bad option");
    if (!state_file_.empty()) {
      std::ifstream in(state_file_);
      uint64_t acked = 0;
      if (in >> acked) next_ = acked + 1;
    }
  }

  std::unique_ptr<sdk::RecordBatch> poll(size_t max, std::chrono::milliseconds timeout) override {
    if (interrupted_) throw sdk::RetryError("test-sequence: interrupted");
    if (block_poll_at_ > 0 && next_ >= static_cast<uint64_t>(block_poll_at_) &&
        acked_ + 1 < next_) {
      // Nothing new until what came before is acknowledged, so that the block comes after it.
      std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(20)));
      return nullptr;
    }
    if (block_poll_at_ > 0 && next_ >= static_cast<uint64_t>(block_poll_at_)) {
      // A call that hangs (a query behind a lock): until interrupted, or for ever.
      if (!blocked_file_.empty()) std::ofstream(blocked_file_) << "blocked\n";
      std::unique_lock lock(mutex_);
      interrupt_cv_.wait(lock, [&] { return honour_interrupt_ && interrupted_.load(); });
      throw sdk::RetryError("test-sequence: the blocked poll was interrupted");
    }
    if (poll_retries_ > 0) {
      --poll_retries_;
      throw sdk::RetryError("test-sequence: simulated transient poll failure");
    }
    if (fatal_poll_at_ > 0 && next_ >= static_cast<uint64_t>(fatal_poll_at_))
      throw sdk::FatalError("test-sequence: simulated fatal poll failure");
    auto batch = std::make_unique<sdk::RecordBatch>();
    while (batch->size() < max && (count_ == 0 || next_ <= static_cast<uint64_t>(count_)) &&
           (block_poll_at_ == 0 || next_ < static_cast<uint64_t>(block_poll_at_))) {
      uint64_t i = next_++;
      std::string key = "key-" + std::to_string(i % keys_);
      std::string value = "{\"seq\":" + std::to_string(i) + ",\"key\":\"" + key + "\"";
      if (value_size_ > 0) value += ",\"pad\":\"" + std::string(value_size_, 'x') + "\"";
      value += "}";
      if (i == static_cast<uint64_t>(null_value_at_))
        batch->add_null_value(i, topic_, key, 1700000000000 + static_cast<int64_t>(i),
                              "evt-" + std::to_string(i), {{"test", "yes"}});
      else
        batch->add(i, topic_, key, value, 1700000000000 + static_cast<int64_t>(i),
                   "evt-" + std::to_string(i), {{"test", "yes"}});
      if (i == static_cast<uint64_t>(unusable_at_))
        batch->mark_last_unusable("test-sequence: record " + std::to_string(i) + " is unusable");
      emitted_.add();
    }
    if (batch->empty())
      std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(50)));
    return batch;
  }

  void ack(uint64_t through) override {
    if (ack_retries_ > 0) {
      --ack_retries_;
      throw sdk::RetryError("test-sequence: simulated transient ack failure");
    }
    acked_ = through;
    acked_gauge_.set(static_cast<double>(through));
    if (!ack_log_.empty()) std::ofstream(ack_log_, std::ios::app) << "ack " << through << "\n";
    if (!state_file_.empty()) std::ofstream(state_file_, std::ios::trunc) << through << "\n";
  }

  std::vector<std::string> list_topics() override { return {topic_}; }

  void close() override {
    if (throw_in_close_) throw std::runtime_error("test-sequence was told to throw in close");
  }

  // ABI 1.3: figures, readiness and a status document, from the host's other threads.
  void metrics(sdk::MetricWriter& out) override {
    out.counter("records_emitted_total", "Records this source emitted.",
                static_cast<double>(emitted_.value()), {{"topic", topic_}});
    acked_gauge_.write(out);
  }
  sdk::Health health() override {
    if (unready_) return {false, "told to be unready"};
    return {true, "emitted " + std::to_string(emitted_.value())};
  }
  std::string status() override {
    std::string problems = status_problem_.empty() ? "" : "\"" + status_problem_ + "\"";
    return "{\"source\":\"test-sequence\",\"count\":" + std::to_string(count_) +
           ",\"topics\":[{\"name\":\"" + topic_ + "\",\"records\":" + std::to_string(count_) +
           "}],\"problems\":[" + problems + "]}";
  }

  // ABI 1.4: parking is logged ("park <position> <id> <error>"), after park_retries transient
  // failures; without park_log it is refused.
  void park(const p2k_record& record, const std::string& error) override {
    if (park_log_.empty()) throw sdk::FatalError("test-sequence: parking is not configured");
    if (park_retries_ > 0) {
      --park_retries_;
      throw sdk::RetryError("test-sequence: simulated transient park failure");
    }
    std::ofstream(park_log_, std::ios::app)
        << "park " << record.position << " " << sdk::view(record.id) << " " << error << "\n";
  }

  void interrupt() override {
    {
      std::lock_guard lock(mutex_);
      interrupted_ = true;
    }
    interrupt_cv_.notify_all();
  }

 private:
  sdk::Host host_;
  int64_t count_, keys_;
  std::string topic_, state_file_, ack_log_;
  int64_t poll_retries_, ack_retries_;
  std::string open_error_;
  int64_t value_size_, fatal_poll_at_, block_poll_at_;
  bool honour_interrupt_, throw_in_close_;
  std::string blocked_file_;
  std::mutex mutex_;
  std::condition_variable interrupt_cv_;
  std::atomic<bool> interrupted_{false};
  bool opened_once_ = false;
  uint64_t acked_ = 0;
  uint64_t next_ = 1;
  bool unready_;
  std::string status_problem_;
  std::string park_log_;
  int64_t unusable_at_, null_value_at_, park_retries_;
  sdk::Counter emitted_;
  struct AckedGauge {
    sdk::Gauge gauge;
    void set(double v) { gauge.set(v); }
    void write(sdk::MetricWriter& out) const {
      out.gauge("acked_position", "The last position acknowledged.", gauge.value());
    }
  } acked_gauge_;
};

using sdk::option;
const char* const kOpenErrors[] = {"none",  "retry_once", "retry_always",
                                   "fatal", "config",     nullptr};
const p2k_option kOptions[] = {
    option("count", P2K_OPT_INT, "10", "Records to emit; 0 emits forever."),
    option("keys", P2K_OPT_INT, "3", "Distinct keys, used round-robin: key-0, key-1, ..."),
    option("topic", P2K_OPT_STRING, "test.topic", "Topic of every record."),
    option("state_file", P2K_OPT_STRING, nullptr,
           "File remembering the last acknowledged position across runs."),
    option("ack_log", P2K_OPT_STRING, nullptr, "File to which every ack call appends a line."),
    option("poll_retries", P2K_OPT_INT, "0", "The first N polls fail transiently."),
    option("ack_retries", P2K_OPT_INT, "0", "The first N acks fail transiently."),
    option("fatal_poll_at", P2K_OPT_INT, "0",
           "Polls fail permanently once this position is next (0: never)."),
    option("open_error", P2K_OPT_ENUM, "none", "How open fails.", 0, kOpenErrors),
    option("value_size", P2K_OPT_INT, "0", "Bytes of padding added to each value."),
    option("park_log", P2K_OPT_STRING, nullptr,
           "File to which every park call appends a line; without it parking fails."),
    option("unusable_at", P2K_OPT_INT, "0", "Position marked unusable (0: none)."),
    option("park_retries", P2K_OPT_INT, "0", "The first N park calls fail transiently."),
    option("null_value_at", P2K_OPT_INT, "0",
           "Position given a null value, a tombstone (0: none)."),
    option("throw_in_create", P2K_OPT_BOOL, "false", "Throw from the constructor."),
    option("throw_in_close", P2K_OPT_BOOL, "false", "Throw from close()."),
    option("block_poll_at", P2K_OPT_INT, "0",
           "Polls block once this position is next (0: never), until interrupted."),
    option("honour_interrupt", P2K_OPT_BOOL, "true",
           "Whether a blocked poll returns when interrupted (false: it blocks for ever)."),
    option("blocked_file", P2K_OPT_STRING, nullptr, "File written when a poll blocks."),
    option("two_config_errors", P2K_OPT_BOOL, "false",
           "Refuse the options with two problems, one about no single option."),
    option("required_text", P2K_OPT_STRING, nullptr, "An optional option, for tests."),
    option("unready", P2K_OPT_BOOL, "false", "health() says not ready."),
    option("status_problem", P2K_OPT_STRING, nullptr, "A problem the status document lists."),
};

}  // namespace

P2K_SOURCE_PLUGIN(SequenceSource, "test-sequence", "1.0.0",
                  "Emits numbered records, with injectable failures (tests only).", kOptions)
