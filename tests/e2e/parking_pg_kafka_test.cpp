// Parking against a real PostgreSQL and a real Kafka broker (issue 19): an event Kafka refuses
// for good (a 10 MB value on a topic that takes 1 MB) is parked with the later events of its key
// while every other key and table flows; its dead letter carries the metadata without the value;
// `pg2kafka queue retry`, once the topic takes large messages, delivers the key's events in
// order. With on_permanent_failure=stop the pipeline stops as before. A malformed queue row is
// parked, not fatal. The `queue` subcommands: list, show, skip, retry, in text and JSON, with bad
// ids and while a daemon drains.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>

#include <algorithm>
#include <map>
#include <thread>

#include "kafka_test_util.hpp"
#include "pg_test_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using p2k_test::Background;
namespace kafka = p2k_test::kafka;

constexpr size_t kBigValue = 10 * 1024 * 1024;

class ParkingPgKafka : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<p2k_pg_test::TestDatabase>();
    brokers_ = kafka::fixture_brokers();
    db_->sql().exec("CREATE TABLE a (id int PRIMARY KEY, v text)");
    db_->sql().exec("CREATE TABLE b (id int PRIMARY KEY, v text)");
    db_->sql().exec("SELECT pg2kafka.setup('a', 'id')");
    db_->sql().exec("SELECT pg2kafka.setup('b', 'id')");
    topic_a_ = "pg2kafka." + db_->name() + ".a";
    topic_b_ = "pg2kafka." + db_->name() + ".b";
    dead_ = kafka::unique_topic("p2k-dead-letters");
    // The broker's default limit (about 1 MB) on every topic; one partition each, so that order
    // is the topic's order.
    kafka::create_topic(brokers_, topic_a_, 1);
    kafka::create_topic(brokers_, topic_b_, 1);
    kafka::create_topic(brokers_, dead_, 1);
  }

  // Uncompressed, so that the broker sees the 10 MB (10 MB of one letter compress to nothing).
  std::string config(const std::string& policy, bool dead_letters = true) {
    return dir_.write("pipeline.json", R"({
      "source": {"plugin": "pg-outbox", "options": {
        "connection": ")" + db_->url() + R"(", "poll_interval": "200ms",
        "application_name": "p2k-parking-test"}},
      "sink": {"plugin": "kafka", "options": {"bootstrap_servers": ")" +
                                           brokers_ + R"(", "compression": "none",
        "rdkafka": {"message.max.bytes": 33554432, "socket.timeout.ms": 10000}}},
      "pipeline": {"http.listen": "127.0.0.1:0", "on_permanent_failure": ")" +
                                           policy + R"(", )" +
                                           (dead_letters
                                                ? R"("dead_letter.topic": ")" + dead_ + R"(", )"
                                                : std::string()) +
                                           R"("retry.initial_backoff": "50ms",
                   "retry.max_backoff": "1s", "shutdown_timeout": "20s"}})");
  }

  p2k_test::CommandResult queue(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"queue"};
    all.insert(all.end(), args.begin(), args.end());
    all.push_back("--config");
    all.push_back(dir_.path().string() + "/pipeline.json");
    return p2k_test::run_pg2kafka(all);
  }

  boost::json::object queue_json(const std::vector<std::string>& args) {
    auto with = args;
    with.push_back("--format");
    with.push_back("json");
    auto r = queue(with);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    boost::system::error_code ec;
    auto v = boost::json::parse(r.out, ec);
    if (ec || !v.is_object()) {
      ADD_FAILURE() << "not a JSON object: " << r.out << r.err;
      return {};
    }
    return v.as_object();
  }

  // The messages' keys and statements ("2:INSERT") of a topic, in order.
  static std::vector<std::string> keys_of(const std::vector<kafka::Message>& messages) {
    std::vector<std::string> out;
    for (const auto& m : messages) {
      auto v = boost::json::parse(m.value.value_or("{}")).as_object();
      out.push_back(m.key.value_or("null") + ":" + std::string(v.at("statement").as_string()));
    }
    return out;
  }

  // The messages as a consumer keeps them after dropping duplicates by event id, keeping the
  // last copy: a record of a failed key that was in flight when the failure came arrives early
  // and again after the retry, in order.
  static std::vector<kafka::Message> last_copies(const std::vector<kafka::Message>& messages) {
    std::map<std::string, size_t> last;
    for (size_t i = 0; i < messages.size(); ++i)
      last[std::string(
          boost::json::parse(messages[i].value.value_or("{}")).at("uuid").as_string())] = i;
    std::vector<kafka::Message> out;
    for (size_t i = 0; i < messages.size(); ++i) {
      auto id =
          std::string(boost::json::parse(messages[i].value.value_or("{}")).at("uuid").as_string());
      if (last[id] == i) out.push_back(messages[i]);
    }
    return out;
  }
  static std::vector<kafka::Message> without_key(std::vector<kafka::Message> messages,
                                                 const std::string& key) {
    std::erase_if(messages, [&](const kafka::Message& m) { return m.key == key; });
    return messages;
  }

  std::vector<kafka::Message> read(const std::string& topic, size_t at_least,
                                   std::chrono::seconds timeout = 30s) {
    return kafka::read_topic(brokers_, topic, at_least, timeout,
                             {{"fetch.max.bytes", "52428800"},
                              {"max.partition.fetch.bytes", "33554432"},
                              {"receive.message.max.bytes", "104857600"}});
  }

  std::string uuid_of(const std::string& where) {
    return db_->sql().value("SELECT uuid::text FROM pg2kafka.parked_events WHERE " + where);
  }

  // The application's writes: between normal events of a and b, a 10 MB value on a's key 2,
  // then more events of key 2 (held behind it) and of other keys.
  void write_events() {
    auto& s = db_->sql();
    s.exec("INSERT INTO a VALUES (1, 'one')");
    s.exec("INSERT INTO b VALUES (1, 'b-one')");
    s.exec("INSERT INTO a VALUES (2, repeat('x', " + std::to_string(kBigValue) + "))");
    s.exec("INSERT INTO a VALUES (3, 'three')");
    s.exec("UPDATE a SET v = 'two, smaller' WHERE id = 2");
    s.exec("INSERT INTO b VALUES (2, 'b-two')");
    s.exec("UPDATE a SET v = 'one, again' WHERE id = 1");
    s.exec("UPDATE a SET v = 'two, third' WHERE id = 2");
  }

  std::unique_ptr<p2k_pg_test::TestDatabase> db_;
  p2k_test::TempDir dir_;
  std::string brokers_, topic_a_, topic_b_, dead_;
};

