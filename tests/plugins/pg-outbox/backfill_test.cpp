// Backfills (sql/README.md, "Backfills"): setup's snapshot of a table with a primary key and
// pg2kafka.backfill send the rows in chunks, each read in a drain window's snapshot and sent
// after that window's events; progress is recorded once delivered, and a new source resumes
// there. The replay of what was sent, per key, must equal the table: SNAPSHOT and INSERT
// replace a row, UPDATE merges its changed columns, DELETE removes it.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;

namespace {

using Rows = std::map<std::string, boost::json::object>;

// What a consumer applying `events` in order holds, per key.
Rows replay(const std::vector<Event>& events, Rows state = {}) {
  for (const Event& e : events) {
    if (!e.key) continue;
    std::string s = e.statement();
    if (s == "SNAPSHOT" || s == "INSERT") {
      state[*e.key] = e.data().as_object();
    } else if (s == "UPDATE") {
      for (const auto& [name, value] : e.data().as_object()) state[*e.key][name] = value;
    } else if (s == "DELETE") {
      state.erase(*e.key);
    } else if (s == "TRUNCATE") {
      state.clear();
    }
  }
  return state;
}

// The table as a consumer should hold it: each row's JSON, by its key column's text.
Rows table_rows(Session& sql, const std::string& table, const std::string& key) {
  Rows out;
  for (const auto& r :
       sql.rows("SELECT t." + key + "::text, row_to_json(t.*)::text FROM " + table + " t"))
    out[*r[0]] = boost::json::parse(*r[1]).as_object();
  return out;
}

std::string backfills(Session& sql) {
  return sql.value(
      "SELECT coalesce(string_agg(relid::text || ' ' || state || ' ' || rows_done || ' ' || "
      "coalesce(last_key::text, '-'), ', ' ORDER BY id), '') FROM pg2kafka.backfills");
}

std::vector<std::string> statements_of(const std::vector<Event>& events, const std::string& key) {
  std::vector<std::string> out;
  for (const Event& e : events)
    if (e.key == key) out.push_back(e.statement() + " " + boost::json::serialize(e.data()));
  return out;
}

void ten_rows(Session& sql, const std::string& table = "t") {
  sql.exec("CREATE TABLE " + table + " (id int PRIMARY KEY, k text, v int)");
  sql.exec("INSERT INTO " + table + " SELECT g, 'k' || g, g FROM generate_series(1, 10) g");
}

}  // namespace

