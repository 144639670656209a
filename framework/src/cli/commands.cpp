#include "cli/commands.hpp"

#include <signal.h>

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/program_options.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/status_text.hpp"
#include "config/pipeline_config.hpp"
#include "http/endpoints.hpp"
#include "http/server.hpp"
#include "plugin/plugin_describe.hpp"
#include "plugin/plugin_instance.hpp"
#include "plugin/plugin_registry.hpp"
#include "runtime/log.hpp"
#include "runtime/pipeline.hpp"
#include "runtime/standard_descriptors.hpp"
#include "runtime/stop_control.hpp"

namespace pg2kafka::cli {
namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace {

const char* kUsage = R"(pg2kafka streams the changes of PostgreSQL tables to Kafka.

Usage:
  pg2kafka run [--config FILE] [--once] [--dry-run] [--plugin-dir DIR]... [--log-level LEVEL]
               [--log-format text|json]
  pg2kafka check [--config FILE] [--plugin-dir DIR]...
  pg2kafka status [--config FILE] [--format text|json] [--plugin-dir DIR]...
  pg2kafka queue list [--table T] [--parked] [--limit N] [--config FILE] [--format text|json]
  pg2kafka queue show EVENT_ID | retry (EVENT_ID | --table T | --all) | skip EVENT_ID
               [--config FILE] [--format text|json]
  pg2kafka plugins list [--plugin-dir DIR]...
  pg2kafka plugins describe NAME [--kind source|sink] [--format text|json|markdown]
  pg2kafka --help | --version

Commands:
  run       Run the pipeline described by the pipeline file.
  check     Validate the pipeline file and load its plugins, connecting to nothing.
  status    Show the state of the pipeline's source: for pg-outbox, the schema version, the
            queue per table (events, bytes, oldest event's age), which instance holds the drain
            lock and which wait, backfills, and tracked tables whose triggers are disabled or
            missing. Exit 0; 5 when it lists problems that need attention.
  queue     Administer the source's queue (pg-outbox: pg2kafka.event_batches and the events
            parked by on_permanent_failure=park): list waiting and parked events, show one,
            retry parked events (each key's in order, before its later events), or skip one
            (removed for good, recorded with who and when in pg2kafka.queue_audit). Uses the
            pipeline file's source connection; safe while pg2kafka runs (a retry is carried
            out by the running instance; skipping an event still queued is refused while an
            instance drains, since it may have read it already).
  plugins   List the plugins found in the plugin path, or describe one and its options.

Without --config, the pipeline file is $PG2KAFKA_CONFIG, else the default pipeline shipped with
pg2kafka (etc/pg2kafka/pg2kafka.json next to the binary, or under the install prefix), which
reads DATABASE_URL, KAFKA_BROKER (or KAFKA_PRODUCER_URL), PERFORM_MIGRATIONS, TOPIC_NAMESPACE and
DRY_RUN from the environment.

Stopping (run): SIGTERM, SIGINT or SIGHUP stop polling and wait up to shutdown_timeout for the
sink to confirm what is in flight, acknowledge it and exit 0. When that time runs out, or on a
second signal or SIGQUIT, the stop is forced: blocked plugin calls are interrupted, nothing more
is acknowledged, and pg2kafka exits 4 (what was not acknowledged is delivered again later).

Monitoring (run): with http.listen set in the pipeline file (PG2KAFKA_HTTP_LISTEN in the default
pipeline), pg2kafka serves GET /metrics (Prometheus), /healthz and /readyz on that address.

Exit codes:
  0  success (run: stopped cleanly, everything confirmed acknowledged)
  1  unexpected internal error
  2  bad command line or configuration (also a plugin refusing its options or credentials, and
     a queue request that cannot be done as asked: an unknown event id, an unsafe skip)
  3  a plugin cannot be found, loaded or trusted (missing, not a plugin, other ABI, unsafe file)
  4  the pipeline failed while running (a record could not be delivered, the source failed, a
     plugin could not be opened within open_timeout), or its stop was forced or left records
     unconfirmed
  5  status: the state was read and lists problems (see "problems" in the output)

Run `pg2kafka run --help` for the pipeline file's host settings.
)";

void print_config_error(const config::ConfigError& e) {
  std::cerr << "pg2kafka: configuration error" << (e.diagnostics().size() > 1 ? "s" : "") << ":\n";
  for (const auto& d : e.diagnostics().items()) std::cerr << "  " << d.format() << "\n";
}

struct CommonOptions {
  std::vector<std::string> plugin_dirs;
  std::string log_level;
  std::string log_format;
};

void add_common(po::options_description& desc, CommonOptions& common) {
  desc.add_options()("plugin-dir", po::value(&common.plugin_dirs)->composing(),
                     "Look for plugins in DIR first (repeatable); then $PG2KAFKA_PLUGIN_PATH, "
                     "the directory next to the binary and the install prefix.")(
      "log-level", po::value(&common.log_level),
      "error, warn, info or debug; overrides the pipeline file's log_level.")(
      "log-format", po::value(&common.log_format),
      "text or json (one JSON object per line); overrides the pipeline file's log.format.")(
      "help,h", "Show this help.");
}

// Parses a subcommand's arguments; throws po::error on bad input.
po::variables_map parse(const std::vector<std::string>& args, const po::options_description& desc,
                        const po::positional_options_description* positional = nullptr) {
  po::variables_map vm;
  auto parser = po::command_line_parser(args).options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), vm);
  po::notify(vm);
  return vm;
}

