// Parked events and queue administration in SQL (migration 012, sql/functions/80_queue_admin.sql;
// sql/README.md, "Parked events", "Queue administration"): the original tool's queries on
// pg2kafka.outbound_event_queue, skip_event, the retry requests, and the roles' grants, tested as
// the attacker: each role created with exactly its documented grants does its job and cannot
// forge, alter, read or hide more.
#include <gtest/gtest.h>

#include <set>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;

namespace {

// The columns of pg2kafka.queue_audit a role may write (who and when are defaults).
const std::string kAuditColumns =
    "action, source, event_uuid, table_schema, table_name, statement, external_id, data, "
    "created_at, note";

// The drainer's grants (README.md, "A least-privileged database role"), parking included.
void grant_drainer(Session& admin, const TestRole& role) {
  const std::string& r = role.name();
  admin.exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + r);
  admin.exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " + r);
  admin.exec("GRANT SELECT, INSERT, DELETE ON pg2kafka.parked_events TO " + r);
  admin.exec(
      "GRANT UPDATE (reason, error, attempts, last_error_at, retry_requested_at, "
      "retry_requested_by, delivered_at) ON pg2kafka.parked_events TO " +
      r);
  admin.exec("GRANT USAGE ON SEQUENCE pg2kafka.parked_events_id_seq TO " + r);
  admin.exec("GRANT INSERT (" + kAuditColumns + ") ON pg2kafka.queue_audit TO " + r);
  admin.exec("GRANT USAGE ON SEQUENCE pg2kafka.queue_audit_id_seq TO " + r);
}

// The operator's grants (`pg2kafka queue`, DELETE on the view).
void grant_operator(Session& admin, const TestRole& role) {
  const std::string& r = role.name();
  admin.exec(
      "GRANT SELECT ON pg2kafka.event_batches, pg2kafka.parked_events, "
      "pg2kafka.queue_audit TO " +
      r);
  admin.exec("GRANT UPDATE (skipped) ON pg2kafka.event_batches TO " + r);
  admin.exec("GRANT SELECT, DELETE ON pg2kafka.outbound_event_queue TO " + r);
  admin.exec(
      "GRANT DELETE, UPDATE (retry_requested_at, retry_requested_by) ON pg2kafka.parked_events "
      "TO " +
      r);
  admin.exec("GRANT INSERT (" + kAuditColumns + ") ON pg2kafka.queue_audit TO " + r);
  admin.exec("GRANT USAGE ON SEQUENCE pg2kafka.queue_audit_id_seq TO " + r);
}

// The SQLSTATE a statement fails with ("00000" when it succeeds), by a temporary function of the
// session's own.
std::string sqlstate_of(Session& s, const std::string& sql) {
  s.exec(R"sql(
    CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
    BEGIN
      EXECUTE q;
      RETURN '00000';
    EXCEPTION WHEN OTHERS THEN
      RETURN SQLSTATE;
    END $$)sql");
  std::string quoted;
  for (char c : sql) {
    quoted += c;
    if (c == '\'') quoted += '\'';
  }
  return s.value("SELECT pg_temp.sqlstate_of('" + quoted + "')");
}

bool denied(const std::string& error) {
  return error.find("permission denied") != std::string::npos ||
         error.find("must be owner") != std::string::npos;
}

// Parked events as the daemon writes them (by the schema's owner here), of table public.t:
//   1 key x, failed;  2 key x, held behind 1;  3 key y, failed;  4 null key, malformed;
//   5 null key, held behind 4;  6 table public.u, null key, failed.
void park_events(Session& owner) {
  owner.exec(R"sql(
    INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, external_id,
                                        message, malformed_row, created_at, batch_id, reason,
                                        error, attempts)
    VALUES ('00000000-0000-4000-8000-000000000001', 'public', 't', 'INSERT', 'x',
            '{"data":{"k":"x","v":1}}', NULL, now(), 1, 'failed', 'Message size too large', 1),
           ('00000000-0000-4000-8000-000000000002', 'public', 't', 'UPDATE', 'x',
            '{"data":{"v":2}}', NULL, now(), 2, 'held',
            'held behind event 00000000-0000-4000-8000-000000000001 of the same key', 0),
           ('00000000-0000-4000-8000-000000000003', 'public', 't', 'INSERT', 'y',
            '{"data":{"k":"y"}}', NULL, now(), 3, 'failed', 'Message size too large', 1),
           ('00000000-0000-4000-8000-000000000004', 'public', 't', 'INSERT', NULL, NULL,
            '{"id":4,"data":"oops"}', now(), 4, 'malformed', 'data is not a JSON array', 0),
           ('00000000-0000-4000-8000-000000000005', 'public', 't', 'INSERT', NULL,
            '{"data":{"k":null}}', NULL, now(), 5, 'held',
            'held behind event 00000000-0000-4000-8000-000000000004 of the same key', 0),
           ('00000000-0000-4000-8000-000000000006', 'public', 'u', 'INSERT', NULL,
            '{"data":{}}', NULL, now(), 6, 'failed', 'Message size too large', 1)
  )sql");
}

