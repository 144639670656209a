// The generator source: emits numbered records, so that a sink can be tried, tested and measured
// without PostgreSQL (`pg2kafka run --once` with this source and the sink under test). Like a real
// source it forgets a record only when it is acknowledged: with `state_file`, the last
// acknowledged position survives a restart, so records returned but not acknowledged come back.
#include <pg2kafka/sdk/plugin.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace {

using namespace pg2kafka;
using std::chrono::milliseconds;

class GeneratorSource : public sdk::Source {
 public:
  GeneratorSource(sdk::Host host, const sdk::Options& o)
      : host_(host),
        count_(o.integer("count")),
        keys_(o.integer("keys")),
        topic_(o.string("topic")),
        value_size_(o.size("value_size")),
        state_file_(o.find("state_file").value_or("")) {}

  void open() override {
    if (state_file_.empty()) return;
    std::ifstream in(state_file_);
    if (!in) return;  // no state yet: start from 1
    uint64_t acked = 0;
    if (!(in >> acked))
      throw sdk::ConfigError("state_file", "'" + state_file_ +
                                               "' does not hold a position: remove it to start "
                                               "again from 1");
    next_ = acked + 1;
    host_.info("generating from position " + std::to_string(next_));
  }

  std::unique_ptr<sdk::RecordBatch> poll(size_t max, milliseconds timeout) override {
    auto batch = std::make_unique<sdk::RecordBatch>();
    auto now = std::chrono::duration_cast<milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    while (batch->size() < max && (count_ == 0 || next_ <= static_cast<uint64_t>(count_))) {
      uint64_t seq = next_++;
      std::string key = "key-" + std::to_string(seq % static_cast<uint64_t>(keys_));
      std::string value = "{\"seq\":" + std::to_string(seq) + ",\"key\":\"" + key + "\"";
      if (value_size_ > 0) value += ",\"pad\":\"" + std::string(value_size_, 'x') + "\"";
      value += "}";
      batch->add(seq, topic_, std::move(key), std::move(value), now,
                 "generator-" + std::to_string(seq), {{"pg2kafka.source", "generator"}});
    }
    // Nothing left: wait as the host asked, as a real source waits for new rows.
    if (batch->empty()) std::this_thread::sleep_for(timeout);
    return batch;
  }

  void ack(uint64_t through) override {
    if (state_file_.empty()) return;
    std::ofstream out(state_file_, std::ios::trunc);
    out << through << "\n";
    out.flush();
    if (!out) throw sdk::RetryError("cannot write '" + state_file_ + "': " + std::strerror(errno));
  }

  std::vector<std::string> list_topics() override { return {topic_}; }

 private:
  sdk::Host host_;
  int64_t count_, keys_;
  std::string topic_;
  uint64_t value_size_;
  std::string state_file_;
  uint64_t next_ = 1;
};

using sdk::option;
const p2k_option kOptions[] = {
    option("count", P2K_OPT_INT, "1000",
           "How many records to emit, numbered from 1; 0 emits records for ever. A run with "
           "--once stops once they are all delivered.",
           0, nullptr, 0, INT64_MAX),
    option("keys", P2K_OPT_INT, "10",
           "How many distinct keys the records use, round-robin: key-1, key-2, ..., key-0.", 0,
           nullptr, 1, 1'000'000),
    option("topic", P2K_OPT_STRING, "pg2kafka.generator", "The topic of every record."),
    option("value_size", P2K_OPT_SIZE, "0",
           "Bytes of padding added to each value ({\"seq\": N, \"key\": \"...\", \"pad\": "
           "\"xxx...\"}), to try large records.",
           0, nullptr, 0, 64 << 20),
    option("state_file", P2K_OPT_STRING, nullptr,
           "A file that keeps the last acknowledged position across runs, so that a new run "
           "starts after it and records returned but not acknowledged come back, as from a "
           "durable queue. Without it every run starts from 1."),
};

}  // namespace

P2K_SOURCE_PLUGIN(GeneratorSource, "generator", "0.1.0",
                  "Generates numbered records, to try and test a sink without PostgreSQL.",
                  kOptions)
