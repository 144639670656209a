// The command line: exit codes, help, and a clear message for every kind of bad input.
#include <pg2kafka/plugin.h>

#include <boost/json.hpp>

#include "e2e_helpers.hpp"

namespace {

std::string plugin_dir() {
  return p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR");
}

p2k_test::CommandResult check(const std::string& json,
                              const std::map<std::string, std::string>& env = {}) {
  p2k_test::TempDir dir;
  auto config = dir.write("pipeline.json", json);
  return p2k_test::run_pg2kafka({"check", "--config", config, "--plugin-dir", plugin_dir()}, env);
}

void expect_in(const std::string& haystack, const std::string& needle) {
  EXPECT_NE(haystack.find(needle), std::string::npos) << "expected '" << needle << "' in:\n"
                                                      << haystack;
}

}  // namespace

TEST(Cli, PrintsVersionAndHelp) {
  auto v = p2k_test::run_pg2kafka({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  expect_in(v.out, "pg2kafka 0.1.0 (plugin ABI 1." + std::to_string(P2K_ABI_MINOR) + ")");
  auto h = p2k_test::run_pg2kafka({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  expect_in(h.out, "Exit codes:");
  auto rh = p2k_test::run_pg2kafka({"run", "--help"});
  EXPECT_EQ(rh.exit_code, 0);
  expect_in(rh.out, "max_in_flight");
  expect_in(rh.out, "--dry-run");
}

TEST(Cli, ExitsWith2_OnUnknownCommandOrFlag) {
  auto r = p2k_test::run_pg2kafka({"rn"});
  EXPECT_EQ(r.exit_code, 2);
  expect_in(r.err, "unknown command 'rn'; did you mean 'run'?");
  auto f = p2k_test::run_pg2kafka({"run", "--onse"});
  EXPECT_EQ(f.exit_code, 2);
  expect_in(f.err, "onse");
  EXPECT_EQ(p2k_test::run_pg2kafka({}).exit_code, 2);
}

TEST(Cli, ExitsWith2_WhenPipelineFileIsMissing) {
  auto r = p2k_test::run_pg2kafka({"check", "--config", "/nonexistent/p.json"});
  EXPECT_EQ(r.exit_code, 2);
  expect_in(r.err, "/nonexistent/p.json: cannot read the pipeline file");
}

TEST(Cli, ReportsLineAndColumn_ForMalformedJson) {
  auto r = check("{\n  \"source\": {\"plugin\": \"test-sequence\"}\n  \"sink\": {}\n}");
  EXPECT_EQ(r.exit_code, 2);
  expect_in(r.err, "pipeline.json:3:3: invalid JSON");
}

TEST(Cli, ListsAvailablePluginsAndSuggests_ForUnknownPlugin) {
  auto r = check(R"({"source": {"plugin": "test-sequense"}, "sink": {"plugin": "stdout"}})");
  EXPECT_EQ(r.exit_code, 3);
  expect_in(r.err, "unknown source plugin 'test-sequense' (did you mean 'test-sequence'?)");
  expect_in(r.err, "available source plugins: test-sequence");
}

TEST(Cli, ExitsWith3_WhenPluginFileIsMissing) {
  auto r = check(
      R"({"source": {"plugin": "/nowhere/pg2kafka-source-x.so"}, "sink": {"plugin": "stdout"}})");
  EXPECT_EQ(r.exit_code, 3);
  expect_in(r.err, "cannot use plugin file '/nowhere/pg2kafka-source-x.so': cannot access it");
}

TEST(Cli, ExitsWith3_WhenASinkIsUsedAsSource) {
  auto r = check(R"({"source": {"plugin": ")" + plugin_dir() +
                 R"(/pg2kafka-sink-test-faulty.so"}, "sink": {"plugin": "stdout"}})");
  EXPECT_EQ(r.exit_code, 3);
  expect_in(r.err, "is a sink, but the source section needs a source");
}

TEST(Cli, ReportsEveryConfigurationErrorAtOnce) {
  auto r = check(R"({
  "source": {"plugin": "test-sequence", "options": {"cout": 5, "keys": "three", "topic": "${P2K_UNSET_VAR}"}},
  "sink": {"plugin": "test-faulty", "options": {"reverse": "sometimes"}},
  "pipeline": {"batch_sise": 10}
})",
                 {{"-P2K_UNSET_VAR", ""}});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  expect_in(
      r.err,
      "pipeline.json:2:53: source.options.cout: unknown option 'cout': did you mean 'count'?");
  expect_in(r.err, "source.options.keys: expected a whole number, found 'three'");
  expect_in(r.err, "source.options.topic: environment variable P2K_UNSET_VAR is not set");
  expect_in(r.err, "sink.options.reverse: expected true or false");
  expect_in(r.err, "sink.options: required option 'output_file' is missing");
  expect_in(r.err, "pipeline.batch_sise: unknown option 'batch_sise': did you mean 'batch_size'?");
}

