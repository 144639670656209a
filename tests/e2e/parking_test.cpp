// The host's part of on_permanent_failure (plugin.h, "Permanent failures and parking"), with the
// test plugins: a record the sink fails for good, or the source marks unusable, is parked
// through the source and counted as done, so everything after it is acknowledged; its dead
// letter goes to the dead-letter topic with headers, without its value when refused with it;
// with stop, or in a dry run, the pipeline stops as before.
#include <signal.h>

#include <algorithm>
#include <thread>

#include "e2e_helpers.hpp"

using p2k_e2e::FaultyPipeline;

namespace {

constexpr const char* kParkPipeline =
    R"({"retry.initial_backoff": "10ms", "retry.max_backoff": "50ms",
        "on_permanent_failure": "park"})";
constexpr const char* kParkWithDeadLetters =
    R"({"retry.initial_backoff": "10ms", "retry.max_backoff": "50ms",
        "on_permanent_failure": "park", "dead_letter.topic": "dead"})";

std::string park_log_option(const FaultyPipeline& p) {
  return "\"park_log\": \"" + (p.dir.path() / "park.log").string() + "\"";
}

std::vector<std::string> park_lines(const FaultyPipeline& p) {
  return p2k_test::lines(p2k_test::read_file(p.dir.path() / "park.log"));
}

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(HostParking, ARecordTheSinkFailsIsParked_AndEverythingAfterItIsDeliveredAndAcknowledged) {
  FaultyPipeline dir("", "");  // where the source's park log goes
  FaultyPipeline q("\"count\": 10, " + park_log_option(dir), "\"fatal_position\": 4",
                   kParkPipeline);
  auto r = q.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto delivered = q.delivered();
  EXPECT_EQ(std::count(delivered.begin(), delivered.end(), 4u), 0);
  EXPECT_EQ(delivered.size(), 9u);
  // 4, then the later records of its key (key-1: 7 and 10), held behind it.
  auto parks = park_lines(dir);
  ASSERT_EQ(parks.size(), 3u);
  EXPECT_TRUE(contains(parks[0], "park 4 evt-4 test-faulty: simulated permanent failure"))
      << parks[0];
  EXPECT_TRUE(contains(parks[1], "park 7 evt-7 held behind event evt-4")) << parks[1];
  EXPECT_TRUE(contains(parks[2], "park 10 evt-10 held behind event evt-4")) << parks[2];
  EXPECT_TRUE(has_line(q.lines(), "ack 10")) << "the parked position is acknowledged with the rest";
  EXPECT_TRUE(contains(r.err, "parked event evt-4")) << r.err;
  EXPECT_TRUE(contains(r.err, "pg2kafka queue retry evt-4")) << r.err;
}

TEST(HostParking, TheDeadLetterCarriesTheRecordAndHeadersNamingWhatHappened) {
  FaultyPipeline dir("", "");
  FaultyPipeline p("\"count\": 6, " + park_log_option(dir),
                   "\"fatal_position\": 3, \"fatal_on_topic\": \"test.topic\", "
                   "\"log_headers\": true",
                   kParkWithDeadLetters);
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = p.lines();
  EXPECT_TRUE(has_line(lines, "topic dead")) << "the dead-letter topic is prepared at start";
  EXPECT_TRUE(has_line(lines, "topic-of 3 dead"));
  EXPECT_TRUE(has_line(lines, "deliver 3 key-0 {\"seq\":3,\"key\":\"key-0\"}"))
      << "the value goes with it";
  EXPECT_TRUE(has_line(lines, "header 3 test=yes")) << "the record's own headers are kept";
  EXPECT_TRUE(has_line(lines, "header 3 pg2kafka.original_topic=test.topic"));
  EXPECT_TRUE(has_line(lines, "header 3 pg2kafka.event_id=evt-3"));
  EXPECT_TRUE(has_line(lines, "header 3 pg2kafka.reason=failed"));
  EXPECT_TRUE(has_line(lines,
                       "header 3 pg2kafka.error=test-faulty: simulated permanent failure of event "
                       "evt-3"));
  EXPECT_FALSE(has_line(lines, "header 3 pg2kafka.value_omitted=true"));
  EXPECT_TRUE(has_line(lines, "ack 6"));
}

TEST(HostParking, ADeadLetterRefusedWithItsValue_GoesWithoutIt) {
  FaultyPipeline dir("", "");
  FaultyPipeline p("\"count\": 5, " + park_log_option(dir),
                   "\"fatal_position\": 2, \"fatal_on_topic\": \"test.topic\", "
                   "\"refuse_values_on_topic\": \"dead\", \"log_headers\": true",
                   kParkWithDeadLetters);
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = p.lines();
  EXPECT_TRUE(has_line(lines, "deliver 2 key-2 ")) << "the dead letter, without its value";
  EXPECT_TRUE(has_line(lines, "header 2 pg2kafka.value_omitted=true"));
  EXPECT_TRUE(
      has_line(lines, "header 2 pg2kafka.value_size=" +
                          std::to_string(std::string("{\"seq\":2,\"key\":\"key-2\"}").size())));
  EXPECT_TRUE(has_line(lines, "ack 5"));
  EXPECT_TRUE(contains(r.err, "writing it again without its value")) << r.err;
}