std::optional<std::string> default_config_path() {
  if (const char* env = std::getenv("PG2KAFKA_CONFIG"); env && *env) return std::string(env);
  std::vector<fs::path> candidates;
  boost::dll::fs::error_code ec;
  auto exe = boost::dll::program_location(ec);
  if (!ec) candidates.push_back(exe.parent_path() / PG2KAFKA_CONFIG_DIR_FROM_BIN / "pg2kafka.json");
  candidates.push_back(fs::path(PG2KAFKA_INSTALLED_CONFIG_DIR) / "pg2kafka.json");
  for (const auto& c : candidates) {
    std::error_code fec;
    if (fs::exists(c, fec)) return fs::weakly_canonical(c).string();
  }
  return std::nullopt;
}

void apply_logging(const CommonOptions& common, const config::HostSettings& host) {
  const std::string& level = common.log_level.empty() ? host.log_level : common.log_level;
  if (auto l = log::parse_level(level)) log::set_level(*l);
  const std::string& format = common.log_format.empty() ? host.log_format : common.log_format;
  if (auto f = log::parse_format(format)) log::set_format(*f);
}

// --log-level and --log-format are checked before anything else, so that `check` refuses what
// `run` would ignore; a JSON log format applies at once, so that even the first lines parse.
bool valid_log_options(const CommonOptions& common) {
  if (!common.log_level.empty() && !log::parse_level(common.log_level)) {
    std::cerr << "pg2kafka: unknown --log-level " << config::quoted(common.log_level)
              << ": use error, warn, info or debug (run `pg2kafka --help`)\n";
    return false;
  }
  if (common.log_format.empty()) return true;
  auto format = log::parse_format(common.log_format);
  if (!format) {
    std::cerr << "pg2kafka: unknown --log-format " << config::quoted(common.log_format)
              << ": use text or json (run `pg2kafka --help`)\n";
    return false;
  }
  log::set_format(*format);
  return true;
}

// Everything `run` and `check` share: the file, the plugins, their options, the instances.
struct Prepared {
  std::optional<config::PipelineConfig> config;
  plugin::PluginHandle source_plugin;
  plugin::PluginHandle sink_plugin;
  config::ResolvedOptions source_options;
  config::ResolvedOptions sink_options;
};

