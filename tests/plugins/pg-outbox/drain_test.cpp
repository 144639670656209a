// Draining the queue: commit order, positions and acks, at-least-once, standby takeover, the
// acknowledged=keep mode, notifications and connection errors.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "pg_test_support.hpp"
#include "test_support.hpp"

using namespace p2k_pg_test;
using pg2kafka::pg_outbox::OutboxSource;
using std::chrono::milliseconds;
namespace json = boost::json;

TEST(Drain, EventsCommittedOutOfIdOrderAreAllDelivered) {
  TestDatabase db;
  tracked_table(db.sql());
  auto source = make_source(db.url());
  source->open();
  Session slow(db.url()), fast(db.url());
  slow.exec("BEGIN");
  slow.exec("INSERT INTO t VALUES ('slow', 1)");  // takes the lower queue id
  fast.exec("INSERT INTO t VALUES ('fast', 2)");  // higher id, commits first
  auto first = drain(*source);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].key, "fast");
  slow.exec("COMMIT");
  auto second = drain(*source);
  ASSERT_EQ(second.size(), 1u) << "the event of the transaction that committed last was lost";
  EXPECT_EQ(second[0].key, "slow");
  EXPECT_GT(second[0].position, first[0].position);
  // Its queue id was indeed lower than the one delivered before it.
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Drain, EventOfALongOpenTransactionArrives_AfterManyLaterWindows) {
  // Later windows start their scan past what earlier windows delivered; an event whose low id
  // was taken by a transaction open across all of them must still be found when it commits.
  TestDatabase db;
  tracked_table(db.sql());
  auto source = make_source(db.url());
  source->open();
  drain(*source);
  Session slow(db.url()), fast(db.url());
  slow.exec("BEGIN");
  slow.exec("INSERT INTO t VALUES ('slow', 0)");
  for (int round = 1; round <= 5; ++round) {
    fast.exec("INSERT INTO t SELECT 'fast' || g, g FROM generate_series(1, 20) g");
    auto events = drain(*source);
    ASSERT_EQ(events.size(), 20u) << "round " << round;
  }
  slow.exec("COMMIT");
  fast.exec("INSERT INTO t VALUES ('after', 1)");
  auto last = drain(*source);
  ASSERT_EQ(last.size(), 2u) << "the long transaction's event was lost";
  EXPECT_EQ(last[0].key, "slow");
  EXPECT_EQ(last[1].key, "after");
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Drain, PerKeyOrderIsCommitOrder_UnderConcurrentWriters) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE counters (k text PRIMARY KEY, seq int)");
  db.sql().exec("INSERT INTO counters SELECT 'key' || g, 0 FROM generate_series(1, 8) g");
  db.sql().exec("SELECT pg2kafka.setup('counters', 'k')");
  auto source = make_source(db.url(), {{"batch_size", "37"}});
  source->open();
  constexpr int kWriters = 4, kUpdates = 150;
  std::atomic<bool> failed{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      try {
        Session s(db.url());
        for (int i = 0; i < kUpdates; ++i) {
          std::string key = "key" + std::to_string(1 + (i * 7 + w) % 8);
          if (i % 3 == 0) {
            // Some transactions touch two keys, always in the same order (no deadlocks); the
            // first statement's queue id is then older than other writers' later commits.
            std::string other = "key" + std::to_string(1 + (i + w) % 8);
            if (other < key) std::swap(key, other);
            s.exec("BEGIN");
            s.exec("UPDATE counters SET seq = seq + 1 WHERE k = '" + key + "'");
            s.exec("UPDATE counters SET seq = seq + 1 WHERE k = '" + other + "'");
            s.exec("COMMIT");
          } else {
            s.exec("UPDATE counters SET seq = seq + 1 WHERE k = '" + key + "'");
          }
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "writer " << w << ": " << e.what();
        failed = true;
      }
    });
  std::vector<Event> events;
  std::atomic<bool> done{false};
  std::thread stopper([&] {
    for (auto& t : writers) t.join();
    done = true;
  });
  while (!done) {
    auto some = poll_until(*source, 1, true, std::chrono::seconds(1));
    events.insert(events.end(), some.begin(), some.end());
  }
  stopper.join();
  auto rest = drain(*source);
  events.insert(events.end(), rest.begin(), rest.end());
  ASSERT_FALSE(failed);
  std::map<std::string, int64_t> last;
  size_t updates = 0;
  for (const auto& e : events) {
    if (e.statement() != "UPDATE") continue;
    ++updates;
    int64_t seq = e.data().as_object().at("seq").as_int64();
    EXPECT_EQ(seq, last[*e.key] + 1) << "key " << *e.key << " out of order or missing";
    last[*e.key] = seq;
  }
  int64_t total = 0;
  for (auto& [k, v] : last) total += v;
  EXPECT_EQ(static_cast<int64_t>(updates), total);
  EXPECT_EQ(db.sql().value("SELECT sum(seq) FROM counters"), std::to_string(total));
}