TEST_F(ParkingPgKafka, ATenMegabyteValueIsParkedWithItsKey_OthersFlow_RetryDeliversInOrder) {
  write_events();
  auto run = p2k_test::run_pg2kafka({"run", "--once", "--config", config("park")}, {}, 180s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("parked event"), std::string::npos) << run.err;

  // Every other key and table is delivered, in order; of key 2 at most the first UPDATE, which
  // was in flight when the INSERT failed (it comes again after the retry).
  auto first_run = read(topic_a_, 3);
  EXPECT_EQ(keys_of(without_key(first_run, "2")),
            (std::vector<std::string>{"1:INSERT", "3:INSERT", "1:UPDATE"}));
  for (const auto& k : keys_of(first_run)) EXPECT_NE(k, "2:INSERT");
  EXPECT_EQ(keys_of(read(topic_b_, 2)), (std::vector<std::string>{"1:INSERT", "2:INSERT"}));
  EXPECT_EQ(db_->sql().value("SELECT count(*) FROM pg2kafka.event_batches"), "0")
      << "the queue is drained: parked events left it";

  // Parked: the big event (failed) and the two later events of its key (held), in order.
  auto parked = db_->sql().rows(
      "SELECT external_id, statement, reason, attempts FROM pg2kafka.parked_events ORDER BY id");
  ASSERT_EQ(parked.size(), 3u);
  EXPECT_EQ(parked[0][0], "2");
  EXPECT_EQ(parked[0][1], "INSERT");
  EXPECT_EQ(parked[0][2], "failed");
  EXPECT_EQ(parked[0][3], "1");
  EXPECT_EQ(parked[1][2], "held");
  EXPECT_EQ(parked[2][2], "held");
  std::string big = uuid_of("reason = 'failed'");
  EXPECT_EQ(db_->sql().value("SELECT octet_length(message::text) > " + std::to_string(kBigValue) +
                             " FROM pg2kafka.parked_events WHERE reason = 'failed'"),
            "t")
      << "the whole message is kept";

  // The dead letter: the topic, id and error as headers, without the 10 MB value.
  auto letters = read(dead_, 1);
  ASSERT_EQ(letters.size(), 1u);
  const auto& letter = letters[0];
  EXPECT_EQ(letter.key, std::optional<std::string>("2"));
  EXPECT_EQ(letter.header("pg2kafka.original_topic"), std::optional<std::string>(topic_a_));
  EXPECT_EQ(letter.header("pg2kafka.event_id"), std::optional<std::string>(big));
  EXPECT_EQ(letter.header("pg2kafka.reason"), std::optional<std::string>("failed"));
  EXPECT_EQ(letter.header("pg2kafka.value_omitted"), std::optional<std::string>("true"));
  ASSERT_TRUE(letter.header("pg2kafka.value_size"));
  EXPECT_GT(std::stoull(*letter.header("pg2kafka.value_size")), kBigValue);
  ASSERT_TRUE(letter.header("pg2kafka.error"));
  EXPECT_NE(letter.header("pg2kafka.error")->find("too large"), std::string::npos)
      << *letter.header("pg2kafka.error");
  EXPECT_TRUE(!letter.value || letter.value->empty());

  // status lists them as a problem (exit 5), per table and reason.
  auto status = p2k_test::run_pg2kafka(
      {"status", "--config", dir_.path().string() + "/pipeline.json", "--format", "json"});
  EXPECT_EQ(status.exit_code, 5) << status.out << status.err;
  auto state = boost::json::parse(status.out).as_object();
  std::map<std::string, int64_t> by_reason;
  for (const auto& c : state.at("parked").as_array())
    by_reason[std::string(c.at("table").as_string()) + " " +
              std::string(c.at("reason").as_string())] = c.at("events").as_int64();
  EXPECT_EQ(by_reason,
            (std::map<std::string, int64_t>{{"public.a failed", 1}, {"public.a held", 2}}));
  EXPECT_NE(boost::json::serialize(state.at("problems")).find("parked"), std::string::npos);

  // queue list shows them; retrying a held one first is refused (its key's first event waits).
  auto list = queue_json({"list", "--parked"});
  EXPECT_EQ(list.at("parked_events").as_int64(), 3);
  ASSERT_EQ(list.at("parked").as_array().size(), 3u);
  EXPECT_EQ(list.at("parked").as_array()[0].at("event_id").as_string(), big);
  std::string held = uuid_of("reason = 'held' ORDER BY id LIMIT 1");
  auto refused = queue({"retry", held});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find(big), std::string::npos) << refused.err;

  // Once the topic takes large messages, a retry delivers the key's events in their order, by a
  // running daemon.
  kafka::set_topic_configs(brokers_, topic_a_, {{"max.message.bytes", "33554432"}});
  Background daemon({p2k_test::ctest_env("P2K_BINARY"), "run", "--config",
                     dir_.path().string() + "/pipeline.json"});
  // /metrics shows what waits, per table and reason.
  int port = p2k_test::served_port(daemon, 30s);
  auto metrics = p2k_test::http_get(port, "/metrics").body;
  EXPECT_EQ(p2k_test::metric_sample(
                metrics, R"(pg2kafka_pg_outbox_parked_events{table="public.a",reason="failed"})"),
            1)
      << metrics;
  EXPECT_EQ(p2k_test::metric_sample(
                metrics, R"(pg2kafka_pg_outbox_parked_events{table="public.a",reason="held"})"),
            2);
  auto retry = queue_json({"retry", big});
  EXPECT_EQ(retry.at("retry_requested").as_int64(), 3);
  std::vector<kafka::Message> a;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    a = last_copies(read(topic_a_, 6, 5s));
    if (a.size() >= 6 && db_->sql().value("SELECT count(*) FROM pg2kafka.parked_events") == "0")
      break;
  }
  // Later writes of key 2 flow again once its parked events are delivered.
  db_->sql().exec("UPDATE a SET v = 'two, after the retry' WHERE id = 2");
  a = last_copies(read(topic_a_, first_run.size() + 4, 60s));
  auto after = p2k_test::http_get(port, "/metrics").body;
  EXPECT_EQ(p2k_test::metric_sample(after, "pg2kafka_pg_outbox_events_retried_total"), 3) << after;
  daemon.signal(SIGTERM);
  EXPECT_EQ(daemon.wait(60s), 0) << daemon.err();
  EXPECT_EQ(keys_of(a), (std::vector<std::string>{"1:INSERT", "3:INSERT", "1:UPDATE", "2:INSERT",
                                                  "2:UPDATE", "2:UPDATE", "2:UPDATE"}))
      << daemon.err();
  ASSERT_GE(a.size(), 4u);
  ASSERT_TRUE(a[3].value);
  EXPECT_GT(a[3].value->size(), kBigValue);
  auto big_message = boost::json::parse(*a[3].value).as_object();
  EXPECT_EQ(big_message.at("uuid").as_string(), big) << "a retried event keeps its id";
  EXPECT_EQ(db_->sql().value("SELECT count(*) FROM pg2kafka.parked_events"), "0");
  EXPECT_EQ(db_->sql().value("SELECT count(*) FROM pg2kafka.queue_audit WHERE action = 'retry'"),
            "3");
  EXPECT_EQ(
      db_->sql().value("SELECT count(*) FROM pg2kafka.queue_audit WHERE action = 'delivered'"),
      "3");
}