std::string parked(int n) {
  return "'00000000-0000-4000-8000-00000000000" + std::to_string(n) + "'";
}

// "uuid-suffix requested-by" of each parked event, in park order ("-" when not requested).
std::vector<std::string> requests(Session& s) {
  std::vector<std::string> out;
  for (const auto& row : s.rows("SELECT right(uuid::text, 1), coalesce(retry_requested_by, '-'), "
                                "(retry_requested_at IS NULL) = (retry_requested_by IS NULL) "
                                "FROM pg2kafka.parked_events ORDER BY id")) {
    EXPECT_EQ(*row[2], "t");
    out.push_back(*row[0] + " " + *row[1]);
  }
  return out;
}

}  // namespace

TEST(Parking, TheOriginalsQueries_IdsInQueueOrder_DeleteSkipsExactlyThoseEvents) {
  TestDatabase db;
  TestRole op(db, "operator");
  grant_operator(db.sql(), op);
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)");  // one batch of three
  db.sql().exec("INSERT INTO t VALUES ('b', 4)");
  db.sql().exec("INSERT INTO t VALUES ('d', 5)");
  db.sql().exec("INSERT INTO t VALUES ('e', 6), ('f', 7)");
  const std::string original =
      "SELECT id, uuid, external_id, table_name, statement, data, created_at, processed "
      "FROM pg2kafka.outbound_event_queue ORDER BY id";
  Session as_op(op.url());
  auto before = as_op.rows(original);
  ASSERT_EQ(before.size(), 7u);
  std::vector<std::string> keys;
  for (size_t i = 0; i < before.size(); ++i) {
    keys.push_back(*before[i][2]);
    EXPECT_EQ(*before[i][3], "t");
    EXPECT_EQ(*before[i][4], "INSERT");
    EXPECT_EQ(*before[i][7], "f") << "processed";
    if (i > 0) {
      EXPECT_LT(std::stoll(*before[i - 1][0]), std::stoll(*before[i][0]));
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c", "b", "d", "e", "f"}));
  // The order is the drainer's: batch id, then index.
  EXPECT_EQ(db.sql().value("SELECT bool_and(id = batch_id * 1048576 + batch_index) "
                           "FROM pg2kafka.outbound_event_queue"),
            "t");

  // DELETE skips exactly the events it names, and counts them.
  EXPECT_EQ(as_op.value("WITH d AS (DELETE FROM pg2kafka.outbound_event_queue "
                        "WHERE external_id = 'b' RETURNING 1) SELECT count(*) FROM d"),
            "2");
  auto after = as_op.rows(original);
  std::vector<std::vector<std::optional<std::string>>> expected;
  for (const auto& row : before)
    if (*row[2] != "b") expected.push_back(row);
  EXPECT_EQ(after, expected);  // the others keep their ids and uuids
  auto audit = db.sql().rows(
      "SELECT action, source, event_uuid::text, table_schema, table_name, statement, "
      "external_id, data::text, note, by_role, session_role, created_at IS NOT NULL "
      "FROM pg2kafka.queue_audit ORDER BY id");
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(*audit[0][2], *before[1][1]);
  EXPECT_EQ(*audit[1][2], *before[3][1]);
  for (const auto& row : audit) {
    EXPECT_EQ(*row[0], "skip");
    EXPECT_EQ(*row[1], "queue");
    EXPECT_EQ(*row[3] + "." + *row[4] + " " + *row[5] + " " + *row[6], "public.t INSERT b");
    EXPECT_EQ(*row[8], "DELETE FROM pg2kafka.outbound_event_queue");
    EXPECT_EQ(*row[9], op.name());
    EXPECT_EQ(*row[10], op.name());
    EXPECT_EQ(*row[11], "t");
  }
  EXPECT_EQ(*audit[0][7], R"({"k": "b", "v": 2})");
  EXPECT_EQ(db.sql().value("SELECT skipped::text FROM pg2kafka.event_batches ORDER BY id LIMIT 1"),
            "{1}");

  // A batch all of whose events are deleted shows no rows (the drainer removes it).
  EXPECT_EQ(as_op.value("WITH d AS (DELETE FROM pg2kafka.outbound_event_queue "
                        "WHERE external_id IN ('e', 'f') RETURNING 1) SELECT count(*) FROM d"),
            "2");
  EXPECT_EQ(as_op.value("SELECT string_agg(external_id, ',' ORDER BY id) "
                        "FROM pg2kafka.outbound_event_queue"),
            "a,c,d");
  EXPECT_EQ(db.sql().value("SELECT skipped::text FROM pg2kafka.event_batches "
                           "ORDER BY id DESC LIMIT 1"),
            "{0,1}");
  // Deleting nothing, or what is skipped already, counts nothing and records nothing.
  EXPECT_EQ(as_op.value("WITH d AS (DELETE FROM pg2kafka.outbound_event_queue "
                        "WHERE external_id = 'zz' RETURNING 1) SELECT count(*) FROM d"),
            "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit"), "4");
  // UPDATE ... SET processed is not supported (delivered events leave the queue).
  EXPECT_NE(as_op.try_exec("UPDATE pg2kafka.outbound_event_queue SET processed = true"), "");
  // acknowledged_events leaves skipped events out too.
  db.sql().exec(
      "INSERT INTO pg2kafka.acknowledged_batches (id, uuid, table_schema, table_name, statement, "
      "key_column, events, data, created_at, txid, skipped) "
      "SELECT id, uuid, table_schema, table_name, statement, key_column, events, data, "
      "created_at, txid, skipped FROM pg2kafka.event_batches");
  EXPECT_EQ(db.sql().value("SELECT string_agg(external_id, ',' ORDER BY batch_id, batch_index) "
                           "FROM pg2kafka.acknowledged_events"),
            "a,c,d");
}