TEST(Backfill, SetupSendsTheRowsInChunks_AfterTheChangesTheyReflect_AndRecordsItsProgress) {
  TestDatabase db;
  ten_rows(db.sql());
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('t', 'k')"), "t");
  // Nothing copied into the queue: a backfill waits for the drainer.
  EXPECT_EQ(queued_events(db.sql()), "0");
  EXPECT_EQ(backfills(db.sql()), "t pending 0 -");
  EXPECT_EQ(db.sql().value("SELECT rows_estimated > 0 AND reader::text LIKE "
                           "'pg2kafka_backfill.reader_%' FROM pg2kafka.backfills"),
            "t");
  // Changes committed before the first chunk is read come first; the chunks show their result.
  db.sql().exec("UPDATE t SET v = 50 WHERE id = 5");
  db.sql().exec("DELETE FROM t WHERE id = 2");

  auto source = make_source(db.url(), {{"backfill_chunk_rows", "3"}});
  source->open();
  auto first = poll_until(*source, 5);  // the two changes and the first chunk
  ASSERT_GE(first.size(), 5u);
  EXPECT_EQ(describe({first.begin(), first.begin() + 5}),
            (std::vector<std::string>{R"(t UPDATE k5 {"v":50})", R"(t DELETE k2 {"k":"k2"})",
                                      R"(t SNAPSHOT k1 {"id":1,"k":"k1","v":1})",
                                      R"(t SNAPSHOT k3 {"id":3,"k":"k3","v":3})",
                                      R"(t SNAPSHOT k4 {"id":4,"k":"k4","v":4})"}));
  // Changes between chunks: row 4 was sent already, row 8 not yet.
  db.sql().exec("UPDATE t SET v = 40 WHERE id = 4");
  db.sql().exec("UPDATE t SET v = 80 WHERE id = 8");
  db.sql().exec("INSERT INTO t VALUES (11, 'k11', 11)");
  auto rest = drain(*source);
  std::vector<Event> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  EXPECT_EQ(
      statements_of(all, "k4"),
      (std::vector<std::string>{R"(SNAPSHOT {"id":4,"k":"k4","v":4})", R"(UPDATE {"v":40})"}));
  EXPECT_EQ(
      statements_of(all, "k8"),
      (std::vector<std::string>{R"(UPDATE {"v":80})", R"(SNAPSHOT {"id":8,"k":"k8","v":80})"}));
  EXPECT_EQ(replay(all), table_rows(db.sql(), "t", "k"));
  // Every event has its own uuid; chunks are not queue rows.
  std::set<std::string> ids;
  for (const Event& e : all) ids.insert(e.id);
  EXPECT_EQ(ids.size(), all.size());
  EXPECT_EQ(backfills(db.sql()), "t done 10 {11}");
  EXPECT_EQ(db.sql().value("SELECT finished_at >= started_at AND percent = 100 AND "
                           "rows_per_second > 0 AND eta IS NOT NULL FROM pg2kafka.backfills"),
            "t");
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Backfill, AnEmptyTable_NeedsNone_AndATableWithoutAPrimaryKey_IsCopiedBySetup) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE empty (id int PRIMARY KEY, k text)");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('empty', 'k')"), "t");
  db.sql().exec("CREATE TABLE nokey (k text, v int)");
  db.sql().exec("INSERT INTO nokey VALUES ('a', 1), ('b', 2)");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('nokey', 'k')"), "t");
  EXPECT_EQ(backfills(db.sql()), "");
  EXPECT_EQ(queued_events(db.sql()), "2");  // the old way: copied under the table's lock
  std::string err = db.sql().try_exec("SELECT pg2kafka.backfill('nokey')");
  EXPECT_NE(err.find("nokey has no primary key (nor a unique index on NOT NULL columns)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("Add a primary key"), std::string::npos) << err;
  // A unique index on NOT NULL columns will do; a nullable one will not.
  db.sql().exec("CREATE TABLE uniq (a int NOT NULL, b text NOT NULL, n int UNIQUE, k text)");
  db.sql().exec("CREATE UNIQUE INDEX ON uniq (b, a)");
  db.sql().exec("INSERT INTO uniq VALUES (1, 'x', NULL, 'p'), (1, 'y', NULL, 'q')");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('uniq', 'k')"), "t");
  EXPECT_EQ(db.sql().value("SELECT order_attnums::text FROM pg2kafka.backfills"), "{2,1}");
  auto source = make_source(db.url());
  source->open();
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(nokey SNAPSHOT a {"k":"a","v":1})",
                                      R"(nokey SNAPSHOT b {"k":"b","v":2})",
                                      R"(uniq SNAPSHOT p {"a":1,"b":"x","n":null,"k":"p"})",
                                      R"(uniq SNAPSHOT q {"a":1,"b":"y","n":null,"k":"q"})"}));
}

