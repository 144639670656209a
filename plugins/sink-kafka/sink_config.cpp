#include "sink_config.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace pg2kafka::kafka {
namespace {

using sdk::option;

constexpr const char* kAcks[] = {"all", "1", nullptr};
constexpr const char* kCompression[] = {"none", "gzip", "snappy", "lz4", "zstd", nullptr};
constexpr const char* kPartitioners[] = {"murmur2_random", "murmur2", "consistent_random",
                                         "consistent",     "random",  "fnv1a",
                                         "fnv1a_random",   nullptr};

constexpr p2k_option kOptions[] = {
    option("bootstrap_servers", P2K_OPT_LIST, nullptr,
           "The Kafka brokers to connect to first, as host:port elements (a list, or one "
           "comma-separated string). The URL form of the original pg2kafka, kafka://host:port, is "
           "accepted too: the scheme is ignored. Security (TLS, SASL) is set through rdkafka.* "
           "options, e.g. rdkafka.security.protocol=SASL_SSL.",
           P2K_OPT_REQUIRED),
    option("acks", P2K_OPT_ENUM, "all",
           "How many replicas must store a message before the broker confirms it: 'all' (every "
           "in-sync replica; required by enable_idempotence) or '1' (the leader only: a broker "
           "crash right after the confirmation can lose the message). A record is reported "
           "delivered only after this confirmation. acks=0 is not offered: without any "
           "confirmation pg2kafka could not know that a record was stored.",
           0, kAcks),
    option("enable_idempotence", P2K_OPT_BOOL, "true",
           "Use Kafka's idempotent producer: the broker drops the duplicates that internal "
           "retries would otherwise create, and messages of a partition stay in order across "
           "retries. Needs acks=all (and, on brokers before Kafka 3.0, the IDEMPOTENT_WRITE "
           "permission). Turn off only for brokers that do not support it."),
    option("compression", P2K_OPT_ENUM, "lz4",
           "How message batches are compressed on the wire and on the broker's disk: none, gzip, "
           "snappy, lz4 or zstd. lz4 compresses JSON envelopes about as well as snappy (the "
           "original's choice) at lower CPU cost per message; consumers decompress any of them "
           "transparently.",
           0, kCompression),
    option("linger", P2K_OPT_DURATION, "1ms",
           "How long the producer waits for more messages before it sends a batch (librdkafka "
           "linger.ms). Longer values make fewer, larger requests; shorter values lower latency. "
           "The host writes records in batches, so batches form under load even with a short "
           "linger; the default keeps commit-to-Kafka latency low for scattered writes.",
           0, nullptr, 0, 900000),
    option("batch_size", P2K_OPT_SIZE, "1MB",
           "The largest batch of messages sent to one partition in one request, in bytes "
           "(librdkafka batch.size). Keep it below the topics' max.message.bytes: the broker "
           "refuses a larger batch as a whole.",
           0, nullptr, 1, 2147483647),
    option("batch_num_messages", P2K_OPT_INT, "10000",
           "The largest number of messages in one batch (librdkafka batch.num.messages).", 0,
           nullptr, 1, 1000000),
    option("message_timeout", P2K_OPT_DURATION, "5m",
           "How long the producer keeps retrying a message (broker unreachable, leader "
           "elections) before it gives up and reports it for a retry by the pipeline "
           "(librdkafka message.timeout.ms). Nothing is lost when it runs out: the record is "
           "written again after a backoff.",
           0, nullptr, 1, 2147483647),
    option("request_timeout", P2K_OPT_DURATION, "10s",
           "How long opening the sink and checking or creating a topic wait for the cluster's "
           "answer, and how long a write waits for room in a full local queue, before giving up "
           "for now (the pipeline retries after a backoff).",
           0, nullptr, 100, 300000),
    option("partitioner", P2K_OPT_ENUM, "murmur2_random",
           "How a message's key chooses its partition. murmur2_random (the default) hashes keys "
           "like the Java producer's default partitioner, so the same key lands on the same "
           "partition as with Java producers; messages with a null key are spread randomly. The "
           "others are librdkafka's: murmur2, consistent_random, consistent, random, fnv1a and "
           "fnv1a_random.",
           0, kPartitioners),
    option("create_topics", P2K_OPT_BOOL, "false",
           "Create a missing topic (with topic_partitions and topic_replication_factor) through "
           "Kafka's admin API instead of stopping with an error. Needs the CREATE permission. "
           "Off by default: production topics are usually created deliberately, with their "
           "partition count, retention and replication chosen for them."),
    option("topic_partitions", P2K_OPT_INT, "-1",
           "The number of partitions of a topic created by create_topics; -1 takes the broker's "
           "num.partitions.",
           0, nullptr, -1, 100000),
    option("topic_replication_factor", P2K_OPT_INT, "-1",
           "The replication factor of a topic created by create_topics; -1 takes the broker's "
           "default.replication.factor.",
           0, nullptr, -1, 32767),
    option("client_id", P2K_OPT_STRING, "pg2kafka",
           "The client id the producer sends to the brokers (shown in their logs and quotas)."),
    option("statistics_interval", P2K_OPT_DURATION, "5s",
           "How often librdkafka emits its statistics (librdkafka statistics.interval.ms), from "
           "which the sink's broker and producer queue metrics on the host's /metrics are taken "
           "(pg2kafka_kafka_broker_*, pg2kafka_kafka_queue_*, pg2kafka_kafka_transmitted_*): "
           "they are at most this old. Each emission costs the producer one JSON text, which "
           "grows with the number of brokers and partitions (a few kilobytes for a few topics), "
           "read by the sink; 5 s keeps the figures fresh for a 15 s scrape interval at a "
           "negligible cost. 0 turns the statistics off: those metrics are then absent, while "
           "readiness still works from librdkafka's errors, confirmed deliveries and a metadata "
           "request sent while no broker is reachable.",
           0, nullptr, 0, 86400000),
    option("rdkafka.", P2K_OPT_PREFIX, nullptr,
           "Any other librdkafka producer property, e.g. rdkafka.security.protocol=SASL_SSL, "
           "rdkafka.sasl.mechanism=SCRAM-SHA-512, rdkafka.sasl.username, rdkafka.sasl.password, "
           "rdkafka.ssl.ca.location. The properties that hold secrets are declared below and "
           "never printed. Refused: keys that load code (plugin.library.paths, "
           "ssl.engine.location) or run commands (sasl.kerberos.kinit.cmd), keys that would "
           "break the delivery guarantee (delivery.report.only.error, transactional.id) and "
           "keys that a named option above sets. socket.nagle.disable defaults to true."),
    // The librdkafka properties that hold secrets (those its CONFIGURATION.md calls sensitive),
    // declared one by one so that the host never prints them: secret by declaration.
    option("rdkafka.sasl.password", P2K_OPT_STRING, nullptr,
           "librdkafka sasl.password: the SASL password for the PLAIN and SCRAM mechanisms. "
           "Secret: never printed.",
           P2K_OPT_IS_SECRET),
    option("rdkafka.sasl.oauthbearer.client.secret", P2K_OPT_STRING, nullptr,
           "librdkafka sasl.oauthbearer.client.secret: the OAuth client secret for "
           "sasl.oauthbearer.method=oidc. Secret: never printed.",
           P2K_OPT_IS_SECRET),
    option("rdkafka.sasl.oauthbearer.config", P2K_OPT_STRING, nullptr,
           "librdkafka sasl.oauthbearer.config: the configuration of the built-in unsecured JWT "
           "handler, which may hold credentials. Secret: never printed.",
           P2K_OPT_IS_SECRET),
    option("rdkafka.ssl.key.password", P2K_OPT_STRING, nullptr,
           "librdkafka ssl.key.password: the passphrase of the client's private key "
           "(ssl.key.location or ssl.key.pem). Secret: never printed.",
           P2K_OPT_IS_SECRET),
    option("rdkafka.ssl.key.pem", P2K_OPT_STRING, nullptr,
           "librdkafka ssl.key.pem: the client's private key itself, in PEM format. Secret: never "
           "printed.",
           P2K_OPT_IS_SECRET),
    option("rdkafka.ssl.keystore.password", P2K_OPT_STRING, nullptr,
           "librdkafka ssl.keystore.password: the password of the client's PKCS#12 keystore "
           "(ssl.keystore.location). Secret: never printed.",
           P2K_OPT_IS_SECRET),
};

using sdk::lower;

struct Refusal {
  std::string_view name;
  std::string_view reason;
};

// Properties a pipeline file may not set through "rdkafka.": each entry says why and what to use
// instead. Everything else is handed to librdkafka, which validates names and values.
constexpr std::array kRefused = {
    Refusal{"plugin.library.paths", "it loads shared libraries (code) into pg2kafka"},
    Refusal{"ssl.engine.location", "it loads an OpenSSL engine (code) into pg2kafka"},
    Refusal{"ssl_engine_location", "it loads an OpenSSL engine (code) into pg2kafka"},
    Refusal{"sasl.kerberos.kinit.cmd", "it runs a shell command; use the default kinit command"},
    Refusal{"delivery.report.only.error",
            "pg2kafka needs a delivery report for every message to acknowledge it"},
    Refusal{"transactional.id", "pg2kafka's producer is idempotent, not transactional"},
    Refusal{"allow.auto.create.topics", "use the option 'create_topics' instead"},
    Refusal{"bootstrap.servers", "use the option 'bootstrap_servers' instead"},
    Refusal{"metadata.broker.list", "use the option 'bootstrap_servers' instead"},
    Refusal{"acks", "use the option 'acks' instead"},
    Refusal{"request.required.acks", "use the option 'acks' instead"},
    Refusal{"enable.idempotence", "use the option 'enable_idempotence' instead"},
    Refusal{"compression.codec", "use the option 'compression' instead"},
    Refusal{"compression.type", "use the option 'compression' instead"},
    Refusal{"linger.ms", "use the option 'linger' instead"},
    Refusal{"queue.buffering.max.ms", "use the option 'linger' instead"},
    Refusal{"batch.size", "use the option 'batch_size' instead"},
    Refusal{"batch.num.messages", "use the option 'batch_num_messages' instead"},
    Refusal{"message.timeout.ms", "use the option 'message_timeout' instead"},
    Refusal{"delivery.timeout.ms", "use the option 'message_timeout' instead"},
    Refusal{"partitioner", "use the option 'partitioner' instead"},
    Refusal{"client.id", "use the option 'client_id' instead"},
    Refusal{"statistics.interval.ms", "use the option 'statistics_interval' instead"},
};

constexpr std::array<std::string_view, 8> kSchemes = {
    "kafka://",    "kafka+ssl://",      "plaintext://", "ssl://",
    "sasl_ssl://", "sasl_plaintext://", "tcp://",       "kafka+tcp://"};

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

}  // namespace