TEST(Drain, ReadsABacklogThroughThePrimaryKey_EvenWhenTheQueueWasAnalyzedEmpty) {
  // Statistics of an empty queue would make the planner scan and sort the whole table for every
  // page of a backlog; the drain session must keep to the primary key's order.
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("ANALYZE pg2kafka.event_batches");
  insert_one_by_one(db.sql(), 1, 5000);
  {
    auto source = make_source(db.url(), {{"batch_size", "100"}});
    source->open();
    EXPECT_EQ(drain(*source).size(), 5000u);
    source->close();  // its backend exits and reports its statistics
  }
  // The counters arrive once the drain's backend has exited: wait for its index scans to show.
  std::string idx = "0", seq;
  for (int i = 0; i < 100 && idx == "0"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    db.sql().exec("SELECT pg_stat_clear_snapshot()");
    idx = db.sql().value(
        "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables "
        "WHERE schemaname = 'pg2kafka' AND relname = 'event_batches'");
  }
  seq = db.sql().value(
      "SELECT seq_scan FROM pg_stat_user_tables "
      "WHERE schemaname = 'pg2kafka' AND relname = 'event_batches'");
  EXPECT_GE(std::stoll(idx), 50) << "the pages were not read through the index";
  EXPECT_LE(std::stoll(seq), 2) << "pages were read by sequential scans";
}

// Large rows: a page ends before the batch that would take it past batch_bytes of data, as well
// as at batch_size events, counted uncompressed (these rows compress to almost nothing), and
// always holds at least one batch. A page cut by bytes must not end the window: every event
// arrives exactly once.
TEST(Drain, PagesEndAtBatchBytes_CountedUncompressed_AtLeastOneBatchEach) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE docs (k text, body text)");
  db.sql().exec("SELECT pg2kafka.setup('docs', 'k')");
  for (int i = 1; i <= 10; ++i)  // ten queue batches of one ~100 kB row each
    db.sql().exec("INSERT INTO docs VALUES ('d" + std::to_string(i) + "', repeat('x', 100000))");
  db.sql().exec("INSERT INTO docs VALUES ('huge', repeat('y', 300000))");
  EXPECT_LT(std::stoll(db.sql().value("SELECT max(pg_column_size(data)) "
                                      "FROM pg2kafka.event_batches")),
            20000)
      << "the test needs rows stored compressed";
  auto source = make_source(db.url(), {{"batch_size", "1000"}, {"batch_bytes", "250000"}});
  source->open();
  std::vector<size_t> sizes;
  std::vector<Event> all;
  for (int i = 0; i < 20; ++i) {
    auto batch = source->poll(1000, milliseconds(0));
    if (!batch || batch->empty()) break;
    auto events = to_events(*batch);
    sizes.push_back(events.size());
    all.insert(all.end(), events.begin(), events.end());
    source->ack(events.back().position);
  }
  // Two batches of 100 kB fit in 250 kB, a third does not; the 300 kB one comes alone.
  ASSERT_EQ(sizes, (std::vector<size_t>{2, 2, 2, 2, 2, 1})) << "pages of a different size";
  std::vector<std::string> keys;
  for (const auto& e : all) keys.push_back(e.key.value_or("?"));
  EXPECT_EQ(keys, (std::vector<std::string>{"d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9",
                                            "d10", "huge"}));
  EXPECT_EQ(all.back().data().as_object().at("body").as_string().size(), 300000u);
  EXPECT_EQ(queued_events(db.sql()), "0");

  // A batch larger than the budget still comes, alone.
  source->close();  // releases the drain lock
  auto tight = make_source(db.url(), {{"batch_bytes", "1024"}});
  tight->open();
  db.sql().exec("INSERT INTO docs SELECT 'e' || g, repeat('z', 5000) FROM generate_series(1, 3) g");
  db.sql().exec("INSERT INTO docs VALUES ('f', 'small')");
  auto one = tight->poll(1000, milliseconds(0));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->size(), 3u);  // the statement's batch of three rows
  EXPECT_EQ(drain(*tight).size(), 1u);
}

