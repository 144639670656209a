// p2k-bench-kafka: the Kafka side of the benchmarks (librdkafka).
//
//   p2k-bench-kafka version
//       librdkafka's version string.
//   p2k-bench-kafka create-topic --brokers B --topic T [--partitions N] [--config KEY=VALUE]...
//       Creates a topic (replication factor 1) with the given configs, e.g.
//       message.timestamp.type=LogAppendTime; an existing topic is left as it is.
//   p2k-bench-kafka count --brokers B --topic T
//       Prints the number of messages in the topic (sum over partitions of high - low offset).
//   p2k-bench-kafka latency --brokers B --topic T --expect N [--timeout SECONDS] [--field NAME]
//                           [--warmup-ms MS]  (events in the first MS of the run are left out
//                           of the percentiles and reported as warmup_max_ms)
//       Reads the topic from the beginning until N messages (or every partition's end after the
//       timeout) and, for each message, compares the broker's timestamp (LogAppendTime: when the
//       broker appended it, i.e. what it acknowledged) with the integer field NAME (default `ts`,
//       microseconds since the epoch) found in the message's JSON value. Prints one JSON object:
//       {"messages":..,"with_ts":..,"log_append_time":true|false,"p50_ms":..,"p99_ms":..,
//        "max_ms":..,"min_ms":..,"mean_ms":..,"warmup_events":..,"warmup_max_ms":..,
//        "worst_windows":[{"at_s":..,"peak_ms":..,"n":..},...]}
//       worst_windows: the three 100 ms windows of the run (by ts, seconds from its first
//       event) with the largest latencies, to tell one stall from scattered noise.
//       The broker's time has millisecond resolution, so each latency is within 1 ms.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "p2k-bench-kafka: %s\n", message.c_str());
  std::exit(1);
}

struct Args {
  std::string command;
  std::map<std::string, std::string> options;
  std::vector<std::string> configs;

  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    if (it != options.end()) return it->second;
    if (fallback.empty()) die("missing --" + name);
    return fallback;
  }
};

Args parse(int argc, char** argv) {
  if (argc < 2) die("usage: p2k-bench-kafka version|create-topic|count|latency [options]");
  Args a;
  a.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || i + 1 >= argc) die("bad argument " + arg);
    std::string value = argv[++i];
    if (arg == "--config") {
      a.configs.push_back(value);
    } else {
      a.options[arg.substr(2)] = value;
    }
  }
  return a;
}

rd_kafka_conf_t* make_conf(const std::string& brokers) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err) !=
      RD_KAFKA_CONF_OK) {
    die(err);
  }
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  return conf;
}

// The partition count of a topic, from a metadata request.
int partition_count(rd_kafka_t* rk, const std::string& topic) {
  rd_kafka_topic_t* t = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, t, &md, 10000);
  rd_kafka_topic_destroy(t);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) die(std::string("metadata: ") + rd_kafka_err2str(err));
  int count = 0;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    count = md->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  if (count == 0) die("topic " + topic + " not found");
  return count;
}

int create_topic(const Args& a) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, make_conf(a.get("brokers")), err, sizeof err);
  if (rk == nullptr) die(err);
  const std::string topic = a.get("topic");
  const int partitions = std::atoi(a.get("partitions", "1").c_str());
  rd_kafka_NewTopic_t* nt = rd_kafka_NewTopic_new(topic.c_str(), partitions, 1, err, sizeof err);
  if (nt == nullptr) die(err);
  for (const std::string& kv : a.configs) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) die("--config needs KEY=VALUE");
    rd_kafka_NewTopic_set_config(nt, kv.substr(0, eq).c_str(), kv.substr(eq + 1).c_str());
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_CreateTopics(rk, &nt, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (ev == nullptr) die("create-topic timed out");
  if (rd_kafka_event_error(ev)) die(rd_kafka_event_error_string(ev));
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  for (size_t i = 0; i < n; ++i) {
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      const char* msg = rd_kafka_topic_result_error_string(results[i]);
      die("create " + topic + ": " + (msg ? msg : rd_kafka_err2str(e)));
    }
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_destroy(rk);
  return 0;
}

int count(const Args& a) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, make_conf(a.get("brokers")), err, sizeof err);
  if (rk == nullptr) die(err);
  const std::string topic = a.get("topic");
  const int partitions = partition_count(rk, topic);
  long long total = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) die(std::string("watermarks: ") + rd_kafka_err2str(e));
    total += high - low;
  }
  std::printf("%lld\n", total);
  rd_kafka_destroy(rk);
  return 0;
}

// Finds "NAME": <integer> in a JSON text (jsonb prints `"ts": 123`; compact JSON `"ts":123`).
bool find_int_field(const char* data, size_t len, const std::string& needle, long long* out) {
  const char* end = data + len;
  const char* p = static_cast<const char*>(memmem(data, len, needle.data(), needle.size()));
  if (p == nullptr) return false;
  p += needle.size();
  while (p < end && (*p == ' ' || *p == ':')) ++p;
  if (p >= end || *p < '0' || *p > '9') return false;
  long long v = 0;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
  *out = v;
  return true;
}