TEST_F(ParkingPgKafka, WithStop_TheBigValueStopsThePipeline_AndStaysQueued) {
  write_events();
  auto run = p2k_test::run_pg2kafka({"run", "--once", "--config", config("stop", false)}, {}, 180s);
  EXPECT_EQ(run.exit_code, 4) << run.err;
  EXPECT_NE(run.err.find("too large"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("on_permanent_failure=park"), std::string::npos) << run.err;
  EXPECT_EQ(db_->sql().value("SELECT count(*) FROM pg2kafka.parked_events"), "0");
  EXPECT_EQ(db_->sql().value("SELECT count(*) FROM pg2kafka.outbound_event_queue "
                             "WHERE table_name = 'a' AND external_id = '2'"),
            "3")
      << "nothing of the failed key was removed";
  // Records in flight when the failure came may have arrived (key 2's first UPDATE, say), but
  // not the big one, and nothing was acknowledged after it.
  for (const auto& k : keys_of(read(topic_a_, 1, 10s))) EXPECT_NE(k, "2:INSERT");
}

TEST_F(ParkingPgKafka, AMalformedQueueRowIsParked_NotFatal_AndCanBeSkippedNotRetried) {
  auto& s = db_->sql();
  s.exec("INSERT INTO a VALUES (1, 'one')");
  // Queued by hand by the schema's owner: data is not an array of rows.
  s.exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data) VALUES ('public', 'a', 'INSERT', 'id', 1, '{\"id\": 9}')");
  s.exec("INSERT INTO a VALUES (2, 'two')");
  s.exec("INSERT INTO b VALUES (1, 'b-one')");
  auto run = p2k_test::run_pg2kafka({"run", "--once", "--config", config("park")}, {}, 120s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(keys_of(read(topic_a_, 2)), (std::vector<std::string>{"1:INSERT", "2:INSERT"}));
  EXPECT_EQ(keys_of(read(topic_b_, 1)), (std::vector<std::string>{"1:INSERT"}));
  auto parked = s.rows("SELECT reason, error, malformed_row->>'data' FROM pg2kafka.parked_events");
  ASSERT_EQ(parked.size(), 1u);
  EXPECT_EQ(parked[0][0], "malformed");
  EXPECT_NE(parked[0][1]->find("malformed"), std::string::npos) << *parked[0][1];
  EXPECT_EQ(parked[0][2], "{\"id\": 9}");
  auto letters = read(dead_, 1);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].header("pg2kafka.reason"), std::optional<std::string>("unusable"));
  EXPECT_FALSE(letters[0].header("pg2kafka.value_omitted")) << "a small row goes whole";

  std::string id = uuid_of("true");
  auto retry = queue({"retry", id});
  EXPECT_EQ(retry.exit_code, 2) << retry.out << retry.err;
  EXPECT_NE(retry.err.find("malformed"), std::string::npos) << retry.err;
  // Nothing else to retry, by table (named without its schema) or at all: said, exit 2.
  auto by_table = queue({"retry", "--table", "a"});
  EXPECT_EQ(by_table.exit_code, 2) << by_table.out << by_table.err;
  EXPECT_NE(by_table.err.find("no parked event to retry"), std::string::npos) << by_table.err;
  EXPECT_EQ(queue({"retry", "--all"}).exit_code, 2);
  auto text = queue({"list", "--parked"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("malformed"), std::string::npos) << text.out;
  auto skip = queue_json({"skip", id});
  EXPECT_EQ(skip.at("was").as_string(), "parked");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.parked_events"), "0");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.queue_audit WHERE action = 'skip' AND "
                    "event_uuid = '" +
                    id + "'"),
            "1");
}