// A plugin's own option errors (sdk::ConfigError naming the option) point at the file and line
// where the user set that option, like the host's.
TEST(Cli, PointsAtTheLine_OfAnOptionThePluginRejects) {
  auto r = check(R"({
  "source": {"plugin": "test-sequence", "options": {
    "count": 3,
    "keys": 0}},
  "sink": {"plugin": "stdout"}
})");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  expect_in(r.err, "pipeline.json:4:5: source.options.keys: must be at least 1");

  auto two = check(R"({
  "source": {"plugin": "test-sequence", "options": {"two_config_errors": true}},
  "sink": {"plugin": "stdout"}
})");
  EXPECT_EQ(two.exit_code, 2) << two.err;
  expect_in(two.err, "configuration errors:");
  // An option left at its default points at the plugin's options.
  expect_in(two.err,
            "pipeline.json:2:41: source.options.topic: is not a topic this source may use");
  expect_in(two.err,
            "pipeline.json:2:41: source.options: plugin 'test-sequence': the options do not work "
            "together");
}

TEST(Cli, CheckPrintsResolvedOptions_WithSecretsHidden) {
  auto r = check(R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": "test-faulty", "options": {"output_file": "/tmp/x", "secret_token": "hunter2",
             "extra": {"sasl.password": "swordfish", "linger": 5, "api_key": "not-declared"}}}})");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_in(r.out, "configuration OK");
  expect_in(r.out, "secret_token = ***");
  expect_in(r.out, "extra.sasl.password = ***");
  expect_in(r.out, "extra.linger = 5");
  // Since ABI 1.1 a key is secret by declaration, never by a word in its name.
  expect_in(r.out, "extra.api_key = not-declared");
  expect_in(r.out, "count = 10  (default)");
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos);
  EXPECT_EQ(r.out.find("swordfish"), std::string::npos);
}

// P2K_OPT_IS_SECRET (ABI 1.1) works on every type: a list, and a map of passthrough keys (here
// HTTP headers), are never printed, not even in an error.
TEST(Cli, HidesSecretListsAndMaps) {
  auto r = check(R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": "test-faulty", "options": {"output_file": "/tmp/x",
             "secret_tokens": ["t0k3n-1", "t0k3n-2"],
             "headers": {"Authorization": "Bearer s3cr3t", "X-Api-Key": "k3y"}}}})");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_in(r.out, "secret_tokens = ***");
  expect_in(r.out, "headers.Authorization = ***");
  expect_in(r.out, "headers.X-Api-Key = ***");
  for (const char* secret : {"t0k3n", "s3cr3t", "k3y"})
    EXPECT_EQ(r.out.find(secret), std::string::npos) << secret << " printed:\n" << r.out;
  auto bad = check(R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": "test-faulty", "options": {"output_file": "/tmp/x",
             "secret_tokens": ["a,b-s3cr3t"]}}})");
  EXPECT_EQ(bad.exit_code, 2);
  expect_in(bad.err, "sink.options.secret_tokens: a list element contains a comma");
  EXPECT_EQ(bad.err.find("s3cr3t"), std::string::npos) << bad.err;
  auto describe = p2k_test::run_pg2kafka({"plugins", "describe", "test-faulty"},
                                         {{"PG2KAFKA_PLUGIN_PATH", plugin_dir()}});
  expect_in(describe.out, "secret_tokens  (list, secret, unset)");
  expect_in(describe.out, "headers.*  (prefix, secret, passthrough)");
}