TEST(Parking, SkipEvent_QueuedAndParked_NotFound_RefusedWhileAnotherSessionDrains) {
  TestDatabase db;
  TestRole op(db, "operator");
  grant_operator(db.sql(), op);
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)");
  db.sql().exec("INSERT INTO t VALUES ('d', 4)");
  park_events(db.sql());
  Session as_op(op.url());
  auto uuid_of = [&](const std::string& key) {
    return "'" +
           as_op.value("SELECT uuid FROM pg2kafka.outbound_event_queue WHERE external_id = '" +
                       key + "'") +
           "'";
  };
  std::string b = uuid_of("b"), c = uuid_of("c"), d = uuid_of("d");

  // A queued event: skipped in place, with the default note or the caller's.
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + b + ")"), "queued");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + d + ", 'ticket 42')"), "queued");
  EXPECT_EQ(as_op.value("SELECT string_agg(external_id, ',' ORDER BY id) "
                        "FROM pg2kafka.outbound_event_queue"),
            "a,c");
  // A parked event: removed from parked_events.
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + parked(3) + ")"), "parked");
  EXPECT_EQ(as_op.value("SELECT count(*) FROM pg2kafka.parked_events WHERE uuid = " + parked(3)),
            "0");
  EXPECT_EQ(
      db.sql().rows("SELECT action || ' ' || source || ' ' || external_id || ' ' || note "
                    "|| ' ' || (by_role = '" +
                    op.name() + "') || ' ' || data::text FROM pg2kafka.queue_audit ORDER BY id"),
      (std::vector<std::vector<std::optional<std::string>>>{
          {R"(skip queue b pg2kafka queue skip true {"k": "b", "v": 2})"},
          {R"(skip queue d ticket 42 true {"k": "d", "v": 4})"},
          {R"(skip parked y pg2kafka queue skip true {"data":{"k":"y"}})"},
      }));
  // The note does not outlive the call.
  EXPECT_EQ(as_op.value("SELECT coalesce(current_setting('pg2kafka.audit_note', true), '')"), "");

  // Not found: skipped already, or unknown.
  for (const std::string& id : {b, parked(3), std::string("gen_random_uuid()")}) {
    std::string err = as_op.try_exec("SELECT pg2kafka.skip_event(" + id + ")");
    EXPECT_NE(err.find("is queued or parked"), std::string::npos) << err;
    EXPECT_NE(err.find("pg2kafka queue list"), std::string::npos) << err;
    EXPECT_EQ(sqlstate_of(as_op, "SELECT pg2kafka.skip_event(" + id + ")"), "P0002");
  }

  // While another session holds the drain lock, nothing queued is skipped, however asked.
  Session drainer(db.url());
  drainer.exec("SELECT pg_advisory_lock(1882352481, 2)");
  std::string err = as_op.try_exec("SELECT pg2kafka.skip_event(" + c + ")");
  EXPECT_NE(err.find("while pg2kafka drains the queue"), std::string::npos) << err;
  EXPECT_NE(err.find("Stop pg2kafka first"), std::string::npos) << err;
  EXPECT_NE(err.find(std::to_string(drainer.pid())), std::string::npos) << err;
  EXPECT_EQ(sqlstate_of(as_op, "SELECT pg2kafka.skip_event(" + c + ")"), "55P03");
  EXPECT_EQ(sqlstate_of(as_op, "DELETE FROM pg2kafka.outbound_event_queue WHERE external_id = 'c'"),
            "55P03");
  EXPECT_EQ(sqlstate_of(as_op, "UPDATE pg2kafka.event_batches SET skipped = '{1,2}' WHERE id = 1"),
            "55P03");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.drain_lock_holder()"), std::to_string(drainer.pid()));
  // Parked events are not the drain's: they are skipped all the same.
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + parked(6) + ")"), "parked");
  // The drain lock of one's own session does not count (the daemon's own connection).
  drainer.exec("SELECT pg_advisory_unlock(1882352481, 2)");
  as_op.exec("SELECT pg_advisory_lock(1882352481, 2)");
  EXPECT_EQ(as_op.value("SELECT coalesce(pg2kafka.drain_lock_holder()::text, 'none')"), "none");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + c + ")"), "queued");
  as_op.exec("SELECT pg_advisory_unlock(1882352481, 2)");
  EXPECT_EQ(as_op.value("SELECT string_agg(external_id, ',') FROM pg2kafka.outbound_event_queue"),
            "a");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit"), "5");
}

