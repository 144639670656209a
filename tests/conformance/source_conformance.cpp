// pg2kafka-source-conformance: the contract tests every source plugin must pass, ours or a third
// party's. Run it with --help for the flags. The plugin is driven through the host's own code, as
// `pg2kafka run` drives it.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include <pg2kafka/sdk/plugin.hpp>

#include "conformance_common.hpp"
#include "plugin/plugin_instance.hpp"

using namespace pg2kafka;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

p2k_conformance::Flags g_flags = {
    {"plugin", {"", "The source plugin file (pg2kafka-source-NAME.so) to test.", true}},
    {"options",
     {"{}",
      "Its options, as a JSON object (as in a pipeline file's \"options\"; ${VAR} reads the "
      "environment). The origin must be reachable, and used by nothing else while the suite "
      "runs: the suite acknowledges (removes) what it reads."}},
    {"produce",
     {"",
      "A shell command that makes new records available at the origin (inserts rows into a "
      "tracked table, say), run before each check that needs records. Not needed for a source "
      "that has records of its own (the generator)."}},
};
const std::string& flag(const std::string& name) {
  return g_flags.at(name).value;
}

// How long a poll may take beyond the timeout it was given (a round trip to the origin).
constexpr milliseconds kSlack{3000};

struct Seen {
  uint64_t position;
  std::string id;
};

class SourceConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = plugin::load_plugin_file(flag("plugin"));
    ASSERT_EQ(plugin_->kind(), P2K_KIND_SOURCE) << flag("plugin") << " is not a source plugin";
    config::Diagnostics d;
    options_ = p2k_conformance::resolve(*plugin_, flag("options"), d);
    ASSERT_TRUE(d.empty()) << d.format();
  }

  std::unique_ptr<plugin::SourceInstance> open_source() {
    auto source = std::make_unique<plugin::SourceInstance>(plugin_, options_);
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (true) {
      auto r = source->open();
      if (r.ok()) break;
      if (r.status != P2K_RETRY || Clock::now() > deadline) {
        ADD_FAILURE() << "open failed: " << r.message;
        return nullptr;
      }
      std::this_thread::sleep_for(milliseconds(200));
    }
    std::vector<std::string> topics;
    auto t = source->list_topics(topics);
    EXPECT_TRUE(t.ok()) << "list_topics failed: " << t.message;
    for (const auto& topic : topics)
      EXPECT_FALSE(topic.empty()) << "list_topics gave an empty name";
    return source;
  }

  void produce() {
    if (flag("produce").empty()) return;
    int rc = std::system(flag("produce").c_str());
    ASSERT_EQ(rc, 0) << "--produce command failed: " << flag("produce");
  }

  // Polls until the source has nothing left (two empty polls in a row) or `limit` records were
  // seen, checking every batch; returns the records seen. Positions must increase across every
  // call on one instance.
  std::vector<Seen> drain(plugin::SourceInstance& source, size_t max_records = 100,
                          size_t limit = 500) {
    std::vector<Seen> out;
    int empty = 0;
    auto deadline = Clock::now() + std::chrono::seconds(120);
    while (empty < 2 && out.size() < limit && Clock::now() < deadline) {
      p2k_batch batch{};
      auto r = source.poll(max_records, milliseconds(200), batch);
      if (r.status == P2K_RETRY) {
        std::this_thread::sleep_for(milliseconds(100));
        continue;
      }
      EXPECT_TRUE(r.ok()) << "poll failed: " << r.message;
      if (!r.ok()) break;
      if (batch.count == 0) {
        ++empty;
        continue;
      }
      empty = 0;
      EXPECT_LE(batch.count, max_records) << "a batch holds more records than asked for";
      for (size_t i = 0; i < batch.count; ++i) {
        const p2k_record& rec = batch.records[i];
        EXPECT_GE(rec.struct_size, P2K_SIZE_THROUGH(p2k_record, header_count));
        if (last_position_) {
          EXPECT_GT(rec.position, *last_position_)
              << "positions must strictly increase in the order poll returns records";
        }
        last_position_ = rec.position;
        EXPECT_TRUE(rec.topic.data && rec.topic.size > 0)
            << "position " << rec.position << " has no topic";
        EXPECT_NE(rec.value.data, nullptr) << "position " << rec.position << " has no value";
        EXPECT_TRUE(rec.header_count == 0 || rec.headers) << "position " << rec.position;
        std::string id(pg2kafka::sdk::view(rec.id));
        EXPECT_FALSE(id.empty()) << "position " << rec.position
                                 << " has no event id (consumers de-duplicate on it)";
        out.push_back(Seen{rec.position, id});
      }
      source.release(batch.handle);
    }
    EXPECT_TRUE(empty == 2 || out.size() >= limit) << "the source did not run dry within 120 s";
    return out;
  }

  void ack(plugin::SourceInstance& source, uint64_t through) {
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (true) {
      auto r = source.ack(through);
      if (r.ok()) return;
      ASSERT_EQ(r.status, P2K_RETRY) << "ack(" << through << ") failed: " << r.message;
      ASSERT_LT(Clock::now(), deadline) << "ack kept failing: " << r.message;
      std::this_thread::sleep_for(milliseconds(200));
    }
  }

  plugin::PluginHandle plugin_;
  config::ResolvedOptions options_;
  std::optional<uint64_t> last_position_;
};

}  // namespace

