// Capture that cannot be switched off unnoticed: partitioned tables (writes made straight to any
// partition, present or future), sessions with session_replication_role = replica, and triggers
// disabled by hand.
#include <gtest/gtest.h>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

namespace {

std::string problems(Session& sql) {
  return sql.value(
      "SELECT coalesce(string_agg(table_name::text || ': ' || problem, '; '), '') "
      "FROM pg2kafka.tracking_problems()");
}

}  // namespace

TEST(Partitions, WritesToEveryPartition_PresentFutureAndAttached_AreCapturedUnderTheParent) {
  TestDatabase db;
  // m: a partition m1, and m2, itself partitioned (m2a, m2b). The key column is not first, and
  // m2b's columns are in another order, with a dropped one.
  db.sql().exec(R"sql(
    CREATE TABLE m (id int, k text, v text) PARTITION BY RANGE (id);
    CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
    CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (id);
    CREATE TABLE m2a PARTITION OF m2 FOR VALUES FROM (100) TO (150);
    CREATE TABLE m2b (gone int, v text, k text, id int);
    ALTER TABLE m2b DROP COLUMN gone;
    ALTER TABLE m2 ATTACH PARTITION m2b FOR VALUES FROM (150) TO (200);
    INSERT INTO m VALUES (1, 'a', 'x'), (160, 'b', 'y');
  )sql");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('m', 'k')"), "t");
  EXPECT_EQ(problems(db.sql()), "");
  db.sql().exec("INSERT INTO m VALUES (2, 'c', 'through the parent')");
  db.sql().exec("INSERT INTO m1 VALUES (3, 'd', 'straight to m1')");
  db.sql().exec("UPDATE m2b SET v = 'updated in m2b' WHERE k = 'b'");
  db.sql().exec("INSERT INTO m2a VALUES (120, 'e', 'sub-partition')");
  db.sql().exec("UPDATE m SET v = v WHERE k = 'e'");     // changes nothing: no event
  db.sql().exec("UPDATE m SET id = 130 WHERE k = 'a'");  // moves m1 -> m2a
  db.sql().exec("DELETE FROM m2a WHERE k = 'e'");
  db.sql().exec("TRUNCATE m1");
  // A partition created, and one attached, after setup.
  db.sql().exec("CREATE TABLE m3 PARTITION OF m FOR VALUES FROM (200) TO (300)");
  db.sql().exec("CREATE TABLE m4 (id int, k text, v text)");
  db.sql().exec("ALTER TABLE m ATTACH PARTITION m4 FOR VALUES FROM (300) TO (400)");
  db.sql().exec("INSERT INTO m3 VALUES (201, 'f', 'created later')");
  db.sql().exec("INSERT INTO m4 VALUES (301, 'g', 'attached later')");

  auto source = make_source(db.url());
  source->open();
  EXPECT_EQ(describe(drain(*source)), (std::vector<std::string>{
                                          R"(m SNAPSHOT a {"id":1,"k":"a","v":"x"})",
                                          R"(m SNAPSHOT b {"id":160,"k":"b","v":"y"})",
                                          R"(m INSERT c {"id":2,"k":"c","v":"through the parent"})",
                                          R"(m INSERT d {"id":3,"k":"d","v":"straight to m1"})",
                                          R"(m UPDATE b {"v":"updated in m2b"})",
                                          R"(m INSERT e {"id":120,"k":"e","v":"sub-partition"})",
                                          R"(m DELETE a {"k":"a"})",
                                          R"(m INSERT a {"id":130,"k":"a","v":"x"})",
                                          R"(m DELETE e {"k":"e"})",
                                          "m TRUNCATE null null",
                                          R"(m INSERT f {"id":201,"k":"f","v":"created later"})",
                                          R"(m INSERT g {"id":301,"k":"g","v":"attached later"})",
                                      }));

  // TRUNCATE triggers are not cloned: the partitions added later are reported, and setup covers
  // them (no new snapshot).
  EXPECT_EQ(problems(db.sql()), "m: partition without truncate trigger");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('m', 'k')"), "f");
  EXPECT_EQ(problems(db.sql()), "");
  db.sql().exec("TRUNCATE m3");
  // Detached, a partition is no longer captured, TRUNCATE included.
  db.sql().exec("ALTER TABLE m DETACH PARTITION m4");
  db.sql().exec("INSERT INTO m4 VALUES (302, 'h', 'detached')");
  db.sql().exec("TRUNCATE m4");
  db.sql().exec("INSERT INTO m VALUES (4, 'i', 'last')");
  EXPECT_EQ(describe(drain(*source)), (std::vector<std::string>{
                                          "m TRUNCATE null null",
                                          R"(m INSERT i {"id":4,"k":"i","v":"last"})",
                                      }));
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Partitions, ATableTrackedByAnOlderPg2kafka_IsUpgradedToRowCapture) {
  // Function set 1 tracked partitioned tables with statement-level triggers on the parent, which
  // missed writes made straight to a partition.
  TestDatabase db(/*install_schema=*/false);
  apply_migrations_up_to(db.sql(), 6);
  db.sql().exec("CREATE TABLE m (id int, k text) PARTITION BY LIST (id)");
  db.sql().exec("CREATE TABLE m1 PARTITION OF m FOR VALUES IN (1, 2, 3)");
  db.sql().exec("SELECT pg2kafka.setup('m', 'k')");
  db.sql().exec("INSERT INTO m VALUES (1, 'a')");
  auto source = make_source(db.url(), {{"perform_migrations", "true"}});
  source->open();
  EXPECT_EQ(problems(db.sql()), "");
  EXPECT_EQ(
      db.sql().value("SELECT string_agg(tgname || ' ' || tgenabled::text, ', ' ORDER BY tgname) "
                     "FROM pg_trigger WHERE tgrelid = 'm1'::regclass"),
      "pg2kafka_row A, pg2kafka_truncate A");
  db.sql().exec("INSERT INTO m1 VALUES (2, 'b')");
  EXPECT_EQ(describe(drain(*source)), (std::vector<std::string>{
                                          R"(m INSERT a {"id":1,"k":"a"})",
                                          R"(m INSERT b {"id":2,"k":"b"})",
                                      }));
}