// Returns an exit code when preparation failed (after printing why), else nullopt.
std::optional<int> prepare(const std::string& config_arg, bool dry_run, const CommonOptions& common,
                           Prepared& out) {
  std::string path = config_arg;
  if (path.empty()) {
    auto found = default_config_path();
    if (!found) {
      std::cerr << "pg2kafka: no pipeline file: pass --config FILE or set PG2KAFKA_CONFIG (the "
                   "default pipeline was not found next to the binary nor in "
                << PG2KAFKA_INSTALLED_CONFIG_DIR << ")\n";
      return kExitConfig;
    }
    path = *found;
  }
  auto env = config::process_environment();
  config::Diagnostics diagnostics;
  try {
    out.config = config::PipelineConfig::load(path, env, dry_run, diagnostics);
  } catch (const config::ConfigError& e) {
    print_config_error(e);
    return kExitConfig;
  }
  const auto& cfg = *out.config;
  apply_logging(common, cfg.host());

  plugin::PluginRegistry registry(plugin::PluginRegistry::default_search_path(common.plugin_dirs));
  std::vector<std::string> plugin_errors;
  auto load = [&](p2k_kind kind, const config::PluginSection& section,
                  const std::string& fallback) -> plugin::PluginHandle {
    std::string name = section.plugin.empty() ? fallback : section.plugin;
    if (name.empty()) return nullptr;
    try {
      return registry.load(kind, name);
    } catch (const plugin::PluginError& e) {
      plugin_errors.push_back(e.what());
      return nullptr;
    }
  };
  out.source_plugin = load(P2K_KIND_SOURCE, cfg.source(), "");
  out.sink_plugin =
      cfg.host().dry_run ? load(P2K_KIND_SINK, {}, "stdout") : load(P2K_KIND_SINK, cfg.sink(), "");
  if (out.source_plugin)
    out.source_options = config::resolve_options(out.source_plugin->options(), cfg.source().options,
                                                 {"source", "options"}, &cfg.document(), env,
                                                 diagnostics, out.source_plugin->abi_minor());
  if (out.sink_plugin && !cfg.host().dry_run)
    out.sink_options =
        config::resolve_options(out.sink_plugin->options(), cfg.sink().options, {"sink", "options"},
                                &cfg.document(), env, diagnostics, out.sink_plugin->abi_minor());
  else if (out.sink_plugin)
    out.sink_options =
        config::resolve_options(out.sink_plugin->options(), nullptr, {"sink"}, nullptr, env,
                                diagnostics, out.sink_plugin->abi_minor());
  if (!diagnostics.empty()) print_config_error(config::ConfigError(diagnostics));
  for (const auto& e : plugin_errors) std::cerr << "pg2kafka: " << e << "\n";
  if (!plugin_errors.empty()) return kExitPlugin;
  if (!diagnostics.empty()) return kExitConfig;
  return std::nullopt;
}

void print_options(const std::string& title, const config::ResolvedOptions& options) {
  std::cout << title << "\n";
  for (const auto& o : options.values())
    std::cout << "  " << o.key << " = " << (o.secret ? "***" : o.value)
              << (o.from_default ? "  (default)" : "") << "\n";
}

// Runs the part of a command that creates plugin instances (and the HTTP endpoint), turning what
// can go wrong there into the documented exit codes.
template <class F>
int with_setup_errors(F&& body) {
  try {
    return body();
  } catch (const http::ServerError& e) {
    std::cerr << "pg2kafka: " << e.what() << "\n";
    return kExitConfig;
  } catch (const config::ConfigError& e) {
    print_config_error(e);
    return kExitConfig;
  } catch (const plugin::PluginError& e) {
    std::cerr << "pg2kafka: " << e.what() << "\n";
    return kExitPlugin;
  }
}

