// The pg-outbox source's parking (plugin ABI 1.4) against a real PostgreSQL, driving the source
// as the host would: park holds the key (events already read, and those read later, never leave
// the source), a batch whose last events are held is removed once the rest is acknowledged, a
// retry request sends a key's parked events in order (the failed one alone first), and a key
// whose parked events are all delivered flows again.
#include <gtest/gtest.h>

#include <thread>

#include "outbox_source.hpp"
#include "pg_test_support.hpp"

using namespace p2k_pg_test;
using std::chrono::milliseconds;

namespace {

// The events of one poll, retrying transient failures.
std::vector<Event> poll_once(pg2kafka::pg_outbox::OutboxSource& source, size_t max) {
  for (int i = 0; i < 50; ++i) {
    try {
      auto batch = source.poll(max, milliseconds(200));
      if (!batch) return {};
      return to_events(*batch);
    } catch (const pg2kafka::sdk::RetryError&) {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  ADD_FAILURE() << "poll kept failing";
  return {};
}

p2k_record record_of(const Event& e) {
  p2k_record r{};
  r.struct_size = sizeof r;
  r.position = e.position;
  r.topic = {e.topic.data(), e.topic.size()};
  r.key = e.key ? p2k_slice{e.key->data(), e.key->size()} : p2k_slice{nullptr, 0};
  r.value = {e.value.data(), e.value.size()};
  r.id = {e.id.data(), e.id.size()};
  return r;
}

}  // namespace

TEST(ParkingSource, AParkedKeysEventsNeverLeave_EvenThoseAlreadyRead_AndItsBatchStillGoes) {
  TestDatabase db;
  // A key column that is not unique: one statement, ten events of key "a", two of "b".
  db.sql().exec("CREATE TABLE t (k text, v int)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  db.sql().exec(
      "INSERT INTO t SELECT CASE WHEN g IN (4, 8) THEN 'b' ELSE 'a' END, g "
      "FROM generate_series(1, 12) g");
  auto source = make_source(db.url());
  source->open();
  auto first = poll_once(*source, 3);  // a1 a2 a3: the other nine are read, pending
  ASSERT_EQ(first.size(), 3u);
  source->park(record_of(first[1]), "refused for good");
  auto rest = drain(*source, /*ack=*/false);
  // Only b's events leave; a's seven later ones are held (a1 and a3 were out already).
  ASSERT_EQ(rest.size(), 2u);
  for (const auto& e : rest) EXPECT_EQ(e.key, std::optional<std::string>("b"));
  source->ack(rest.back().position);
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.event_batches"), "0")
      << "the batch goes once all its events are delivered or parked";
  auto parked = db.sql().rows(
      "SELECT reason, (message->'data'->>'v') FROM pg2kafka.parked_events ORDER BY id");
  ASSERT_EQ(parked.size(), 8u);
  EXPECT_EQ(parked[0][0], "failed");
  EXPECT_EQ(parked[0][1], "2");
  std::vector<std::string> held;
  for (size_t i = 1; i < parked.size(); ++i) {
    EXPECT_EQ(parked[i][0], "held");
    held.push_back(*parked[i][1]);
  }
  EXPECT_EQ(held, (std::vector<std::string>{"5", "6", "7", "9", "10", "11", "12"}))
      << "in their order";

  // Events of a written later are held too; b's flow.
  db.sql().exec("INSERT INTO t VALUES ('a', 13), ('b', 14)");
  auto later = drain(*source);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].key, std::optional<std::string>("b"));
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.parked_events"), "9");

  // A retry: the failed one alone first, then the held ones together, in order; then a flows.
  std::string failed_id =
      db.sql().value("SELECT uuid::text FROM pg2kafka.parked_events WHERE reason = 'failed'");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.retry_event('" + failed_id + "')"), "9");
  auto round1 = poll_until(*source, 1);
  ASSERT_EQ(round1.size(), 1u);
  EXPECT_EQ(round1[0].id, failed_id) << "retried events keep their ids";
  EXPECT_EQ(round1[0].data().at("v").as_int64(), 2);
  auto round2 = poll_until(*source, 8);
  std::vector<int64_t> values;
  for (const auto& e : round2) values.push_back(e.data().at("v").as_int64());
  EXPECT_EQ(values, (std::vector<int64_t>{5, 6, 7, 9, 10, 11, 12, 13}));
  drain(*source);
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.parked_events"), "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit WHERE action = 'delivered'"),
            "9");
  db.sql().exec("INSERT INTO t VALUES ('a', 15)");
  auto flows = poll_until(*source, 1);
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0].data().at("v").as_int64(), 15) << "the key flows again";
}

