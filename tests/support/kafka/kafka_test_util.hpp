// Helpers for tests that talk to Kafka: the broker started by the `kafka` CTest fixture
// (kafka_fixture.sh), topic administration, reading a topic back, a fake pg2kafka host that
// records a sink's delivery reports, and the Java producer's murmur2 partitioning.
#pragma once

#include <pg2kafka/plugin.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2k_test::kafka {

// host:port of the fixture's broker (P2K_TEST_KAFKA_BROKERS in kafka.env); throws when the
// fixture is not up.
std::string fixture_brokers();

// A topic name that no other test uses: "<prefix>-<random>".
std::string unique_topic(std::string_view prefix);

// Creates a topic (replication factor 1) with the given topic configs, e.g.
// {{"max.message.bytes", "2000"}}, and waits until every partition has a leader. Throws on
// failure.
void create_topic(const std::string& brokers, const std::string& topic, int partitions,
                  const std::map<std::string, std::string>& configs = {});

// Replaces the topic's configs (AlterConfigs: those not given return to their defaults).
void set_topic_configs(const std::string& brokers, const std::string& topic,
                       const std::map<std::string, std::string>& configs);

// The topic's partition count, or -1 when it does not exist.
int partition_count(const std::string& brokers, const std::string& topic);

struct Message {
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;    // nullopt: a null key
  std::optional<std::string> value;  // nullopt: a null value
  int64_t timestamp_ms = -1;
  bool create_time = false;  // the timestamp is the producer's (CreateTime)
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  // The last header with this name.
  std::optional<std::string> header(std::string_view name) const;
};

// Reads every message of every partition of `topic` from the beginning, until the end of each
// partition is reached and at least `at_least` messages were read, or `timeout` passes. Sorted by
// partition then offset. Extra options are librdkafka consumer properties.
std::vector<Message> read_topic(const std::string& brokers, const std::string& topic,
                                size_t at_least,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                const std::map<std::string, std::string>& options = {});

// The Java client's murmur2 hash (org.apache.kafka.common.utils.Utils.murmur2) and the
// partition its default partitioner picks for a non-null key.
int32_t java_murmur2(std::string_view data);
int java_partition(std::string_view key, int partitions);

// One delivery report received from a sink.
struct Report {
  uint64_t position;
  p2k_status status;
  std::string message;
};

// A pg2kafka host for driving a sink directly: collects reports (thread-safe) and log lines.
class FakeHost {
 public:
  FakeHost();
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const p2k_host* raw() const { return &host_; }
  std::vector<Report> reports() const;
  std::vector<std::string> logs() const;
  // Reports per position, to check "exactly once".
  std::map<uint64_t, std::vector<Report>> reports_by_position() const;
  // Removes and returns the reports collected so far.
  std::vector<Report> take_reports();

 private:
  static void on_log(void* ctx, p2k_log_level level, const char* message);
  static void on_report(void* ctx, uint64_t position, p2k_status status, const char* message);

  p2k_host host_{};
  mutable std::mutex mutex_;
  std::vector<Report> reports_;
  std::vector<std::string> logs_;
};

}  // namespace p2k_test::kafka