TEST(Drain, PositionsIncrease_AndAckThroughDeletesEveryEarlierEvent) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 25);
  auto source = make_source(db.url(), {{"batch_size", "10"}});
  source->open();
  auto b1 = source->poll(100, milliseconds(0));
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->size(), 10u);  // batch_size wins over max_records
  auto b2 = source->poll(4, milliseconds(0));
  ASSERT_TRUE(b2);
  EXPECT_EQ(b2->size(), 4u);  // max_records wins over batch_size
  auto e1 = to_events(*b1);
  auto e2 = to_events(*b2);
  std::vector<Event> all(e1);
  all.insert(all.end(), e2.begin(), e2.end());
  for (size_t i = 1; i < all.size(); ++i) EXPECT_GT(all[i].position, all[i - 1].position);
  EXPECT_EQ(keys_of(all).size(), 14u);
  source->ack(e1[6].position);  // acknowledges the first seven
  EXPECT_EQ(queued_events(db.sql()), "18");
  source->ack(e2.back().position);
  EXPECT_EQ(queued_events(db.sql()), "11");
  auto rest = drain(*source);
  EXPECT_EQ(rest.size(), 11u);
  auto seen = keys_of(all);
  for (const auto& e : rest) EXPECT_FALSE(seen.count(*e.key)) << "returned twice: " << *e.key;
}

TEST(Drain, UnacknowledgedEventsComeBackAfterRestart_ButNeverTwiceInOneInstance) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 10);
  std::set<std::string> ids;
  {
    auto source = make_source(db.url());
    source->open();
    auto first = drain(*source, /*ack=*/false);
    ASSERT_EQ(first.size(), 10u);
    for (const auto& e : first) ids.insert(e.id);
    db.sql().exec("INSERT INTO t VALUES ('k11', 11)");
    auto second = drain(*source, /*ack=*/false);  // only the new one
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].key, "k11");
    ids.insert(second[0].id);
    source->ack(first[4].position);  // five delivered, the process "dies"
    source->close();
  }
  auto next = make_source(db.url());
  next->open();
  auto again = drain(*next);
  ASSERT_EQ(again.size(), 6u);
  for (const auto& e : again) EXPECT_TRUE(ids.count(e.id)) << "same uuid on redelivery";
  EXPECT_EQ(keys_of(again), (std::set<std::string>{"k6", "k7", "k8", "k9", "k10", "k11"}));
}