TEST(ParkingSource, ARetriedEventThatFailsAgain_StopsItsKeyUntilTheNextRequest) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (k text, v int)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  db.sql().exec("INSERT INTO t VALUES ('a', 1)");
  db.sql().exec("INSERT INTO t VALUES ('a', 2)");
  auto source = make_source(db.url());
  source->open();
  auto first = poll_until(*source, 2, /*ack=*/false);
  ASSERT_EQ(first.size(), 2u);
  source->park(record_of(first[0]), "too large");
  source->park(record_of(first[1]), "held behind event x, which failed permanently");
  source->ack(first[1].position);
  std::string id =
      db.sql().value("SELECT uuid::text FROM pg2kafka.parked_events WHERE reason = 'failed'");
  EXPECT_EQ(db.sql().value("SELECT reason FROM pg2kafka.parked_events ORDER BY id DESC LIMIT 1"),
            "held")
      << "a later record of a parked key is held, whatever error the host gave";
  db.sql().exec("SELECT pg2kafka.retry_event('" + id + "')");
  auto again = poll_until(*source, 1, /*ack=*/false);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, id);
  source->park(record_of(again[0]), "still too large");
  source->ack(again[0].position);
  EXPECT_TRUE(drain(*source).empty()) << "the held one waits for a new request";
  auto rows = db.sql().rows(
      "SELECT reason, attempts, retry_requested_at IS NULL, error FROM pg2kafka.parked_events "
      "ORDER BY id");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][0], "failed");
  EXPECT_EQ(rows[0][1], "2");
  EXPECT_EQ(rows[0][2], "t");
  EXPECT_EQ(rows[0][3], "still too large");
  EXPECT_EQ(rows[1][2], "t") << "the key's requests end with the failure";
}

// Capture options (issue 20): a parked tombstone stays a tombstone, and parked records keep their
// provenance headers, when they are retried.
TEST(ParkingSource, ATombstoneAndItsProvenanceHeadersSurviveParkingAndRetry) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, v text)");
  db.sql().exec(
      "SELECT pg2kafka.setup('t', 'id', '{\"tombstones\": true, \"provenance\": [\"actor\"]}')");
  db.sql().exec(
      "BEGIN; SET LOCAL pg2kafka.actor = 'alice'; INSERT INTO t VALUES (1, 'a'); "
      "DELETE FROM t WHERE id = 1; COMMIT");
  auto source = make_source(db.url());
  source->open();
  auto events = poll_until(*source, 3, /*ack=*/false);
  ASSERT_EQ(events.size(), 3u);
  const Event& tombstone = events[2];
  ASSERT_TRUE(tombstone.null_value);
  EXPECT_EQ(tombstone.key, std::optional<std::string>("1"));
  EXPECT_EQ(tombstone.headers.at("statement"), "DELETE");
  EXPECT_EQ(tombstone.headers.at("pg2kafka.actor"), "alice");
  EXPECT_NE(tombstone.id, events[1].id) << "a tombstone has an id of its own";

  p2k_record r = record_of(tombstone);
  r.value = {nullptr, 0};
  std::vector<p2k_header> headers;
  for (const auto& [name, value] : tombstone.headers)
    headers.push_back({{name.data(), name.size()}, {value.data(), value.size()}});
  r.headers = headers.data();
  r.header_count = headers.size();
  source->park(r, "refused for good");
  source->ack(tombstone.position);
  auto parked = db.sql().rows(
      "SELECT tombstone, headers ->> 'actor', message ->> 'statement', message -> 'data', "
      "uuid::text FROM pg2kafka.parked_events");
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0][0], "t");
  EXPECT_EQ(parked[0][1], "alice");
  EXPECT_EQ(parked[0][2], "DELETE");
  EXPECT_EQ(parked[0][3], "null");
  EXPECT_EQ(parked[0][4], tombstone.id);

  db.sql().exec("SELECT pg2kafka.retry_event('" + tombstone.id + "')");
  auto again = poll_until(*source, 1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].null_value) << "sent as a tombstone again";
  EXPECT_EQ(again[0].id, tombstone.id);
  EXPECT_EQ(again[0].key, std::optional<std::string>("1"));
  EXPECT_EQ(again[0].headers.at("pg2kafka.actor"), "alice");
  EXPECT_EQ(again[0].headers.at("pg2kafka.current_user"), "postgres");
}
