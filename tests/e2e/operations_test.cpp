// Operations end to end, with the test plugins: the HTTP endpoint (/metrics, /healthz, /readyz)
// of a running pg2kafka, `pg2kafka status`, and JSON logs. The same against PostgreSQL and Kafka
// is in operations_pg_kafka_test.cpp.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>

#include <regex>
#include <thread>

#include "e2e_helpers.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using p2k_test::Background;
using p2k_test::http_get;
using p2k_test::metric_sample;

// A pipeline from test-sequence to test-faulty with the HTTP endpoint on a free loopback port.
struct Served {
  p2k_test::TempDir dir;
  std::string config;
  std::unique_ptr<Background> process;
  int port = 0;

  Served(const std::string& source_options, const std::string& sink_options,
         const std::string& pipeline_extra = "") {
    config = dir.write("pipeline.json", R"({
      "source": {"plugin": "test-sequence", "options": {)" +
                                            source_options +
                                            R"(}},
      "sink": {"plugin": "test-faulty", "options": {"output_file": ")" +
                                            (dir.path() / "out.log").string() + "\"" +
                                            sink_options + R"(}},
      "pipeline": {"http.listen": "127.0.0.1:0", "retry.initial_backoff": "10ms",
                   "retry.max_backoff": "100ms")" +
                                            pipeline_extra + "}}");
    process = std::make_unique<Background>(
        std::vector<std::string>{p2k_test::ctest_env("P2K_BINARY"), "run", "--config", config,
                                 "--plugin-dir", p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
    port = p2k_test::served_port(*process, 20s);
  }

  // Scrapes until `pred` holds for the /metrics body (or fails after `timeout`).
  std::string metrics_until(const std::function<bool(const std::string&)>& pred,
                            std::chrono::seconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string body;
    while (std::chrono::steady_clock::now() < deadline) {
      auto a = http_get(port, "/metrics");
      body = a.body;
      if (a.status == 200 && pred(body)) return body;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "the metrics never matched; last scrape:\n"
                  << body << "\nstderr:\n"
                  << process->err();
    return body;
  }
};

// promtool's linter accepts the exposition (naming conventions, HELP and TYPE lines, syntax).
void expect_promtool_accepts(const std::string& body) {
  auto r = p2k_test::run({"promtool", "check", "metrics"}, {}, 30s, body);
  EXPECT_EQ(r.exit_code, 0) << "promtool check metrics:\n" << r.out << r.err;
}

TEST(Operations, MetricsFollowARun_AndPromtoolAcceptsThem) {
  Served s("\"count\": 500, \"keys\": 5", "");
  std::string body = s.metrics_until([](const std::string& b) {
    return metric_sample(b, "pg2kafka_records_acknowledged_total") == 500;
  });
  EXPECT_EQ(metric_sample(body, "pg2kafka_records_polled_total{topic=\"test.topic\"}"), 500);
  EXPECT_EQ(metric_sample(body, "pg2kafka_records_delivered_total{topic=\"test.topic\"}"), 500);
  EXPECT_GE(metric_sample(body, "pg2kafka_records_written_total{topic=\"test.topic\"}"), 500);
  EXPECT_EQ(metric_sample(body, "pg2kafka_records_failed_total{topic=\"test.topic\"}"), 0);
  EXPECT_EQ(metric_sample(body, "pg2kafka_in_flight_records"), 0);
  EXPECT_EQ(metric_sample(body, "pg2kafka_phase{phase=\"running\"}"), 1);
  EXPECT_EQ(metric_sample(body, "pg2kafka_ready"), 1);
  EXPECT_EQ(metric_sample(body, "pg2kafka_up"), 1);
  // The sequence's event times are in 2023: every delivery lands in the +Inf bucket.
  EXPECT_EQ(metric_sample(body, "pg2kafka_delivery_latency_seconds_count"), 500);
  EXPECT_EQ(metric_sample(body, "pg2kafka_delivery_latency_seconds_bucket{le=\"+Inf\"}"), 500);
  EXPECT_EQ(metric_sample(body, "pg2kafka_delivery_latency_seconds_bucket{le=\"3600\"}"), 0);
  EXPECT_GT(metric_sample(body, "pg2kafka_delivered_bytes_total{topic=\"test.topic\"}"), 500 * 10);
  // The plugin's own metrics, under its prefix.
  EXPECT_EQ(
      metric_sample(body, "pg2kafka_test_sequence_records_emitted_total{topic=\"test.topic\"}"),
      500);
  EXPECT_EQ(metric_sample(body, "pg2kafka_test_sequence_acked_position"), 500);
  EXPECT_GT(metric_sample(body, "process_resident_memory_bytes"), 1e6);
  EXPECT_GE(metric_sample(body, "process_cpu_seconds_total"), 0);
  EXPECT_NE(body.find("# TYPE pg2kafka_delivery_latency_seconds histogram"), std::string::npos);
  expect_promtool_accepts(body);

  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait(20s), 0) << s.process->err();
}

TEST(Operations, ReadyzSaysReadyWithEachSidesHealth_AndNotReadyWhileTheSinkFails) {
  {
    Served s("\"count\": 0", "");
    auto deadline = std::chrono::steady_clock::now() + 20s;
    p2k_test::HttpAnswer a;
    while (std::chrono::steady_clock::now() < deadline) {
      a = http_get(s.port, "/readyz");
      if (a.status == 200) break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_NE(a.body.find("ready\npipeline: running\n"), std::string::npos) << a.body;
    EXPECT_NE(a.body.find("source 'test-sequence': ready: emitted"), std::string::npos) << a.body;
    EXPECT_NE(a.body.find("sink 'test-faulty': ready"), std::string::npos) << a.body;
    auto h = http_get(s.port, "/healthz");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.body.rfind("ok", 0), 0u) << h.body;
  }
  {
    // The source's own health says not ready.
    Served s("\"count\": 0, \"unready\": true", "");
    auto a = http_get(s.port, "/readyz");
    EXPECT_EQ(a.status, 503);
    EXPECT_NE(a.body.find("source 'test-sequence': not ready: told to be unready"),
              std::string::npos)
        << a.body;
    std::string body = s.metrics_until(
        [](const std::string& b) { return b.find("pg2kafka_ready 0") != std::string::npos; });
  }
  {
    // Every write fails transiently: the host says why.
    Served s("\"count\": 0", ", \"write_retries\": 1000000");
    auto deadline = std::chrono::steady_clock::now() + 20s;
    p2k_test::HttpAnswer a;
    while (std::chrono::steady_clock::now() < deadline) {
      a = http_get(s.port, "/readyz");
      if (a.status == 503 && a.body.find("sink 'test-faulty': not ready") != std::string::npos)
        break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(a.status, 503) << a.body;
    EXPECT_NE(a.body.find("sink 'test-faulty': not ready: could not take"), std::string::npos)
        << a.body;
    std::string body = s.metrics_until([](const std::string& b) {
      return metric_sample(b, "pg2kafka_retries_total{side=\"sink\"}") > 3 &&
             metric_sample(b, "pg2kafka_records_awaiting_retry") > 0;
    });
    EXPECT_EQ(metric_sample(body, "pg2kafka_records_delivered_total{topic=\"test.topic\"}"), 0);
    EXPECT_GT(metric_sample(body, "pg2kafka_records_retried_total{topic=\"test.topic\"}"), 0);
  }
}

TEST(Operations, HealthzSaysStuckWhenAPluginCallOutlastsTheLivenessTimeout) {
  p2k_test::TempDir files;
  std::string blocked = (files.path() / "blocked").string();
  Served s("\"count\": 0, \"block_poll_at\": 5, \"blocked_file\": \"" + blocked + "\"", "",
           ", \"http.liveness_timeout\": \"1s\", \"shutdown_timeout\": \"1s\"");
  auto deadline = std::chrono::steady_clock::now() + 20s;
  p2k_test::HttpAnswer a;
  while (std::chrono::steady_clock::now() < deadline) {
    a = http_get(s.port, "/healthz");
    if (a.status == 503) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(a.status, 503) << a.body;
  EXPECT_NE(a.body.find("stuck: the pipeline thread has been inside source 'test-sequence' poll"),
            std::string::npos)
      << a.body;
  EXPECT_NE(a.body.find("http.liveness_timeout (1.0 s)"), std::string::npos) << a.body;
  // Scrapes still answer while the pipeline thread is blocked.
  EXPECT_EQ(http_get(s.port, "/metrics").status, 200);
  s.process->signal(SIGTERM);
  EXPECT_TRUE(s.process->wait(30s).has_value());
}

TEST(Operations, TheEndpointRefusesWhatItDoesNotServe_AndSurvivesBadClients) {
  Served s("\"count\": 0", "");
  EXPECT_EQ(http_get(s.port, "/nope").status, 404);
  auto post = http_get(s.port, "/metrics", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD"), std::string::npos) << post.headers;
  auto head = http_get(s.port, "/metrics", "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.headers.find("Content-Length: "), std::string::npos);
  EXPECT_EQ(http_get(s.port, "/metrics?name=x").status, 200) << "a query string is ignored";
  EXPECT_EQ(p2k_test::http_raw(s.port, "NONSENSE\r\n\r\n").status, 400);
  EXPECT_EQ(
      p2k_test::http_raw(s.port, "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").status,
      400)
      << "a request with a body";
  std::string huge = "GET /metrics HTTP/1.1\r\nX-Fill: " + std::string(20000, 'a') + "\r\n\r\n";
  EXPECT_EQ(p2k_test::http_raw(s.port, huge).status, 400) << "headers over 8 KiB";
  // Clients that connect and send nothing hold no one up, and are dropped after 5 s.
  std::vector<std::thread> idle;
  std::vector<p2k_test::HttpAnswer> idle_answers(4);
  for (int i = 0; i < 4; ++i)
    idle.emplace_back([&, i] { idle_answers[i] = p2k_test::http_raw(s.port, "", 15s); });
  std::this_thread::sleep_for(200ms);
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(http_get(s.port, "/healthz").status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  for (auto& t : idle) t.join();
  for (const auto& a : idle_answers) EXPECT_EQ(a.status, 0) << "closed without an answer";
  s.process->signal(SIGTERM);
  EXPECT_EQ(s.process->wait(20s), 0) << s.process->err();
}

TEST(Operations, BadListenAddressesAreConfigurationErrors) {
  p2k_e2e::FaultyPipeline bad("", "", R"({"http.listen": "9464"})");
  auto r = bad.run();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("http.listen"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is not host:port"), std::string::npos) << r.err;
  p2k_e2e::FaultyPipeline name("", "", R"({"http.listen": "metrics.example.com:9464"})");
  r = name.run();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is not an IP address"), std::string::npos) << r.err;

  // A port already taken.
  Served first("\"count\": 0", "");
  p2k_e2e::FaultyPipeline taken(
      "", "", R"({"http.listen": "127.0.0.1:)" + std::to_string(first.port) + "\"}");
  r = taken.run();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("another process uses this port"), std::string::npos) << r.err;
}

TEST(Operations, StatusPrintsTheSourcesStateAsTextOrJson_AndExits5OnProblems) {
  p2k_e2e::FaultyPipeline p("\"count\": 7", "");
  auto base = std::vector<std::string>{"status", "--config", p.config, "--plugin-dir",
                                       p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")};
  auto text = p2k_test::run_pg2kafka(base);
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("source: test-sequence\ncount: 7\ntopics:\n  name        records\n"
                          "  test.topic  7\nproblems:\n  (none)\n"),
            std::string::npos)
      << text.out;
  auto with_json = base;
  with_json.insert(with_json.end(), {"--format", "json"});
  auto json = p2k_test::run_pg2kafka(with_json);
  EXPECT_EQ(json.exit_code, 0) << json.err;
  auto doc = boost::json::parse(json.out);
  EXPECT_EQ(doc.at("count").as_int64(), 7);

  p2k_e2e::FaultyPipeline troubled("\"status_problem\": \"the queue is on fire\"", "");
  auto t = p2k_test::run_pg2kafka({"status", "--config", troubled.config, "--plugin-dir",
                                   p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  EXPECT_EQ(t.exit_code, 5);
  EXPECT_NE(t.out.find("problems:\n  - the queue is on fire\n"), std::string::npos) << t.out;

  auto bad_format = base;
  bad_format.insert(bad_format.end(), {"--format", "yaml"});
  EXPECT_EQ(p2k_test::run_pg2kafka(bad_format).exit_code, 2);
}

TEST(Operations, StatusRefusesASourceWithoutAStatusOperation) {
  p2k_test::TempDir dir;
  std::string config = dir.write("p.json", R"({"source": {"plugin": "generator"},
      "sink": {"plugin": "stdout"}})");
  auto r = p2k_test::run_pg2kafka({"status", "--config", config});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("cannot describe its state: it has no status operation"), std::string::npos)
      << r.err;
}

TEST(Operations, JsonLogsAreOneObjectPerLine) {
  p2k_e2e::FaultyPipeline p("\"count\": 20, \"poll_retries\": 1", "");
  auto r = p.run({"--once", "--log-format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = p2k_test::lines(r.err);
  ASSERT_GE(lines.size(), 3u) << r.err;
  bool saw_warning = false, saw_summary = false;
  for (const auto& line : lines) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    ASSERT_FALSE(ec) << "not JSON: " << line;
    const auto& o = v.as_object();
    EXPECT_TRUE(std::regex_match(std::string(o.at("time").as_string()),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << line;
    std::string level(o.at("level").as_string());
    EXPECT_TRUE(level == "error" || level == "warn" || level == "info" || level == "debug");
    EXPECT_TRUE(o.at("component").is_string());
    std::string message(o.at("message").as_string());
    if (level == "warn" && message.find("failed to poll") != std::string::npos) saw_warning = true;
    if (message.find("pipeline stopped") != std::string::npos) {
      saw_summary = true;
      EXPECT_EQ(o.at("fields").at("delivered").as_int64(), 20) << line;
    }
  }
  EXPECT_TRUE(saw_warning) << r.err;
  EXPECT_TRUE(saw_summary) << r.err;

  // The pipeline file's log.format does the same; a bad --log-format is refused.
  p2k_e2e::FaultyPipeline from_file("\"count\": 2", "", R"({"log.format": "json"})");
  r = from_file.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& line : p2k_test::lines(r.err)) EXPECT_EQ(line.front(), '{') << line;
  r = from_file.run({"--once", "--log-format", "xml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown --log-format"), std::string::npos) << r.err;
}

}  // namespace
