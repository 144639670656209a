#include "config/interpolation.hpp"

#include <gtest/gtest.h>

#include <map>

using pg2kafka::config::interpolate;

namespace {
pg2kafka::config::EnvLookup env(std::map<std::string, std::string> vars) {
  return [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}
}  // namespace

TEST(Interpolation, ReplacesSetVariable_WhenReferenced) {
  auto r = interpolate("postgres://${HOST}:5432/db", env({{"HOST", "127.0.0.1"}}));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.value, "postgres://127.0.0.1:5432/db");
}

TEST(Interpolation, FailsNamingTheVariable_WhenUnsetWithoutDefault) {
  auto r = interpolate("${DATABASE_URL}", env({}));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.error.find("DATABASE_URL is not set"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("${DATABASE_URL:-default}"), std::string::npos) << r.error;
}

TEST(Interpolation, KeepsEmptyValue_WhenSetButEmpty) {
  auto r = interpolate("[${EMPTY}]", env({{"EMPTY", ""}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, "[]");
}

TEST(Interpolation, UsesDefault_WhenUnsetOrEmpty) {
  EXPECT_EQ(interpolate("${X:-fallback}", env({})).value, "fallback");
  EXPECT_EQ(interpolate("${X:-fallback}", env({{"X", ""}})).value, "fallback");
  EXPECT_EQ(interpolate("${X:-fallback}", env({{"X", "set"}})).value, "set");
  EXPECT_EQ(interpolate("${X:-}", env({})).value, "");
}

TEST(Interpolation, EvaluatesNestedDefault_OnlyWhenUsed) {
  const std::string text = "${KAFKA_BROKER:-${KAFKA_PRODUCER_URL}}";
  auto a = interpolate(text, env({{"KAFKA_BROKER", "127.0.0.1:9092"}}));
  ASSERT_TRUE(a.ok()) << a.error;
  EXPECT_EQ(a.value, "127.0.0.1:9092");
  auto b = interpolate(text, env({{"KAFKA_PRODUCER_URL", "kafka://127.0.0.1:9093"}}));
  ASSERT_TRUE(b.ok()) << b.error;
  EXPECT_EQ(b.value, "kafka://127.0.0.1:9093");
  auto c = interpolate(text, env({}));
  EXPECT_FALSE(c.ok());
  EXPECT_NE(
      c.error.find("none of the environment variables KAFKA_BROKER, KAFKA_PRODUCER_URL is set"),
      std::string::npos)
      << c.error;
}

TEST(Interpolation, DoubleDollarIsLiteral_AndLoneDollarStays) {
  auto r = interpolate("p$$w${A}d $5", env({{"A", "x"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, "p$wxd $5");
}

TEST(Interpolation, RejectsMalformedReferences) {
  EXPECT_FALSE(interpolate("${}", env({})).ok());
  EXPECT_FALSE(interpolate("${A", env({{"A", "1"}})).ok());
  EXPECT_FALSE(interpolate("${A:-unterminated", env({})).ok());
  EXPECT_FALSE(interpolate("${A B}", env({})).ok());
}

TEST(Interpolation, BoundsTheEcho_OfAHugeVariableName) {
  std::string name(10'000'000, 'A');
  auto r = interpolate("${" + name + "}", env({}));
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error.size(), 500u);
  EXPECT_NE(r.error.find("…(10000000 bytes)"), std::string::npos) << r.error;
  auto bad = interpolate("${\x1b[2J", env({}));
  EXPECT_EQ(bad.error.find('\x1b'), std::string::npos) << "control characters are escaped";
}

// Each nested default is a recursive call: a hostile file must not exhaust the stack.
TEST(Interpolation, LimitsNestedDefaults) {
  std::string deep;
  for (int i = 0; i < 1'000'000; ++i) deep += "${A:-";
  auto r = interpolate(deep, env({}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("variable defaults nest more than 16 deep"), std::string::npos) << r.error;
  std::string ok = "${A1:-${A2:-${A3:-${A4:-x}}}}";
  EXPECT_EQ(interpolate(ok, env({})).value, "x");
}

TEST(Interpolation, LimitsTheExpandedLength) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "${BIG}";
  auto r = interpolate(text, env({{"BIG", std::string(100'000, 'b')}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error.find("longer than 16 MiB"), std::string::npos) << r.error;
}
