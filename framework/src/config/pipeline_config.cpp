#include "config/pipeline_config.hpp"

#include <pg2kafka/sdk/plugin.hpp>

#include <algorithm>

#include "http/server.hpp"

namespace pg2kafka::config {
namespace {

using sdk::option;

const char* const kLogLevels[] = {"error", "warn", "info", "debug", nullptr};
const char* const kLogFormats[] = {"text", "json", nullptr};
const char* const kFailurePolicies[] = {"stop", "park", nullptr};

const p2k_option kHostOptions[] = {
    option("batch_size", P2K_OPT_INT, "1000",
           "Most records the host asks the source for in one poll. Larger batches mean fewer round "
           "trips to the source and the sink; smaller ones mean less work redone after a crash.",
           0, nullptr, 1, 1'000'000),
    option("max_in_flight", P2K_OPT_INT, "10000",
           "Most records written to the sink and not yet confirmed. When reached, the host stops "
           "polling until confirmations arrive. Bounds memory and the records delivered twice "
           "after a crash.",
           0, nullptr, 1, 10'000'000),
    option("max_in_flight_bytes", P2K_OPT_SIZE, "16MiB",
           "Most bytes (record keys and values) written to the sink and not yet confirmed. When "
           "reached, the host stops polling until confirmations arrive; one poll's records may "
           "go past it, and a poll is always made when nothing is in flight, so a record larger "
           "than this still passes. Bounds memory when records are large, where max_in_flight "
           "alone would let 10000 records of 1 MB be held at once.",
           0, nullptr, 1, INT64_C(1) << 40),
    option("poll_timeout", P2K_OPT_DURATION, "500ms",
           "How long one poll waits for new records when the source is idle. Also bounds how "
           "quickly the host notices a stop signal.",
           0, nullptr, 0, 60'000),
    option("retry.initial_backoff", P2K_OPT_DURATION, "100ms",
           "First wait before retrying a transient failure (source unreachable, record refused "
           "for now). Each further failure doubles the wait, up to retry.max_backoff.",
           0, nullptr, 1, 3'600'000),
    option("retry.max_backoff", P2K_OPT_DURATION, "30s",
           "Longest wait between two retries of a transient failure. Retries never give up: a "
           "transient failure never drops a record.",
           0, nullptr, 1, 3'600'000),
    option("shutdown_timeout", P2K_OPT_DURATION, "30s",
           "On SIGTERM, SIGINT or SIGHUP (or when the pipeline stops on its own), how long the "
           "host waits, from the signal, for the sink to confirm records already written and for "
           "the last acknowledgement. When it runs out, the stop is forced: a blocked plugin call "
           "is interrupted, nothing more is acknowledged and pg2kafka exits with code 4. Records "
           "not acknowledged stay in the source and are delivered again by the next run. Also how "
           "long the sink may stay silent about records in flight before the host warns.",
           0, nullptr, 0, 3'600'000),
    option("open_timeout", P2K_OPT_DURATION, "60s",
           "How long the host keeps retrying to open the source and the sink at start (an "
           "unreachable database or broker) before it gives up with exit code 4; 0 retries "
           "forever. Once the pipeline runs, a lost connection is retried forever.",
           0, nullptr, 0, 86'400'000),
    option("dry_run", P2K_OPT_BOOL, "false",
           "Deliver to the stdout sink instead of the configured sink, and never acknowledge, so "
           "a dry run removes nothing from the source. The sink section is then not used (and "
           "may be absent). Same as the --dry-run flag."),
    option("log_level", P2K_OPT_ENUM, "info",
           "Least important log messages written to stderr: error, warn, info or debug.", 0,
           kLogLevels),
    option("log.format", P2K_OPT_ENUM, "text",
           "How log lines are written to stderr: text (one readable line per message) or json "
           "(one JSON object per line with time, level, component, message and fields, for log "
           "pipelines). Same as --log-format, which takes precedence.",
           0, kLogFormats),
    option("http.listen", P2K_OPT_STRING, "",
           "Address and port of the HTTP endpoint serving GET /metrics (Prometheus text format), "
           "/healthz (liveness) and /readyz (readiness), e.g. 127.0.0.1:9464 (this host only), "
           "[::1]:9464, or 0.0.0.0:9464 (every interface: the answers, table and topic names "
           "among them, are served without authentication to whoever can reach the port). "
           "Empty: no endpoint."),
    option("http.liveness_timeout", P2K_OPT_DURATION, "5m",
           "/healthz answers 503 (stuck) once the pipeline thread has been inside one plugin "
           "call for longer than this (a query blocked behind a lock, a write to a destination "
           "that does not answer); 0: never. Longer than every timeout of the plugins, so a "
           "slow call that will still end is not taken for a stuck process.",
           0, nullptr, 0, 86'400'000),
    option("on_permanent_failure", P2K_OPT_ENUM, "stop",
           "What a record that can never be delivered does (the sink refuses it for good, e.g. "
           "a value larger than the topic accepts, or the source cannot read it, e.g. a malformed "
           "queue row). stop: the pipeline stops with exit code 4 and the record, with "
           "everything after it, stays in the source: nothing is lost, nothing goes on until "
           "someone acts. park: the source sets the record aside (pg-outbox: in "
           "pg2kafka.parked_events) together with every later record of its key, which keeps "
           "their order, and everything else goes on; `pg2kafka queue list --parked` shows "
           "them, `pg2kafka queue retry` delivers them again in order once the cause is fixed. "
           "Needs a source that can park (pg-outbox can).",
           0, kFailurePolicies),
    option("dead_letter.topic", P2K_OPT_STRING, "",
           "With on_permanent_failure=park: a topic to which every parked record is also written, "
           "through the same sink, with its key, value and headers plus pg2kafka.original_topic, "
           "pg2kafka.event_id, pg2kafka.error and pg2kafka.reason headers; a value the sink "
           "refuses there too (too large for any topic) is left out (pg2kafka.value_omitted: "
           "true, pg2kafka.value_size). Empty: parked records are only kept in the source."),
};

// PATH_MAX: a longer name or path cannot name a file.
constexpr size_t kMaxPluginNameLength = 4096;

const std::vector<std::string> kTopLevel = {"source", "sink", "pipeline"};
const std::vector<std::string> kSectionKeys = {"plugin", "options"};

}  // namespace

std::span<const p2k_option> host_options() {
  return kHostOptions;
}

PipelineConfig PipelineConfig::load(const std::string& file, const EnvLookup& env,
                                    bool force_dry_run, Diagnostics& diagnostics) {
  PipelineConfig c;
  c.document_ = std::make_shared<JsonDocument>(JsonDocument::load(file));
  c.read(env, force_dry_run, diagnostics);
  return c;
}

PipelineConfig PipelineConfig::parse(std::string_view text, const std::string& file,
                                     const EnvLookup& env, bool force_dry_run,
                                     Diagnostics& diagnostics) {
  PipelineConfig c;
  c.document_ = std::make_shared<JsonDocument>(JsonDocument::parse(text, file));
  c.read(env, force_dry_run, diagnostics);
  return c;
}

void PipelineConfig::read(const EnvLookup& env, bool force_dry_run, Diagnostics& diagnostics) {
  const JsonDocument& doc = *document_;
  const auto& root = doc.root();
  if (!root.is_object()) {
    diagnostics.add(doc.diagnostic({},
                                   "the pipeline file must hold one JSON object with "
                                   "\"source\", \"sink\" and \"pipeline\" sections"));
    return;
  }
  const auto& obj = root.as_object();
  for (const auto& [k, v] : obj) {
    std::string key(k);
    if (std::find(kTopLevel.begin(), kTopLevel.end(), key) != kTopLevel.end()) continue;
    std::string near = nearest(key, kTopLevel);
    diagnostics.add(
        doc.diagnostic({key}, "unknown section " + quoted(key) +
                                  (near.empty() ? "" : ": did you mean '" + near + "'?") +
                                  " (valid sections: source, sink, pipeline)"));
  }

  const boost::json::value* pipeline = obj.if_contains("pipeline");
  host_values_ = resolve_options(kHostOptions, pipeline, {"pipeline"}, &doc, env, diagnostics);
  // No fallbacks: the table's defaults are applied, so a value is absent only when invalid.
  auto num = [&](const char* key) -> int64_t {
    auto v = host_values_.find(key);
    return v ? std::stoll(v->value) : 0;
  };
  auto ms = [&](const char* key) { return std::chrono::milliseconds(num(key)); };
  host_.batch_size = static_cast<size_t>(num("batch_size"));
  host_.max_in_flight = static_cast<size_t>(num("max_in_flight"));
  host_.max_in_flight_bytes = static_cast<size_t>(num("max_in_flight_bytes"));
  host_.poll_timeout = ms("poll_timeout");
  host_.retry_initial_backoff = ms("retry.initial_backoff");
  host_.retry_max_backoff = ms("retry.max_backoff");
  host_.shutdown_timeout = ms("shutdown_timeout");
  host_.open_timeout = ms("open_timeout");
  host_.dry_run = force_dry_run || host_values_.get("dry_run") == "true";
  host_.log_level = host_values_.get("log_level");
  host_.log_format = host_values_.get("log.format");
  host_.http_listen = host_values_.get("http.listen");
  host_.liveness_timeout = ms("http.liveness_timeout");
  host_.park_failures = host_values_.get("on_permanent_failure") == "park";
  host_.dead_letter_topic = host_values_.get("dead_letter.topic");
  if (!host_.dead_letter_topic.empty() && !host_.park_failures)
    diagnostics.add(
        doc.diagnostic({"pipeline", "dead_letter.topic"},
                       "a dead-letter topic is written only when records are parked: set "
                       "\"on_permanent_failure\": \"park\" too, or remove dead_letter.topic"));
  if (!host_.http_listen.empty()) {
    std::string why;
    if (!http::parse_listen_address(host_.http_listen, why))
      diagnostics.add(doc.diagnostic({"pipeline", "http.listen"}, why));
  }
  if (host_.retry_max_backoff < host_.retry_initial_backoff)
    diagnostics.add(
        doc.diagnostic({"pipeline", "retry.max_backoff"},
                       "retry.max_backoff must not be shorter than retry.initial_backoff"));

  auto section = [&](const char* name, bool required) {
    PluginSection s;
    s.path = {name};
    const boost::json::value* v = obj.if_contains(name);
    if (!v) {
      if (required)
        diagnostics.add(doc.diagnostic(
            {},
            std::string("missing \"") + name + "\" section: add \"" + name +
                "\": {\"plugin\": \"<name>\", \"options\": {...}} (see `pg2kafka plugins list`)"));
      return s;
    }
    if (!v->is_object()) {
      diagnostics.add(doc.diagnostic(s.path,
                                     "expected an object such as {\"plugin\": \"<name>\", "
                                     "\"options\": {...}}"));
      return s;
    }
    for (const auto& [k, _] : v->as_object()) {
      std::string key(k);
      if (std::find(kSectionKeys.begin(), kSectionKeys.end(), key) != kSectionKeys.end()) continue;
      std::string near = nearest(key, kSectionKeys);
      diagnostics.add(
          doc.diagnostic({name, key}, "unknown key " + quoted(key) +
                                          (near.empty() ? "" : ": did you mean '" + near + "'?") +
                                          " (a section holds \"plugin\" and \"options\"; "
                                          "plugin options go inside \"options\")"));
    }
    const boost::json::value* plugin = v->as_object().if_contains("plugin");
    if (!plugin || !plugin->is_string() || plugin->as_string().empty()) {
      diagnostics.add(doc.diagnostic(plugin ? Path{name, "plugin"} : s.path,
                                     "\"plugin\" must name a plugin (see `pg2kafka plugins list`) "
                                     "or the path of a plugin file"));
    } else {
      auto r = interpolate(std::string_view(plugin->as_string()), env);
      if (!r.ok()) {
        diagnostics.add(doc.diagnostic({name, "plugin"}, r.error));
      } else if (r.value.size() > kMaxPluginNameLength) {
        diagnostics.add(
            doc.diagnostic({name, "plugin"}, "\"plugin\" is " + std::to_string(r.value.size()) +
                                                 " bytes long: a plugin name or path is at most " +
                                                 std::to_string(kMaxPluginNameLength) + " bytes"));
      } else if (std::any_of(r.value.begin(), r.value.end(),
                             [](unsigned char c) { return c < 0x20 || c == 0x7F; })) {
        diagnostics.add(doc.diagnostic({name, "plugin"},
                                       "\"plugin\" " + quoted(r.value) +
                                           " holds a control character: a plugin name or path "
                                           "cannot"));
      } else {
        s.plugin = r.value;
      }
    }
    s.options = v->as_object().if_contains("options");
    return s;
  };
  source_ = section("source", true);
  // A dry run never uses the configured sink, so its settings (say, an unset KAFKA_BROKER) must
  // not stand in the way.
  if (!host_.dry_run) sink_ = section("sink", true);
}

}  // namespace pg2kafka::config
