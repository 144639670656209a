// A PostgreSQL crash and restart while the source runs: it reconnects and loses nothing. Runs
// alone (RUN_SERIAL): it restarts the fixture's cluster under everyone's feet.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>

#include "pg_test_support.hpp"
#include "test_support.hpp"

using namespace p2k_pg_test;

TEST(Restart, SourceReconnectsAfterImmediateRestart_LosingNothing) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t SELECT 'before' || g, g FROM generate_series(1, 20) g");
  LogSink logs;
  auto source = make_source(db.url(), {{"batch_size", "5"}}, &logs);
  source->open();
  // Five delivered and acknowledged, five delivered but not yet acknowledged.
  auto b1 = source->poll(5, std::chrono::milliseconds(0));
  ASSERT_TRUE(b1);
  source->ack(b1->last_position());
  auto b2 = source->poll(5, std::chrono::milliseconds(0));
  ASSERT_TRUE(b2);
  auto pending = to_events(*b2);

  restart_cluster();
  Session after(db.url());
  after.exec("INSERT INTO t SELECT 'after' || g, g FROM generate_series(1, 5) g");

  // The source notices, reconnects (RetryError in between) and goes on; the pending ones can
  // still be acknowledged.
  std::set<std::string> keys;
  for (const auto& e : to_events(*b1)) keys.insert(*e.key);
  for (const auto& e : pending) keys.insert(*e.key);
  auto rest = poll_until(*source, 15, /*ack=*/true, std::chrono::seconds(60));
  for (int i = 0; i < 50; ++i) {
    try {
      source->ack(pending.back().position);
      break;
    } catch (const pg2kafka::sdk::RetryError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::set<std::string> rest_keys;
  for (const auto& e : rest) {
    EXPECT_TRUE(rest_keys.insert(*e.key).second) << "returned twice by one instance: " << *e.key;
    keys.insert(*e.key);
  }
  EXPECT_EQ(keys.size(), 25u) << logs.all();
  for (int g = 1; g <= 20; ++g) EXPECT_TRUE(keys.count("before" + std::to_string(g)));
  for (int g = 1; g <= 5; ++g) EXPECT_TRUE(keys.count("after" + std::to_string(g)));
  EXPECT_TRUE(source->active());
  EXPECT_NE(logs.all().find("the connection holding the drain lock is gone"), std::string::npos)
      << "the restart went unnoticed:\n"
      << logs.all();
  EXPECT_EQ(after.value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "0");
}