TEST(HostParking, ADeadLetterRefusedEvenWithoutItsValue_StopsThePipeline) {
  FaultyPipeline dir("", "");
  // fatal_position fails position 2 on every topic: the record, then both dead letters.
  FaultyPipeline p("\"count\": 5, " + park_log_option(dir), "\"fatal_position\": 2",
                   kParkWithDeadLetters);
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_TRUE(contains(r.err, "even without its value")) << r.err;
  EXPECT_TRUE(contains(r.err, "parked in the source")) << r.err;
  auto parks = park_lines(dir);
  ASSERT_FALSE(parks.empty());
  EXPECT_TRUE(contains(parks[0], "park 2 evt-2 ")) << parks[0];
  for (const auto& l : p.lines()) {
    if (l.rfind("ack ", 0) == 0) {
      EXPECT_LT(std::stoull(l.substr(4)), 2u) << l;
    }
  }
}

TEST(HostParking, AnUnusableRecordIsParked_WithoutEverReachingTheSink) {
  FaultyPipeline dir("", "");
  FaultyPipeline p("\"count\": 5, \"unusable_at\": 3, " + park_log_option(dir),
                   "\"log_headers\": true", kParkWithDeadLetters);
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto parks = park_lines(dir);
  ASSERT_EQ(parks.size(), 1u);
  EXPECT_TRUE(contains(parks[0], "park 3 evt-3 test-sequence: record 3 is unusable")) << parks[0];
  auto lines = p.lines();
  EXPECT_TRUE(has_line(lines, "topic-of 3 dead")) << "only its dead letter was written";
  EXPECT_TRUE(has_line(lines, "header 3 pg2kafka.reason=unusable"));
  EXPECT_TRUE(has_line(lines, "ack 5"));
}

TEST(HostParking, WithStop_AnUnusableRecordStopsThePipeline_NamingItAndTheAlternative) {
  FaultyPipeline p("\"count\": 5, \"unusable_at\": 3", "");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_TRUE(contains(r.err, "test-sequence: record 3 is unusable")) << r.err;
  EXPECT_TRUE(contains(r.err, "on_permanent_failure=park")) << r.err;
  for (const auto& l : p.lines()) {
    if (l.rfind("ack ", 0) == 0) {
      EXPECT_LT(std::stoull(l.substr(4)), 3u) << l;
    }
    if (l.rfind("deliver ", 0) == 0) {
      EXPECT_LT(std::stoull(l.substr(8)), 3u) << l;
    }
  }
}

TEST(HostParking, AParkTheSourceCannotDoYet_IsRetried) {
  FaultyPipeline dir("", "");
  FaultyPipeline p("\"count\": 5, \"park_retries\": 2, " + park_log_option(dir),
                   "\"fatal_position\": 2", kParkPipeline);
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto parks = park_lines(dir);
  ASSERT_EQ(parks.size(), 2u) << "2, and 5 of the same key held behind it";
  EXPECT_TRUE(contains(parks[0], "park 2 evt-2 ")) << parks[0];
  EXPECT_TRUE(contains(parks[1], "park 5 evt-5 held behind event evt-2")) << parks[1];
  EXPECT_TRUE(contains(r.err, "could not park event evt-2")) << r.err;
  EXPECT_TRUE(has_line(p.lines(), "ack 5"));
}

TEST(HostParking, ADryRunNeverParks_ItStopsAsWithStop) {
  FaultyPipeline dir("", "");
  FaultyPipeline p("\"count\": 5, \"unusable_at\": 2, " + park_log_option(dir), "", kParkPipeline);
  auto r = p.run({"--once", "--dry-run"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_TRUE(park_lines(dir).empty()) << "a dry run changes nothing in the source";
}

TEST(HostParking, ADeadLetterTopicWithoutParking_IsAConfigurationError) {
  FaultyPipeline p("\"count\": 1", "",
                   R"({"on_permanent_failure": "stop", "dead_letter.topic": "dead"})");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "dead_letter.topic")) << r.err;
  EXPECT_TRUE(contains(r.err, "on_permanent_failure")) << r.err;
}

TEST(HostParking, MetricsCountParkedRecordsAndDeadLetters) {
  using namespace std::chrono_literals;
  FaultyPipeline dir("", "");
  FaultyPipeline p("\"count\": 6, " + park_log_option(dir),
                   "\"fatal_position\": 3, \"fatal_on_topic\": \"test.topic\", "
                   "\"refuse_values_on_topic\": \"dead\"",
                   R"({"retry.initial_backoff": "10ms", "retry.max_backoff": "50ms",
                       "on_permanent_failure": "park", "dead_letter.topic": "dead",
                       "http.listen": "127.0.0.1:0"})");
  p2k_test::Background daemon({p2k_test::ctest_env("P2K_BINARY"), "run", "--config", p.config,
                               "--plugin-dir", p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  int port = p2k_test::served_port(daemon, 20s);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!has_line(p.lines(), "ack 6") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(has_line(p.lines(), "ack 6")) << daemon.err();
  auto body = p2k_test::http_get(port, "/metrics").body;
  auto sample = [&](const std::string& series) { return p2k_test::metric_sample(body, series); };
  // 3 failed, 6 (same key) held behind it; one dead letter, for 3, without its value.
  EXPECT_EQ(sample(R"(pg2kafka_records_parked_total{topic="test.topic"})"), 2) << body;
  EXPECT_EQ(sample(R"(pg2kafka_records_failed_total{topic="test.topic"})"), 1);
  EXPECT_EQ(sample(R"(pg2kafka_records_failed_total{topic="dead"})"), 1) << "refused with value";
  EXPECT_EQ(sample(R"(pg2kafka_dead_letters_total{topic="test.topic"})"), 1);
  EXPECT_EQ(sample("pg2kafka_dead_letters_without_value_total"), 1);
  EXPECT_EQ(sample("pg2kafka_records_parking"), 0);
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(30s), 0) << daemon.err();
}
