// The host refuses every malformed plugin with a message naming the file, the defect and the
// fix, and never crashes.
#include <dlfcn.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "config/option_values.hpp"
#include "plugin/plugin_instance.hpp"
#include "plugin/plugin_loader.hpp"
#include "test_support.hpp"

using namespace pg2kafka::plugin;

namespace {

std::string broken(const std::string& name) {
  return std::string(BROKEN_PLUGIN_DIR) + "/pg2kafka-sink-" + name + ".so";
}

std::string load_error(const std::string& path) {
  try {
    load_plugin_file(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "loaded without error";
}

void expect_refused(const std::string& name, const std::string& expected) {
  std::string error = load_error(broken(name));
  EXPECT_NE(error.find(broken(name)), std::string::npos) << error;
  EXPECT_NE(error.find(expected), std::string::npos)
      << "expected '" << expected << "' in: " << error;
}

}  // namespace

TEST(Abi, LoadsAWellFormedPlugin) {
  auto p = load_plugin_file(p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so");
  EXPECT_EQ(p->name(), "stdout");
  EXPECT_EQ(p->kind(), P2K_KIND_SINK);
}

TEST(Abi, RefusesMissingFile) {
  expect_refused("does-not-exist", "cannot access it");
}

TEST(Abi, RefusesFileThatIsNotASharedLibrary) {
  p2k_test::TempDir dir;
  auto path = dir.write("pg2kafka-sink-text.so", "this is not an ELF file\n");
  auto error = load_error(path);
  EXPECT_NE(error.find("not a loadable shared library"), std::string::npos) << error;
}

TEST(Abi, RefusesLibraryWithoutEntrySymbol) {
  expect_refused("no-entry", "does not export p2k_plugin_entry_v1, so it is not a pg2kafka plugin");
}

TEST(Abi, RefusesOtherMajorVersion_NamingBothVersions) {
  expect_refused("wrong-major", "built for plugin ABI 2.0, but this pg2kafka speaks ABI 1." +
                                    std::to_string(P2K_ABI_MINOR));
}

TEST(Abi, RefusesNewerMinorVersion) {
  std::string host = "1." + std::to_string(P2K_ABI_MINOR);
  std::string plugin = "1." + std::to_string(P2K_ABI_MINOR + 1);
  expect_refused("newer-minor", "it needs plugin ABI " + plugin +
                                    ", newer than this pg2kafka's ABI " + host +
                                    ": upgrade pg2kafka");
}

TEST(Abi, RefusesShortDescriptor) {
  expect_refused("short-struct", "smaller than the");
}

TEST(Abi, RefusesShortOperationsTable) {
  expect_refused("short-ops", "its sink operations table is 24 bytes");
}

TEST(Abi, RefusesMissingRequiredOperation) {
  expect_refused("missing-write", "lacks a required function");
}

TEST(Abi, RefusesNullDescriptor) {
  expect_refused("null-descriptor", "returned NULL");
}

TEST(Abi, RefusesThrowingEntry) {
  expect_refused("throwing-entry", "entry exploded");
}

TEST(Abi, RefusesInvalidName) {
  expect_refused("bad-name", "not lower-hyphenated");
}

TEST(Abi, RefusesWorldWritableFile) {
  p2k_test::TempDir dir;
  auto copy = dir.path() / "pg2kafka-sink-stdout.so";
  std::filesystem::copy_file(p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so",
                             copy);
  chmod(copy.c_str(), 0666);
  auto error = load_error(copy.string());
  EXPECT_NE(error.find("writable by every user (mode 0666)"), std::string::npos) << error;
  EXPECT_NE(error.find("chmod o-w"), std::string::npos) << error;
}

TEST(Abi, RefusesFileOwnedBySomeoneElse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
  p2k_test::TempDir dir;
  auto copy = dir.path() / "pg2kafka-sink-stdout.so";
  std::filesystem::copy_file(p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so",
                             copy);
  ASSERT_EQ(chown(copy.c_str(), 12345, 12345), 0);
  auto error = load_error(copy.string());
  EXPECT_NE(error.find("owned by uid 12345"), std::string::npos) << error;
}

TEST(Abi, TurnsExceptionFromRawCreateIntoError) {
  auto p = load_plugin_file(broken("throwing-create"));
  pg2kafka::config::ResolvedOptions none;
  try {
    SinkInstance sink(p, none);
    FAIL() << "create did not fail";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("let an exception escape from create: create exploded"),
              std::string::npos)
        << e.what();
  }
}

TEST(Abi, SdkTurnsExceptionFromConstructorIntoStatus) {
  auto p = load_plugin_file(broken("sdk-throwing"));
  EXPECT_EQ(p->descriptor().option_count, 0u) << "P2K_SINK_PLUGIN without an option table";
  EXPECT_EQ(p->descriptor().options, nullptr);
  pg2kafka::config::ResolvedOptions none;
  try {
    SinkInstance sink(p, none);
    FAIL() << "create did not fail";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("could not be created: constructor exploded"),
              std::string::npos)
        << e.what();
  }
}

TEST(Abi, BinaryExitsWithPluginErrorCode_ForBrokenPlugin) {
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": ")" + broken("wrong-major") +
                                        R"("}})");
  auto r = p2k_test::run_pg2kafka(
      {"check", "--config", config, "--plugin-dir", p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("built for plugin ABI 2.0"), std::string::npos) << r.err;
}