int cmd_run_or_check(const std::vector<std::string>& args, bool is_run) {
  CommonOptions common;
  std::string config_path;
  bool once = false, dry_run = false;
  po::options_description desc(is_run ? "pg2kafka run" : "pg2kafka check");
  desc.add_options()("config,c", po::value(&config_path),
                     "The pipeline file (JSON, comments allowed). Default: $PG2KAFKA_CONFIG, "
                     "else the shipped default pipeline.");
  if (is_run)
    desc.add_options()("once", po::bool_switch(&once),
                       "Stop, with exit code 0, once the source has nothing left and everything "
                       "is acknowledged.")("dry-run", po::bool_switch(&dry_run),
                                           "Print records with the stdout sink instead of the "
                                           "configured sink, and acknowledge nothing.");
  add_common(desc, common);
  auto vm = parse(args, desc);
  if (vm.count("help")) {
    std::cout << desc << "\nHost settings (the \"pipeline\" section of the pipeline file):\n"
              << plugin::describe_options(config::host_options(), plugin::DescribeFormat::kText);
    return kExitOk;
  }
  if (!valid_log_options(common)) return kExitConfig;
  Prepared p;
  if (auto code = prepare(config_path, dry_run, common, p)) return *code;
  return with_setup_errors([&] {
    // Before the instances: it outlives them, so that a forced stop still ends a destroy that
    // hangs; and it blocks the stop signals before any plugin thread starts.
    std::optional<runtime::StopControl> stop;
    if (is_run) stop.emplace(p.config->host().shutdown_timeout, /*take_signals=*/true);
    plugin::SourceInstance source(p.source_plugin, p.source_options);
    plugin::SinkInstance sink(p.sink_plugin, p.sink_options);
    if (p.config->host().park_failures && !source.has_park()) {
      std::cerr << "pg2kafka: configuration error: " << p.config->document().file()
                << ": pipeline.on_permanent_failure is park, but source '" << source.name() << "' ("
                << source.plugin().path()
                << ") cannot park records (it has no park operation, plugin ABI 1.4): set it to "
                   "stop, or use a source that parks\n";
      return kExitConfig;
    }
    if (!is_run) {
      std::cout << "configuration OK: " << p.config->document().file() << "\n";
      print_options("source " + source.name() + " (" + source.plugin().path() + "):",
                    p.source_options);
      print_options("sink " + sink.name() + " (" + sink.plugin().path() + "):", p.sink_options);
      print_options("pipeline:", p.config->host_values());
      return kExitOk;
    }
    stop->set_interrupt([&] {
      // Runs on the stop control's thread while the pipeline thread may be inside a call.
      std::string source_state = source.interrupt(), sink_state = sink.interrupt();
      log::warn("interrupted source '" + source.name() + "' (" + source_state + ") and sink '" +
                sink.name() + "' (" + sink_state + ")");
    });
    // Cleared before the instances go, whatever happens.
    struct ClearInterrupt {
      runtime::StopControl& stop;
      ~ClearInterrupt() { stop.set_interrupt(nullptr); }
    } clear_interrupt{*stop};
    runtime::RunMode mode{once, p.config->host().dry_run};
    runtime::Pipeline pipeline(source, sink, p.config->host(), mode, *stop);
    // After the pipeline and the instances, so it stops before they go.
    std::optional<http::Endpoints> endpoints;
    std::optional<http::Server> server;
    if (const auto& listen = p.config->host().http_listen; !listen.empty()) {
      std::string why;
      auto address = http::parse_listen_address(listen, why);  // checked with the config
      endpoints.emplace(pipeline.metrics(), source, sink, p.config->host().liveness_timeout);
      server.emplace(*address, [&](std::string_view path) { return endpoints->handle(path); });
      server->start();
      log::info("serving /metrics, /healthz and /readyz on http://" + listen +
                (address->port == 0 ? " (port " + std::to_string(server->port()) + ")" : ""));
      if (!address->loopback)
        log::warn("http.listen " + listen +
                  " is not a loopback address: /metrics, /healthz and /readyz are served "
                  "without authentication to every host that can reach it");
    }
    int code = pipeline.run();
    if (server) server->stop();
    return code;
  });
}

int cmd_status(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string config_path, format = "text";
  po::options_description desc("pg2kafka status");
  desc.add_options()("config,c", po::value(&config_path),
                     "The pipeline file. Default: $PG2KAFKA_CONFIG, else the shipped default "
                     "pipeline. Only its source section is used.")(
      "format", po::value(&format), "text (for people) or json (one JSON object, for scripts).");
  add_common(desc, common);
  auto vm = parse(args, desc);
  if (vm.count("help")) {
    std::cout << desc;
    return kExitOk;
  }
  if (format != "text" && format != "json") {
    std::cerr << "pg2kafka: unknown --format " << config::quoted(format) << ": use text or json\n";
    return kExitConfig;
  }
  if (!valid_log_options(common)) return kExitConfig;
  Prepared p;
  // As a dry run: the sink's settings (an unset KAFKA_BROKER) do not matter here.
  if (auto code = prepare(config_path, /*dry_run=*/true, common, p)) return *code;
  return with_setup_errors([&] {
    plugin::SourceInstance source(p.source_plugin, p.source_options);
    if (!source.has_status()) {
      std::cerr << "pg2kafka: source '" << source.name() << "' (" << source.plugin().path()
                << ") cannot describe its state: it has no status operation (plugin ABI 1.3)\n";
      return kExitPlugin;
    }
    std::string text;
    auto r = source.status(text);
    if (!r.ok()) {
      std::cerr << "pg2kafka: cannot read the state of source '" << source.name()
                << "': " << r.message << "\n";
      return r.status == P2K_INVALID_CONFIG ? kExitConfig : kExitRuntime;
    }
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (ec || !doc.is_object()) {
      std::cerr << "pg2kafka: source '" << source.name()
                << "' described its state in something else than a JSON object (a bug in the "
                   "plugin)\n";
      return kExitRuntime;
    }
    if (format == "json")
      std::cout << text << "\n";
    else
      std::cout << status_text(doc.get_object());
    const auto* problems = doc.get_object().if_contains("problems");
    bool has_problems = problems && problems->is_array() && !problems->get_array().empty();
    return has_problems ? kExitProblems : kExitOk;
  });
}

