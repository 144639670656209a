#include "config/option_values.hpp"

#include <pg2kafka/sdk/plugin.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "config/json_document.hpp"

using namespace pg2kafka::config;
using pg2kafka::sdk::option;

namespace {

const char* const kModes[] = {"delete", "keep", nullptr};
const p2k_option kTable[] = {
    option("connection", P2K_OPT_SECRET, nullptr, "Where to connect.", P2K_OPT_REQUIRED),
    option("batch_size", P2K_OPT_INT, "1000", "Rows per fetch.", 0, nullptr, 1, 100000),
    option("notify", P2K_OPT_BOOL, "true", "Listen."),
    option("poll_interval", P2K_OPT_DURATION, "1s", "Poll."),
    option("max_message", P2K_OPT_SIZE, "1MiB", "Size."),
    option("acknowledged", P2K_OPT_ENUM, "delete", "Mode.", 0, kModes),
    option("brokers", P2K_OPT_LIST, nullptr, "Brokers."),
    option("rdkafka.", P2K_OPT_PREFIX, nullptr, "Passthrough."),
};

EnvLookup no_env() {
  return [](const std::string&) { return std::optional<std::string>(); };
}

struct Result {
  ResolvedOptions values;
  Diagnostics diagnostics;
};

Result resolve(const std::string& json) {
  auto doc = JsonDocument::parse(json, "t.json");
  Result r;
  r.values =
      resolve_options(kTable, &doc.root(), {"source", "options"}, nullptr, no_env(), r.diagnostics);
  return r;
}

}  // namespace

TEST(OptionValues, AppliesDefaultsAndNormalises) {
  auto r = resolve(R"({"connection": "postgres://u:pw@h/db", "poll_interval": "250ms",
                       "max_message": "64KiB", "notify": "off", "brokers": ["a:1", " b:2 "]})");
  ASSERT_TRUE(r.diagnostics.empty()) << r.diagnostics.format();
  EXPECT_EQ(r.values.get("batch_size"), "1000");
  EXPECT_TRUE(r.values.find("batch_size")->from_default);
  EXPECT_EQ(r.values.get("poll_interval"), "250");
  EXPECT_EQ(r.values.get("max_message"), "65536");
  EXPECT_EQ(r.values.get("notify"), "false");
  EXPECT_EQ(r.values.get("acknowledged"), "delete");
  EXPECT_EQ(r.values.get("brokers"), "a:1,b:2");
  EXPECT_TRUE(r.values.find("connection")->secret);
}

TEST(OptionValues, ReportsEveryError_WithPathAndSuggestion) {
  auto r = resolve(R"({"batchsize": 5, "notify": "maybe", "poll_interval": "5 parsecs",
                       "acknowledged": "kep", "batch_size": 0})");
  auto text = r.diagnostics.format();
  EXPECT_EQ(r.diagnostics.size(), 6u) << text;
  EXPECT_NE(
      text.find("source.options.batchsize: unknown option 'batchsize': did you mean 'batch_size'?"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("source.options.notify: expected true or false"), std::string::npos) << text;
  EXPECT_NE(text.find("source.options.poll_interval: expected a duration"), std::string::npos)
      << text;
  EXPECT_NE(text.find("did you mean 'keep'?"), std::string::npos) << text;
  EXPECT_NE(text.find("out of range: allowed 1 to 100000"), std::string::npos) << text;
  EXPECT_NE(text.find("required option 'connection' is missing"), std::string::npos) << text;
}

TEST(OptionValues, PassesPrefixedKeysThrough_AndFlattensNestedObjects) {
  auto r = resolve(R"({"connection": "x", "rdkafka": {"linger.ms": 5, "sasl.password": "hunter2"},
                       "rdkafka.acks": "all"})");
  ASSERT_TRUE(r.diagnostics.empty()) << r.diagnostics.format();
  EXPECT_EQ(r.values.get("rdkafka.linger.ms"), "5");
  EXPECT_EQ(r.values.get("rdkafka.acks"), "all");
  EXPECT_EQ(r.values.get("rdkafka.sasl.password"), "hunter2");
  EXPECT_FALSE(r.values.find("rdkafka.linger.ms")->secret);
}

