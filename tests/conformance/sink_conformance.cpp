// pg2kafka-sink-conformance: the contract tests every sink plugin must pass, ours or a third
// party's. Run it with --help for the flags. The plugin is driven through the host's own code
// (loading, option resolution, the instance wrapper and its outcome queue), as `pg2kafka run`
// drives it.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "conformance_common.hpp"
#include "plugin/plugin_instance.hpp"

using namespace pg2kafka;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

p2k_conformance::Flags g_flags = {
    {"plugin", {"", "The sink plugin file (pg2kafka-sink-NAME.so) to test.", true}},
    {"options",
     {"{}",
      "Its options, as a JSON object (as in a pipeline file's \"options\"; ${VAR} reads the "
      "environment). The destination must be reachable and healthy, and the topic writable."}},
    {"topic", {"pg2kafka.conformance", "The topic records are written to."}},
    {"failing-options",
     {"",
      "Optional: options under which the destination fails transiently or cannot be reached (a "
      "closed port, a full disk such as /dev/full). Enables the checks that such failures are "
      "RETRY (never FATAL, never OK), with a message naming each record."}},
    {"fatal-options",
     {"",
      "Optional: options under which the destination refuses for good (a missing topic that may "
      "not be created, a path that is a directory). Enables the check that such failures are "
      "FATAL or INVALID_CONFIG, never OK and never a crash."}},
};
const std::string& flag(const std::string& name) {
  return g_flags.at(name).value;
}
constexpr milliseconds kFlushTimeout{60000};

// Records whose memory lives as long as the fixture, with awkward content on purpose.
class RecordFactory {
 public:
  std::vector<p2k_record> make(size_t count, size_t value_size = 64) {
    std::vector<p2k_record> out;
    for (size_t i = 0; i < count; ++i) {
      uint64_t pos = ++next_;
      auto& s = storage_[pos];
      s.key = "key-" + std::to_string(pos % 7);
      s.value = "{\"n\":" + std::to_string(pos) + ",\"text\":\"quote \\\" backslash \\\\ \\u0001\"";
      if (s.value.size() < value_size)
        s.value += ",\"pad\":\"" + std::string(value_size - s.value.size(), 'x') + "\"";
      s.value += "}";
      s.id = "conformance-" + std::to_string(pos);
      s.header_name = "pg2kafka.test";
      s.header_value = "yes";
      s.header = p2k_header{{s.header_name.data(), s.header_name.size()},
                            {s.header_value.data(), s.header_value.size()}};
      out.push_back(record(pos));
    }
    return out;
  }

  // The record of a position made before, again (as the host writes it again).
  p2k_record record(uint64_t pos) {
    auto& s = storage_.at(pos);
    p2k_record r{};
    r.struct_size = sizeof(p2k_record);
    r.position = pos;
    r.topic = {flag("topic").data(), flag("topic").size()};
    // Every fifth record has a null key; every ninth an empty value.
    r.key = pos % 5 == 0 ? p2k_slice{nullptr, 0} : p2k_slice{s.key.data(), s.key.size()};
    r.value =
        pos % 9 == 0 ? p2k_slice{s.value.data(), 0} : p2k_slice{s.value.data(), s.value.size()};
    r.timestamp_ms = 1700000000000 + static_cast<int64_t>(pos);
    r.id = {s.id.data(), s.id.size()};
    r.headers = &s.header;
    r.header_count = 1;
    return r;
  }

  std::string id(uint64_t pos) const { return storage_.at(pos).id; }

 private:
  struct Stored {
    std::string key, value, id, header_name, header_value;
    p2k_header header;
  };
  uint64_t next_ = 0;
  std::map<uint64_t, Stored> storage_;
};

struct Report {
  p2k_status status;
  std::string message;
};

class SinkConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = plugin::load_plugin_file(flag("plugin"));
    ASSERT_EQ(plugin_->kind(), P2K_KIND_SINK) << flag("plugin") << " is not a sink plugin";
    config::Diagnostics d;
    options_ = p2k_conformance::resolve(*plugin_, flag("options"), d);
    ASSERT_TRUE(d.empty()) << d.format();
  }

  std::unique_ptr<plugin::SinkInstance> open_sink() {
    auto sink = std::make_unique<plugin::SinkInstance>(plugin_, options_);
    auto r = sink->open();
    EXPECT_TRUE(r.ok()) << "open failed: " << r.message;
    auto t = sink->prepare_topic(flag("topic"));
    EXPECT_TRUE(t.ok()) << "prepare_topic(" << flag("topic") << ") failed: " << t.message;
    return sink;
  }

  // Writes, flushes, and returns every report so far.
  std::map<uint64_t, std::vector<Report>> write_and_flush(plugin::SinkInstance& sink,
                                                          const std::vector<p2k_record>& records) {
    auto w = sink.write(records.data(), records.size());
    EXPECT_TRUE(w.ok()) << "write failed: " << w.message;
    auto f = sink.flush(kFlushTimeout);
    EXPECT_TRUE(f.ok()) << "flush did not complete: " << f.message;
    return collect(sink);
  }

  // Takes the reports queued so far. A report's status must be one a report may have.
  std::map<uint64_t, std::vector<Report>> collect(plugin::SinkInstance& sink) {
    for (auto& o : sink.outcomes().take()) {
      EXPECT_TRUE(o.status == P2K_OK || o.status == P2K_RETRY || o.status == P2K_FATAL)
          << "position " << o.position << " was reported with "
          << p2k_conformance::status_name(o.status) << ": a delivery report is OK, RETRY or FATAL";
      reports_[o.position].push_back(Report{o.status, std::move(o.message)});
    }
    return reports_;
  }

  // Every record reported exactly once, OK (each failure listed with its own message).
  void expect_each_ok_once(const std::vector<p2k_record>& records) {
    for (const auto& r : records) {
      const auto& got = reports_[r.position];
      ASSERT_EQ(got.size(), 1u) << "position " << r.position << " reported " << got.size()
                                << " times";
      EXPECT_EQ(got[0].status, P2K_OK)
          << "position " << r.position << ": " << p2k_conformance::status_name(got[0].status)
          << ": " << got[0].message;
    }
  }

  // Waits (as the host does, through the sink's poll or on the outcome queue) until `count`
  // positions were reported or the flush timeout passes, without calling flush.
  size_t wait_for(plugin::SinkInstance& sink, size_t count) {
    auto deadline = Clock::now() + kFlushTimeout;
    while (collect(sink).size() < count && Clock::now() < deadline) sink.wait(milliseconds(100));
    return reports_.size();
  }

  plugin::PluginHandle plugin_;
  config::ResolvedOptions options_;
  RecordFactory factory_;
  std::map<uint64_t, std::vector<Report>> reports_;
};

}  // namespace

TEST_F(SinkConformance, RequiredOptionsAreDeclaredAndEnforced) {
  for (const auto& o : plugin_->options()) {
    if (!(o.flags & P2K_OPT_REQUIRED)) continue;
    auto given = boost::json::parse(flag("options")).as_object();
    given.erase(o.name);
    config::Diagnostics d;
    p2k_conformance::resolve(*plugin_, boost::json::serialize(given), d);
    EXPECT_NE(d.format().find("required option '" + std::string(o.name) + "' is missing"),
              std::string::npos)
        << d.format();
  }
  config::Diagnostics d;
  auto given = boost::json::parse(flag("options")).as_object();
  given["conformance_no_such_option"] = 1;
  p2k_conformance::resolve(*plugin_, boost::json::serialize(given), d);
  EXPECT_FALSE(d.empty()) << "an unknown option was accepted";
}

TEST_F(SinkConformance, CreatesAndDestroysWithoutOpening) {
  plugin::SinkInstance sink(plugin_, options_);
  SUCCEED();
}