TEST(Backfill, OnDemand_ByACondition_SendsTheMatchingRows_AndRefusesWhatIsNotOneExpression) {
  TestDatabase db;
  ten_rows(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  auto source = make_source(db.url(), {{"backfill_chunk_rows", "2"}});
  source->open();
  EXPECT_EQ(drain(*source).size(), 10u);
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.backfill('t', 'v % 3 = 0 AND k <> ''k;9''')"), "2");
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(t SNAPSHOT k3 {"id":3,"k":"k3","v":3})",
                                      R"(t SNAPSHOT k6 {"id":6,"k":"k6","v":6})",
                                      R"(t SNAPSHOT k9 {"id":9,"k":"k9","v":9})"}));
  EXPECT_EQ(backfills(db.sql()), "t done 10 {10}, t done 3 {9}");

  for (auto [condition, problem] : std::vector<std::pair<std::string, std::string>>{
           {"v > 1); DELETE FROM t; SELECT (true", "a ')' without its '('"},
           {"v > 1; DELETE FROM t", "a ';' (one expression only, not statements)"},
           {"(v > 1", "a '(' without its ')'"},
           {"k = 'unterminated", "an unterminated string"},
           {"v > 1 /* open", "an unterminated comment"},
           {"k = $x$ no end", "an unterminated dollar-quoted string"},
       }) {
    std::string err = db.sql().try_exec("SELECT pg2kafka.backfill('t', $c$" + condition + "$c$)");
    EXPECT_NE(err.find("the condition must be one boolean expression over the table's columns, "
                       "and this one has " +
                       problem),
              std::string::npos)
        << condition << ": " << err;
  }
  for (auto [condition, problem] : std::vector<std::pair<std::string, std::string>>{
           {"v + 1", "argument of WHERE must be type boolean"},
           {"nope > 1", "column \"nope\" does not exist"},
           {"v >", "syntax error"},
       }) {
    std::string err = db.sql().try_exec("SELECT pg2kafka.backfill('t', $c$" + condition + "$c$)");
    EXPECT_NE(err.find("the condition is not a boolean expression over the columns of public.t: " +
                       problem),
              std::string::npos)
        << condition << ": " << err;
  }
  // Comments and quoted semicolons are fine.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.backfill('t', $c$v = 1 -- one\n OR k = 'a;b' /* "
                           "(*/$c$)"),
            "3");
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(t SNAPSHOT k1 {"id":1,"k":"k1","v":1})"}));
  EXPECT_NE(db.sql().try_exec("SELECT pg2kafka.backfill('untracked_table')"), "");
  db.sql().exec("CREATE TABLE other (id int PRIMARY KEY)");
  EXPECT_NE(db.sql().try_exec("SELECT pg2kafka.backfill('other')").find("other is not tracked"),
            std::string::npos);
  EXPECT_EQ(queued_events(db.sql()), "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM t"), "10") << "no condition ran a statement";
}

TEST(Backfill, Cancelled_StopsAfterTheChunksInFlight_AndOnlyTheTablesOwnerMayCancel) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  db.sql().exec("INSERT INTO t SELECT g, 'k' || g, g FROM generate_series(1, 100) g");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  TestRole outsider(db, "outsider");
  Session as_outsider(outsider.url());
  EXPECT_NE(as_outsider.try_exec("SELECT pg2kafka.cancel_backfill('t')").find("must be owner"),
            std::string::npos);
  EXPECT_EQ(as_outsider.value("WITH c AS (UPDATE pg2kafka.backfills SET state = 'cancelled' "
                              "RETURNING 1) SELECT count(*) FROM c"),
            "0");
  auto source = make_source(db.url(), {{"backfill_chunk_rows", "5"}});
  source->open();
  auto first = poll_until(*source, 5);
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.cancel_backfill('t')"), "1");
  auto rest = drain(*source);
  // At most the chunks read before the cancel was seen (two may be in flight at once).
  EXPECT_LE(first.size() + rest.size(), 15u);
  EXPECT_EQ(db.sql().value("SELECT state FROM pg2kafka.backfills"), "cancelled");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.cancel_backfill('t')"), "0");
  // A new backfill starts over; teardown cancels it.
  db.sql().exec("SELECT pg2kafka.backfill('t')");
  db.sql().exec("SELECT pg2kafka.teardown('t')");
  EXPECT_EQ(db.sql().value("SELECT string_agg(state, ',' ORDER BY id) FROM pg2kafka.backfills"),
            "cancelled,cancelled");
  EXPECT_TRUE(drain(*source).empty());
}