int cmd_queue(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string config_path, format = "text", action, event, table;
  bool parked = false, all = false;
  int64_t limit = 100;
  po::options_description desc("pg2kafka queue");
  desc.add_options()("action", po::value(&action), "list, show, retry or skip")(
      "event", po::value(&event), "the event id (show, retry, skip): the message's uuid")(
      "config,c", po::value(&config_path),
      "The pipeline file. Default: $PG2KAFKA_CONFIG, else the shipped default pipeline. Only its "
      "source section is used.")("table", po::value(&table),
                                 "list: only this table's events; retry: every parked event of "
                                 "this table (schema.table, or a table of any schema).")(
      "parked", po::bool_switch(&parked), "list: only parked events.")(
      "all", po::bool_switch(&all), "retry: every parked event.")(
      "limit", po::value(&limit), "list: at most this many events of each kind (default 100).")(
      "format", po::value(&format), "text (for people) or json (one JSON object, for scripts).");
  add_common(desc, common);
  po::positional_options_description positional;
  positional.add("action", 1).add("event", 1);
  auto vm = parse(args, desc, &positional);
  if (vm.count("help") || action.empty()) {
    std::cout << desc;
    return action.empty() && !vm.count("help") ? kExitConfig : kExitOk;
  }
  auto usage = [](const std::string& why) {
    std::cerr << "pg2kafka: " << why << " (run `pg2kafka queue --help`)\n";
    return kExitConfig;
  };
  if (format != "text" && format != "json")
    return usage("unknown --format " + config::quoted(format) + ": use text or json");
  boost::json::object request{{"command", action}};
  if (action == "list") {
    if (!event.empty()) return usage("queue list takes no event id (use queue show)");
    if (all) return usage("--all is for queue retry");
    if (limit < 1 || limit > 100000) return usage("--limit must be between 1 and 100000");
    request["table"] = table.empty() ? boost::json::value(nullptr) : boost::json::value(table);
    request["parked"] = parked;
    request["limit"] = limit;
  } else if (action == "show" || action == "skip") {
    if (event.empty()) return usage("queue " + action + " needs an EVENT_ID");
    if (!table.empty() || all || parked)
      return usage("queue " + action + " takes only an EVENT_ID");
    request["event"] = event;
  } else if (action == "retry") {
    int chosen = !event.empty() + !table.empty() + all;
    if (chosen != 1) return usage("queue retry needs exactly one of EVENT_ID, --table T and --all");
    if (parked) return usage("--parked is for queue list");
    if (!event.empty()) request["event"] = event;
    if (!table.empty()) request["table"] = table;
    if (all) request["all"] = true;
  } else {
    return usage("unknown queue action " + config::quoted(action) +
                 ": use list, show, retry or skip");
  }
  if (!valid_log_options(common)) return kExitConfig;
  Prepared p;
  if (auto code = prepare(config_path, /*dry_run=*/true, common, p)) return *code;
  return with_setup_errors([&] {
    plugin::SourceInstance source(p.source_plugin, p.source_options);
    if (!source.has_queue()) {
      std::cerr << "pg2kafka: source '" << source.name() << "' (" << source.plugin().path()
                << ") has no queue to administer: it has no queue operation (plugin ABI 1.4)\n";
      return kExitPlugin;
    }
    std::string text;
    auto r = source.queue(boost::json::serialize(request), text);
    if (!r.ok()) {
      // The message may quote stored errors and data: printed without control characters.
      std::cerr << "pg2kafka: queue " << action << ": " << config::printable(r.message, 4000)
                << "\n";
      return r.status == P2K_INVALID_CONFIG ? kExitConfig : kExitRuntime;
    }
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (ec || !doc.is_object()) {
      std::cerr << "pg2kafka: source '" << source.name()
                << "' answered a queue request with something else than a JSON object (a bug "
                   "in the plugin)\n";
      return kExitRuntime;
    }
    if (format == "json")
      std::cout << text << "\n";
    else
      std::cout << status_text(doc.get_object());
    return kExitOk;
  });
}