TEST_F(SinkConformance, ReportsEveryRecordExactlyOnce) {
  auto sink = open_sink();
  std::vector<p2k_record> all;
  for (size_t n : {1, 100, 37}) {
    auto batch = factory_.make(n);
    all.insert(all.end(), batch.begin(), batch.end());
    auto w = sink->write(batch.data(), batch.size());
    ASSERT_TRUE(w.ok()) << w.message;
    sink->wait(milliseconds(0));
  }
  auto f = sink->flush(kFlushTimeout);
  ASSERT_TRUE(f.ok()) << f.message;
  auto reports = collect(*sink);
  ASSERT_EQ(reports.size(), all.size()) << "not every record was reported";
  expect_each_ok_once(all);
}

// The host calls flush only when it shuts down: while it runs, it waits for reports through the
// sink's poll, or (a sink without poll) on its own. A sink that reports only from flush would
// stall every pipeline.
TEST_F(SinkConformance, ReportsWithoutFlush_ThroughPollOrItsOwnThreads) {
  auto sink = open_sink();
  bool has_poll = plugin_->descriptor().sink->poll != nullptr;
  auto batch = factory_.make(50);
  ASSERT_TRUE(sink->write(batch.data(), batch.size()).ok());
  EXPECT_EQ(wait_for(*sink, batch.size()), batch.size())
      << "without flush, only " << reports_.size() << " of " << batch.size()
      << " records were reported within " << kFlushTimeout.count() << " ms; the sink "
      << (has_poll ? "has a poll operation: it must serve reports there"
                   : "has no poll operation: it must report from write or its own threads");
  expect_each_ok_once(batch);
}

// While the host waits for reports it must not burn a core: a sink's poll blocks until it served
// a report or its timeout ran out, and a sink without poll lets the host wait on its own. (The
// SDK once gave every sink an empty poll, which made the host spin.) The bound is generous: a
// behaviour, not a speed.
TEST_F(SinkConformance, WaitingForReportsUsesNoCpu) {
  auto sink = open_sink();
  auto idle = [&](const char* when) {
    double cpu_before = p2k_conformance::thread_cpu_seconds();
    auto start = Clock::now();
    while (Clock::now() - start < milliseconds(1000)) {
      sink->wait(milliseconds(100));
      collect(*sink);
    }
    double wall = std::chrono::duration<double>(Clock::now() - start).count();
    double cpu = p2k_conformance::thread_cpu_seconds() - cpu_before;
    EXPECT_LT(cpu, wall / 4) << "waiting for reports " << when << " used " << cpu << " s of CPU in "
                             << wall << " s: the sink's "
                             << (plugin_->descriptor().sink->poll ? "poll returns without waiting"
                                                                  : "reports keep the host busy");
  };
  idle("with nothing written");
  auto batch = factory_.make(20);
  ASSERT_TRUE(sink->write(batch.data(), batch.size()).ok());
  ASSERT_TRUE(sink->flush(kFlushTimeout).ok());
  idle("after every record was reported");
  collect(*sink);
  expect_each_ok_once(batch);
}

TEST_F(SinkConformance, FlushIsABarrier) {
  auto sink = open_sink();
  auto batch = factory_.make(50);
  auto reports = write_and_flush(*sink, batch);
  EXPECT_EQ(reports.size(), batch.size()) << "flush returned before every record was reported";
  // Nothing may arrive after the barrier.
  std::this_thread::sleep_for(milliseconds(200));
  sink->wait(milliseconds(50));
  EXPECT_TRUE(sink->outcomes().take().empty()) << "a report arrived after flush returned";
}

TEST_F(SinkConformance, FlushWithNothingWrittenReturnsAtOnce) {
  auto sink = open_sink();
  auto start = Clock::now();
  auto f = sink->flush(milliseconds(5000));
  EXPECT_TRUE(f.ok()) << f.message;
  EXPECT_LT(Clock::now() - start, milliseconds(4000));
}