TEST(Drain, ABatchStaysQueuedUntilAllItsEventsAreAcknowledged_AndComesBackWholeAfterACrash) {
  // One statement of 10 rows is one batch; the host may take its events over several polls.
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t SELECT 'k' || g, g FROM generate_series(1, 10) g");
  db.sql().exec("INSERT INTO t VALUES ('k11', 11)");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.event_batches"), "2");
  std::vector<Event> first;
  {
    auto source = make_source(db.url(), {{"batch_size", "4"}});
    source->open();
    first = drain(*source, /*ack=*/false);
    ASSERT_EQ(first.size(), 11u);
    EXPECT_EQ(keys_of(first).size(), 11u);
    std::set<std::string> uuids;
    for (const auto& e : first) uuids.insert(e.id);
    EXPECT_EQ(uuids.size(), 11u) << "every event of a batch has its own uuid";
    source->ack(first[8].position);  // nine of the batch's ten
    EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.event_batches"), "2");
    EXPECT_EQ(drain(*source, /*ack=*/false).size(), 0u) << "nothing comes twice in one instance";
    source->ack(first[9].position);  // the tenth: the batch is done
    EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.event_batches"), "1");
    source->close();  // the process "dies" before k11 is delivered
  }
  db.sql().exec("INSERT INTO t SELECT 'm' || g, g FROM generate_series(1, 3) g");
  auto next = make_source(db.url());
  next->open();
  auto again = drain(*next, /*ack=*/false);
  ASSERT_EQ(again.size(), 4u);
  EXPECT_EQ(again[0].key, "k11");
  EXPECT_EQ(again[0].id, first[10].id) << "same uuid on redelivery";
  // A crash in the middle of a batch redelivers its delivered events too, with their uuids.
  next->ack(again[1].position);
  next->close();
  auto third = make_source(db.url());
  third->open();
  auto last = drain(*third);
  ASSERT_EQ(last.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(last[i].id, again[i + 1].id);
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Drain, ARowThatDisagreesWithItself_IsDeliveredWhole_WithAWarningNamingIt) {
  TestDatabase db;
  tracked_table(db.sql());
  // Not something the triggers write: one event announced, two given. (Counting a large array
  // would cost every bulk statement too much for the queue's CHECK constraint to do it.)
  std::string id = db.sql().value(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data) VALUES ('public', 't', 'INSERT', 'k', 1, '[{\"k\": \"a\"}, {\"k\": "
      "\"b\"}]') RETURNING id");
  db.sql().exec("INSERT INTO t VALUES ('c', 3)");
  LogSink logs;
  auto source = make_source(db.url(), {}, &logs);
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].key, "a");
  EXPECT_EQ(events[1].key, "b");
  EXPECT_EQ(events[2].key, "c");
  EXPECT_NE(logs.all().find("pg2kafka.event_batches row " + id +
                            " disagrees with itself (it counts 1 events but its data holds 2)"),
            std::string::npos)
      << logs.all();
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Drain, RowsOfAnotherShape_AreRefusedByTheQueue_AndOlderOnesStopTheSourceNamingThem) {
  TestDatabase db;
  tracked_table(db.sql());
  TestRole writer(db, "writer");
  db.sql().exec("GRANT ALL ON t TO " + writer.name());
  Session as_writer(writer.url());
  for (const char* bad :
       {"('public', 't', 'INSERT', 'k', 1, '{\"k\": \"a\"}', NULL)",       // not an array
        "('public', 't', 'UPSERT', 'k', 1, '[{\"k\": \"a\"}]', NULL)",     // no such statement
        "('public', 't', 'INSERT', 'k', 1, NULL, NULL)",                   // no data
        "('public', 't', 'TRUNCATE', NULL, 1, '[]', NULL)",                // TRUNCATE has none
        "('public', 't', 'INSERT', 'k', 1, '[{\"k\": \"a\"}]', '[]')",     // old rows: UPDATE
        "('public', 't', 'UPDATE', 'k', 1, '[{\"k\": \"a\"}]', '{}')"}) {  // not an array
    std::string err = as_writer.try_exec(
        "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
        "events, data, old_data) VALUES " +
        std::string(bad));
    EXPECT_NE(err.find("row-level security"), std::string::npos) << bad << ": " << err;
  }
  EXPECT_EQ(
      as_writer.try_exec("INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, "
                         "key_column, events, data) VALUES ('public', 't', 'INSERT', 'k', 1, "
                         "'[{\"k\": \"ok\"}]')"),
      "");
  // A row queued by the schema's owner, whom row-level security does not restrain (as before
  // migration 008, when nothing checked shapes): the source hands it to the host as an unusable
  // record naming it (the host parks it or stops, as on_permanent_failure says).
  std::string id = db.sql().value(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data) VALUES ('public', 't', 'INSERT', 'k', 1, '{\"k\": \"a\"}') RETURNING id");
  auto source = make_source(db.url());
  source->open();
  std::string why, value;
  for (int i = 0; i < 3 && why.empty(); ++i) {
    auto batch = source->poll(100, milliseconds(0));
    if (!batch) continue;
    const char* const* unusable = batch->unusable();
    for (size_t r = 0; unusable && r < batch->size(); ++r) {
      if (!unusable[r]) continue;
      why = unusable[r];
      value = std::string(pg2kafka::sdk::view(batch->records()[r].value));
    }
  }
  EXPECT_NE(why.find("pg2kafka.event_batches row " + id + " (public.t) is malformed"),
            std::string::npos)
      << why;
  EXPECT_NE(why.find("its data is not a JSON array"), std::string::npos) << why;
  EXPECT_NE(value.find("\"data\":{\"k\": \"a\"}"), std::string::npos)
      << "the row as far as it could be read: " << value;
  EXPECT_EQ(queued_events(db.sql()), "2");
}