// ABI 1.1: secrets are declared, never guessed from a key's name.
TEST(OptionValues, SecretsAreDeclared_AnyTypeAndSinglePassthroughKeys) {
  const p2k_option table[] = {
      option("brokers", P2K_OPT_LIST, nullptr, "Brokers.", P2K_OPT_IS_SECRET),
      option("headers.", P2K_OPT_PREFIX, nullptr, "A secret map.", P2K_OPT_IS_SECRET),
      option("rdkafka.sasl.password", P2K_OPT_STRING, nullptr, "Declared.", P2K_OPT_IS_SECRET),
      option("rdkafka.", P2K_OPT_PREFIX, nullptr, "Passthrough."),
      option("rdkafka.linger.ms", P2K_OPT_INT, "5", "Typed passthrough key."),
  };
  auto doc = JsonDocument::parse(R"({"brokers": ["a:1"], "headers": {"Authorization": "Bearer x"},
      "rdkafka": {"sasl.password": "hunter2", "api.token": "t0k3n", "linger.ms": "nope"}})",
                                 "t.json");
  Diagnostics d;
  auto v = resolve_options(table, &doc.root(), {"sink", "options"}, &doc, no_env(), d);
  ASSERT_EQ(d.size(), 1u) << d.format();
  EXPECT_NE(d.format().find("sink.options.rdkafka.linger.ms: expected a whole number"),
            std::string::npos)
      << "an exact name under a prefix wins over the prefix: " << d.format();
  EXPECT_TRUE(v.find("brokers")->secret);
  EXPECT_TRUE(v.find("headers.Authorization")->secret);
  EXPECT_TRUE(v.find("rdkafka.sasl.password")->secret);
  EXPECT_FALSE(v.find("rdkafka.api.token")->secret) << "not declared: no word list since 1.1";
  // A table of ABI 1.0 keeps the 1.0 rule for passthrough keys.
  Diagnostics d0;
  auto v0 = resolve_options(table, &doc.root(), {"sink", "options"}, &doc, no_env(), d0, 0);
  EXPECT_TRUE(v0.find("rdkafka.api.token")->secret);
}

TEST(OptionValues, LocatesEachValue_ForPluginErrorsAboutOptions) {
  auto doc = JsonDocument::parse("{\"sink\": {\"options\": {\n  \"batch_size\": 5}}}", "p.json");
  Diagnostics d;
  auto v = resolve_options(kTable, &doc.root().as_object().at("sink").as_object().at("options"),
                           {"sink", "options"}, &doc, no_env(), d);
  EXPECT_EQ(v.diagnostic("batch_size", "too small").format(),
            "p.json:2:3: sink.options.batch_size: too small");
  EXPECT_EQ(v.diagnostic("notify", "no").format(), "p.json:1:11: sink.options.notify: no")
      << "a default points at the options object";
}

TEST(OptionValues, NeverPrintsSecretValue_InErrors) {
  auto doc = JsonDocument::parse(R"({"connection": 12345678})", "t.json");
  Diagnostics d;
  resolve_options(kTable, &doc.root(), {}, nullptr, no_env(), d);
  EXPECT_EQ(d.size(), 1u);
  EXPECT_EQ(d.format().find("12345678"), std::string::npos) << d.format();
}

TEST(OptionValues, RejectsWrongTypes) {
  auto r = resolve(R"({"connection": "x", "batch_size": "12abc", "brokers": [[1], 2],
                       "notify": [true]})");
  EXPECT_EQ(r.diagnostics.size(), 3u) << r.diagnostics.format();
}

TEST(OptionValues, RejectsNonObjectOptions) {
  auto r = resolve(R"(["connection"])");
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_NE(r.diagnostics.format().find("expected an object of options"), std::string::npos);
}