TEST_F(SinkConformance, KeepsWorkingAfterAFlush) {
  auto sink = open_sink();
  auto first = factory_.make(10);
  write_and_flush(*sink, first);
  auto second = factory_.make(10);
  auto reports = write_and_flush(*sink, second);
  EXPECT_EQ(reports.size(), 20u);
}

// After a RETRY the host writes the record again, and with it the later records of its key that
// were reported OK meanwhile (the per-key ordering rule of ABI 1.1): a sink must accept a position
// it already reported and report it exactly once more.
TEST_F(SinkConformance, AcceptsRecordsWrittenAgain_AsTheHostDoesAfterARetry) {
  auto sink = open_sink();
  auto batch = factory_.make(10);
  write_and_flush(*sink, batch);
  std::vector<p2k_record> again;
  for (uint64_t p = batch[4].position; p <= batch.back().position; ++p)
    again.push_back(factory_.record(p));
  auto more = factory_.make(5);
  again.insert(again.end(), more.begin(), more.end());
  auto reports = write_and_flush(*sink, again);
  for (const auto& r : batch) {
    size_t expected = r.position >= batch[4].position ? 2 : 1;
    ASSERT_EQ(reports[r.position].size(), expected) << "position " << r.position;
    EXPECT_EQ(reports[r.position].back().status, P2K_OK) << reports[r.position].back().message;
  }
  for (const auto& r : more) ASSERT_EQ(reports[r.position].size(), 1u);
}

TEST_F(SinkConformance, ReportsALargeRecordExactlyOnce) {
  auto sink = open_sink();
  auto batch = factory_.make(1, 256 * 1024);
  write_and_flush(*sink, batch);
  expect_each_ok_once(batch);
}

TEST_F(SinkConformance, ClosesCleanlyWithRecordsInFlight) {
  auto sink = open_sink();
  auto batch = factory_.make(20);
  ASSERT_TRUE(sink->write(batch.data(), batch.size()).ok());
  sink.reset();  // close and destroy without a flush: must not crash or hang
  SUCCEED();
}

namespace {

// Drives the sink with `options` through open, prepare_topic and one write of 20 records, and
// returns what happened: the statuses the operations returned and every report.
struct FailureRun {
  std::vector<std::pair<std::string, plugin::CallResult>> failed_calls;  // (operation, result)
  std::map<uint64_t, std::vector<Report>> reports;
  bool write_failed = false;
  std::vector<p2k_record> written;
};

FailureRun run_failing(const plugin::PluginHandle& plugin, const std::string& options,
                       RecordFactory& factory) {
  FailureRun run;
  config::Diagnostics d;
  auto resolved = p2k_conformance::resolve(*plugin, options, d);
  EXPECT_TRUE(d.empty()) << d.format();
  std::unique_ptr<plugin::SinkInstance> sink;
  try {
    sink = std::make_unique<plugin::SinkInstance>(plugin, resolved);
  } catch (const config::ConfigError& e) {
    run.failed_calls.push_back({"create", plugin::CallResult{P2K_INVALID_CONFIG, e.what()}});
    return run;
  }
  if (auto r = sink->open(); !r.ok()) {
    run.failed_calls.push_back({"open", r});
    return run;
  }
  if (auto r = sink->prepare_topic(flag("topic")); !r.ok()) {
    run.failed_calls.push_back({"prepare_topic", r});
    return run;
  }
  run.written = factory.make(20);
  auto w = sink->write(run.written.data(), run.written.size());
  if (!w.ok()) {
    run.failed_calls.push_back({"write", w});
    run.write_failed = true;
    // A failed write accepted nothing: none of its records may ever be reported.
    sink->flush(milliseconds(1000));
    sink->wait(milliseconds(500));
  } else {
    auto deadline = Clock::now() + kFlushTimeout;
    while (Clock::now() < deadline) {
      for (auto& o : sink->outcomes().take())
        run.reports[o.position].push_back(Report{o.status, std::move(o.message)});
      if (run.reports.size() == run.written.size()) break;
      sink->wait(milliseconds(100));
    }
  }
  for (auto& o : sink->outcomes().take())
    run.reports[o.position].push_back(Report{o.status, std::move(o.message)});
  return run;
}

// The reports of a run with a failing destination: each record at most once, every failure with
// a message that names its event, and at least one failure.
void expect_failures_reported_per_record(const FailureRun& run, const RecordFactory& factory,
                                         bool transient) {
  if (run.write_failed) {
    EXPECT_TRUE(run.reports.empty())
        << "write failed as a whole, so it accepted nothing, yet " << run.reports.size()
        << " of its records were reported (the host fails them all itself)";
    return;
  }
  size_t failures = 0;
  for (const auto& r : run.written) {
    auto it = run.reports.find(r.position);
    ASSERT_TRUE(it != run.reports.end()) << "position " << r.position << " was never reported";
    ASSERT_EQ(it->second.size(), 1u)
        << "position " << r.position << " reported " << it->second.size() << " times";
    const Report& rep = it->second[0];
    if (rep.status == P2K_OK) continue;
    ++failures;
    if (transient) {
      EXPECT_EQ(rep.status, P2K_RETRY)
          << "position " << r.position << ": a destination failing for now is RETRY, not "
          << p2k_conformance::status_name(rep.status) << ": " << rep.message;
    }
    EXPECT_NE(rep.message.find(factory.id(r.position)), std::string::npos)
        << "position " << r.position << ": the failure message should name event "
        << factory.id(r.position) << ": '" << rep.message << "'";
  }
  EXPECT_GT(failures, 0u) << "every record was reported OK although the destination fails";
}

}  // namespace