TEST(Drain, UpdatesThatChangeNothing_SendNothing_AndTheirBatchIsRemoved) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t SELECT 'k' || g, g FROM generate_series(1, 3) g");
  auto source = make_source(db.url());
  source->open();
  EXPECT_EQ(drain(*source).size(), 3u);
  db.sql().exec("UPDATE t SET v = v");
  db.sql().exec("UPDATE t SET v = v + 1 WHERE v = 2");
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, "k2");
  EXPECT_EQ(events[0].data(), json::parse(R"({"v":3})"));
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.event_batches"), "0");
}

TEST(Drain, KeepModeArchivesDeliveredEvents_AndPurgesOldOnes) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec(
      "INSERT INTO pg2kafka.acknowledged_batches (id, uuid, table_name, statement, events, "
      "created_at, table_schema, txid, acked_at) VALUES (-1, gen_random_uuid(), 't', 'TRUNCATE', "
      "1, now(), 'public', '1', now() - interval '2 hours'), (-2, gen_random_uuid(), 't', "
      "'TRUNCATE', 1, now(), 'public', '1', now() - interval '10 minutes')");
  db.sql().exec("INSERT INTO t VALUES ('a', 1), ('b', 2)");
  auto source = make_source(db.url(), {{"acknowledged", "keep"}, {"retention", "3600000"}});
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(queued_events(db.sql()), "0");
  // The view lists archived events one per row, as they were sent.
  EXPECT_EQ(db.sql().value("SELECT string_agg(external_id, ',' ORDER BY batch_id, batch_index) "
                           "FROM pg2kafka.acknowledged_events WHERE batch_id > 0"),
            "a,b");
  EXPECT_EQ(db.sql().value("SELECT string_agg(uuid::text, ',' ORDER BY batch_id, batch_index) "
                           "FROM pg2kafka.acknowledged_events WHERE batch_id > 0"),
            events[0].id + "," + events[1].id);
  // The two-hour-old row is purged, the ten-minute-old one kept (retention one hour).
  EXPECT_EQ(db.sql().value("SELECT string_agg(id::text, ',') FROM pg2kafka.acknowledged_batches "
                           "WHERE id < 0"),
            "-2");
}

