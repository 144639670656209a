// The host's metrics and HTTP pieces that need no running pipeline: the exposition format, the
// checks of plugins' samples, the listen address, the status text layout.
#include <gtest/gtest.h>

#include <pg2kafka/sdk/metrics.hpp>

#include <cmath>

#include "cli/status_text.hpp"
#include "http/server.hpp"
#include "metrics/exposition.hpp"
#include "metrics/host_metrics.hpp"

namespace {

using namespace pg2kafka;

TEST(Exposition, WritesEachFamilyOnceWithHelpAndType_AndEscapesLabelValues) {
  metrics::Exposition e;
  EXPECT_TRUE(e.add("b_total", "Bees.", P2K_METRIC_COUNTER, {{"topic", "x"}}, 3));
  EXPECT_TRUE(e.add("a", "A gauge\nwith a newline \\ and backslash.", P2K_METRIC_GAUGE,
                    {{"path", "q\"uo\\te\nd"}}, 0.25));
  EXPECT_TRUE(
      e.add("b_total", "ignored: the first help stays", P2K_METRIC_COUNTER, {{"topic", "y"}}, 4));
  EXPECT_FALSE(e.add("b_total", "", P2K_METRIC_GAUGE, {}, 1)) << "another type";
  EXPECT_EQ(e.text(),
            "# HELP a A gauge\\nwith a newline \\\\ and backslash.\n"
            "# TYPE a gauge\n"
            "a{path=\"q\\\"uo\\\\te\\nd\"} 0.25\n"
            "# HELP b_total Bees.\n"
            "# TYPE b_total counter\n"
            "b_total{topic=\"x\"} 3\n"
            "b_total{topic=\"y\"} 4\n");
}

TEST(Exposition, WritesHistogramsWithCumulativeBucketsSumAndCount) {
  metrics::Exposition e;
  std::vector<double> bounds{0.1, 1};
  std::vector<uint64_t> counts{2, 5};
  e.add_histogram("lat_seconds", "Latency.", {}, bounds, counts, 7, 12.5);
  EXPECT_EQ(e.text(),
            "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 2\n"
            "lat_seconds_bucket{le=\"1\"} 5\n"
            "lat_seconds_bucket{le=\"+Inf\"} 7\n"
            "lat_seconds_sum 12.5\nlat_seconds_count 7\n");
  EXPECT_EQ(metrics::format_value(NAN), "NaN");
  EXPECT_EQ(metrics::format_value(-INFINITY), "-Inf");
  EXPECT_EQ(metrics::format_value(1e20), "1e+20");
}

TEST(PluginSamples, PrefixesWithThePluginsName_AndDropsEachBadSampleWithOneWarning) {
  std::vector<std::string> warnings;
  metrics::PluginSamples samples("pg-outbox", [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_EQ(samples.prefix(), "pg2kafka_pg_outbox_");
  metrics::Exposition out;
  samples.begin(out);
  sdk::MetricWriter w(&metrics::PluginSamples::callback, &samples);
  w.counter("events_total", "Events.", 5, {{"table", "public.orders"}});
  w.counter("events", "No _total.", 1);
  w.counter("events", "Again: warned once.", 1);
  w.gauge("lag_total", "A gauge named like a counter.", 1);
  w.gauge("Upper", "Bad name.", 1);
  w.gauge("ok", "Bad label.", 1, {{"le", "1"}});
  w.gauge("ok2", "Bad label name.", 1, {{"Bad", "1"}});
  w.gauge("long_label", "A long value.", 1, {{"v", std::string(300, 'x')}});
  w.counter("nan_total", "A NaN counter.", NAN);
  w.gauge("nan_gauge", "NaN is a fine gauge.", NAN);
  std::vector<sdk::Label> many;
  for (int i = 0; i < 9; ++i) many.emplace_back("l" + std::to_string(i), "v");
  w.gauge("many_labels", "Nine labels.", 1, many);
  sdk::Histogram h({1, 2});
  h.observe(0.5);
  h.observe(1.5);
  h.observe(5);
  h.write(w, "size_bytes", "A histogram.");
  std::string text = out.text();
  EXPECT_NE(text.find("pg2kafka_pg_outbox_events_total{table=\"public.orders\"} 5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pg2kafka_pg_outbox_nan_gauge NaN\n"), std::string::npos);
  EXPECT_NE(text.find("pg2kafka_pg_outbox_size_bytes_bucket{le=\"2\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("pg2kafka_pg_outbox_size_bytes_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("pg2kafka_pg_outbox_size_bytes_sum 7\n"), std::string::npos);
  for (const char* dropped : {"pg_outbox_events ", "lag_total", "Upper", "pg_outbox_ok ", "ok2",
                              "long_label", "nan_total", "many_labels"})
    EXPECT_EQ(text.find(dropped), std::string::npos) << dropped << " in\n" << text;
  ASSERT_EQ(warnings.size(), 8u);
  EXPECT_NE(warnings[0].find("plugin 'pg-outbox' reported metric 'events', which is dropped: a "
                             "counter's name ends in _total"),
            std::string::npos)
      << warnings[0];
}

TEST(PluginSamples, APluginCannotAddSamplesToAFamilyOfAnotherType) {
  std::vector<std::string> warnings;
  metrics::PluginSamples samples("x", [&](const std::string& w) { warnings.push_back(w); });
  metrics::Exposition out;
  out.add("pg2kafka_x_up", "The host's.", P2K_METRIC_GAUGE, {}, 1);
  samples.begin(out);
  sdk::MetricWriter w(&metrics::PluginSamples::callback, &samples);
  w.histogram("up", "A clash.", std::vector<double>{1.0}, std::vector<uint64_t>{1}, 1, 1);
  EXPECT_EQ(warnings.size(), 1u);
  EXPECT_EQ(out.text(),
            "# HELP pg2kafka_x_up The host's.\n# TYPE pg2kafka_x_up gauge\n"
            "pg2kafka_x_up 1\n");
}

TEST(HostMetrics, CountsPerTopicAndWritesTheProcessFigures) {
  metrics::HostMetrics m;
  m.topic("a").delivered.add(3);
  m.topic("b").delivered.add();
  m.topic("a").delivered.add();
  m.delivery_latency.observe(0.003);
  m.delivery_latency.observe(7200);
  m.set_sink_trouble("down");
  EXPECT_EQ(m.sink_trouble(), "down");
  m.clear_sink_trouble();
  EXPECT_FALSE(m.sink_trouble());
  metrics::Exposition out;
  m.write(out);
  std::string text = out.text();
  EXPECT_NE(text.find("pg2kafka_records_delivered_total{topic=\"a\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("pg2kafka_records_delivered_total{topic=\"b\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("pg2kafka_delivery_latency_seconds_bucket{le=\"0.0025\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("pg2kafka_delivery_latency_seconds_bucket{le=\"0.005\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("pg2kafka_delivery_latency_seconds_bucket{le=\"3600\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("pg2kafka_delivery_latency_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(text.find("process_open_fds "), std::string::npos);
  EXPECT_NE(text.find("pg2kafka_phase{phase=\"starting\"} 1\n"), std::string::npos);
}

TEST(ListenAddress, AcceptsAddressesOfThisHost_AndExplainsWhatItRefuses) {
  std::string why;
  auto a = http::parse_listen_address("127.0.0.1:9464", why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, 9464);
  EXPECT_TRUE(a->loopback);
  a = http::parse_listen_address("[::1]:0", why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  EXPECT_TRUE(a->loopback);
  a = http::parse_listen_address("localhost:80", why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  a = http::parse_listen_address("0.0.0.0:9464", why);
  ASSERT_TRUE(a);
  EXPECT_FALSE(a->loopback);
  for (const auto& [bad, message] : std::vector<std::pair<std::string, std::string>>{
           {"9464", "is not host:port"},
           {":9464", "give the address to listen on as well as the port"},
           {"127.0.0.1:70000", "is not a number from 0 to 65535"},
           {"127.0.0.1:9x", "is not a number"},
           {"::1:9464", "write an IPv6 address in brackets"},
           {"example.com:9464", "is not an IP address"}}) {
    why.clear();
    EXPECT_FALSE(http::parse_listen_address(bad, why)) << bad;
    EXPECT_NE(why.find(message), std::string::npos) << bad << ": " << why;
  }
}

TEST(StatusText, LaysOutScalarsSectionsTablesAndLists_AndNeutralisesControlCharacters) {
  auto doc = boost::json::parse(R"({
    "database": "shop\u001b[2J", "schema_version": 11, "ok": true, "age": 1.25, "none": null,
    "queue": {"events": 3, "bytes": 1024},
    "tables": [{"table": "public.orders", "events": 3}, {"table": "x", "events": 10, "extra": 1}],
    "problems": ["a", "b"], "empty": []})");
  EXPECT_EQ(cli::status_text(doc.as_object()),
            "database: shop\\x1b[2J\n"
            "schema_version: 11\n"
            "ok: yes\n"
            "age: 1.2\n"
            "none: -\n"
            "queue:\n"
            "  events: 3\n"
            "  bytes: 1024\n"
            "tables:\n"
            "  table          events  extra\n"
            "  public.orders  3\n"
            "  x              10      1\n"
            "problems:\n"
            "  - a\n"
            "  - b\n"
            "empty:\n"
            "  (none)\n");
}

}  // namespace