TEST(Parking, RetryRequests_MarkCountAndAudit_RefuseOutOfOrderMalformedAndUnknown) {
  TestDatabase db;
  TestRole op(db, "operator");
  grant_operator(db.sql(), op);
  park_events(db.sql());
  Session as_op(op.url());
  auto n = op.name();

  // Held behind an event of its key that is not to be retried: refused, naming that event.
  std::string err = as_op.try_exec("SELECT pg2kafka.retry_event(" + parked(2) + ")");
  EXPECT_NE(err.find("held behind event 00000000-0000-4000-8000-000000000001"), std::string::npos)
      << err;
  EXPECT_NE(err.find("retry or skip event 00000000-0000-4000-8000-000000000001 first"),
            std::string::npos)
      << err;
  err = as_op.try_exec("SELECT pg2kafka.retry_event(" + parked(4) + ")");
  EXPECT_NE(err.find("cannot be retried: it is malformed"), std::string::npos) << err;
  EXPECT_NE(err.find("skip it"), std::string::npos) << err;
  EXPECT_EQ(sqlstate_of(as_op, "SELECT pg2kafka.retry_event(gen_random_uuid())"), "P0002");
  err = as_op.try_exec("SELECT pg2kafka.retry_event(gen_random_uuid())");
  EXPECT_NE(err.find("is not parked"), std::string::npos) << err;
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit"), "0");
  EXPECT_EQ(requests(db.sql()),
            (std::vector<std::string>{"1 -", "2 -", "3 -", "4 -", "5 -", "6 -"}));

  // The event and the later ones of its key; asking again counts them, records nothing more.
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_event(" + parked(1) + ")"), "2");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_event(" + parked(1) + ")"), "2");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_event(" + parked(2) + ")"), "1");
  EXPECT_EQ(requests(db.sql()),
            (std::vector<std::string>{"1 " + n, "2 " + n, "3 -", "4 -", "5 -", "6 -"}));
  // A table: all but the malformed event, which holds nothing back (as the drainer treats it:
  // the keys of its events cannot be read); then the database.
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_table('public', 't')"), "4");
  EXPECT_EQ(requests(db.sql()),
            (std::vector<std::string>{"1 " + n, "2 " + n, "3 " + n, "4 -", "5 " + n, "6 -"}));
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_table('public', 'nonexistent')"), "0");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_all()"), "5");
  EXPECT_EQ(requests(db.sql()),
            (std::vector<std::string>{"1 " + n, "2 " + n, "3 " + n, "4 -", "5 " + n, "6 " + n}));
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + parked(4) + ")"), "parked");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_event(" + parked(5) + ")"), "1")
      << "asked for already: counted, not recorded again";
  EXPECT_EQ(db.sql().rows("SELECT action || ' ' || source || ' ' || right(event_uuid::text, 1) "
                          "|| ' ' || note || ' ' || (by_role = '" +
                          n + "') FROM pg2kafka.queue_audit ORDER BY id"),
            (std::vector<std::vector<std::optional<std::string>>>{
                {"retry parked 1 SELECT pg2kafka.retry_event(...) true"},
                {"retry parked 2 SELECT pg2kafka.retry_event(...) true"},
                {"retry parked 3 SELECT pg2kafka.retry_table(...) true"},
                {"retry parked 5 SELECT pg2kafka.retry_table(...) true"},
                {"retry parked 6 SELECT pg2kafka.retry_all() true"},
                {"skip parked 4 pg2kafka queue skip true"},
            }));
  EXPECT_EQ(db.sql().value("SELECT data::text FROM pg2kafka.queue_audit WHERE action = 'skip'"),
            R"({"id":4,"data":"oops"})");  // the malformed row, to fix by hand
}