std::string SinkConfig::bootstrap_list() const {
  return join(bootstrap_servers, ",");
}

std::span<const p2k_option> sink_options() {
  return kOptions;
}

bool is_secret_property(std::string_view name) {
  for (const auto& o : kOptions) {
    std::string_view n(o.name);
    if ((o.flags & P2K_OPT_IS_SECRET) && n.size() == kPassthroughPrefix.size() + name.size() &&
        n.substr(0, kPassthroughPrefix.size()) == kPassthroughPrefix &&
        n.substr(kPassthroughPrefix.size()) == name)
      return true;
  }
  return false;
}

std::string refused_passthrough_reason(std::string_view name) {
  std::string n = lower(name);
  for (const auto& r : kRefused) {
    if (n == r.name) return std::string(r.reason);
  }
  // librdkafka has no interceptor property today; refuse any that a future version might add.
  if (n.find("interceptor") != std::string::npos) return "it would install interceptors (code)";
  return {};
}

std::string normalize_bootstrap_server(std::string_view text, std::string& error) {
  error.clear();
  std::string s(text);
  // Trim blanks around the element: "a:1, b:2" is a common way to write a list.
  auto first = s.find_first_not_of(" \t");
  auto last = s.find_last_not_of(" \t");
  s = first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
  std::string l = lower(s);
  for (auto scheme : kSchemes) {
    if (l.rfind(scheme, 0) == 0) {
      s = s.substr(scheme.size());
      break;
    }
  }
  while (!s.empty() && s.back() == '/') s.pop_back();
  auto colon = s.rfind(':');
  if (s.empty() || colon == std::string::npos || colon == 0 || colon + 1 == s.size()) {
    error = "bootstrap server '" + std::string(text) +
            "' is not of the form host:port (or kafka://host:port)";
    return {};
  }
  std::string port = s.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); }) ||
      port.size() > 5 || std::stoi(port) == 0 || std::stoi(port) > 65535) {
    error = "bootstrap server '" + std::string(text) + "' has an invalid port '" + port + "'";
    return {};
  }
  if (s.find('/') != std::string::npos || s.find('@') != std::string::npos) {
    error = "bootstrap server '" + std::string(text) +
            "' is not of the form host:port (paths and user names are not allowed)";
    return {};
  }
  return s;
}