TEST(Backfill, ResumesAfterTheLastDeliveredChunk_WhenTheSourceIsGone) {
  TestDatabase db;
  ten_rows(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  {
    auto source = make_source(db.url(), {{"backfill_chunk_rows", "3"}});
    source->open();
    auto delivered = poll_until(*source, 6);  // two chunks, acknowledged
    ASSERT_EQ(delivered.size(), 6u);
    auto unacknowledged = poll_until(*source, 3, /*ack=*/false);
    EXPECT_EQ(unacknowledged.size(), 3u);
    EXPECT_EQ(backfills(db.sql()), "t running 6 {6}");
    EXPECT_EQ(db.sql().value("SELECT percent > 0 AND percent < 100 AND rows_per_second > 0 AND "
                             "eta > now() FROM pg2kafka.backfills"),
              "t");
  }  // gone, as after kill -9: the third chunk was read but never acknowledged
  EXPECT_EQ(backfills(db.sql()), "t running 6 {6}");
  LogSink logs;
  auto source = make_source(db.url(), {{"backfill_chunk_rows", "3"}}, &logs);
  source->open();
  auto rest = drain(*source);
  EXPECT_EQ(keys_of(rest), (std::set<std::string>{"k7", "k8", "k9", "k10"}));
  EXPECT_EQ(backfills(db.sql()), "t done 10 {10}");
  EXPECT_NE(logs.all().find("backfill 1 of public.t: sending its rows as SNAPSHOT events, in "
                            "chunks of up to 3 rows (about "),
            std::string::npos)
      << logs.all();
  EXPECT_NE(logs.all().find("resuming after 6 rows sent before"), std::string::npos) << logs.all();
  EXPECT_NE(logs.all().find("backfill 1 of public.t done: 10 rows sent"), std::string::npos)
      << logs.all();
}

TEST(Backfill, ARowWhoseKeyMovesBehindTheCursor_IsSentWhole_AndTheReplayEqualsTheTable) {
  TestDatabase db;
  // Tracked by ext; the chunks follow the primary key id, which the UPDATEs change.
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, ext text NOT NULL, v int)");
  db.sql().exec("INSERT INTO t SELECT g, 'e' || g, g FROM generate_series(1, 8) g");
  db.sql().exec("SELECT pg2kafka.setup('t', 'ext')");
  auto source = make_source(db.url(), {{"backfill_chunk_rows", "2"}});
  source->open();
  auto first = poll_until(*source, 2);  // ids 1 and 2
  ASSERT_EQ(keys_of(first), (std::set<std::string>{"e1", "e2"}));
  db.sql().exec("UPDATE t SET id = 0, v = 50 WHERE id = 5");  // ahead of the cursor to behind it
  db.sql().exec("UPDATE t SET id = 100 WHERE id = 1");        // behind to ahead
  db.sql().exec("UPDATE t SET v = 70 WHERE id = 7");          // the key stays
  auto rest = drain(*source);
  std::vector<Event> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  // Without its whole row after the UPDATE, e5 would only ever be {"id":0,"v":50}.
  EXPECT_EQ(statements_of(all, "e5"),
            (std::vector<std::string>{R"(UPDATE {"id":0,"v":50})",
                                      R"(SNAPSHOT {"id":0,"ext":"e5","v":50})"}));
  EXPECT_EQ(
      statements_of(all, "e7"),
      (std::vector<std::string>{R"(UPDATE {"v":70})", R"(SNAPSHOT {"id":7,"ext":"e7","v":70})"}));
  EXPECT_EQ(replay(all), table_rows(db.sql(), "t", "ext"));
  EXPECT_EQ(backfills(db.sql()), "t done 8 {100}");
}

TEST(Backfill, ATableDroppedOrRenamedDuringTheBackfill_OtherTablesFlowOn) {
  TestDatabase db;
  ten_rows(db.sql(), "gone");
  ten_rows(db.sql(), "moved");
  db.sql().exec("CREATE TABLE other (id int PRIMARY KEY, k text)");
  db.sql().exec("SELECT pg2kafka.setup('gone', 'k')");
  db.sql().exec("SELECT pg2kafka.setup('moved', 'k')");
  db.sql().exec("SELECT pg2kafka.setup('other', 'k')");
  LogSink logs;
  auto source = make_source(db.url(), {{"backfill_chunk_rows", "4"}}, &logs);
  source->open();
  auto first = poll_until(*source, 4);
  db.sql().exec("DROP TABLE gone");
  db.sql().exec("ALTER TABLE moved RENAME TO renamed");
  db.sql().exec("INSERT INTO other VALUES (1, 'o1')");
  auto rest = drain(*source);
  std::vector<Event> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  EXPECT_EQ(keys_of(all).count("o1"), 1u);
  EXPECT_EQ(db.sql().value("SELECT string_agg(table_name || ' ' || state, ', ' ORDER BY id) "
                           "FROM pg2kafka.backfills"),
            "gone failed, moved done");
  EXPECT_NE(db.sql().value("SELECT error FROM pg2kafka.backfills WHERE table_name = 'gone'"), "");
  EXPECT_NE(logs.all().find("backfill 1 of public.gone failed: "), std::string::npos) << logs.all();
  // The renamed table's rows went to its topic under its new name once renamed.
  size_t renamed = 0;
  for (const Event& e : all) renamed += e.topic.ends_with(".renamed");
  EXPECT_EQ(renamed, 10u);
}