TEST(ParkingSecurity, AnApplicationWriter_CannotReadParkSkipOrRetry) {
  TestDatabase db;
  TestRole owner(db, "owner"), writer(db, "writer");
  db.sql().exec("CREATE SCHEMA app AUTHORIZATION " + owner.name());
  Session as_owner(owner.url());
  as_owner.exec("CREATE TABLE app.t (id int PRIMARY KEY, k text, v int)");
  as_owner.exec("GRANT USAGE ON SCHEMA app TO " + writer.name());
  as_owner.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON app.t TO " + writer.name());
  EXPECT_EQ(as_owner.value("SELECT pg2kafka.setup('app.t', 'k')"), "t");
  Session as_writer(writer.url());
  as_writer.exec("INSERT INTO app.t VALUES (1, 'a', 1)");
  park_events(db.sql());
  db.sql().exec(
      "INSERT INTO pg2kafka.queue_audit (action, source, event_uuid) "
      "VALUES ('skip', 'queue', gen_random_uuid())");
  std::string queued = db.sql().value("SELECT uuid FROM pg2kafka.outbound_event_queue");

  const std::vector<std::string> attempts = {
      "SELECT * FROM pg2kafka.parked_events",
      "SELECT * FROM pg2kafka.queue_audit",
      "DELETE FROM pg2kafka.outbound_event_queue",
      "UPDATE pg2kafka.event_batches SET skipped = '{0}'",
      "DELETE FROM pg2kafka.parked_events",
      "UPDATE pg2kafka.parked_events SET retry_requested_at = now()",
      "INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, "
      "created_at, reason, error) VALUES (gen_random_uuid(), 'app', 't', 'INSERT', now(), "
      "'failed', 'x')",
      "INSERT INTO pg2kafka.queue_audit (action, source, event_uuid) "
      "VALUES ('skip', 'queue', gen_random_uuid())",
      "SELECT pg2kafka.skip_event('" + queued + "')",
      "SELECT pg2kafka.skip_event(" + parked(1) + ")",
      "SELECT pg2kafka.retry_event(" + parked(1) + ")",
      "SELECT pg2kafka.retry_table('public', 't')",
      "SELECT pg2kafka.retry_all()",
  };
  for (Session* s : {&as_writer, &as_owner}) {
    for (const std::string& sql : attempts)
      EXPECT_TRUE(denied(s->try_exec(sql))) << sql << ": " << s->try_exec(sql);
  }
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "1");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.parked_events "
                           "WHERE retry_requested_at IS NULL"),
            "6");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit"), "1");
}