TEST(Cli, CheckCreatesButNeverOpensPlugins) {
  // open_error=fatal would fail `run`; `check` never opens, so it passes.
  auto r = check(R"({"source": {"plugin": "test-sequence", "options": {"open_error": "fatal"}},
    "sink": {"plugin": "stdout"}})");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Cli, ListsPlugins_FromPluginPathEnvironment) {
  auto r = p2k_test::run_pg2kafka({"plugins", "list"}, {{"PG2KAFKA_PLUGIN_PATH", plugin_dir()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_in(r.out, "source\ttest-sequence\t1.0.0");
  expect_in(r.out, "sink\ttest-faulty\t1.0.0");
  expect_in(r.out, "sink\tstdout\t0.1.0");
}

TEST(Cli, DescribesPluginAsTextJsonAndMarkdown) {
  auto text = p2k_test::run_pg2kafka({"plugins", "describe", "stdout"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  // The stdout sink needs nothing newer than ABI 1.0; it answers with the newest both know.
  expect_in(text.out, "stdout 0.1.0 (sink, ABI 1." + std::to_string(P2K_ABI_MINOR) + ")");
  expect_in(text.out, "format  (enum(envelope|value), \"envelope\")");

  auto json = p2k_test::run_pg2kafka({"plugins", "describe", "test-faulty", "--format", "json"},
                                     {{"PG2KAFKA_PLUGIN_PATH", plugin_dir()}});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto v = boost::json::parse(json.out).as_object();
  EXPECT_EQ(v.at("name").as_string(), "test-faulty");
  EXPECT_EQ(v.at("kind").as_string(), "sink");
  bool found_required = false;
  for (const auto& o : v.at("options").as_array())
    if (o.as_object().at("name").as_string() == "output_file")
      found_required = o.as_object().at("required").as_bool();
  EXPECT_TRUE(found_required);

  auto md = p2k_test::run_pg2kafka({"plugins", "describe", "stdout", "--format", "markdown"});
  ASSERT_EQ(md.exit_code, 0);
  expect_in(md.out, "| Option | Type | Default | Description |");
  expect_in(md.out, "| `format` | enum(envelope\\|value) |");
}

TEST(Cli, RejectsUnknownPluginOrFormat_InDescribe) {
  auto r = p2k_test::run_pg2kafka({"plugins", "describe", "nope"});
  EXPECT_EQ(r.exit_code, 3);
  expect_in(r.err, "no plugin named 'nope' (available: ");
  auto f = p2k_test::run_pg2kafka({"plugins", "describe", "stdout", "--format", "yaml"});
  EXPECT_EQ(f.exit_code, 2);
  expect_in(f.err, "unknown format 'yaml'");
}

// `check` refuses what `run` would ignore: an unknown --log-level is an error for both.
TEST(Cli, RefusesAnUnknownLogLevel_InCheckAndRun) {
  p2k_test::TempDir dir;
  auto config = dir.write("pipeline.json", R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": "test-faulty", "options": {"output_file": ")" +
                                               (dir.path() / "out").string() + R"("}}})");
  for (const char* command : {"check", "run"}) {
    auto r = p2k_test::run_pg2kafka({command, "--config", config, "--plugin-dir", plugin_dir(),
                                     "--log-level", "verbose", "--once"});
    if (std::string(command) == "check")  // check has no --once
      r = p2k_test::run_pg2kafka(
          {command, "--config", config, "--plugin-dir", plugin_dir(), "--log-level", "verbose"});
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
    expect_in(r.err, "unknown --log-level 'verbose': use error, warn, info or debug");
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out")) << "run delivered nothing";
  auto huge = p2k_test::run_pg2kafka({"check", "--config", config, "--plugin-dir", plugin_dir(),
                                      "--log-level", std::string(100'000, 'x')});
  EXPECT_EQ(huge.exit_code, 2);
  EXPECT_LT(huge.err.size(), 300u) << "the echo is bounded";
}

// A second "sink" once replaced the first: `check` passed and `run` printed the events to stdout
// and acknowledged them, so nothing reached Kafka. Now both refuse the file, naming both places.
TEST(Cli, RefusesADuplicatedSection_InCheckAndRun) {
  p2k_test::TempDir dir;
  std::string out = (dir.path() / "out").string();
  auto config = dir.write("pipeline.json", R"({
  "source": {"plugin": "test-sequence"},
  "sink": {"plugin": "test-faulty", "options": {"output_file": ")" +
                                               out + R"("}},
  "sink": {"plugin": "stdout"}
})");
  for (std::vector<std::string> args :
       {std::vector<std::string>{"check"}, std::vector<std::string>{"run", "--once"}}) {
    args.insert(args.end(), {"--config", config, "--plugin-dir", plugin_dir()});
    auto r = p2k_test::run_pg2kafka(args);
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    expect_in(r.err, "pipeline.json:4:3: duplicate key \"sink\": it is also set at " + config +
                         ":3:3; remove one");
    EXPECT_EQ(r.out.find("test.topic"), std::string::npos) << "nothing printed: " << r.out;
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(Cli, ExplainsADirectoryGivenAsThePipelineFile_AndAcceptsAByteOrderMark) {
  p2k_test::TempDir dir;
  auto r = p2k_test::run_pg2kafka({"check", "--config", dir.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  expect_in(r.err, "is a directory, not a pipeline file");
  auto bom = check(
      "\xEF\xBB\xBF"
      R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": "test-faulty", "options": {"output_file": "/dev/null"}}})");
  EXPECT_EQ(bom.exit_code, 0) << bom.err;
}

TEST(Cli, BoundsTheEchoOfAHugeUnknownOption) {
  std::string name(10'000'000, 'x');
  auto r = check(R"({"source": {"plugin": "test-sequence", "options": {")" + name +
                 R"(": 1}}, "sink": {"plugin": "test-faulty", "options": {"output_file": "x"}}})");
  EXPECT_EQ(r.exit_code, 2);
  expect_in(r.err, "unknown option");
  EXPECT_LT(r.err.size(), 2000u) << "an error is a few lines, not the 20 MB it once was";
}

// What pg-outbox's run would refuse (or never survive) is refused by check, connecting nowhere.
TEST(Cli, CheckRefusesWhatThePgOutboxSourceWouldFailOnAtRun) {
  auto pg = [](const std::string& options) {
    return check(R"({"source": {"plugin": "pg-outbox", "options": {)" + options + R"(}},
      "sink": {"plugin": "test-faulty", "options": {"output_file": "/dev/null"}}})");
  };
  auto retention = pg(R"("connection": "host=127.0.0.1 dbname=x", "retention": "99999999999h")");
  EXPECT_EQ(retention.exit_code, 2) << retention.err;
  expect_in(retention.err, "retention");
  auto empty = pg(R"("connection": "")");
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  expect_in(empty.err, "connection");
  auto app = pg(R"("connection": "host=127.0.0.1 dbname=x", "application_name": ")" +
                std::string(100, 'a') + "\"");
  EXPECT_EQ(app.exit_code, 2) << app.err;
  expect_in(app.err, "application_name");
}

// Every echo of what was typed is bounded, on the command line too.
TEST(Cli, BoundsTheEchoOfAHugeCommandPluginNameOrFlag) {
  std::string huge(1'000'000, 'x');
  for (std::vector<std::string> args :
       {std::vector<std::string>{huge}, std::vector<std::string>{"plugins", "describe", huge},
        std::vector<std::string>{"check", "--" + huge}}) {
    auto r = p2k_test::run_pg2kafka(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_LT(r.err.size(), 1000u) << r.err.substr(0, 200);
  }
  p2k_test::TempDir dir;
  auto r = check(R"({"source": {"plugin": ")" + std::string(3000, 'y') +
                 R"("}, "sink": {"plugin": "test-faulty", "options": {"output_file": "x"}}})");
  EXPECT_EQ(r.exit_code, 3) << r.err.substr(0, 300);
  EXPECT_LT(r.err.size(), 2000u) << r.err.substr(0, 300);
}