TEST(Backfill, TheRegistryIsTheOwnersToAskAndCancel_AndTheDrainersToAdvance) {
  TestDatabase db;
  TestRole owner(db, "owner"), writer(db, "writer");
  db.sql().exec("GRANT CREATE ON SCHEMA public TO " + owner.name());
  Session as_owner(owner.url());
  as_owner.exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  as_owner.exec("INSERT INTO t VALUES (1, 'a', 1), (2, 'b', 2)");
  as_owner.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON t TO " + writer.name());
  EXPECT_EQ(as_owner.value("SELECT pg2kafka.setup('t', 'k')"), "t");
  Session as_writer(writer.url());
  EXPECT_NE(as_writer.try_exec("SELECT pg2kafka.backfill('t')").find("must be owner of table"),
            std::string::npos);
  std::string reader = db.sql().value("SELECT reader::text FROM pg2kafka.backfills");
  const std::string request =
      "INSERT INTO pg2kafka.backfills (relid, table_schema, table_name, order_attnums, reader) "
      "VALUES ('t', 'public', 't', '{1}', '" +
      reader + "')";
  EXPECT_NE(as_writer.try_exec(request).find("row-level security"), std::string::npos)
      << "only the table's owner asks for a backfill, and only with a reader of its own";
  EXPECT_NE(as_owner.try_exec("INSERT INTO pg2kafka.backfills (relid, table_schema, table_name, "
                              "order_attnums, reader, requested_by) VALUES ('t', 'public', 't', "
                              "'{1}', '" +
                              reader + "', 'postgres')"),
            "")
      << "the requester is always the inserting role";
  EXPECT_NE(as_owner.try_exec("UPDATE pg2kafka.backfills SET state = 'done'"), "")
      << "an owner may only cancel";
  EXPECT_NE(as_owner.try_exec("UPDATE pg2kafka.backfills SET rows_done = 99"), "");
  EXPECT_EQ(as_writer.value("WITH c AS (UPDATE pg2kafka.backfills SET state = 'cancelled' "
                            "RETURNING 1) SELECT count(*) FROM c"),
            "0");
  // The reader serves only a role that may remove queued events (which sees every event anyway).
  std::string call = "SELECT * FROM " + reader.substr(0, reader.find('(')) + "(" +
                     db.sql().value("SELECT id FROM pg2kafka.backfills") + ", NULL, 10)";
  for (Session* s : {&as_owner, &as_writer})
    EXPECT_NE(s->try_exec(call).find("only the drainer"), std::string::npos) << call;
  EXPECT_EQ(db.sql().value("SELECT state || ' ' || rows_done FROM pg2kafka.backfills"),
            "pending 0");
}