TEST(ParkingSecurity, TheOperatorWithItsGrants_DoesItsJob_AndCannotForgeAlterOrHide) {
  TestDatabase db;
  TestRole op(db, "operator");
  grant_operator(db.sql(), op);
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)");
  park_events(db.sql());
  Session as_op(op.url());
  std::string batch = db.sql().value("SELECT id FROM pg2kafka.event_batches");

  // Its job: reading the queue, parked events and the audit; skipping; asking for retries.
  EXPECT_EQ(as_op.value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "3");
  EXPECT_EQ(as_op.value("SELECT sum(events) FROM pg2kafka.event_batches"), "3");
  EXPECT_EQ(as_op.value("SELECT count(*) FROM pg2kafka.parked_events"), "6");
  EXPECT_EQ(as_op.value("SELECT count(*) FROM pg2kafka.queue_audit"), "0");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_event(" + parked(1) + ")"), "2");

  // Skipping by a direct UPDATE is recorded all the same, as the operator.
  as_op.exec("UPDATE pg2kafka.event_batches SET skipped = '{2}' WHERE id = " + batch);
  EXPECT_EQ(db.sql().value("SELECT action || ' ' || source || ' ' || external_id || ' ' || note "
                           "|| ' ' || by_role FROM pg2kafka.queue_audit WHERE source = 'queue'"),
            "skip queue c UPDATE pg2kafka.event_batches SET skipped " + op.name());
  // A skipped event cannot be put back, nor an event named that is none.
  for (const char* list : {"NULL", "'{}'", "'{0}'", "'{0,1}'"}) {
    std::string err = as_op.try_exec(std::string("UPDATE pg2kafka.event_batches SET skipped = ") +
                                     list + " WHERE id = " + batch);
    EXPECT_NE(err.find("cannot be put back"), std::string::npos) << list << ": " << err;
  }
  for (const char* list : {"'{2,3}'", "'{2,-1}'", "'{2,NULL}'"})
    EXPECT_NE(as_op.try_exec(std::string("UPDATE pg2kafka.event_batches SET skipped = ") + list +
                             " WHERE id = " + batch),
              "")
        << list;
  EXPECT_EQ(db.sql().value("SELECT skipped::text FROM pg2kafka.event_batches"), "{2}");
  // Unsorted and repeated indexes are normalised.
  as_op.exec("UPDATE pg2kafka.event_batches SET skipped = '{1,2,1}' WHERE id = " + batch);
  EXPECT_EQ(db.sql().value("SELECT skipped::text FROM pg2kafka.event_batches"), "{1,2}");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit WHERE source = 'queue'"),
            "2");

  // Forging who or when in the audit record, changing or removing it.
  std::string own = as_op.try_exec("INSERT INTO pg2kafka.queue_audit (" + kAuditColumns +
                                   ") VALUES ('skip', 'queue', gen_random_uuid(), 'public', 't', "
                                   "'INSERT', 'a', '{}', now(), 'by hand')");
  EXPECT_EQ(own, "");  // an entry of its own, which names it
  EXPECT_EQ(db.sql().value("SELECT by_role FROM pg2kafka.queue_audit WHERE note = 'by hand'"),
            op.name());
  for (const char* column :
       {"by_role", "session_role", "at", "application_name", "client_addr", "id"}) {
    std::string value = std::string(column) == "at"            ? "now()"
                        : std::string(column) == "client_addr" ? "'10.0.0.1'"
                        : std::string(column) == "id"          ? "1000"
                                                               : "'postgres'";
    std::string err = as_op.try_exec(
        std::string("INSERT INTO pg2kafka.queue_audit (action, source, event_uuid, ") + column +
        ") VALUES ('skip', 'queue', gen_random_uuid(), " + value + ")");
    EXPECT_TRUE(denied(err)) << column << ": " << err;
  }
  for (const char* sql : {"UPDATE pg2kafka.queue_audit SET note = 'nothing happened'",
                          "UPDATE pg2kafka.queue_audit SET by_role = 'postgres'",
                          "DELETE FROM pg2kafka.queue_audit", "TRUNCATE pg2kafka.queue_audit"})
    EXPECT_TRUE(denied(as_op.try_exec(sql))) << sql;

  // Changing events, queued or parked; hiding a skip as a delivery; parking by hand.
  for (const char* sql : {
           "UPDATE pg2kafka.event_batches SET data = '[]'",
           "UPDATE pg2kafka.event_batches SET skipped = '{0,1,2}', events = 1",
           "UPDATE pg2kafka.event_batches SET txid = '1'",
           "DELETE FROM pg2kafka.event_batches",
           "TRUNCATE pg2kafka.event_batches",
           "UPDATE pg2kafka.parked_events SET message = '{}'",
           "UPDATE pg2kafka.parked_events SET reason = 'failed'",
           "UPDATE pg2kafka.parked_events SET delivered_at = now()",
           "TRUNCATE pg2kafka.parked_events",
           "INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, "
           "created_at, reason, error, delivered_at) VALUES (gen_random_uuid(), 'public', 't', "
           "'INSERT', now(), 'failed', 'x', now())",
           "ALTER TABLE pg2kafka.event_batches DISABLE TRIGGER audit_skip",
           "ALTER TABLE pg2kafka.parked_events DISABLE TRIGGER USER",
           "SET session_replication_role = replica",
       })
    EXPECT_TRUE(denied(as_op.try_exec(sql))) << sql << ": " << as_op.try_exec(sql);
  // Nor can it attach the audit's trigger functions to a table of its own.
  as_op.exec("CREATE TEMP TABLE mine (skipped integer[])");
  EXPECT_TRUE(
      denied(as_op.try_exec("CREATE TRIGGER x BEFORE UPDATE ON pg_temp.mine FOR EACH ROW "
                            "EXECUTE FUNCTION pg2kafka.event_batches_skip()")));

  // A retry request made by hand records its true requester and time; asking again changes
  // nothing.
  as_op.exec(
      "UPDATE pg2kafka.parked_events SET retry_requested_at = '2000-01-01', "
      "retry_requested_by = 'postgres' WHERE uuid = " +
      parked(3));
  EXPECT_EQ(db.sql().value("SELECT retry_requested_by || ' ' || (retry_requested_at > "
                           "now() - interval '1 hour') FROM pg2kafka.parked_events WHERE uuid = " +
                           parked(3)),
            op.name() + " true");
  as_op.exec("UPDATE pg2kafka.parked_events SET retry_requested_by = 'postgres'");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.parked_events "
                           "WHERE retry_requested_by = 'postgres'"),
            "0");
  EXPECT_NE(as_op
                .try_exec("UPDATE pg2kafka.parked_events SET retry_requested_at = now() "
                          "WHERE uuid = " +
                          parked(4))
                .find("malformed"),
            std::string::npos);
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit WHERE action = 'retry'"),
            "3");
  // A parked event it removes is recorded as skipped, whatever the note says.
  as_op.exec("SELECT set_config('pg2kafka.audit_note', 'delivered', false)");
  as_op.exec("DELETE FROM pg2kafka.parked_events WHERE uuid = " + parked(1));
  EXPECT_EQ(db.sql().value("SELECT action || ' ' || by_role FROM pg2kafka.queue_audit "
                           "WHERE event_uuid = " +
                           parked(1) + " ORDER BY id DESC LIMIT 1"),
            "skip " + op.name());
}

