// The kafka sink's settings: parsed from the host's validated option values, checked for
// contradictions, and translated into librdkafka producer properties.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rdkafka_client.hpp"

namespace pg2kafka::kafka {

// The header that carries each record's event id (p2k_record.id) on every message.
inline constexpr std::string_view kEventIdHeader = "pg2kafka.id";
// Passthrough options start with this prefix, followed by a librdkafka property name.
inline constexpr std::string_view kPassthroughPrefix = "rdkafka.";

// The kafka sink's option table: names, types, defaults, bounds and documentation. The one place
// where the defaults live (SinkConfig has none: parse_config reads every value from the options,
// to which the host applied these defaults).
std::span<const p2k_option> sink_options();

// The settings, typed (see sink_options() for what each means).
struct SinkConfig {
  std::vector<std::string> bootstrap_servers;  // "host:port", scheme stripped
  std::string acks;                            // "all" or "1"
  bool enable_idempotence = false;
  std::string compression;
  int64_t linger_ms = 0;
  int64_t batch_size = 0;
  int64_t batch_num_messages = 0;
  int64_t message_timeout_ms = 0;
  int64_t request_timeout_ms = 0;
  std::string partitioner;
  bool create_topics = false;
  int64_t topic_partitions = 0;          // -1: the broker's num.partitions
  int64_t topic_replication_factor = 0;  // -1: the broker's default.replication.factor
  std::string client_id;
  int64_t statistics_interval_ms = 0;  // 0: no statistics
  // librdkafka properties given as "rdkafka.<name>", without the prefix.
  std::map<std::string, std::string> passthrough;

  // The bootstrap servers joined with commas, as librdkafka takes them.
  std::string bootstrap_list() const;
  // How long a request to the cluster may take (request_timeout_ms).
  std::chrono::milliseconds request_timeout() const {
    return std::chrono::milliseconds(request_timeout_ms);
  }
};

// Builds the configuration from the option values the host passes to create() (validated against
// sink_options(), defaults applied). Throws sdk::ConfigError naming every problem at once, each
// with its option: a malformed bootstrap server, a contradiction (acks=1 with idempotence), a
// refused or unknown passthrough key. No I/O.
SinkConfig parse_config(const sdk::Options& options);

// Normalises one bootstrap server: strips a "kafka://" (or "kafka+ssl://", "plaintext://",
// "ssl://", "sasl_ssl://", "sasl_plaintext://") scheme and a trailing '/', and checks the
// "host:port" form. Returns the error (empty when fine) through `error`.
std::string normalize_bootstrap_server(std::string_view text, std::string& error);

// The librdkafka producer properties for `config`, in the order they must be applied: the
// sink's own settings first, then the passthrough ones (which may only add to them).
std::vector<std::pair<std::string, std::string>> producer_properties(const SinkConfig& config);

// A librdkafka configuration holding producer_properties(config). Each property librdkafka
// refuses is left out and passed to `refused` with librdkafka's reason, which may quote the value:
// never show the reason for a property that is_secret_property. `refused` may throw (the
// configuration is then released).
rdk::ConfPtr producer_conf(
    const SinkConfig& config,
    const std::function<void(const std::string& name, const char* reason)>& refused);

// True when a librdkafka property holds a secret whose value must never be logged or shown
// (sasl.password, ssl.key.password, sasl.oauthbearer.client.secret, ...): exactly the passthrough
// keys that sink_options() declares secret.
bool is_secret_property(std::string_view name);

// Why a passthrough property is refused (empty when it is accepted): it loads code, it would
// contradict the delivery guarantee, or a named option of the sink sets it.
std::string refused_passthrough_reason(std::string_view name);

}  // namespace pg2kafka::kafka