TEST(OptionValues, ParsesDurationsAndSizes) {
  EXPECT_EQ(parse_duration_ms("250ms"), 250);
  EXPECT_EQ(parse_duration_ms("1.5s"), 1500);
  EXPECT_EQ(parse_duration_ms("2m"), 120000);
  EXPECT_EQ(parse_duration_ms("7d"), 7 * 86400000LL);
  EXPECT_EQ(parse_duration_ms("42"), 42);
  EXPECT_FALSE(parse_duration_ms("1.5ms"));
  EXPECT_FALSE(parse_duration_ms("-1s"));
  EXPECT_FALSE(parse_duration_ms("s"));
  EXPECT_EQ(parse_size_bytes("1MiB"), 1048576);
  EXPECT_EQ(parse_size_bytes("1MB"), 1000000);
  EXPECT_EQ(parse_size_bytes("512"), 512);
  EXPECT_FALSE(parse_size_bytes("1 parsec"));
}

namespace {

// Options given as {"sink": {"options": <json>}}, the JSON starting on the file's first line.
Result resolve_located(const std::string& json, std::span<const p2k_option> table = kTable) {
  auto doc = JsonDocument::parse("{\"sink\": {\"options\": " + json + "}}", "p.json");
  Result r;
  r.values = resolve_options(table, &doc.root().at("sink").at("options"), {"sink", "options"}, &doc,
                             no_env(), r.diagnostics);
  return r;
}

}  // namespace

// The JSON has no duplicate key; the options do: a nested key also given dotted.
TEST(OptionValues, RefusesAnOptionSetTwice_NestedAndDotted) {
  const p2k_option table[] = {
      option("retry.max_backoff", P2K_OPT_DURATION, "30s", "Backoff."),
      option("rdkafka.", P2K_OPT_PREFIX, nullptr, "Passthrough."),
  };
  auto r = resolve_located(R"({"retry": {"max_backoff": "1s"},
  "retry.max_backoff": "2s",
  "rdkafka": {"linger.ms": 5}, "rdkafka.linger.ms": 6, "rdkafka.linger": {"ms": 7}})",
                           table);
  auto text = r.diagnostics.format();
  ASSERT_EQ(r.diagnostics.size(), 3u) << text;
  EXPECT_NE(text.find("p.json:2:3: sink.options.retry.max_backoff: duplicate option "
                      "'retry.max_backoff': it is also set at p.json:1:33 as \"retry\": "
                      "{\"max_backoff\": ...}; remove one"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("sink.options.rdkafka.linger.ms: duplicate option 'rdkafka.linger.ms': it "
                      "is also set at p.json:3:15 as \"rdkafka\": {\"linger.ms\": ...}"),
            std::string::npos)
      << text;
  // The first one is used, once.
  size_t count = 0;
  for (const auto& v : r.values.values()) count += v.key == "retry.max_backoff";
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(r.values.get("retry.max_backoff"), "1000");
}