TEST_F(SinkConformance, FailingDestination_IsRetry_WithAMessagePerRecord) {
  if (flag("failing-options").empty()) GTEST_SKIP() << "no --failing-options given";
  auto run = run_failing(plugin_, flag("failing-options"), factory_);
  for (const auto& [operation, r] : run.failed_calls) {
    EXPECT_EQ(r.status, P2K_RETRY)
        << operation << " returned " << p2k_conformance::status_name(r.status)
        << " for a destination that fails for now: " << r.message;
    EXPECT_FALSE(r.message.empty()) << operation << " failed without a message";
  }
  if (run.failed_calls.empty() || run.write_failed)
    expect_failures_reported_per_record(run, factory_, true);
}

TEST_F(SinkConformance, RefusingDestination_IsFatalOrInvalidConfig_NeverOk) {
  if (flag("fatal-options").empty()) GTEST_SKIP() << "no --fatal-options given";
  auto run = run_failing(plugin_, flag("fatal-options"), factory_);
  if (!run.failed_calls.empty()) {
    const auto& [operation, r] = run.failed_calls.back();
    EXPECT_TRUE(r.status == P2K_FATAL || r.status == P2K_INVALID_CONFIG)
        << operation << " returned " << p2k_conformance::status_name(r.status)
        << " for a destination that refuses for good: " << r.message;
    EXPECT_FALSE(r.message.empty()) << operation << " failed without a message";
    if (!run.write_failed) return;
  }
  expect_failures_reported_per_record(run, factory_, false);
  for (const auto& [position, reports] : run.reports)
    for (const auto& rep : reports)
      EXPECT_NE(rep.status, P2K_RETRY) << "position " << position << ": " << rep.message;
}

int main(int argc, char** argv) {
  int code = p2k_conformance::parse_command_line(
      argc, argv,
      "The contract every pg2kafka sink plugin keeps: required options enforced, create without "
      "I/O, every record reported exactly once (without flush being called, and without the "
      "host spinning while it waits), flush as a barrier, positions written again after a "
      "retry, clean close with records in flight; with --failing-options / --fatal-options, "
      "failures mapped to RETRY / FATAL with a message naming each record, and nothing reported "
      "for a write that failed as a whole.",
      g_flags);
  if (code >= 0) return code;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
