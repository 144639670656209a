#include "kafka_test_util.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>

#include "test_support.hpp"

namespace p2k_test::kafka {
namespace {

using Clock = std::chrono::steady_clock;

struct HandleDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;

HandlePtr new_client(rd_kafka_type_t type, const std::string& brokers,
                     const std::map<std::string, std::string>& extra = {}) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  std::map<std::string, std::string> props = {{"bootstrap.servers", brokers},
                                              {"socket.nagle.disable", "true"}};
  for (const auto& [k, v] : extra) props[k] = v;
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("test client property " + k + ": " + errstr);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create a test Kafka client: ") + errstr);
  }
  return HandlePtr(rk);
}

struct TopicInfo {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  int partitions = 0;
  bool leaders = false;
};

TopicInfo describe(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  TopicInfo info;
  info.err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
  rd_kafka_topic_destroy(rkt);
  if (info.err) return info;
  if (md->topic_cnt < 1) {
    info.err = RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
  } else {
    info.err = md->topics[0].err;
    info.partitions = md->topics[0].partition_cnt;
    info.leaders = info.partitions > 0;
    for (int i = 0; i < info.partitions; ++i)
      if (md->topics[0].partitions[i].leader < 0) info.leaders = false;
  }
  rd_kafka_metadata_destroy(md);
  return info;
}

}  // namespace

std::string fixture_brokers() {
  return state_value("kafka.env", "P2K_TEST_KAFKA_BROKERS");
}

std::string unique_topic(std::string_view prefix) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string out(prefix);
  out += '-';
  auto v = rng();
  for (int i = 0; i < 12; ++i, v >>= 4) out += kHex[v & 15];
  return out;
}

void set_topic_configs(const std::string& brokers, const std::string& topic,
                       const std::map<std::string, std::string>& configs) {
  auto rk = new_client(RD_KAFKA_PRODUCER, brokers, {{"allow.auto.create.topics", "false"}});
  rd_kafka_ConfigResource_t* res =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  for (const auto& [k, v] : configs) rd_kafka_ConfigResource_set_config(res, k.c_str(), v.c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_AlterConfigs(rk.get(), &res, 1, nullptr, q);
  rd_kafka_ConfigResource_destroy(res);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  std::string error;
  if (!ev) {
    error = "no answer within 30 s";
  } else if (rd_kafka_event_error(ev)) {
    error = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    auto out = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
    if (n < 1 || rd_kafka_ConfigResource_error(out[0]))
      error = n < 1 ? "no result" : rd_kafka_ConfigResource_error_string(out[0]);
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  if (!error.empty()) throw std::runtime_error("altering topic " + topic + ": " + error);
}

void create_topic(const std::string& brokers, const std::string& topic, int partitions,
                  const std::map<std::string, std::string>& configs) {
  auto rk = new_client(RD_KAFKA_PRODUCER, brokers, {{"allow.auto.create.topics", "false"}});
  char errstr[512];
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, errstr, sizeof errstr);
  if (!nt) throw std::runtime_error(errstr);
  for (const auto& [k, v] : configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk.get());
  rd_kafka_CreateTopics(rk.get(), &nt, 1, nullptr, q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  std::string error;
  if (!ev) {
    error = "no answer";
  } else if (rd_kafka_event_error(ev)) {
    error = rd_kafka_event_error_string(ev);
  } else {
    size_t n = 0;
    auto res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    if (n < 1 || rd_kafka_topic_result_error(res[0]))
      error = n < 1 ? "no result" : rd_kafka_topic_result_error_string(res[0]);
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  if (!error.empty()) throw std::runtime_error("cannot create test topic " + topic + ": " + error);
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (true) {
    auto info = describe(rk.get(), topic);
    if (!info.err && info.leaders && info.partitions == partitions) return;
    if (Clock::now() > deadline)
      throw std::runtime_error("test topic " + topic + " has no leaders after 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

int partition_count(const std::string& brokers, const std::string& topic) {
  auto rk = new_client(RD_KAFKA_PRODUCER, brokers, {{"allow.auto.create.topics", "false"}});
  auto info = describe(rk.get(), topic);
  if (info.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) return -1;
  if (info.err) throw std::runtime_error(std::string("metadata: ") + rd_kafka_err2str(info.err));
  return info.partitions;
}

std::optional<std::string> Message::header(std::string_view name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it)
    if (it->first == name) return it->second;
  return std::nullopt;
}

std::vector<Message> read_topic(const std::string& brokers, const std::string& topic,
                                size_t at_least, std::chrono::milliseconds timeout,
                                const std::map<std::string, std::string>& options) {
  std::map<std::string, std::string> props = {{"group.id", unique_topic("p2k-test-reader")},
                                              {"enable.partition.eof", "true"},
                                              {"enable.auto.commit", "false"},
                                              {"allow.auto.create.topics", "false"}};
  for (const auto& [k, v] : options) props[k] = v;
  auto rk = new_client(RD_KAFKA_CONSUMER, brokers, props);
  auto info = describe(rk.get(), topic);
  if (info.err)
    throw std::runtime_error("cannot read topic " + topic + ": " + rd_kafka_err2str(info.err));
  // Assign every partition from the start: no consumer group rebalance to wait for.
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(info.partitions);
  for (int p = 0; p < info.partitions; ++p)
    rd_kafka_topic_partition_list_add(parts, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk.get(), parts);
  rd_kafka_topic_partition_list_destroy(parts);

  std::vector<Message> out;
  std::vector<bool> at_end(info.partitions, false);
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    bool all_at_end = std::all_of(at_end.begin(), at_end.end(), [](bool b) { return b; });
    if (all_at_end && out.size() >= at_least) break;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->partition >= 0 && m->partition < info.partitions) at_end[m->partition] = true;
    } else if (m->err) {
      std::string e = rd_kafka_message_errstr(m);
      rd_kafka_message_destroy(m);
      throw std::runtime_error("reading " + topic + ": " + e);
    } else {
      Message msg;
      msg.partition = m->partition;
      msg.offset = m->offset;
      if (m->key) msg.key = std::string(static_cast<const char*>(m->key), m->key_len);
      if (m->payload) msg.value = std::string(static_cast<const char*>(m->payload), m->len);
      rd_kafka_timestamp_type_t tstype;
      msg.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
      msg.create_time = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME;
      rd_kafka_headers_t* hdrs = nullptr;
      if (!rd_kafka_message_headers(m, &hdrs)) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &value, &size); ++i) {
          std::optional<std::string> v;
          if (value) v = std::string(static_cast<const char*>(value), size);
          msg.headers.emplace_back(name, v);
        }
      }
      at_end[m->partition] = false;
      out.push_back(std::move(msg));
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk.get());
  std::sort(out.begin(), out.end(), [](const Message& a, const Message& b) {
    return std::pair(a.partition, a.offset) < std::pair(b.partition, b.offset);
  });
  return out;
}

