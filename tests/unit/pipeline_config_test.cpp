#include "config/pipeline_config.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace pg2kafka::config;

namespace {
EnvLookup env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}
}  // namespace

TEST(PipelineConfig, ReadsSectionsAndHostSettings) {
  Diagnostics d;
  auto c = PipelineConfig::parse(R"({
    "source": {"plugin": "pg-outbox", "options": {"a": 1}},
    "sink": {"plugin": "${SINK:-kafka}"},
    "pipeline": {"batch_size": 50, "retry": {"initial_backoff": "1s", "max_backoff": "1m"}},
  })",
                                 "p.json", env({}), false, d);
  ASSERT_TRUE(d.empty()) << d.format();
  EXPECT_EQ(c.source().plugin, "pg-outbox");
  EXPECT_EQ(c.sink().plugin, "kafka");
  ASSERT_NE(c.source().options, nullptr);
  EXPECT_EQ(c.host().batch_size, 50u);
  EXPECT_EQ(c.host().retry_initial_backoff.count(), 1000);
  EXPECT_EQ(c.host().retry_max_backoff.count(), 60000);
  EXPECT_EQ(c.host().max_in_flight, 10000u);
  EXPECT_EQ(c.host().max_in_flight_bytes, 16u << 20);
  EXPECT_FALSE(c.host().dry_run);

  auto sized = PipelineConfig::parse(
      R"({"source": {"plugin": "s"}, "sink": {"plugin": "k"},
          "pipeline": {"max_in_flight_bytes": "4MiB"}})",
      "p.json", env({}), false, d);
  ASSERT_TRUE(d.empty()) << d.format();
  EXPECT_EQ(sized.host().max_in_flight_bytes, 4u << 20);
}

TEST(PipelineConfig, ReportsAllStructuralErrorsAtOnce) {
  Diagnostics d;
  PipelineConfig::parse(R"({
    "sorce": {},
    "sink": {"plugin": "kafka", "option": {}},
    "pipeline": {"batch_size": "many", "retry": {"initial_backoff": "1m", "max_backoff": "1s"}}
  })",
                        "p.json", env({}), false, d);
  auto text = d.format();
  EXPECT_NE(text.find("p.json:2:5: sorce: unknown section 'sorce': did you mean 'source'?"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("p.json:3:33: sink.option: unknown key 'option': did you mean 'options'?"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pipeline.batch_size: expected a whole number"), std::string::npos) << text;
  EXPECT_NE(text.find("max_backoff must not be shorter"), std::string::npos) << text;
  EXPECT_NE(text.find("missing \"source\" section"), std::string::npos) << text;
  EXPECT_EQ(d.size(), 5u) << text;
}

TEST(PipelineConfig, DryRunIgnoresSinkSection_EvenWithUnsetVariables) {
  Diagnostics d;
  auto c = PipelineConfig::parse(R"({
    "source": {"plugin": "pg-outbox"},
    "sink": {"plugin": "${NOT_SET}"},
    "pipeline": {"dry_run": "${DRY_RUN:-false}"}
  })",
                                 "p.json", env({{"DRY_RUN", "true"}}), false, d);
  EXPECT_TRUE(d.empty()) << d.format();
  EXPECT_TRUE(c.host().dry_run);
}

TEST(PipelineConfig, RequiresSink_WhenNotDryRun) {
  Diagnostics d;
  PipelineConfig::parse(R"({"source": {"plugin": "x"}})", "p.json", env({}), false, d);
  EXPECT_NE(d.format().find("missing \"sink\" section"), std::string::npos) << d.format();
  Diagnostics d2;
  PipelineConfig::parse(R"({"source": {"plugin": "x"}})", "p.json", env({}), true, d2);
  EXPECT_TRUE(d2.empty()) << d2.format();
}

TEST(PipelineConfig, RejectsNonObjectRoot) {
  Diagnostics d;
  PipelineConfig::parse("[1]", "p.json", env({}), false, d);
  EXPECT_EQ(d.size(), 1u);
}

// A hostile tester's file: the second "sink" replaced the first, `check` passed, and `run` printed
// events to stdout and acknowledged them.
TEST(PipelineConfig, RefusesASectionGivenTwice) {
  Diagnostics d;
  try {
    PipelineConfig::parse(R"({
  "sink": {"plugin": "kafka", "options": {"brokers": "k:9092"}},
  "source": {"plugin": "pg-outbox"},
  "sink": {"plugin": "stdout"}
})",
                          "p.json", env({}), false, d);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "p.json:4:3: duplicate key \"sink\": it is also set at p.json:2:3; remove one");
  }
}

TEST(PipelineConfig, Load_NamesADirectory) {
  Diagnostics d;
  try {
    PipelineConfig::load("/tmp", env({}), false, d);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "/tmp: is a directory, not a pipeline file");
  }
}

TEST(PipelineConfig, RefusesAHostSettingGivenNestedAndDotted) {
  Diagnostics d;
  PipelineConfig::parse(R"({"source": {"plugin": "s"}, "sink": {"plugin": "k"},
  "pipeline": {"retry": {"max_backoff": "1s"}, "retry.max_backoff": "2s"}})",
                        "p.json", env({}), false, d);
  ASSERT_EQ(d.size(), 1u) << d.format();
  EXPECT_NE(d.format().find("p.json:2:48: pipeline.retry.max_backoff: duplicate option "
                            "'retry.max_backoff'"),
            std::string::npos)
      << d.format();
}

TEST(PipelineConfig, BoundsEchoes_OfUnknownSectionsAndKeys) {
  std::string huge(10'000'000, 'z');
  Diagnostics d;
  PipelineConfig::parse(R"({"source": {"plugin": "s", ")" + huge +
                            R"(": 1}, "sink": {"plugin": "k"},
  ")" + huge + R"(\n": {}})",
                        "p.json", env({}), false, d);
  auto text = d.format();
  ASSERT_EQ(d.size(), 2u) << text.substr(0, 1000);
  EXPECT_LT(text.size(), 1000u) << text.substr(0, 1000);
  EXPECT_NE(text.find("unknown section 'zzz"), std::string::npos) << text;
  EXPECT_NE(text.find("…(10000001 bytes)"), std::string::npos) << text;
}

TEST(PipelineConfig, RefusesPluginNamesThatCannotNameAFile) {
  Diagnostics d;
  PipelineConfig::parse(R"({"source": {"plugin": "pg-outbox\n"}, "sink": {"plugin": ")" +
                            std::string(5000, 'k') + R"("}})",
                        "p.json", env({}), false, d);
  auto text = d.format();
  ASSERT_EQ(d.size(), 2u) << text;
  EXPECT_NE(text.find("source.plugin: \"plugin\" 'pg-outbox\\n' holds a control character"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sink.plugin: \"plugin\" is 5000 bytes long: a plugin name or path is at "
                      "most 4096 bytes"),
            std::string::npos)
      << text;
}