SinkConfig parse_config(const sdk::Options& options) {
  SinkConfig c;
  sdk::ConfigError::Problems problems;
  auto problem = [&](std::string option, std::string message) {
    problems.push_back({std::move(option), std::move(message)});
  };

  for (const auto& item : options.list("bootstrap_servers")) {
    std::string error;
    std::string server = normalize_bootstrap_server(item, error);
    if (!error.empty())
      problem("bootstrap_servers", error);
    else
      c.bootstrap_servers.push_back(std::move(server));
  }
  if (c.bootstrap_servers.empty() && problems.empty())
    problem("bootstrap_servers", "is empty: give at least one host:port");

  // Every value has a default in the table and was range-checked by the host: read them as they
  // are. What the table cannot say is checked below.
  c.acks = options.string("acks");
  c.enable_idempotence = options.boolean("enable_idempotence");
  c.compression = options.string("compression");
  c.linger_ms = options.integer("linger");
  c.batch_size = options.integer("batch_size");
  c.batch_num_messages = options.integer("batch_num_messages");
  c.message_timeout_ms = options.integer("message_timeout");
  c.request_timeout_ms = options.integer("request_timeout");
  c.partitioner = options.string("partitioner");
  c.create_topics = options.boolean("create_topics");
  c.topic_partitions = options.integer("topic_partitions");
  c.topic_replication_factor = options.integer("topic_replication_factor");
  c.client_id = options.string("client_id");
  c.statistics_interval_ms = options.integer("statistics_interval");

  if (c.enable_idempotence && c.acks != "all")
    problem("acks", "is '" + c.acks +
                        "' but enable_idempotence is true, which needs acks=all: set acks to 'all' "
                        "(recommended) or enable_idempotence to false");
  if (c.topic_partitions == 0)
    problem("topic_partitions", "must be -1 (the broker's default) or at least 1");
  if (c.topic_replication_factor == 0)
    problem("topic_replication_factor", "must be -1 (the broker's default) or at least 1");

  c.passthrough = options.with_prefix(kPassthroughPrefix);
  for (const auto& [name, value] : c.passthrough) {
    if (auto why = refused_passthrough_reason(name); !why.empty())
      problem(std::string(kPassthroughPrefix) + name, "is not allowed: " + why);
  }

  // Let librdkafka judge every property now (names, values, ranges), so that a typo is a
  // configuration error at `pg2kafka check` time rather than at open.
  if (problems.empty()) {
    producer_conf(c, [&](const std::string& name, const char* reason) {
      // librdkafka quotes the value in its message; a secret's value must not reach the user.
      std::string why = is_secret_property(name) ? "librdkafka does not accept its value"
                                                 : std::string("librdkafka: ") + reason;
      if (c.passthrough.count(name) != 0)
        problem(std::string(kPassthroughPrefix) + name, why);
      else
        problem({}, "librdkafka property '" + name + "': " + why);
    });
  }

  if (!problems.empty()) throw sdk::ConfigError(std::move(problems));
  return c;
}