int cmd_plugins(const std::vector<std::string>& args) {
  CommonOptions common;
  std::string action, name, kind, format = "text";
  po::options_description desc("pg2kafka plugins");
  desc.add_options()("action", po::value(&action), "list or describe")("name", po::value(&name),
                                                                       "plugin name (describe)")(
      "kind", po::value(&kind), "source or sink, when a name exists as both (describe)")(
      "format", po::value(&format), "text, json or markdown (describe)");
  add_common(desc, common);
  po::positional_options_description positional;
  positional.add("action", 1).add("name", 1);
  auto vm = parse(args, desc, &positional);
  if (vm.count("help") || action.empty()) {
    std::cout << desc;
    return action.empty() && !vm.count("help") ? kExitConfig : kExitOk;
  }
  plugin::PluginRegistry registry(plugin::PluginRegistry::default_search_path(common.plugin_dirs));
  auto entries = registry.list();
  if (action == "list") {
    if (entries.empty()) std::cout << "no plugins found\n";
    for (const auto& e : entries) {
      std::cout << plugin::kind_name(e.kind) << "\t" << e.name << "\t";
      if (e.plugin)
        std::cout << e.plugin->descriptor().version << "\t" << e.plugin->descriptor().summary;
      else
        std::cout << (e.refused ? "REFUSED\t" : "BROKEN\t") << e.error;
      std::cout << "\t" << e.path << "\n";
    }
    std::cout << "\nsearch path:\n";
    for (const auto& d : registry.search_path()) std::cout << "  " << d << "\n";
    return kExitOk;
  }
  if (action != "describe") {
    std::cerr << "pg2kafka: unknown plugins action " << config::quoted(action)
              << ": use list or describe\n";
    return kExitConfig;
  }
  auto fmt = plugin::parse_describe_format(format);
  if (!fmt) {
    std::cerr << "pg2kafka: unknown format " << config::quoted(format)
              << ": use text, json or markdown\n";
    return kExitConfig;
  }
  if (name.empty()) {
    std::cerr << "pg2kafka: plugins describe needs a plugin NAME (see `pg2kafka plugins list`)\n";
    return kExitConfig;
  }
  if (!kind.empty() && kind != "source" && kind != "sink") {
    std::cerr << "pg2kafka: --kind must be source or sink\n";
    return kExitConfig;
  }
  std::vector<const plugin::PluginRegistry::Entry*> matches;
  for (const auto& e : entries)
    if (e.name == name && (kind.empty() || kind == plugin::kind_name(e.kind)))
      matches.push_back(&e);
  if (matches.empty()) {
    std::string known;
    for (const auto& e : entries) known += (known.empty() ? "" : ", ") + e.name;
    std::cerr << "pg2kafka: no plugin named " << config::quoted(name)
              << " (available: " << (known.empty() ? "none" : known) << ")\n";
    return kExitPlugin;
  }
  if (matches.size() > 1) {
    std::cerr << "pg2kafka: '" << name << "' is both a source and a sink: add --kind\n";
    return kExitConfig;
  }
  if (!matches[0]->plugin) {
    std::cerr << "pg2kafka: " << matches[0]->error << "\n";
    return kExitPlugin;
  }
  std::cout << plugin::describe_plugin(matches[0]->plugin->descriptor(), matches[0]->path, *fmt);
  return kExitOk;
}

}  // namespace

int main_entry(int argc, char** argv) {
  // Before anything opens a file or a socket (plugin.h, "Standard descriptors").
  runtime::keep_standard_descriptors_open();
  signal(SIGPIPE, SIG_IGN);  // a closed stdout becomes an error the stdout sink reports
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.empty()) {
      std::cerr << kUsage;
      return kExitConfig;
    }
    const std::string& command = args[0];
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (command == "--help" || command == "-h" || command == "help") {
      std::cout << kUsage;
      return kExitOk;
    }
    if (command == "--version" || command == "version") {
      std::cout << "pg2kafka " << PG2KAFKA_VERSION << " (plugin ABI " << P2K_ABI_MAJOR << "."
                << P2K_ABI_MINOR << ")\n";
      return kExitOk;
    }
    if (command == "run") return cmd_run_or_check(rest, true);
    if (command == "check") return cmd_run_or_check(rest, false);
    if (command == "status") return cmd_status(rest);
    if (command == "queue") return cmd_queue(rest);
    if (command == "plugins") return cmd_plugins(rest);
    std::string near = config::nearest(command, {"run", "check", "status", "queue", "plugins"});
    std::cerr << "pg2kafka: unknown command " << config::quoted(command)
              << (near.empty() ? "" : "; did you mean '" + near + "'?")
              << " (run `pg2kafka --help`)\n";
    return kExitConfig;
  } catch (const po::error& e) {
    // Its text quotes what was typed: bounded like every echo.
    std::cerr << "pg2kafka: " << config::printable(e.what(), 300) << " (run `pg2kafka --help`)\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "pg2kafka: internal error: " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace pg2kafka::cli
