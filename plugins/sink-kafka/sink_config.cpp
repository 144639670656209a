#include "sink_config.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>

namespace pg2kafka::kafka {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

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

bool is_secret_property(std::string_view name) {
  std::string n = lower(name);
  for (std::string_view word : {"password", "secret", "token", "key", "credential", "jaas"}) {
    if (n.find(word) != std::string::npos) return true;
  }
  return n == "sasl.oauthbearer.config";
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
  std::vector<std::string> errors;
  auto integer = [&](std::string_view key, int64_t& out) {
    if (!options.has(key)) return;
    try {
      out = options.integer(key);
    } catch (const sdk::Error& e) {
      errors.push_back(e.what());
    }
  };
  auto text = [&](std::string_view key, std::string& out) {
    if (auto v = options.find(key)) out = *v;
  };
  auto boolean = [&](std::string_view key, bool& out) {
    if (options.has(key)) out = options.boolean(key);
  };

  for (const auto& item : options.list("bootstrap_servers")) {
    std::string error;
    std::string server = normalize_bootstrap_server(item, error);
    if (!error.empty())
      errors.push_back("option 'bootstrap_servers': " + error);
    else
      c.bootstrap_servers.push_back(std::move(server));
  }
  if (c.bootstrap_servers.empty() && !options.has("bootstrap_servers"))
    errors.push_back(
        "option 'bootstrap_servers' is required: give the Kafka brokers as host:port,host:port");
  else if (c.bootstrap_servers.empty() && errors.empty())
    errors.push_back("option 'bootstrap_servers' is empty: give at least one host:port");

  text("acks", c.acks);
  boolean("enable_idempotence", c.enable_idempotence);
  text("compression", c.compression);
  integer("linger", c.linger_ms);
  integer("batch_size", c.batch_size);
  integer("batch_num_messages", c.batch_num_messages);
  integer("message_timeout", c.message_timeout_ms);
  integer("request_timeout", c.request_timeout_ms);
  text("partitioner", c.partitioner);
  boolean("create_topics", c.create_topics);
  integer("topic_partitions", c.topic_partitions);
  integer("topic_replication_factor", c.topic_replication_factor);
  text("client_id", c.client_id);

  if (c.acks != "all" && c.acks != "1")
    errors.push_back("option 'acks' must be 'all' or '1', not '" + c.acks + "'");
  if (c.enable_idempotence && c.acks != "all")
    errors.push_back("option 'acks' is '" + c.acks +
                     "' but enable_idempotence is true, which needs acks=all: set acks to 'all' "
                     "(recommended) or enable_idempotence to false");
  if (c.topic_partitions == 0 || c.topic_partitions < -1)
    errors.push_back("option 'topic_partitions' must be -1 (the broker's default) or at least 1");
  if (c.topic_replication_factor == 0 || c.topic_replication_factor < -1)
    errors.push_back(
        "option 'topic_replication_factor' must be -1 (the broker's default) or at least 1");
  if (c.message_timeout_ms <= 0)
    errors.push_back(
        "option 'message_timeout' must be positive: an unbounded timeout would hide a dead "
        "cluster forever");
  if (c.linger_ms < 0) errors.push_back("option 'linger' must not be negative");
  if (c.batch_size <= 0) errors.push_back("option 'batch_size' must be positive");
  if (c.batch_num_messages <= 0) errors.push_back("option 'batch_num_messages' must be positive");
  if (c.request_timeout_ms <= 0) errors.push_back("option 'request_timeout' must be positive");

  c.passthrough = options.with_prefix(kPassthroughPrefix);
  for (const auto& [name, value] : c.passthrough) {
    if (auto why = refused_passthrough_reason(name); !why.empty())
      errors.push_back("option 'rdkafka." + name + "' is not allowed: " + why);
  }

  // Let librdkafka judge every property now (names, values, ranges), so that a typo is a
  // configuration error at `pg2kafka check` time rather than at open.
  if (errors.empty()) {
    std::unique_ptr<rd_kafka_conf_t, decltype(&rd_kafka_conf_destroy)> conf(rd_kafka_conf_new(),
                                                                            &rd_kafka_conf_destroy);
    char errstr[512];
    for (const auto& [name, value] : producer_properties(c)) {
      if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof errstr) ==
          RD_KAFKA_CONF_OK)
        continue;
      bool passthrough = c.passthrough.count(name) != 0;
      std::string where =
          passthrough ? "option 'rdkafka." + name + "'" : "librdkafka property '" + name + "'";
      // librdkafka quotes the value in its message; a secret's value must not reach the user.
      if (is_secret_property(name))
        errors.push_back(where + " has a value librdkafka does not accept");
      else
        errors.push_back(where + ": " + errstr);
    }
  }

  if (!errors.empty()) {
    std::string message = errors.size() == 1
                              ? errors.front()
                              : std::to_string(errors.size()) +
                                    " problems in the kafka sink's options: " + join(errors, "; ");
    throw sdk::ConfigError(message);
  }
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

}  // namespace pg2kafka::kafka
