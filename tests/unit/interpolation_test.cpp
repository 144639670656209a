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