TEST(Backfill, AConditionRunsWithItsCallersRights_ReadOnly_AndNeverReachesTheDrainer) {
  TestDatabase db;
  TestRole owner(db, "owner");
  db.sql().exec("CREATE TABLE audit (who text, what text)");
  db.sql().exec("GRANT INSERT, SELECT ON audit TO PUBLIC");
  db.sql().exec("CREATE TABLE secret (x int)");  // the superuser's: the owner may not read it
  db.sql().exec("GRANT CREATE ON SCHEMA public TO " + owner.name());
  Session as_owner(owner.url());
  as_owner.exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  as_owner.exec("INSERT INTO t SELECT g, 'k' || g, g FROM generate_series(1, 6) g");
  as_owner.exec("SELECT pg2kafka.setup('t', 'k')");
  // Another table's events wait in the queue meanwhile.
  db.sql().exec("CREATE TABLE bystander (id int PRIMARY KEY, k text)");
  db.sql().exec("SELECT pg2kafka.setup('bystander', 'k')");
  db.sql().exec("INSERT INTO bystander VALUES (1, 'b1')");
  auto source = make_source(db.url());  // as the superuser: the most there is to borrow
  source->open();
  EXPECT_EQ(drain(*source).size(), 7u);

  EXPECT_NE(as_owner
                .try_exec("SELECT pg2kafka.backfill('t', 'EXISTS (SELECT FROM "
                          "public.secret)')")
                .find("permission denied"),
            std::string::npos);
  // Evaluated as the owner: the rows it names are sent; as anyone else, none would be.
  as_owner.exec("SELECT pg2kafka.backfill('t', $c$current_user = '" + owner.name() +
                "' AND v <= 2$c$)");
  EXPECT_EQ(keys_of(drain(*source)), (std::set<std::string>{"k1", "k2"}));
  // A condition that tries to write, to unlock the drain lock, or to change the session.
  as_owner.exec(R"(CREATE FUNCTION sneaky(v int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      BEGIN INSERT INTO public.audit VALUES (current_user, 'condition');
      EXCEPTION WHEN OTHERS THEN NULL; END;
      BEGIN DELETE FROM pg2kafka.event_batches;
      EXCEPTION WHEN OTHERS THEN NULL; END;
      PERFORM pg_advisory_unlock_all();
      PERFORM set_config('search_path', 'nowhere', false);
      BEGIN EXECUTE 'PREPARE p2k_fetch AS DELETE FROM pg2kafka.event_batches';
      EXCEPTION WHEN OTHERS THEN NULL; END;
      RETURN v = 3;
    END $$)");
  db.sql().exec("INSERT INTO bystander VALUES (2, 'b2')");
  as_owner.exec("SELECT pg2kafka.backfill('t', 'public.sneaky(v)')");
  db.sql().exec("INSERT INTO bystander VALUES (3, 'b3')");
  // b3 committed before the chunk was read: it comes first.
  EXPECT_EQ(describe(drain(*source)),
            (std::vector<std::string>{R"(bystander INSERT b2 {"id":2,"k":"b2"})",
                                      R"(bystander INSERT b3 {"id":3,"k":"b3"})",
                                      R"(t SNAPSHOT k3 {"id":3,"k":"k3","v":3})"}));
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM audit"), "0") << "read-only, and rolled back";
  EXPECT_TRUE(source->active()) << "the drain lock is on another connection";
  auto standby = make_source(db.url());
  standby->open();
  EXPECT_FALSE(standby->active());
  // A condition that fails fails its backfill, loudly; the rest goes on.
  as_owner.exec("SELECT pg2kafka.backfill('t', 'v / (v - 4) > 0')");
  db.sql().exec("INSERT INTO bystander VALUES (4, 'b4')");
  EXPECT_EQ(keys_of(drain(*source)), (std::set<std::string>{"b4"}));
  EXPECT_EQ(db.sql().value("SELECT state || ': ' || error FROM pg2kafka.backfills ORDER BY id "
                           "DESC LIMIT 1"),
            "failed: division by zero");
}