TEST_F(SourceConformance, RequiredOptionsAreDeclaredAndEnforced) {
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
}

TEST_F(SourceConformance, CreatesAndDestroysWithoutOpening) {
  plugin::SourceInstance source(plugin_, options_);
  SUCCEED();
}

TEST_F(SourceConformance, PositionsIncrease_AndBatchesHoldAtMostWhatWasAskedFor) {
  auto source = open_source();
  ASSERT_TRUE(source);
  produce();
  std::vector<Seen> seen;
  for (size_t max : {1, 3, 100}) {
    auto part = drain(*source, max);
    seen.insert(seen.end(), part.begin(), part.end());
    if (!part.empty()) produce();
  }
  ASSERT_FALSE(seen.empty()) << "the source returned no records: give --produce, or options with "
                                "which it has records";
  // Nothing acknowledged: the records stay for the next check.
}

// At-least-once: what a source returned but never saw acknowledged (the process died, or
// stopped) comes back from the next instance; what it saw acknowledged may be gone.
TEST_F(SourceConformance, UnacknowledgedRecordsComeBackAfterARestart) {
  std::vector<Seen> first;
  {
    auto source = open_source();
    ASSERT_TRUE(source);
    produce();
    first = drain(*source);
    ASSERT_GE(first.size(), 2u) << "the source returned fewer than 2 records: give --produce, "
                                   "or options with which it has records";
    ack(*source, first[first.size() / 2 - 1].position);
  }  // closed and destroyed: the rest was never acknowledged
  std::set<std::string> unacked;
  for (size_t i = first.size() / 2; i < first.size(); ++i) unacked.insert(first[i].id);

  last_position_.reset();  // a new instance numbers as it likes
  auto again = open_source();
  ASSERT_TRUE(again);
  auto second = drain(*again);
  std::set<std::string> second_ids;
  for (const auto& s : second) second_ids.insert(s.id);
  for (const auto& id : unacked)
    EXPECT_TRUE(second_ids.count(id)) << "event " << id
                                      << " was returned but not acknowledged, and the next "
                                         "instance did not return it: it would be lost";
  if (!second.empty()) ack(*again, second.back().position);
}

// An idle poll waits at most its timeout (the host relies on it to notice a stop signal and to
// serve delivery reports); timeout 0 returns at once.
TEST_F(SourceConformance, AnEmptyPollRespectsItsTimeout) {
  auto source = open_source();
  ASSERT_TRUE(source);
  auto seen = drain(*source, 1000, SIZE_MAX);
  if (!seen.empty()) ack(*source, seen.back().position);
  for (milliseconds timeout : {milliseconds(0), milliseconds(300), milliseconds(1000)}) {
    p2k_batch batch{};
    auto start = Clock::now();
    auto r = source->poll(10, timeout, batch);
    auto took = Clock::now() - start;
    ASSERT_TRUE(r.ok()) << r.message;
    if (batch.count) source->release(batch.handle);
    EXPECT_LE(took, timeout + kSlack)
        << "poll(timeout " << timeout.count() << " ms) with nothing pending took "
        << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  }
}

// A source with an interrupt (ABI 1.2) makes a blocked call return soon when the host's stop is
// forced, from another thread, and fails every later call at once with RETRY; close still works.
TEST_F(SourceConformance, AnInterruptEndsAWaitingPollSoon_AndLaterPollsFailAtOnce) {
  auto source = open_source();
  ASSERT_TRUE(source);
  if (!source->interruptible()) GTEST_SKIP() << "the source has no interrupt operation";
  auto seen = drain(*source, 1000, SIZE_MAX);
  if (!seen.empty()) ack(*source, seen.back().position);
  std::thread interrupter([&] {
    std::this_thread::sleep_for(milliseconds(300));
    source->interrupt();
  });
  p2k_batch batch{};
  auto start = Clock::now();
  auto r = source->poll(10, milliseconds(30'000), batch);
  auto took = Clock::now() - start;
  interrupter.join();
  if (r.ok() && batch.count) source->release(batch.handle);
  EXPECT_LT(took, milliseconds(300) + kSlack)
      << "an interrupted poll(timeout 30 s) took "
      << std::chrono::duration_cast<milliseconds>(took).count() << " ms";
  start = Clock::now();
  auto later = source->poll(10, milliseconds(5'000), batch);
  EXPECT_EQ(later.status, P2K_RETRY) << "a poll after the interrupt: " << later.message;
  EXPECT_LT(Clock::now() - start, milliseconds(1000)) << "and at once";
}

int main(int argc, char** argv) {
  int code = p2k_conformance::parse_command_line(
      argc, argv,
      "The contract every pg2kafka source plugin keeps: required options enforced, create "
      "without I/O, positions strictly increasing, batches no larger than asked, every record "
      "with a topic, a value and an event id, records returned but not acknowledged returned "
      "again by the next instance, an empty poll that waits no longer than its timeout, and (for a "
      "source with an interrupt) an interrupted poll that returns soon.",
      g_flags);
  if (code >= 0) return code;
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