// Murmur2 (32-bit, seed 0x9747b28c) as the Java client computes it: little-endian 4-byte
// blocks, then the 1-3 trailing bytes, then the final avalanche.
int32_t java_murmur2(std::string_view data) {
  const uint32_t m = 0x5bd1e995;
  const int r = 24;
  const auto length = static_cast<uint32_t>(data.size());
  uint32_t h = 0x9747b28c ^ length;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const size_t blocks = data.size() / 4;
  for (size_t i = 0; i < blocks; ++i) {
    const unsigned char* b = bytes + 4 * i;
    uint32_t k = uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const unsigned char* tail = bytes + 4 * blocks;
  switch (data.size() % 4) {
    case 3:
      h ^= uint32_t(tail[2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= uint32_t(tail[1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= uint32_t(tail[0]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int java_partition(std::string_view key, int partitions) {
  return static_cast<int>((static_cast<uint32_t>(java_murmur2(key)) & 0x7fffffffu) %
                          static_cast<uint32_t>(partitions));
}

FakeHost::FakeHost() {
  host_.struct_size = sizeof(p2k_host);
  host_.abi_major = P2K_ABI_MAJOR;
  host_.abi_minor = P2K_ABI_MINOR;
  host_.ctx = this;
  host_.log = &FakeHost::on_log;
  host_.report = &FakeHost::on_report;
}

void FakeHost::on_log(void* ctx, p2k_log_level level, const char* message) {
  auto* self = static_cast<FakeHost*>(ctx);
  static const char* kLevels[] = {"ERROR", "WARN", "INFO", "DEBUG"};
  std::lock_guard lock(self->mutex_);
  self->logs_.push_back(std::string(kLevels[level]) + " " + message);
}

void FakeHost::on_report(void* ctx, uint64_t position, p2k_status status, const char* message) {
  auto* self = static_cast<FakeHost*>(ctx);
  std::lock_guard lock(self->mutex_);
  self->reports_.push_back(Report{position, status, message ? message : ""});
}

std::vector<Report> FakeHost::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

std::vector<std::string> FakeHost::logs() const {
  std::lock_guard lock(mutex_);
  return logs_;
}

std::map<uint64_t, std::vector<Report>> FakeHost::reports_by_position() const {
  std::map<uint64_t, std::vector<Report>> out;
  for (auto& r : reports()) out[r.position].push_back(r);
  return out;
}

std::vector<Report> FakeHost::take_reports() {
  std::lock_guard lock(mutex_);
  return std::exchange(reports_, {});
}

}  // namespace p2k_test::kafka