TEST(Abi, BinaryExitsWithPluginErrorCode_ForThrowingCreate) {
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": ")" + broken("throwing-create") +
                                        R"("}})");
  auto r = p2k_test::run_pg2kafka({"run", "--once", "--config", config, "--plugin-dir",
                                   p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("create exploded"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Growing the ABI (plugin.h, "Versioning")
// ---------------------------------------------------------------------------------------------

namespace {

std::string plugin_path(const std::string& dir_env, const std::string& file) {
  return p2k_test::ctest_env(dir_env.c_str()) + "/" + file;
}

const p2k_plugin* entry_answer(const std::string& path, uint32_t major, uint32_t minor) {
  // Loaded once per path for the life of the test binary (never unloaded: descriptors stay valid).
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return nullptr;
  auto entry = reinterpret_cast<p2k_plugin_entry_fn>(dlsym(lib, P2K_PLUGIN_ENTRY_SYMBOL));
  return entry ? entry(major, minor) : nullptr;
}

p2k_test::CommandResult old_host(const std::string& plugin, std::vector<std::string> options = {}) {
  std::vector<std::string> argv{OLD_HOST, plugin};
  argv.insert(argv.end(), options.begin(), options.end());
  return p2k_test::run(argv);
}

// test-sequence's options as a host passes them (every default applied), with `keys` given.
std::vector<std::string> sequence_options(const std::string& keys) {
  return {"count=3",
          "keys=" + keys,
          "topic=t",
          "poll_retries=0",
          "ack_retries=0",
          "fatal_poll_at=0",
          "open_error=none",
          "value_size=0",
          "throw_in_create=false",
          "two_config_errors=false"};
}

}  // namespace

// A plugin built against the ABI 1.0 header (frozen in tests/abi/abi-1.0), in plain C, loads into
// today's host, runs, and keeps the 1.0 rules: its passthrough keys that look like passwords are
// hidden by the 1.0 word rule, although 1.1 plugins must declare their secrets.
TEST(AbiGrowth, APluginOfAnOlderMinor_LoadsAndRunsInANewerHost) {
  std::string path = std::string(ABI10_PLUGIN_DIR) + "/pg2kafka-sink-abi10.so";
  auto p = load_plugin_file(path);
  EXPECT_EQ(p->abi_minor(), 0u);
  EXPECT_EQ(p->descriptor().struct_size, P2K_PLUGIN_SIZE_1_0);

  p2k_test::TempDir dir;
  std::string out = (dir.path() / "delivered.log").string();
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence",
      "options": {"count": 7}},
    "sink": {"plugin": ")" + path + R"(", "options": {"output_file": ")" +
                                        out +
                                        R"(", "api_token": "t0k3n",
      "extra": {"sasl.password": "hunter2", "linger": "5"}}}})");
  auto plugins = p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR");
  auto check = p2k_test::run_pg2kafka({"check", "--config", config, "--plugin-dir", plugins});
  ASSERT_EQ(check.exit_code, 0) << check.err;
  EXPECT_NE(check.out.find("api_token = ***"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("extra.sasl.password = ***"), std::string::npos) << check.out;
  EXPECT_NE(check.out.find("extra.linger = 5"), std::string::npos) << check.out;
  EXPECT_EQ(check.out.find("hunter2"), std::string::npos) << check.out;
  auto run = p2k_test::run_pg2kafka({"run", "--once", "--config", config, "--plugin-dir", plugins});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(p2k_test::lines(p2k_test::read_file(out)).size(), 7u);
}

// The entry function answers each host with the newest minor both know, never less than what the
// plugin needs (rule 4).
TEST(AbiGrowth, TheSdkAnswersWithTheNewestMinorBothKnow_ButNotLessThanItNeeds) {
  // stdout needs nothing newer than 1.0.
  auto stdout_path = plugin_path("P2K_PLUGIN_DIR", "pg2kafka-sink-stdout.so");
  EXPECT_EQ(entry_answer(stdout_path, 1, 0)->abi_minor, 0u);
  EXPECT_EQ(entry_answer(stdout_path, 1, P2K_ABI_MINOR)->abi_minor, uint32_t{P2K_ABI_MINOR});
  EXPECT_EQ(entry_answer(stdout_path, 1, P2K_ABI_MINOR + 5)->abi_minor, uint32_t{P2K_ABI_MINOR})
      << "a newer host gets the newest minor the plugin knows";
  EXPECT_EQ(entry_answer(stdout_path, 2, 0)->abi_major, 1u)
      << "another major gets an answer it can refuse by name";
  // test-faulty relies on the host's ordering rule (1.1) and declares secrets with the flag.
  auto faulty = plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-sink-test-faulty.so");
  EXPECT_EQ(entry_answer(faulty, 1, 0)->abi_minor, 1u);
  // test-sequence, a source, needs nothing newer.
  auto sequence = plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-source-test-sequence.so");
  EXPECT_EQ(entry_answer(sequence, 1, 0)->abi_minor, 0u);
}

// A plugin rebuilt against today's header and SDK that needs nothing newer still loads into a
// host of ABI 1.0 and works with its 1.0 p2k_host (which has no option_error).
TEST(AbiGrowth, ANewPluginNeedingNothingNew_LoadsAndRunsInAnOlderHost) {
  auto sink = old_host(plugin_path("P2K_PLUGIN_DIR", "pg2kafka-sink-stdout.so"),
                       {"format=envelope", "stream=stdout"});
  ASSERT_EQ(sink.exit_code, 0) << sink.out << sink.err;
  EXPECT_NE(sink.out.find("loaded stdout, answering ABI 1.0"), std::string::npos) << sink.out;
  EXPECT_NE(sink.out.find(R"({"topic":"old.host","key":"k","value":{"old":true}})"),
            std::string::npos)
      << sink.out;
  EXPECT_NE(sink.out.find("sink reported 3 OK, 0 other"), std::string::npos) << sink.out;

  auto source = old_host(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-source-test-sequence.so"),
                         sequence_options("2"));
  ASSERT_EQ(source.exit_code, 0) << source.out << source.err;
  EXPECT_NE(source.out.find("source returned 3 records"), std::string::npos) << source.out;
}

// In a 1.0 host an SDK ConfigError still names its option, in the error text.
TEST(AbiGrowth, OptionErrorsFallBackToTheErrorText_InAnOlderHost) {
  auto r = old_host(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-source-test-sequence.so"),
                    sequence_options("0"));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("create refused the options: option 'keys': must be at least 1"),
            std::string::npos)
      << r.out;
}

