#include <pg2kafka/sdk/plugin.hpp>

#include <gtest/gtest.h>

using namespace pg2kafka::sdk;

TEST(SdkOptions, GivesTypedAccessToNormalisedValues) {
  p2k_option_value values[] = {
      {"n", "42"},        {"flag", "true"},           {"wait", "1500"},
      {"list", "a,b,,c"}, {"rdkafka.linger.ms", "5"}, {"rdkafka.acks", "all"}};
  Options o(values, std::size(values));
  EXPECT_EQ(o.integer("n"), 42);
  EXPECT_TRUE(o.boolean("flag"));
  EXPECT_EQ(o.duration("wait").count(), 1500);
  EXPECT_EQ(o.list("list"), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_TRUE(o.list("absent").empty());
  auto passthrough = o.with_prefix("rdkafka.");
  EXPECT_EQ(passthrough.size(), 2u);
  EXPECT_EQ(passthrough["linger.ms"], "5");
  EXPECT_THROW(o.string("absent"), ConfigError);
  EXPECT_THROW(o.integer("flag"), ConfigError);
}

TEST(SdkRecordBatch, OwnsItsRecordsMemory) {
  RecordBatch b;
  std::string topic = "t";
  b.add(1, topic, std::nullopt, "v1", 10, "id-1");
  b.add(2, topic, std::string("k"), "v2", 20, "id-2", {{"h", "x"}});
  topic = "changed";
  const p2k_record* r = b.records();
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(std::string(r[0].topic.data, r[0].topic.size), "t");
  EXPECT_EQ(r[0].key.data, nullptr);  // a null key
  EXPECT_EQ(std::string(r[1].key.data, r[1].key.size), "k");
  EXPECT_EQ(r[1].header_count, 1u);
  EXPECT_EQ(std::string(r[1].headers[0].value.data, r[1].headers[0].value.size), "x");
  EXPECT_EQ(r[1].struct_size, sizeof(p2k_record));
  EXPECT_EQ(b.last_position(), 2u);
}

TEST(SdkGuard, TurnsExceptionsIntoStatusesAndMessages) {
  char err[16];
  EXPECT_EQ(detail::guarded(err, sizeof err, [] { throw RetryError("try again later please"); }),
            P2K_RETRY);
  EXPECT_STREQ(err, "try again later");  // truncated to the buffer, NUL-terminated
  EXPECT_EQ(detail::guarded(err, sizeof err, [] { throw std::runtime_error("boom"); }), P2K_FATAL);
  EXPECT_STREQ(err, "boom");
  EXPECT_EQ(detail::guarded(err, sizeof err, [] { throw 42; }), P2K_FATAL);
  EXPECT_EQ(detail::guarded(err, sizeof err, [] { throw ConfigError("bad"); }), P2K_INVALID_CONFIG);
  EXPECT_EQ(detail::guarded(err, sizeof err, [] {}), P2K_OK);
}

TEST(SdkJson, EscapesQuotesBackslashesAndControlCharacters) {
  std::string out;
  append_json_string(out, "a\"b\\c\n\t\x01\x1f é");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f é\"");
  out.clear();
  append_json_string(out, "");
  EXPECT_EQ(out, "\"\"");
}