TEST_F(ParkingPgKafka, QueueSubcommands_ListShowSkip_BadIds_AndARunningDaemon) {
  auto& s = db_->sql();
  s.exec("INSERT INTO a SELECT g, 'v' || g FROM generate_series(1, 3) g");
  s.exec("INSERT INTO b VALUES (7, 'seven')");
  config("park");

  // list, in JSON and text: the queued events in the order they will be sent.
  auto list = queue_json({"list"});
  EXPECT_EQ(list.at("queued_events").as_int64(), 4);
  const auto& queued = list.at("queued").as_array();
  ASSERT_EQ(queued.size(), 4u);
  EXPECT_EQ(queued[0].at("key").as_string(), "1");
  EXPECT_EQ(queued[3].at("table").as_string(), "public.b");
  auto only_b = queue_json({"list", "--table", "b"});
  EXPECT_EQ(only_b.at("queued").as_array().size(), 1u);
  auto text = queue({"list"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("public.a"), std::string::npos) << text.out;

  // show: one event with its data.
  std::string second(queued[1].at("event_id").as_string());
  auto shown = queue_json({"show", second});
  EXPECT_EQ(shown.at("state").as_string(), "queued");
  EXPECT_EQ(shown.at("data").at("v").as_string(), "v2");

  // Bad ids and usage: exit 2 with a message saying what to do.
  auto not_uuid = queue({"show", "not-a-uuid"});
  EXPECT_EQ(not_uuid.exit_code, 2) << not_uuid.err;
  auto unknown = queue({"show", "00000000-0000-4000-8000-000000000000"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("queue list"), std::string::npos) << unknown.err;
  EXPECT_EQ(queue({"retry"}).exit_code, 2);
  EXPECT_EQ(queue({"retry", second, "--all"}).exit_code, 2);
  EXPECT_EQ(queue({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(queue({"skip", "00000000-0000-4000-8000-000000000000"}).exit_code, 2);

  // A skip of a queued event is refused while an instance drains (it may have read it).
  auto lock = std::make_unique<p2k_pg_test::Session>(db_->url());
  lock->exec("SELECT pg_advisory_lock(1882352481, 2)");
  auto refused = queue({"skip", second});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("drain"), std::string::npos) << refused.err;
  lock.reset();

  // With none draining it is skipped: the others keep their ids, and it is never sent.
  auto skipped = queue_json({"skip", second});
  EXPECT_EQ(skipped.at("was").as_string(), "queued");
  auto after = queue_json({"list"});
  ASSERT_EQ(after.at("queued").as_array().size(), 3u);
  EXPECT_EQ(after.at("queued").as_array()[0].at("event_id"), queued[0].at("event_id"));
  EXPECT_EQ(after.at("queued").as_array()[1].at("event_id"), queued[2].at("event_id"));
  auto run = p2k_test::run_pg2kafka({"run", "--once", "--config", config("park")}, {}, 120s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(keys_of(read(topic_a_, 2)), (std::vector<std::string>{"1:INSERT", "3:INSERT"}));
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.queue_audit WHERE action = 'skip' AND "
                    "event_uuid = '" +
                    second + "'"),
            "1");
}

TEST_F(ParkingPgKafka, ParkWithASourceThatCannotPark_IsAConfigurationError) {
  std::string cfg = dir_.write("generator.json", R"({
      "source": {"plugin": "generator"},
      "sink": {"plugin": "stdout"},
      "pipeline": {"on_permanent_failure": "park"}})");
  auto r = p2k_test::run_pg2kafka({"check", "--config", cfg});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot park"), std::string::npos) << r.err;
  std::string lonely = dir_.write("lonely.json", R"({
      "source": {"plugin": "generator"},
      "sink": {"plugin": "stdout"},
      "pipeline": {"dead_letter.topic": "dead"}})");
  auto d = p2k_test::run_pg2kafka({"check", "--config", lonely});
  EXPECT_EQ(d.exit_code, 2) << d.out << d.err;
  EXPECT_NE(d.err.find("on_permanent_failure"), std::string::npos) << d.err;
}

}  // namespace