std::vector<std::pair<std::string, std::string>> producer_properties(const SinkConfig& c) {
  std::vector<std::pair<std::string, std::string>> p = {
      {"bootstrap.servers", c.bootstrap_list()},
      {"client.id", c.client_id},
      {"acks", c.acks == "all" ? "all" : "1"},
      {"enable.idempotence", c.enable_idempotence ? "true" : "false"},
      {"compression.codec", c.compression},
      {"linger.ms", std::to_string(c.linger_ms)},
      {"batch.size", std::to_string(c.batch_size)},
      {"batch.num.messages", std::to_string(c.batch_num_messages)},
      {"message.timeout.ms", std::to_string(c.message_timeout_ms)},
      {"partitioner", c.partitioner},
      {"statistics.interval.ms", std::to_string(c.statistics_interval_ms)},
      // Checking whether a topic exists must never create it with broker defaults.
      {"allow.auto.create.topics", "false"},
      // Debian's librdkafka 2.0.2 leaves Nagle's algorithm on, which delays every produce
      // request by tens of milliseconds on a quiet connection.
      {"socket.nagle.disable", "true"},
  };
  for (const auto& [name, value] : c.passthrough) {
    auto it = std::find_if(p.begin(), p.end(), [&](const auto& kv) { return kv.first == name; });
    if (it != p.end())
      it->second = value;  // only socket.nagle.disable can get here: the others are refused
    else
      p.emplace_back(name, value);
  }
  return p;
}

rdk::ConfPtr producer_conf(
    const SinkConfig& config,
    const std::function<void(const std::string& name, const char* reason)>& refused) {
  rdk::ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : producer_properties(config)) {
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK)
      refused(name, errstr);
  }
  return conf;
}

}  // namespace pg2kafka::kafka