int latency(const Args& a) {
  char err[512];
  rd_kafka_conf_t* conf = make_conf(a.get("brokers"));
  rd_kafka_conf_set(conf, "group.id", "p2k-bench", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  rd_kafka_conf_set(conf, "fetch.max.bytes", "52428800", err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) die(err);
  rd_kafka_poll_set_consumer(rk);
  const std::string topic = a.get("topic");
  const long long expect = std::atoll(a.get("expect").c_str());
  const double timeout_s = std::atof(a.get("timeout", "60").c_str());
  // Built with append: GCC 12 warns (-Wrestrict, a false positive) on "\"" + s + "\"".
  std::string needle(1, '"');
  needle.append(a.get("field", "ts")).push_back('"');
  const int partitions = partition_count(rk, topic);

  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) die("assign failed");
  rd_kafka_topic_partition_list_destroy(list);

  // (ts in µs, latency in ms) per event; events in the first warmup_ms of the run (by ts) are
  // reported apart: they include the wake-up of an idle pipeline, not its steady state.
  const double warmup_ms = std::atof(a.get("warmup-ms", "0").c_str());
  std::vector<std::pair<long long, double>> samples;
  samples.reserve(static_cast<size_t>(std::max(expect, 1LL)));
  long long messages = 0;
  bool all_log_append = true;
  int at_eof = 0;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
  while (messages < expect ||
         (at_eof < partitions && std::chrono::steady_clock::now() < deadline)) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_eof;
    } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr, "p2k-bench-kafka: %s\n", rd_kafka_message_errstr(m));
    } else {
      ++messages;
      rd_kafka_timestamp_type_t type;
      const int64_t broker_ms = rd_kafka_message_timestamp(m, &type);
      if (type != RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME) all_log_append = false;
      long long ts_us = 0;
      if (m->payload != nullptr &&
          find_int_field(static_cast<const char*>(m->payload), m->len, needle, &ts_us)) {
        samples.emplace_back(ts_us,
                             static_cast<double>(broker_ms) - static_cast<double>(ts_us) / 1000.0);
      }
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);

  long long first_ts = LLONG_MAX;
  for (const auto& [ts, l] : samples) first_ts = std::min(first_ts, ts);
  std::vector<double> lat;
  double warmup_max = 0;
  size_t warmup_count = 0;
  for (const auto& [ts, l] : samples) {
    if (static_cast<double>(ts - first_ts) / 1000.0 < warmup_ms) {
      warmup_max = std::max(warmup_max, l);
      ++warmup_count;
    } else {
      lat.push_back(l);
    }
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    if (lat.empty()) return 0.0;
    size_t i = static_cast<size_t>(p * static_cast<double>(lat.size() - 1) + 0.5);
    return lat[std::min(i, lat.size() - 1)];
  };
  double sum = 0;
  for (double v : lat) sum += v;
  // Where the tail is: the three 100 ms windows (by ts, after the warm-up) holding the largest
  // latencies. A tail from one stall shows as adjacent windows; noise as scattered ones.
  std::map<long long, std::pair<double, size_t>> windows;  // window -> (max latency, events)
  for (const auto& [ts, l] : samples) {
    double at_ms = static_cast<double>(ts - first_ts) / 1000.0;
    if (at_ms < warmup_ms) continue;
    auto& w = windows[static_cast<long long>(at_ms / 100)];
    w.first = std::max(w.first, l);
    ++w.second;
  }
  std::vector<std::pair<long long, std::pair<double, size_t>>> worst(windows.begin(),
                                                                     windows.end());
  std::sort(worst.begin(), worst.end(),
            [](const auto& x, const auto& y) { return x.second.first > y.second.first; });
  std::string worst_json = "[";
  for (size_t i = 0; i < std::min<size_t>(3, worst.size()); ++i) {
    char item[128];
    std::snprintf(item, sizeof item, "%s{\"at_s\":%.1f,\"peak_ms\":%.2f,\"n\":%zu}", i ? "," : "",
                  static_cast<double>(worst[i].first) / 10.0, worst[i].second.first,
                  worst[i].second.second);
    worst_json += item;
  }
  worst_json += "]";
  std::printf(
      "{\"messages\":%lld,\"with_ts\":%zu,\"log_append_time\":%s,\"p50_ms\":%.2f,"
      "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"min_ms\":%.2f,\"mean_ms\":%.2f,"
      "\"warmup_events\":%zu,\"warmup_max_ms\":%.2f,\"worst_windows\":%s}\n",
      messages, samples.size(), all_log_append ? "true" : "false", pct(0.5), pct(0.99),
      lat.empty() ? 0.0 : lat.back(), lat.empty() ? 0.0 : lat.front(),
      lat.empty() ? 0.0 : sum / static_cast<double>(lat.size()), warmup_count, warmup_max,
      worst_json.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.command == "version") {
    std::printf("%s\n", rd_kafka_version_str());
    return 0;
  }
  if (a.command == "create-topic") return create_topic(a);
  if (a.command == "count") return count(a);
  if (a.command == "latency") return latency(a);
  die("unknown command " + a.command);
}