// A plugin that needs more than the host has answers with what it needs, and the older host
// refuses it with a message naming both versions, as pg2kafka 0.1.0 words it.
TEST(AbiGrowth, ANewPluginNeedingMore_IsRefusedByAnOlderHost_NamingBothVersions) {
  auto r = old_host(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-sink-test-faulty.so"));
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.out.find("built for plugin ABI 1.1, newer than this pg2kafka's ABI 1.0"),
            std::string::npos)
      << r.out;
}

TEST(AbiGrowth, RefusesAFlagThatTheAnsweredMinorDoesNotDefine) {
  expect_refused("secret-flag-at-1-0",
                 "option 'token' sets flag 0x2, which plugin ABI 1.0 (the version it answered "
                 "with) does not define");
}

// The SDK gives the host a poll operation only for a sink class that overrides poll: a sink that
// reports from its own threads has none, so the host waits for it without spinning.
TEST(AbiGrowth, TheSdkInstallsPollOnlyForSinksThatOverrideIt) {
  auto poll_of = [](const std::string& path) {
    return load_plugin_file(path)->descriptor().sink->poll;
  };
  EXPECT_EQ(poll_of(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-sink-test-faulty-async.so")),
            nullptr);
  EXPECT_EQ(poll_of(plugin_path("P2K_PLUGIN_DIR", "pg2kafka-sink-stdout.so")), nullptr);
  EXPECT_NE(poll_of(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-sink-test-faulty.so")), nullptr);
}

// Interrupt (1.2): the SDK installs it only for classes that override it, and the host calls it
// only for plugins that answered 1.2 or later, whatever their operations table holds.
TEST(AbiGrowth, TheSdkInstallsInterruptOnlyForClassesThatOverrideIt) {
  auto source_interrupt = [](const std::string& path) {
    return load_plugin_file(path)->descriptor().source->interrupt;
  };
  EXPECT_NE(
      source_interrupt(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-source-test-sequence.so")),
      nullptr);
  EXPECT_EQ(source_interrupt(plugin_path("P2K_PLUGIN_DIR", "pg2kafka-source-generator.so")),
            nullptr);
  EXPECT_EQ(load_plugin_file(plugin_path("P2K_PLUGIN_DIR", "pg2kafka-sink-stdout.so"))
                ->descriptor()
                .sink->interrupt,
            nullptr);
}

TEST(AbiGrowth, TheHostCallsInterruptOnlyForPluginsThatAnsweredItsMinor) {
  pg2kafka::config::ResolvedOptions none;
  SinkInstance at_1_1(load_plugin_file(broken("interrupt-at-1-1")), none);
  EXPECT_FALSE(at_1_1.interruptible());
  EXPECT_EQ(at_1_1.interrupt(), "idle") << "and never called (it would abort)";
  SinkInstance at_1_2(load_plugin_file(broken("interrupt-at-1-2")), none);
  EXPECT_TRUE(at_1_2.interruptible());
  EXPECT_EQ(at_1_2.interrupt(), "idle");
}

// Metrics and health (1.3): the SDK installs them only for classes that override them, the host
// calls them only for plugins that answered 1.3 or later, and it drops every sample that breaks a
// rule of plugin.h while keeping the valid ones.
TEST(AbiGrowth, TheSdkInstallsMetricsHealthAndStatusOnlyForClassesThatOverrideThem) {
  // The handles keep the libraries loaded while their operations tables are read.
  auto sequence_plugin =
      load_plugin_file(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-source-test-sequence.so"));
  const auto* sequence = sequence_plugin->descriptor().source;
  EXPECT_NE(sequence->metrics, nullptr);
  EXPECT_NE(sequence->health, nullptr);
  EXPECT_NE(sequence->status, nullptr);
  auto generator_plugin =
      load_plugin_file(plugin_path("P2K_PLUGIN_DIR", "pg2kafka-source-generator.so"));
  const auto* generator = generator_plugin->descriptor().source;
  EXPECT_EQ(generator->metrics, nullptr);
  EXPECT_EQ(generator->health, nullptr);
  EXPECT_EQ(generator->status, nullptr);
}

TEST(AbiGrowth, TheHostCallsMetricsAndHealthOnlyForPluginsThatAnsweredItsMinor) {
  pg2kafka::config::ResolvedOptions none;
  SinkInstance at_1_2(load_plugin_file(broken("metrics-at-1-2")), none);
  EXPECT_FALSE(at_1_2.has_metrics());
  EXPECT_FALSE(at_1_2.has_health());
  pg2kafka::metrics::Exposition out;
  at_1_2.metrics(out);  // would abort if called
  EXPECT_EQ(out.families(), 0u);
  EXPECT_FALSE(at_1_2.health().has_value());
}

// Parking (1.4): the host calls park and queue only for sources that answered 1.4 or later; the
// SDK installs them only for classes that override them.
TEST(AbiGrowth, TheHostCallsParkAndQueueOnlyForSourcesThatAnsweredItsMinor) {
  pg2kafka::config::ResolvedOptions none;
  auto source_file = [](const std::string& name) {
    return std::string(BROKEN_PLUGIN_DIR) + "/pg2kafka-source-" + name + ".so";
  };
  SourceInstance at_1_3(load_plugin_file(source_file("park-at-1-3")), none);
  EXPECT_FALSE(at_1_3.has_park());
  EXPECT_FALSE(at_1_3.has_queue());
  p2k_record record{};
  record.struct_size = sizeof record;
  EXPECT_EQ(at_1_3.park(record, "x").status, P2K_FATAL) << "refused, never called (it aborts)";
  std::string json;
  EXPECT_EQ(at_1_3.queue("{}", json).status, P2K_FATAL);
  SourceInstance at_1_4(load_plugin_file(source_file("park-at-1-4")), none);
  EXPECT_TRUE(at_1_4.has_park());
  EXPECT_TRUE(at_1_4.park(record, "x").ok());
  ASSERT_TRUE(at_1_4.queue("{}", json).ok());
  EXPECT_EQ(json, "{\"answered\":true}");

  auto sequence_plugin =
      load_plugin_file(plugin_path("P2K_TEST_PLUGIN_DIR", "pg2kafka-source-test-sequence.so"));
  EXPECT_NE(sequence_plugin->descriptor().source->park, nullptr);
  EXPECT_EQ(sequence_plugin->descriptor().source->queue, nullptr);
  auto generator_plugin =
      load_plugin_file(plugin_path("P2K_PLUGIN_DIR", "pg2kafka-source-generator.so"));
  EXPECT_EQ(generator_plugin->descriptor().source->park, nullptr);
  EXPECT_EQ(generator_plugin->descriptor().source->queue, nullptr);
}

// (Every broken plugin is named "broken", whatever its file: its metrics are pg2kafka_broken_*.)
TEST(AbiGrowth, BadMetricSamplesAreDroppedAndValidOnesKept) {
  pg2kafka::config::ResolvedOptions none;
  SinkInstance sink(load_plugin_file(broken("bad-metrics")), none);
  ASSERT_TRUE(sink.has_metrics());
  pg2kafka::metrics::Exposition out;
  sink.metrics(out);
  EXPECT_EQ(out.text(),
            "# HELP pg2kafka_broken_good_gauge help\n"
            "# TYPE pg2kafka_broken_good_gauge gauge\n"
            "pg2kafka_broken_good_gauge{path=\"a\\\"b\\\\c\\nd\"} 2.5\n"
            "# HELP pg2kafka_broken_good_total help\n"
            "# TYPE pg2kafka_broken_good_total counter\n"
            "pg2kafka_broken_good_total 3\n");
  auto health = sink.health();
  ASSERT_TRUE(health.has_value());
  EXPECT_EQ(health->status, P2K_RETRY);
  EXPECT_EQ(health->message, "not today: the destination is down");
}

// Null values (ABI 1.5, plugin.h p2k_record.value): a sink of 1.5 gets them (the stdout sink
// prints null, not ""); a sink built for an older minor never does: the pipeline stops on such a
// record, also when it parks (every later tombstone would meet the same sink, and one set aside
// would let later records of its key overtake it).
TEST(AbiGrowth, ANullValueReachesOnlySinksOf1_5_AnOlderSinkStopsTheRun) {
  auto plugins = p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR");
  p2k_test::TempDir dir;
  auto to_stdout = dir.write("stdout.json", R"({"source": {"plugin": "test-sequence",
      "options": {"count": 3, "null_value_at": 2}},
    "sink": {"plugin": "stdout", "options": {}}})");
  auto printed =
      p2k_test::run_pg2kafka({"run", "--once", "--config", to_stdout, "--plugin-dir", plugins});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  auto lines = p2k_test::lines(printed.out);
  ASSERT_EQ(lines.size(), 3u) << printed.out;
  EXPECT_NE(lines[1].find("\"value\":null"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[0].find("\"value\":null"), std::string::npos) << lines[0];

  std::string old_sink = std::string(ABI10_PLUGIN_DIR) + "/pg2kafka-sink-abi10.so";
  std::string out = (dir.path() / "delivered.log").string();
  std::string parks = (dir.path() / "parked.log").string();
  auto config = [&](const std::string& policy) {
    return dir.write(policy + ".json", R"({"source": {"plugin": "test-sequence",
      "options": {"count": 5, "keys": 5, "null_value_at": 3, "park_log": ")" +
                                           parks + R"("}},
    "sink": {"plugin": ")" + old_sink + R"(", "options": {"output_file": ")" +
                                           out + R"("}},
    "pipeline": {"on_permanent_failure": ")" +
                                           policy + R"("}})");
  };
  auto stopped = p2k_test::run_pg2kafka(
      {"run", "--once", "--config", config("stop"), "--plugin-dir", plugins});
  EXPECT_EQ(stopped.exit_code, 4) << stopped.err;
  EXPECT_NE(stopped.err.find("null value (a tombstone)"), std::string::npos) << stopped.err;
  EXPECT_EQ(p2k_test::read_file(out).find("deliver 3"), std::string::npos);

  EXPECT_NE(stopped.err.find("event evt-3"), std::string::npos) << stopped.err;
  EXPECT_NE(stopped.err.find("ABI 1.0"), std::string::npos) << stopped.err;

  std::filesystem::remove(out);
  auto parking = p2k_test::run_pg2kafka(
      {"run", "--once", "--config", config("park"), "--plugin-dir", plugins});
  EXPECT_EQ(parking.exit_code, 4) << parking.err;
  EXPECT_NE(parking.err.find("null value (a tombstone)"), std::string::npos) << parking.err;
  EXPECT_EQ(p2k_test::read_file(out).find("deliver 3"), std::string::npos);
  EXPECT_EQ(p2k_test::read_file(out).find("deliver 4"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(parks)) << "nothing is parked";
}