TEST(Backfill, AReaderReplacedByItsOwner_RunsWithTheOwnersRightsInARolledBackReadOnlySession) {
  TestDatabase db;
  TestRole owner(db, "owner");
  db.sql().exec("CREATE TABLE audit (who text, what text)");
  db.sql().exec("GRANT INSERT, SELECT ON audit TO PUBLIC");
  db.sql().exec("GRANT CREATE ON SCHEMA public TO " + owner.name());
  Session as_owner(owner.url());
  as_owner.exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  as_owner.exec("INSERT INTO t VALUES (1, 'k1', 1)");
  // A trigger function that would act with whatever rights fire it.
  as_owner.exec(R"(CREATE FUNCTION trap() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO public.audit VALUES (current_user, TG_NAME);
      DELETE FROM pg2kafka.event_batches;
      RETURN NULL;
    END $$)");
  as_owner.exec("SELECT pg2kafka.setup('t', 'k')");
  std::string reader = db.sql().value("SELECT reader::text FROM pg2kafka.backfills");
  std::string name = reader.substr(0, reader.find('('));
  // The owner replaces its reader: everything it can think of, then a row of its choosing.
  as_owner.exec("CREATE OR REPLACE FUNCTION " + name +
                R"((backfill bigint, after_key text[], max_rows integer)
    RETURNS TABLE (key text[], data json) LANGUAGE plpgsql SECURITY DEFINER AS $$
    BEGIN
      BEGIN
        CREATE TEMP TABLE bait (x int);
        CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON bait DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION public.trap();
        INSERT INTO bait VALUES (1);
      EXCEPTION WHEN OTHERS THEN NULL;  -- a read-only transaction: no temporary table
      END;
      BEGIN DELETE FROM pg2kafka.event_batches;
      EXCEPTION WHEN OTHERS THEN NULL; END;
      PERFORM pg_advisory_unlock_all();
      PERFORM set_config('search_path', 'nowhere', false);
      PERFORM set_config('statement_timeout', '1', false);
      BEGIN EXECUTE 'PREPARE p2k_ack AS DELETE FROM pg2kafka.event_batches';
      EXCEPTION WHEN OTHERS THEN NULL; END;
      IF after_key IS NULL THEN
        RETURN QUERY SELECT ARRAY['9'], '{"id": 9, "k": "forged", "v": 0}'::json;
      END IF;
    END $$)");
  db.sql().exec("CREATE TABLE bystander (id int PRIMARY KEY, k text)");
  db.sql().exec("SELECT pg2kafka.setup('bystander', 'k')");
  db.sql().exec("INSERT INTO bystander VALUES (1, 'b1')");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  db.sql().exec("INSERT INTO bystander VALUES (2, 'b2')");
  auto later = drain(*source);
  // What it returned goes to its own table's topic, as it could have queued anyway.
  EXPECT_EQ(describe(events),
            (std::vector<std::string>{R"(bystander INSERT b1 {"id":1,"k":"b1"})",
                                      R"(t SNAPSHOT forged {"id":9,"k":"forged","v":0})"}));
  EXPECT_EQ(describe(later),
            (std::vector<std::string>{R"(bystander INSERT b2 {"id":2,"k":"b2"})"}));
  EXPECT_EQ(db.sql().value("SELECT coalesce(string_agg(who || ' ' || what, '; '), '') FROM audit"),
            "")
      << "no trigger fired, as the owner or as the drainer";
  EXPECT_EQ(db.sql().value("SELECT state FROM pg2kafka.backfills"), "done")
      << db.sql().value("SELECT coalesce(error, '') FROM pg2kafka.backfills");
  EXPECT_TRUE(source->active());
  // Replaced by one owned by another role, it is not called at all.
  TestRole other(db, "other");
  db.sql().exec("ALTER FUNCTION " + reader + " OWNER TO " + other.name());
  as_owner.exec("SELECT pg2kafka.backfill('t')");  // a new reader of the owner's: the same name?
  db.sql().exec("UPDATE pg2kafka.backfills SET reader = '" + reader + "' WHERE state = 'pending'");
  LogSink logs;
  auto again = make_source(db.url(), {}, &logs);
  source.reset();
  again->open();
  EXPECT_TRUE(drain(*again).empty());
  EXPECT_NE(db.sql()
                .value("SELECT error FROM pg2kafka.backfills ORDER BY id DESC LIMIT 1")
                .find("is not the one of the role that asked for the backfill"),
            std::string::npos);
}

