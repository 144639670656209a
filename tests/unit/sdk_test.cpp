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

TEST(SdkRecordBatch, RecordsSharingTopicsAndHeadersKeepTheirOwnValues) {
  RecordBatch b;
  std::string topic = "t1", statement = "INSERT";
  b.add(1, topic, std::nullopt, "v1", 10, "id-1", {{"statement", statement}, {"table", "a"}});
  statement = "DELETE";  // the batch kept its copy
  b.add(2, topic, std::nullopt, "v2", 10, "id-2", {{"statement", "INSERT"}, {"table", "b"}});
  topic = "t2";
  b.add(3, topic, std::nullopt, "v3", 10, "id-3", {{"statement", statement}});
  std::vector<RecordBatch::Header> many{{"x", "1"}, {"y", "2"}, {"z", "3"}};
  b.add(4, "t2", std::nullopt, "v4", 10, "id-4", many);
  ASSERT_EQ(b.records()[3].header_count, 3u);  // built once; adding more rebuilds
  b.add(5, "t2", std::nullopt, "v5", 10, "id-5");
  RecordBatch moved(std::move(b));
  const p2k_record* r = moved.records();
  auto text = [](p2k_slice s) { return std::string(s.data, s.size); };
  auto header = [&](int i, size_t h) {
    return text(r[i].headers[h].name) + "=" + text(r[i].headers[h].value);
  };
  ASSERT_EQ(moved.size(), 5u);
  EXPECT_EQ(text(r[0].topic), "t1");
  EXPECT_EQ(text(r[1].topic), "t1");
  EXPECT_EQ(text(r[2].topic), "t2");
  EXPECT_EQ(text(r[3].topic), "t2");
  ASSERT_EQ(r[0].header_count, 2u);
  EXPECT_EQ(header(0, 0), "statement=INSERT");
  EXPECT_EQ(header(0, 1), "table=a");
  ASSERT_EQ(r[1].header_count, 2u);
  EXPECT_EQ(header(1, 0), "statement=INSERT");
  EXPECT_EQ(header(1, 1), "table=b");
  ASSERT_EQ(r[2].header_count, 1u);
  EXPECT_EQ(header(2, 0), "statement=DELETE");
  ASSERT_EQ(r[3].header_count, 3u);
  EXPECT_EQ(header(3, 2), "z=3");
  EXPECT_EQ(r[4].header_count, 0u);
  EXPECT_EQ(r[4].headers, nullptr);
  EXPECT_EQ(text(r[4].value), "v5");
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
  out.clear();
  append_json_string(out, "\"plain run\\");  // escapes at both ends
  EXPECT_EQ(out, R"("\"plain run\\")");
  out.clear();
  append_json_string(out, "no escapes at all");
  EXPECT_EQ(out, R"("no escapes at all")");
}