TEST(ParkingSecurity, TheDrainerWithItsGrants_ParksUpdatesAndDeletes_DeliveryIsAudited) {
  TestDatabase db;
  TestRole drainer(db, "drainer");
  grant_drainer(db.sql(), drainer);
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1)");
  Session as_drainer(drainer.url());
  // Parks a failed event and one held behind it (as the daemon does: its message, its error).
  as_drainer.exec(R"sql(
    INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, external_id,
                                        message, created_at, batch_id, reason, error, attempts)
    SELECT pg2kafka.event_uuid(b.uuid, 0), b.table_schema, b.table_name, b.statement,
           b.data -> 0 ->> 'k', json_build_object('data', b.data -> 0), b.created_at, b.id,
           'failed', 'too large', 1
      FROM pg2kafka.event_batches b
  )sql");
  as_drainer.exec(R"sql(
    INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, external_id,
                                        message, created_at, reason, error)
    VALUES ('00000000-0000-4000-8000-000000000009', 'public', 't', 'UPDATE', 'a', '{}', now(),
            'held', 'held behind event ... of the same key')
  )sql");
  as_drainer.exec(
      "INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, "
      "malformed_row, created_at, reason, error) "
      "SELECT gen_random_uuid(), 'public', 't', 'INSERT', row_to_json(b), b.created_at, "
      "'malformed', 'data is not an array' FROM pg2kafka.event_batches b");
  // Records a failed retry, clears the request; then a delivery.
  db.sql().exec(
      "UPDATE pg2kafka.parked_events SET retry_requested_at = now() "
      "WHERE reason <> 'malformed'");
  as_drainer.exec(
      "UPDATE pg2kafka.parked_events SET attempts = attempts + 1, error = 'again', "
      "last_error_at = now(), reason = 'failed', retry_requested_at = NULL "
      "WHERE reason = 'failed'");
  EXPECT_EQ(db.sql().value("SELECT attempts || ' ' || coalesce(retry_requested_by, '-') "
                           "FROM pg2kafka.parked_events WHERE reason = 'failed'"),
            "2 -");
  as_drainer.exec(
      "UPDATE pg2kafka.parked_events SET delivered_at = now() WHERE reason <> "
      "'malformed'");
  EXPECT_EQ(as_drainer.value("WITH d AS (DELETE FROM pg2kafka.parked_events "
                             "WHERE delivered_at IS NOT NULL RETURNING 1) SELECT count(*) FROM d"),
            "2");
  as_drainer.exec("DELETE FROM pg2kafka.parked_events");
  EXPECT_EQ(
      db.sql().rows("SELECT action || ' ' || source || ' ' || statement || ' ' || "
                    "(by_role = '" +
                    drainer.name() + "') FROM pg2kafka.queue_audit ORDER BY action, statement"),
      (std::vector<std::vector<std::optional<std::string>>>{
          {"delivered parked INSERT true"},
          {"delivered parked UPDATE true"},
          {"retry parked INSERT false"},
          {"retry parked UPDATE false"},
          {"skip parked INSERT true"},
      }));
  // What it may not: change a parked event's content, skip queued events, touch the audit.
  for (const char* sql : {
           "UPDATE pg2kafka.parked_events SET message = '{}'",
           "UPDATE pg2kafka.event_batches SET skipped = '{0}'",
           "DELETE FROM pg2kafka.outbound_event_queue",
           "UPDATE pg2kafka.queue_audit SET note = 'x'",
           "DELETE FROM pg2kafka.queue_audit",
           "SELECT * FROM pg2kafka.queue_audit",
           "INSERT INTO pg2kafka.queue_audit (action, source, event_uuid, by_role) "
           "VALUES ('delivered', 'parked', gen_random_uuid(), 'someone')",
       })
    EXPECT_TRUE(denied(as_drainer.try_exec(sql))) << sql << ": " << as_drainer.try_exec(sql);
}