TEST(Capture, WritesMadeWithSessionReplicationRoleReplica_AreCaptured) {
  // pg_restore, logical replication's apply worker and some migration tools write with
  // session_replication_role = replica, which silences ordinary triggers; pg2kafka's fire ALWAYS.
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  db.sql().exec("CREATE TABLE p (id int, k text) PARTITION BY LIST (id)");
  db.sql().exec("CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k'), pg2kafka.setup('p', 'k')");
  db.sql().exec("SET session_replication_role = replica");
  db.sql().exec("INSERT INTO t VALUES (1, 'a', 1)");
  db.sql().exec("UPDATE t SET v = 2");
  db.sql().exec("DELETE FROM t");
  db.sql().exec("INSERT INTO p1 VALUES (1, 'b')");
  db.sql().exec("TRUNCATE t");
  db.sql().exec("RESET session_replication_role");
  auto source = make_source(db.url());
  source->open();
  EXPECT_EQ(describe(drain(*source)), (std::vector<std::string>{
                                          R"(t INSERT a {"id":1,"k":"a","v":1})",
                                          R"(t UPDATE a {"v":2})",
                                          R"(t DELETE a {"k":"a"})",
                                          R"(p INSERT b {"id":1,"k":"b"})",
                                          "t TRUNCATE null null",
                                      }));
}

// A partition's own TRUNCATE trigger (a TRUNCATE of that partition alone) counts too.
TEST(Partitions, ADisabledTruncateTriggerOnAPartition_IsReported_AndSetupRepairsIt) {
  TestDatabase db;
  db.sql().exec(R"sql(
    CREATE TABLE m (id int, k text) PARTITION BY RANGE (id);
    CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (100);
  )sql");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('m', 'k')"), "t");
  EXPECT_EQ(problems(db.sql()), "");
  db.sql().exec("ALTER TABLE m1 DISABLE TRIGGER pg2kafka_truncate");
  EXPECT_EQ(problems(db.sql()), "m: disabled");
  db.sql().value("SELECT pg2kafka.setup('m', 'k')");
  EXPECT_EQ(problems(db.sql()), "");
  EXPECT_EQ(db.sql().value("SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'm1'::regclass "
                           "AND tgname = 'pg2kafka_truncate'"),
            "A");
}

TEST(Capture, DisabledTriggers_AreReportedAtStart_AndSetupStartsCaptureAgainWithASnapshot) {
  TestDatabase db;
  db.sql().exec("CREATE TABLE t (id int PRIMARY KEY, k text, v int)");
  db.sql().exec("INSERT INTO t VALUES (1, 'a', 1)");
  db.sql().exec("SELECT pg2kafka.setup('t', 'k')");
  db.sql().exec("ALTER TABLE t DISABLE TRIGGER pg2kafka_update");
  db.sql().exec("UPDATE t SET v = 2");  // lost: the trigger is off
  EXPECT_EQ(problems(db.sql()), "t: disabled");
  LogSink logs;
  auto source = make_source(db.url(), {}, &logs);
  source->open();
  EXPECT_NE(logs.all().find("tracked table public.t: some of its capture triggers are disabled"),
            std::string::npos)
      << logs.all();
  EXPECT_EQ(drain(*source).size(), 1u);  // the first snapshot
  // setup does not call the table tracked: it enables the triggers and sends a new snapshot, so
  // a consumer gets the row as it is (read after the UPDATE that came before it: so it follows).
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('t', 'k')"), "t");
  EXPECT_EQ(problems(db.sql()), "");
  db.sql().exec("UPDATE t SET v = 3");
  EXPECT_EQ(describe(drain(*source)), (std::vector<std::string>{
                                          R"(t UPDATE a {"v":3})",
                                          R"(t SNAPSHOT a {"id":1,"k":"a","v":3})",
                                      }));
  // ENABLE (not ALWAYS) would miss replica sessions: reported as an older form, re-attached.
  db.sql().exec("ALTER TABLE t ENABLE TRIGGER pg2kafka_insert");
  EXPECT_EQ(problems(db.sql()), "t: outdated");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('t', 'k')"), "f");
  EXPECT_EQ(problems(db.sql()), "");
}
