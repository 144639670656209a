#include <pg2kafka/sdk/plugin.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

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

TEST(SdkSlices, ViewAbsentAndEmptySlices) {
  EXPECT_EQ(view(p2k_slice{nullptr, 0}), "");
  EXPECT_EQ(view(p2k_slice{"abc", 2}), "ab");
  EXPECT_FALSE(optional_view(p2k_slice{nullptr, 0}).has_value());
  ASSERT_TRUE(optional_view(p2k_slice{"", 0}).has_value());
  EXPECT_EQ(*optional_view(p2k_slice{"", 0}), "");
  std::string text = "key";
  EXPECT_EQ(view(slice(text)), "key");
}

// "Embed as JSON if it is JSON": valid JSON is copied byte for byte, line breaks between tokens
// turned into spaces (one line), anything else becomes a JSON string.
TEST(SdkJson, EmbedsJsonByteForByteOnOneLine_AndAnythingElseAsAString) {
  auto embed = [](std::string_view text) {
    std::string out;
    append_json_or_string(out, text);
    return out;
  };
  EXPECT_EQ(embed("{\r\n  \"a\": [1, 2.50, -3e+2,\t0.0],\n  \"b\": {\"c\": null}\n}"),
            "{    \"a\": [1, 2.50, -3e+2,\t0.0],   \"b\": {\"c\": null} }");
  EXPECT_EQ(embed("123456789012345678901234567890.123456789012345"),
            "123456789012345678901234567890.123456789012345")
      << "numbers are never re-serialised";
  EXPECT_EQ(embed(R"( "x \" y \u00e9 \/" )"), R"( "x \" y \u00e9 \/" )")
      << "strings are kept as written, escapes included";
  EXPECT_EQ(embed("\"caf\xc3\xa9 a b\""), "\"caf\xc3\xa9 a b\"") << "spaces in strings stay";
  EXPECT_EQ(embed("true"), "true");
  EXPECT_EQ(embed("[]"), "[]");
  EXPECT_EQ(embed("{}"), "{}");
  for (std::string_view not_json :
       {"", "plain text", "{\"a\":1,}", "[1 2]", "{'a': 1}", "01", "1.", ".5", "-", "nul", "\"\t\"",
        "\"\\x\"", "\"\\u12g4\"", "{\"a\" 1}", "[1]]", "\"\xff\"", "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"", "{\"a\":1} {\"b\":2}"}) {
    EXPECT_FALSE(is_json(not_json)) << not_json;
    std::string expected;
    append_json_string(expected, not_json);
    EXPECT_EQ(embed(not_json), expected) << not_json;
  }
  std::string deep(600, '[');
  deep += std::string(600, ']');
  EXPECT_FALSE(is_json(deep)) << "nesting is bounded, never a stack overflow";
  std::string out = "prefix:";
  EXPECT_FALSE(append_json(out, "[1,"));
  EXPECT_EQ(out, "prefix:") << "a failed append leaves nothing behind";
}

TEST(SdkConfigError, NamesItsOptions_AndDescribesEveryProblem) {
  ConfigError one("acks", "must be 'all'");
  EXPECT_STREQ(one.what(), "option 'acks': must be 'all'");
  ASSERT_EQ(one.problems().size(), 1u);
  EXPECT_EQ(one.problems()[0].option, "acks");
  ConfigError plain("something is off");
  EXPECT_STREQ(plain.what(), "something is off");
  EXPECT_EQ(plain.problems()[0].option, "");
  ConfigError several(ConfigError::Problems{{"a", "is wrong"}, {"", "they clash"}});
  EXPECT_STREQ(several.what(), "2 problems: option 'a': is wrong; they clash");
  EXPECT_EQ(several.status(), P2K_INVALID_CONFIG);
}

// The trampolines hand a ConfigError's problems to a host that takes them (ABI 1.1), one per
// option, and to every host as the error text.
TEST(SdkGuard, GivesConfigProblemsToTheHost_OptionByOption) {
  struct Seen {
    std::vector<std::pair<std::string, std::string>> problems;
  } seen;
  p2k_host host{};
  host.struct_size = sizeof host;
  host.ctx = &seen;
  host.option_error = [](void* ctx, const char* key, const char* message) {
    static_cast<Seen*>(ctx)->problems.emplace_back(key ? key : "(none)", message);
  };
  char err[256];
  auto status = detail::guarded(
      err, sizeof err,
      [] {
        throw ConfigError(ConfigError::Problems{{"a", "is wrong"}, {"", "they clash"}});
      },
      Host(&host));
  EXPECT_EQ(status, P2K_INVALID_CONFIG);
  EXPECT_STREQ(err, "2 problems: option 'a': is wrong; they clash");
  EXPECT_EQ(seen.problems, (std::vector<std::pair<std::string, std::string>>{
                               {"a", "is wrong"}, {"(none)", "they clash"}}));
  // A host of ABI 1.0 has no option_error (its struct is shorter): only the text.
  seen.problems.clear();
  host.struct_size = P2K_HOST_SIZE_1_0;
  detail::guarded(
      err, sizeof err, [] { throw ConfigError("a", "is wrong"); }, Host(&host));
  EXPECT_TRUE(seen.problems.empty());
  EXPECT_STREQ(err, "option 'a': is wrong");
}

TEST(SdkOptions, ErrorsNameTheOption) {
  p2k_option_value values[] = {{"n", "forty"}};
  Options o(values, 1);
  try {
    o.integer("n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems()[0].option, "n");
  }
  try {
    o.string("absent");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "option 'absent': is not set");
  }
}

TEST(SdkVersions, AnswersTheNewestMinorBothKnow_ButNotLessThanNeeded) {
  EXPECT_EQ(detail::answer_minor(0, 0), 0u);
  EXPECT_EQ(detail::answer_minor(P2K_ABI_MINOR + 3, 0), uint32_t{P2K_ABI_MINOR});
  EXPECT_EQ(detail::answer_minor(0, 1), 1u) << "an older host hears what the plugin needs";
  const p2k_option plain[] = {option("a", P2K_OPT_STRING, nullptr, "A.", P2K_OPT_REQUIRED)};
  const p2k_option secret[] = {option("a", P2K_OPT_LIST, nullptr, "A.", P2K_OPT_IS_SECRET)};
  EXPECT_EQ(detail::minor_needed_by(plain), 0u);
  EXPECT_EQ(detail::minor_needed_by(secret), 1u) << "a 1.0 host would print the secret";
}

namespace {

// A host that records reports, for the async helpers.
struct ReportLog {
  std::mutex mutex;
  std::vector<std::tuple<uint64_t, p2k_status, std::string>> reports;
  p2k_host host{};
  ReportLog() {
    host.struct_size = sizeof host;
    host.ctx = this;
    host.report = [](void* ctx, uint64_t position, p2k_status status, const char* message) {
      auto* self = static_cast<ReportLog*>(ctx);
      std::lock_guard lock(self->mutex);
      self->reports.emplace_back(position, status, message ? message : "");
    };
  }
  size_t size() {
    std::lock_guard lock(mutex);
    return reports.size();
  }
};

std::vector<p2k_record> records(uint64_t first, uint64_t last, std::deque<std::string>& ids) {
  std::vector<p2k_record> out;
  for (uint64_t p = first; p <= last; ++p) {
    auto& id = ids.emplace_back("id-" + std::to_string(p));
    p2k_record r{};
    r.struct_size = sizeof r;
    r.position = p;
    r.topic = {"t", 1};
    r.value = {"v", 1};
    r.id = {id.data(), id.size()};
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST(SdkInFlight, FlushIsABarrier) {
  InFlight f;
  EXPECT_TRUE(f.wait_until_empty(std::chrono::milliseconds(0)));
  f.add(2);
  EXPECT_FALSE(f.wait_until_empty(std::chrono::milliseconds(1)));
  std::thread t([&] { f.done(2); });
  EXPECT_TRUE(f.wait_until_empty(std::chrono::seconds(30)));
  t.join();
  EXPECT_EQ(f.count(), 0u);
}

TEST(SdkAsyncDelivery, ReportsEachRecordOnce_FailuresWithTheirEventId) {
  ReportLog log;
  std::deque<std::string> ids;
  AsyncDelivery delivery(
      Host(&log.host),
      [](std::span<const OwnedRecord> batch) {
        for (const auto& r : batch)
          if (r.position == 3) throw RetryError("the service said 503");
      },
      2, 1);
  EXPECT_THROW(delivery.enqueue(records(1, 1, ids)), FatalError) << "not started";
  delivery.start();
  delivery.enqueue(records(1, 5, ids));
  ASSERT_TRUE(delivery.flush(std::chrono::seconds(30)));
  EXPECT_EQ(delivery.in_flight(), 0u);
  std::map<uint64_t, std::vector<std::pair<p2k_status, std::string>>> by;
  for (const auto& [p, s, m] : log.reports) by[p].emplace_back(s, m);
  ASSERT_EQ(by.size(), 5u);
  for (uint64_t p = 1; p <= 5; ++p) {
    ASSERT_EQ(by[p].size(), 1u) << p;
    EXPECT_EQ(by[p][0].first, p == 3 ? P2K_RETRY : P2K_OK) << p;
  }
  EXPECT_EQ(by[3][0].second, "event id-3: the service said 503");
}

TEST(SdkAsyncDelivery, StopReportsWhatIsStillQueuedAsRetry) {
  ReportLog log;
  std::deque<std::string> ids;
  std::mutex gate;
  gate.lock();  // the worker blocks in its first batch until the test lets it go
  std::atomic<bool> delivering{false};
  AsyncDelivery delivery(
      Host(&log.host),
      [&](std::span<const OwnedRecord>) {
        delivering = true;
        std::lock_guard lock(gate);
      },
      1, 1);
  delivery.start();
  delivery.enqueue(records(1, 4, ids));
  while (!delivering) std::this_thread::yield();
  std::thread stopper([&] { delivery.stop(); });
  // Records 2..4 are reported RETRY by stop() once it took the queue; then the first batch ends.
  while (log.size() < 3) std::this_thread::yield();
  gate.unlock();
  stopper.join();
  ASSERT_EQ(log.reports.size(), 4u);
  std::map<uint64_t, p2k_status> status;
  for (const auto& [p, s, m] : log.reports) status[p] = s;
  EXPECT_EQ(status[1], P2K_OK);
  for (uint64_t p = 2; p <= 4; ++p) EXPECT_EQ(status[p], P2K_RETRY) << p;
  EXPECT_EQ(delivery.in_flight(), 0u);
}

namespace {
// A source whose second record cannot be delivered (plugin.h, p2k_batch.unusable).
class UnusableSecond : public pg2kafka::sdk::Source {
 public:
  UnusableSecond(pg2kafka::sdk::Host, const pg2kafka::sdk::Options&) {}
  std::unique_ptr<pg2kafka::sdk::RecordBatch> poll(size_t, std::chrono::milliseconds) override {
    auto b = std::make_unique<pg2kafka::sdk::RecordBatch>();
    b->add(1, "t", "k", "v1", 0, "id-1");
    b->add(2, "t", "k", "{broken", 0, "id-2");
    b->mark_last_unusable("row 2 is malformed");
    b->add(3, "t", "k", "v3", 0, "id-3");
    return b;
  }
  void ack(uint64_t) override {}
};
}  // namespace

TEST(SdkUnusable, AHostOf1_4GetsTheMarks_AnOlderHostAFailedPoll) {
  using Tramp = pg2kafka::sdk::detail::SourceTrampolines<UnusableSecond>;
  p2k_host host{};
  host.struct_size = sizeof host;
  void* instance = nullptr;
  char err[256] = {0};
  ASSERT_EQ(Tramp::create(&host, nullptr, 0, &instance, err, sizeof err), P2K_OK) << err;

  p2k_batch batch{sizeof(p2k_batch), nullptr, 0, nullptr, nullptr};
  ASSERT_EQ(Tramp::poll(instance, 10, 0, &batch, err, sizeof err), P2K_OK) << err;
  ASSERT_EQ(batch.count, 3u);
  ASSERT_NE(batch.unusable, nullptr);
  EXPECT_EQ(batch.unusable[0], nullptr);
  EXPECT_STREQ(batch.unusable[1], "row 2 is malformed");
  EXPECT_EQ(batch.unusable[2], nullptr);
  Tramp::release(instance, batch.handle);

  // A 1.3 host's p2k_batch ends before `unusable`: the poll fails, as sources did before 1.4.
  p2k_batch old{P2K_SIZE_THROUGH(p2k_batch, handle), nullptr, 0, nullptr, nullptr};
  EXPECT_EQ(Tramp::poll(instance, 10, 0, &old, err, sizeof err), P2K_FATAL);
  EXPECT_STREQ(err, "row 2 is malformed");
  EXPECT_EQ(old.unusable, nullptr) << "a field the host does not know is never written";
  Tramp::destroy(instance);
}

namespace {
// A source whose second record has a null value (plugin.h, p2k_record.value, since 1.5).
class NullSecond : public pg2kafka::sdk::Source {
 public:
  NullSecond(pg2kafka::sdk::Host, const pg2kafka::sdk::Options&) {}
  std::unique_ptr<pg2kafka::sdk::RecordBatch> poll(size_t, std::chrono::milliseconds) override {
    auto b = std::make_unique<pg2kafka::sdk::RecordBatch>();
    b->add(1, "t", "k", "", 0, "id-1");
    b->add_null_value(2, "t", "k", 0, "id-2", {{"statement", "DELETE"}});
    return b;
  }
  void ack(uint64_t) override {}
};
}  // namespace

TEST(SdkNullValues, AHostOf1_5GetsANullValue_DistinctFromEmpty_AnOlderHostAFailedPoll) {
  using Tramp = pg2kafka::sdk::detail::SourceTrampolines<NullSecond>;
  for (uint32_t minor : {5u, 4u}) {
    p2k_host host{};
    host.struct_size = sizeof host;
    host.abi_major = 1;
    host.abi_minor = minor;
    void* instance = nullptr;
    char err[512] = {0};
    ASSERT_EQ(Tramp::create(&host, nullptr, 0, &instance, err, sizeof err), P2K_OK) << err;
    p2k_batch batch{sizeof(p2k_batch), nullptr, 0, nullptr, nullptr};
    if (minor == 5) {
      ASSERT_EQ(Tramp::poll(instance, 10, 0, &batch, err, sizeof err), P2K_OK) << err;
      ASSERT_EQ(batch.count, 2u);
      EXPECT_NE(batch.records[0].value.data, nullptr) << "an empty value is not a null one";
      EXPECT_EQ(batch.records[0].value.size, 0u);
      EXPECT_EQ(batch.records[1].value.data, nullptr);
      EXPECT_EQ(batch.records[1].value.size, 0u);
      ASSERT_EQ(batch.records[1].header_count, 1u);
      EXPECT_EQ(pg2kafka::sdk::view(batch.records[1].headers[0].value), "DELETE");
      Tramp::release(instance, batch.handle);
    } else {
      EXPECT_EQ(Tramp::poll(instance, 10, 0, &batch, err, sizeof err), P2K_FATAL);
      EXPECT_NE(std::string(err).find("ABI 1.4"), std::string::npos) << err;
      EXPECT_EQ(batch.count, 0u);
    }
    Tramp::destroy(instance);
  }
}