TEST(ParkingSecurity, TheNewFunctionsAndTriggers_ReachOnlyPgCatalog) {
  // An operator puts look-alikes of what the new functions, triggers and the view call first in
  // its search_path, with the exact argument types: none may ever run.
  TestDatabase db;
  TestRole op(db, "operator");
  grant_operator(db.sql(), op);
  db.sql().exec("CREATE SCHEMA evil AUTHORIZATION " + op.name());
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3), ('d', 4)");
  park_events(db.sql());
  Session as_op(op.url());
  std::string a =
      as_op.value("SELECT uuid FROM pg2kafka.outbound_event_queue WHERE external_id = 'a'");
  // From here on, the test's own statements qualify their operators too.
  as_op.exec(R"sql(
    SET search_path = evil;
    CREATE TABLE seen (via text);
    CREATE FUNCTION note(via text) RETURNS void LANGUAGE sql AS
      'INSERT INTO evil.seen VALUES (via)';
    CREATE FUNCTION current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('current_setting'); RETURN 'forged'; END$$;
    CREATE FUNCTION set_config(text, text, boolean) RETURNS text LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('set_config'); RETURN ''; END$$;
    CREATE FUNCTION pg_backend_pid() RETURNS integer LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('pg_backend_pid'); RETURN 0; END$$;
    CREATE FUNCTION current_database() RETURNS name LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('current_database'); RETURN 'x'; END$$;
    CREATE FUNCTION uuid_send(uuid) RETURNS bytea LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('uuid_send'); RETURN '\x00'; END$$;
    CREATE FUNCTION unnest(integer[]) RETURNS SETOF integer LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('unnest'); END$$;
    CREATE FUNCTION cardinality(integer[]) RETURNS integer LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('cardinality'); RETURN 0; END$$;
    CREATE FUNCTION now() RETURNS timestamptz LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('now'); RETURN '2000-01-01'; END$$;
    CREATE FUNCTION array_position(integer[], integer) RETURNS integer LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('array_position'); RETURN NULL; END$$;
    CREATE FUNCTION int_ne(integer, integer) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('operator <>'); RETURN true; END$$;
    CREATE OPERATOR evil.<> (FUNCTION = evil.int_ne, LEFTARG = integer, RIGHTARG = integer);
    CREATE FUNCTION uuid_eq(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('operator = uuid'); RETURN true; END$$;
    CREATE OPERATOR evil.= (FUNCTION = evil.uuid_eq, LEFTARG = uuid, RIGHTARG = uuid);
    CREATE FUNCTION text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('operator = text'); RETURN true; END$$;
    CREATE OPERATOR evil.= (FUNCTION = evil.text_eq, LEFTARG = text, RIGHTARG = text);
    CREATE FUNCTION contains(integer[], integer[]) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('operator @>'); RETURN true; END$$;
    CREATE OPERATOR evil.@> (FUNCTION = evil.contains, LEFTARG = integer[], RIGHTARG = integer[]);
    CREATE FUNCTION mul(bigint, integer) RETURNS bigint LANGUAGE plpgsql AS
      $$BEGIN PERFORM evil.note('operator *'); RETURN 0; END$$;
    CREATE OPERATOR evil.* (FUNCTION = evil.mul, LEFTARG = bigint, RIGHTARG = integer);
    SET search_path = evil, pg_catalog;
  )sql");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event('" + a + "', 'n')"), "queued");
  as_op.exec(
      "DELETE FROM pg2kafka.outbound_event_queue "
      "WHERE external_id OPERATOR(pg_catalog.=) 'b'");
  as_op.exec("UPDATE pg2kafka.event_batches SET skipped = skipped || 2");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.skip_event(" + parked(3) + ")"), "parked");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_event(" + parked(1) + ")"), "2");
  EXPECT_EQ(as_op.value("SELECT pg2kafka.retry_all()"), "4");
  EXPECT_NE(as_op.try_exec("UPDATE pg2kafka.event_batches SET skipped = '{}'"), "");
  EXPECT_EQ(as_op.value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "1");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit WHERE note = 'forged' "
                           "OR at < '2001-01-01' OR by_role <> '" +
                           op.name() + "'"),
            "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.queue_audit"), "8");
  EXPECT_EQ(db.sql().value("SELECT coalesce(string_agg(DISTINCT via, ', '), '') FROM evil.seen"),
            "");
}