TEST(Backfill, SetupWaitsForALongTransactionInShortAttempts_SoWritersGoOnMeanwhile) {
  TestDatabase db;
  ten_rows(db.sql());
  Session holder(db.url()), setup(db.url()), writer(db.url());
  holder.exec("BEGIN");
  holder.exec("UPDATE t SET v = v WHERE id = 1");  // a long transaction that wrote to t
  setup.send("SELECT pg2kafka.setup('t', 'k')");
  // Meanwhile other writers go on: PostgreSQL would queue them behind a waiting setup.
  auto longest = std::chrono::milliseconds(0);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  int writes = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto t0 = std::chrono::steady_clock::now();
    writer.exec("UPDATE t SET v = v + 1 WHERE id = 2");
    longest = std::max(longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - t0));
    ++writes;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(setup.busy()) << "setup waits for the long transaction";
  // Each attempt holds writers up for at most 50 ms (a loaded machine adds its own delays).
  EXPECT_LT(longest.count(), 400) << writes << " writes";
  EXPECT_GT(writes, 20);
  holder.exec("COMMIT");
  EXPECT_EQ(setup.finish(), "");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.tracking_problem('t') IS NULL"), "t");
  // With lock_timeout set, it gives up after that long, naming who holds the table.
  holder.exec("BEGIN");
  holder.exec("LOCK TABLE t IN ROW EXCLUSIVE MODE");
  std::string err = setup.try_exec(
      "SET lock_timeout = '300ms'; SELECT pg2kafka.configure('t', "
      "'{\"capture\": \"row\"}')");
  EXPECT_NE(err.find("could not lock table public.t within lock_timeout (300ms)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(std::to_string(holder.pid())), std::string::npos) << err;
  holder.exec("ROLLBACK");
}

TEST(Backfill, APartitionedTableWithACompositeKey_IsSentWhole_ChunkAfterChunk) {
  TestDatabase db;
  db.sql().exec(
      "CREATE TABLE m (region text, id int, note text, PRIMARY KEY (region, id)) "
      "PARTITION BY LIST (region)");
  db.sql().exec("CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu')");
  db.sql().exec("CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us')");
  db.sql().exec(
      "INSERT INTO m SELECT r, g, r || g FROM unnest(ARRAY['us', 'eu']) r, "
      "generate_series(1, 4) g");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('m', 'note')"), "t");
  EXPECT_EQ(db.sql().value("SELECT order_attnums::text FROM pg2kafka.backfills"), "{1,2}");
  auto source = make_source(db.url(), {{"backfill_chunk_rows", "3"}});
  source->open();
  auto first = poll_until(*source, 3);
  db.sql().exec("UPDATE m SET note = 'moved' WHERE region = 'us' AND id = 4");  // ahead
  db.sql().exec("UPDATE m SET region = 'eu', id = 9 WHERE region = 'us' AND id = 1");
  auto rest = drain(*source);
  std::vector<Event> all = first;
  all.insert(all.end(), rest.begin(), rest.end());
  std::vector<std::string> chunked;
  for (const Event& e : first) chunked.push_back(*e.key);
  EXPECT_EQ(chunked, (std::vector<std::string>{"eu1", "eu2", "eu3"})) << "in key order";
  EXPECT_EQ(replay(all), table_rows(db.sql(), "m", "note"));
  EXPECT_EQ(backfills(db.sql()), R"(m done 8 {us,4})");
}

TEST(Backfill, ALockedTable_DelaysItsBackfill_WhichGoesOnOnceTheLockIsGone) {
  TestDatabase db;
  ten_rows(db.sql());
  db.sql().exec("CREATE TABLE other (id int PRIMARY KEY, k text)");
  db.sql().exec("SELECT pg2kafka.setup('other', 'k')");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  Session holder(db.url());
  holder.exec("BEGIN");
  holder.exec("LOCK TABLE t IN ACCESS EXCLUSIVE MODE");  // a long ALTER TABLE, say
  db.sql().exec("INSERT INTO other VALUES (1, 'o1')");
  LogSink logs;
  auto source = make_source(db.url(), {{"lock_timeout", "200"}}, &logs);  // ms
  source->open();
  std::thread release([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    holder.exec("COMMIT");
  });
  auto events = drain(*source);
  release.join();
  EXPECT_EQ(events.size(), 11u);
  EXPECT_EQ(events.front().key, "o1") << "other tables' changes flow on meanwhile";
  EXPECT_NE(logs.all().find("backfill 1 of public.t: could not read a chunk: canceling statement "
                            "due to lock timeout (retrying in 1000 ms"),
            std::string::npos)
      << logs.all();
  EXPECT_EQ(backfills(db.sql()), "t done 10 {10}");
}