TEST(OptionValues, BoundsEveryEcho_OfAHugeOrControlCharacterKeyOrValue) {
  std::string huge(10'000'000, 'x');
  auto r = resolve("{\"" + huge + "\": 1, \"acknowledged\": \"" + huge +
                   "\", \"connection\": \"x\", \"batch_size\": \"" + huge +
                   "\", \"notify\": \"\\u001b[31mred\\n\"}");
  auto text = r.diagnostics.format();
  ASSERT_EQ(r.diagnostics.size(), 4u) << text.substr(0, 2000);
  EXPECT_LT(text.size(), 2000u) << text.substr(0, 2000);
  EXPECT_NE(text.find("…(10000000 bytes)"), std::string::npos) << text;
  EXPECT_NE(text.find("found '\\x1b[31mred\\n'"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << "control characters are escaped";
}

TEST(OptionValues, RefusesValuesThatOverflow_WithARangeError) {
  const p2k_option table[] = {
      option("free", P2K_OPT_DURATION, nullptr, "No bounds."),
      option("size", P2K_OPT_SIZE, nullptr, "No bounds."),
      option("count", P2K_OPT_INT, nullptr, "No bounds."),
      option("retention", P2K_OPT_DURATION, nullptr, "Bounded.", 0, nullptr, 1,
             3650LL * 86'400'000),
      option("max_bytes", P2K_OPT_SIZE, nullptr, "Bounded.", 0, nullptr, 1, INT64_C(1) << 40),
  };
  auto r = resolve_located(R"({"free": "99999999999999999999h", "size": "9999999999999GiB",
      "count": "99999999999999999999", "retention": "1)" +
                               std::string(400, '0') + R"(h", "max_bytes": "2048GiB"})",
                           table);
  auto text = r.diagnostics.format();
  EXPECT_EQ(r.diagnostics.size(), 5u) << text;
  EXPECT_NE(text.find("'99999999999999999999h' is too large: a duration is at most "
                      "9223372036854775807ms"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("'9999999999999GiB' is too large: a size is at most"), std::string::npos)
      << text;
  EXPECT_NE(text.find("'99999999999999999999' is too large: a whole number is at most"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("is out of range: allowed 1ms to 3650d"), std::string::npos) << text;
  EXPECT_NE(text.find("'2048GiB' is out of range: allowed 1B to 1024GiB"), std::string::npos)
      << text;

  // JSON numbers too large for int64 are doubles: the same errors, never a wrapped value.
  auto n = resolve_located(
      R"({"free": 1e300, "count": 99999999999999999999, "size": -5, "max_bytes": 1e400})", table);
  EXPECT_EQ(n.diagnostics.size(), 4u) << n.diagnostics.format();
  EXPECT_NE(n.diagnostics.format().find("max_bytes: the number is too large"), std::string::npos)
      << n.diagnostics.format();
  EXPECT_NE(n.diagnostics.format().find("'-5' is negative: a size is 0 or more"), std::string::npos)
      << n.diagnostics.format();
  EXPECT_NE(resolve_located(R"({"count": 1.5})", table).diagnostics.format().find("found '1.5'"),
            std::string::npos);
}

TEST(OptionValues, ParsesDurationsAndSizes_ExactlyUpToTheInt64Limit) {
  EXPECT_EQ(parse_duration_ms("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(parse_duration_ms("9223372036854775808"));
  EXPECT_FALSE(parse_duration_ms("106751991168d"));
  EXPECT_EQ(parse_duration_ms("106751991167d"), 106751991167LL * 86'400'000);
  EXPECT_EQ(parse_duration_ms("9007199254740993"), 9007199254740993LL) << "no double rounding";
  EXPECT_EQ(parse_duration_ms(".5s"), 500);
  EXPECT_EQ(parse_duration_ms("0.001s"), 1);
  EXPECT_FALSE(parse_duration_ms("0.0001s"));
  EXPECT_FALSE(parse_duration_ms("5."));
  EXPECT_FALSE(parse_duration_ms("1" + std::string(400, '0')));
  EXPECT_EQ(parse_size_bytes("1.5KiB"), 1536);
  EXPECT_EQ(parse_size_bytes("8589934591GiB"), 8589934591LL << 30);
  EXPECT_FALSE(parse_size_bytes("8589934592GiB"));
}

TEST(OptionValues, RefusesNulCharacters_ThatPluginsWouldNeverSee) {
  const p2k_option table[] = {
      option("topic", P2K_OPT_STRING, nullptr, "Topic."),
      option("rdkafka.", P2K_OPT_PREFIX, nullptr, "Passthrough."),
  };
  auto r = resolve_located(R"({"topic": "orders\u0000.test", "rdkafka.a\u0000b": 1})", table);
  auto text = r.diagnostics.format();
  EXPECT_EQ(r.diagnostics.size(), 2u) << text;
  EXPECT_NE(text.find("sink.options.topic: the value holds a NUL character"), std::string::npos)
      << text;
  EXPECT_NE(text.find("the option name holds a NUL character"), std::string::npos) << text;
}