TEST(Standby, SecondInstanceTakesOver_WhenActiveSessionDies) {
  TestDatabase db;
  tracked_table(db.sql());
  LogSink logs_a, logs_b;
  auto a = make_source(db.url(), {}, &logs_a);
  auto b = make_source(db.url(), {}, &logs_b);
  a->open();
  b->open();
  EXPECT_TRUE(a->active());
  EXPECT_FALSE(b->active());
  EXPECT_NE(logs_b.all().find("standing by"), std::string::npos) << logs_b.all();
  db.sql().exec("INSERT INTO t VALUES ('one', 1), ('two', 2)");
  auto from_a = drain(*a, /*ack=*/false);  // delivered but never acknowledged
  ASSERT_EQ(from_a.size(), 2u);
  auto from_b = b->poll(100, milliseconds(300));  // the standby returns nothing
  EXPECT_TRUE(!from_b || from_b->empty());
  db.sql().exec("INSERT INTO t VALUES ('three', 3)");
  // The active instance's session dies (as if its process was killed).
  db.sql().exec("SELECT pg_terminate_backend(" + std::to_string(a->backend_pid()) + ")");
  auto taken_over = poll_until(*b, 3);
  EXPECT_TRUE(b->active());
  EXPECT_EQ(keys_of(taken_over), (std::set<std::string>{"one", "two", "three"}));
  // The first instance comes back as a standby and returns nothing.
  std::unique_ptr<pg2kafka::sdk::RecordBatch> batch;
  for (int i = 0; i < 20 && !batch; ++i) {
    try {
      batch = a->poll(100, milliseconds(100));
      break;
    } catch (const pg2kafka::sdk::RetryError&) {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  EXPECT_TRUE(!batch || batch->empty());
  EXPECT_FALSE(a->active());
}

TEST(Notify, NotificationWakesPollBeforeThePollInterval) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("ALTER DATABASE " + db.name() + " SET pg2kafka.notify = on");
  auto source = make_source(db.url(), {{"poll_interval", "600000"}});
  source->open();
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(300));
    Session s(db.url());
    s.exec("INSERT INTO t VALUES ('woken', 1)");
  });
  // Without the notification this poll would sleep for the whole timeout and come back empty.
  auto batch = source->poll(10, milliseconds(20000));
  writer.join();
  ASSERT_TRUE(batch);
  auto events = to_events(*batch);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, "woken");
}

TEST(Errors, WrongPasswordIsAClearConfigErrorWithoutThePassword) {
  TestDatabase db;
  db.sql().exec(
      "DO $$ BEGIN CREATE ROLE p2k_password_user LOGIN PASSWORD 'the-right-one'; "
      "EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  const std::string url = "postgresql://p2k_password_user:Wr0ngS3cretPw@127.0.0.1:" +
                          p2k_test::state_value("pg.env", "P2K_TEST_PG_PORT") + "/" + db.name();
  LogSink logs;
  auto source = make_source(url, {}, &logs);
  try {
    source->open();
    FAIL() << "open succeeded with a wrong password";
  } catch (const pg2kafka::sdk::ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("password authentication failed"), std::string::npos) << m;
    EXPECT_NE(m.find("p2k_password_user"), std::string::npos) << m;
    EXPECT_EQ(m.find("Wr0ngS3cretPw"), std::string::npos) << m;
  }
  EXPECT_EQ(logs.all().find("Wr0ngS3cretPw"), std::string::npos);
}

TEST(Errors, UnreachableServerIsRetryable_AndMalformedStringIsConfigError) {
  auto source = make_source("postgresql://someone:Secr3tPassw0rd@127.0.0.1:1/db?connect_timeout=2");
  try {
    source->open();
    FAIL() << "open succeeded against a closed port";
  } catch (const pg2kafka::sdk::RetryError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("127.0.0.1:1"), std::string::npos) << m;
    EXPECT_EQ(m.find("Secr3tPassw0rd"), std::string::npos) << m;
  }
  try {
    make_source("host=localhost password=Secr3tPassw0rd bogus");
    FAIL() << "a malformed connection string was accepted";
  } catch (const pg2kafka::sdk::ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("connection"), std::string::npos) << m;
    EXPECT_EQ(m.find("Secr3tPassw0rd"), std::string::npos) << m;
  }
  EXPECT_THROW(make_source(server_url() + "/x", {{"topic_namespace", "bad/ns"}}),
               pg2kafka::sdk::ConfigError);
  try {
    make_source(server_url() + "/x", {{"poll_interval", "100"}, {"min_poll_interval", "500"}});
    FAIL() << "min_poll_interval above poll_interval was accepted";
  } catch (const pg2kafka::sdk::ConfigError& e) {
    EXPECT_NE(
        std::string(e.what()).find("'min_poll_interval' (500 ms) must not exceed poll_interval"),
        std::string::npos)
        << e.what();
  }
}

// min_poll_interval paces the looks at a queue read to its end, however often poll is called
// (the host polls every few milliseconds while records are in flight): while writes flow, each
// look takes all that committed meanwhile. A backlog is read without waiting.
TEST(Drain, ACaughtUpQueueIsLookedAtNoMoreOftenThanMinPollInterval_ABacklogWithoutWaiting) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 5);
  auto source = make_source(
      db.url(), {{"min_poll_interval", "400"}, {"poll_interval", "1000"}, {"batch_size", "2"}});
  source->open();
  // A backlog of five: pages of two, one after the other, no wait between them.
  auto began = std::chrono::steady_clock::now();
  std::vector<std::string> keys;
  while (keys.size() < 5) {
    auto batch = source->poll(2, milliseconds(0));
    ASSERT_TRUE(batch && !batch->empty()) << "a backlog page was held back";
    for (const auto& e : to_events(*batch)) keys.push_back(*e.key);
    source->ack(batch->last_position());
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"k1", "k2", "k3", "k4", "k5"}));
  // The window is read to its end; a write now waits for the next look, which polls called at
  // once do not take early (each would be two queries).
  insert_one_by_one(db.sql(), 6, 6);
  for (int i = 0; i < 20; ++i) {
    auto batch = source->poll(10, milliseconds(0));
    EXPECT_TRUE(!batch || batch->empty()) << "looked again before min_poll_interval";
  }
  // A poll that may wait takes it once the interval has passed since the last look began.
  auto batch = source->poll(10, milliseconds(5000));
  auto waited = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(batch && batch->size() == 1u);
  EXPECT_EQ(to_events(*batch)[0].key, "k6");
  EXPECT_GE(waited, milliseconds(350));
  EXPECT_LT(waited, milliseconds(3000));
}

// An idle queue is looked at ever less often, up to poll_interval: pacing a busy queue must not
// keep an idle one at min_poll_interval. Counted in the database's transactions (each look
// commits one or two): about 25 when it backs off, some 750 for a look every 5 ms for 3 s. The
// bound leaves room for what else a loaded machine may count late (the open's own queries,
// autovacuum).
TEST(Drain, AnIdleQueueIsLookedAtEverLessOften_UpToPollInterval) {
  TestDatabase db;
  tracked_table(db.sql());
  auto source = make_source(db.url(), {{"min_poll_interval", "5"}, {"poll_interval", "1000"}});
  source->open();
  auto commits = [&] {
    db.sql().exec("SELECT pg_stat_clear_snapshot()");
    return std::stoll(db.sql().value(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"));
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the open's stats are in
  long long before = commits();
  auto batch = source->poll(10, milliseconds(3000));
  EXPECT_TRUE(!batch || batch->empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // its backend reports them
  long long looks = commits() - before;
  EXPECT_LT(looks, 200) << "an idle queue was looked at too often";
  EXPECT_GT(looks, 2) << "the test did not see the source's transactions";
}
