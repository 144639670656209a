// The SQL layer's privilege model (sql/README.md, "Security model"), tested as the attacker:
// roles created with exactly their documented grants do their job and nothing more; no user code
// runs with another role's rights; no role queues, alters or deletes events it may not.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;
namespace json = boost::json;

namespace {

bool is_superuser(Session& sql, const TestRole& role) {
  return sql.value("SELECT rolsuper FROM pg_roles WHERE rolname = '" + role.name() + "'") == "t";
}

// Has `role` gained membership in any role it did not have (e.g. the installer's)?
std::string memberships(Session& sql, const TestRole& role) {
  return sql.value(
      "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
      "WHERE r.rolname = '" +
      role.name() + "'");
}

}  // namespace

namespace {

// The owner of a tracked table (captured with setup `options`), with no grant beyond what every
// role has, plants code in every place that capture (or any write) may reach. Each piece records
// the role it runs as and tries to make its owner superuser. Then the owner writes to the table
// with its look-alikes first in its search_path: the code must only ever have run as the role
// that wrote, and the look-alikes never.
void plant_code_everywhere_capture_reaches(const std::string& options) {
  TestDatabase db;
  TestRole owner(db, "owner");
  db.sql().exec("CREATE SCHEMA app AUTHORIZATION " + owner.name());
  Session attacker(owner.url());
  attacker.exec(R"sql(
    SET search_path = app;
    CREATE TABLE seen (who name, via text);
    CREATE FUNCTION plant(via text) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO app.seen VALUES (current_user, via);
      BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
      EXCEPTION WHEN insufficient_privilege THEN NULL;
      END;
    END $$;
    -- A cast to json of an enum, and of a composite type: row_to_json calls them.
    CREATE TYPE st AS ENUM ('new');
    CREATE FUNCTION st_json(st) RETURNS json LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('enum cast'); RETURN '"new"'; END$$;
    CREATE CAST (st AS json) WITH FUNCTION st_json(st);
    CREATE TYPE pair AS (a int, b int);
    CREATE FUNCTION pair_json(pair) RETURNS json LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('composite cast'); RETURN '[1, 2]'; END$$;
    CREATE CAST (pair AS json) WITH FUNCTION pair_json(pair);
    -- A function-based default and check constraint.
    CREATE FUNCTION def() RETURNS int LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('default'); RETURN 1; END$$;
    CREATE FUNCTION chk(int) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('check'); RETURN true; END$$;
    CREATE TABLE orders (id int PRIMARY KEY, sku text, s st, p pair, d int DEFAULT app.def(),
                         CHECK (app.chk(d)));
    -- An index expression (immutable functions cannot write: it can only try).
    CREATE FUNCTION idx(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
    BEGIN
      BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
      EXCEPTION WHEN OTHERS THEN NULL; END;
      RETURN $1;
    END $$;
    CREATE INDEX ON orders (app.idx(id));
    -- Look-alikes of what the capture functions call, and an operator, for a search_path
    -- trick: the capture functions must never reach them.
    CREATE FUNCTION json_agg(anyelement) RETURNS json LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path json_agg'); RETURN '[]'; END$$;
    CREATE FUNCTION row_to_json(record) RETURNS json LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path row_to_json'); RETURN '{}'; END$$;
    CREATE FUNCTION pg_column_size(anyelement) RETURNS int LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path pg_column_size'); RETURN 1; END$$;
    CREATE FUNCTION eq(oid, oid) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path operator'); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.eq, LEFTARG = oid, RIGHTARG = oid);
    -- And of what row capture calls without SET search_path, with the exact argument types, so
    -- that an unqualified name would pick them over pg_catalog's (listed after app below).
    CREATE FUNCTION json_build_array(json) RETURNS json LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path json_build_array'); RETURN '[]'; END$$;
    CREATE FUNCTION has_column_privilege(oid, smallint, text) RETURNS boolean
      LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path has_column_privilege'); RETURN true; END$$;
    CREATE FUNCTION current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path current_setting'); RETURN 'on'; END$$;
    CREATE FUNCTION pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path pg_notify'); END$$;
    CREATE FUNCTION teq(text, text) RETURNS boolean LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path text operator');
              RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
    CREATE OPERATOR app.= (FUNCTION = app.teq, LEFTARG = text, RIGHTARG = text);
    CREATE FUNCTION member(json, text) RETURNS json LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path json operator');
              RETURN $1 OPERATOR(pg_catalog.->) $2; END$$;
    CREATE OPERATOR app.-> (FUNCTION = app.member, LEFTARG = json, RIGHTARG = text);
    CREATE FUNCTION plus(int, int) RETURNS int LANGUAGE plpgsql AS
      $$BEGIN PERFORM app.plant('search_path int operator');
              RETURN $1 OPERATOR(pg_catalog.+) $2; END$$;
    CREATE OPERATOR app.+ (FUNCTION = app.plus, LEFTARG = int, RIGHTARG = int);
  )sql");
  EXPECT_EQ(attacker.value("SELECT pg2kafka.setup('app.orders', 'sku'" + options + ")"), "t");
  attacker.exec("SET search_path = app, pg_catalog");
  attacker.exec("INSERT INTO app.orders (id, sku, s, p) VALUES (1, 'a', 'new', '(1,2)')");
  attacker.exec("UPDATE app.orders SET sku = 'b'");
  attacker.exec("DELETE FROM app.orders");
  attacker.exec("INSERT INTO app.orders (id, sku, s, p) VALUES (2, 'c', 'new', '(1,2)')");
  // A superuser writing to the table runs the owner's code as itself, as for any trigger,
  // default or cast of that table: PostgreSQL's rule, which pg2kafka does not widen.
  EXPECT_FALSE(is_superuser(db.sql(), owner));
  EXPECT_EQ(memberships(db.sql(), owner), "0");
  auto seen = db.sql().rows("SELECT DISTINCT who::text, via FROM app.seen ORDER BY 2");
  std::set<std::string> via;
  for (const auto& row : seen) {
    EXPECT_EQ(*row[0], owner.name()) << *row[1];
    via.insert(*row[1]);
  }
  // The cast did run (as the owner), so the test would see an escalation if there were one; the
  // look-alikes never ran. (row_to_json renders a composite value as an object, without casts.)
  EXPECT_EQ(via, (std::set<std::string>{"check", "default", "enum cast"}));

  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 4u);  // the owner's writes, as its cast renders them
  EXPECT_EQ(events[0].data(),
            json::parse(R"({"id":1,"sku":"a","s":"new","p":{"a":1,"b":2},"d":1})"));
}

}  // namespace

TEST(Security, ATableOwnerCannotRunCodeWithOtherRights_ThroughAnythingCaptureTouches) {
  plant_code_everywhere_capture_reaches("");
}

TEST(Security, RowCaptureCannotBeRedirectedBySearchPath_NorRunCodeWithOtherRights) {
  // Row capture runs without SET search_path (it runs once per row): every name in it is
  // qualified, which this checks with look-alikes of all it calls.
  plant_code_everywhere_capture_reaches(R"(, '{"capture": "row"}')");
}

TEST(Security, ADrainerCannotEscalate_ByCallingCaptureFunctionsFromItsOwnTrigger) {
  // The README's drainer role, with temporary objects only: a temp enum with a cast, a temp
  // table, and its own trigger calling a capture function.
  TestDatabase db;
  TestRole drainer(db, "drainer");
  db.sql().exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + drainer.name());
  db.sql().exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " +
                drainer.name());
  Session attacker(drainer.url());
  attacker.exec(R"sql(
    CREATE TYPE pg_temp.st AS ENUM ('x');
    CREATE FUNCTION pg_temp.st_json(pg_temp.st) RETURNS json LANGUAGE plpgsql AS $$
    BEGIN
      BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', session_user);
      EXCEPTION WHEN insufficient_privilege THEN NULL; END;
      RETURN to_json(current_user::text);
    END $$;
    CREATE CAST (pg_temp.st AS json) WITH FUNCTION pg_temp.st_json(pg_temp.st);
    CREATE TEMP TABLE t (id int, s pg_temp.st);
    CREATE TRIGGER x AFTER INSERT ON pg_temp.t REFERENCING NEW TABLE AS pg2kafka_new
      FOR EACH STATEMENT EXECUTE FUNCTION pg2kafka.capture_insert('id', '1');
  )sql");
  attacker.exec("INSERT INTO pg_temp.t VALUES (1, 'x')");
  EXPECT_FALSE(is_superuser(db.sql(), drainer));
  EXPECT_EQ(memberships(db.sql(), drainer), "0");
  // What it queued is about its own temporary table, serialised with its own rights.
  EXPECT_EQ(db.sql().value("SELECT (data -> 0 ->> 's') FROM pg2kafka.event_batches"),
            drainer.name());
  EXPECT_EQ(db.sql().value("SELECT table_schema LIKE 'pg_temp%' FROM pg2kafka.event_batches"), "t");
}

TEST(Security, EachRoleWithItsDocumentedGrants_DoesItsJob_AndCannotForgeAlterOrRemoveEvents) {
  TestDatabase db;
  TestRole owner(db, "owner"), writer(db, "writer"), column_writer(db, "colwriter"),
      drainer(db, "drainer"), outsider(db, "outsider");
  // The installer's own table, and the owner's: nobody grants anything on pg2kafka but the
  // README's drainer grants.
  db.sql().exec("CREATE TABLE theirs (id int PRIMARY KEY, v text)");
  db.sql().exec("SELECT pg2kafka.setup('theirs', 'id')");
  db.sql().exec("CREATE SCHEMA app AUTHORIZATION " + owner.name());
  db.sql().exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + drainer.name());
  db.sql().exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " +
                drainer.name());
  // Parking's (README): the drainer parks; what it may do with them is ParkingSecurity.*'s.
  db.sql().exec("GRANT SELECT, INSERT, DELETE ON pg2kafka.parked_events TO " + drainer.name());
  db.sql().exec(
      "GRANT UPDATE (reason, error, attempts, last_error_at, retry_requested_at, "
      "retry_requested_by, delivered_at) ON pg2kafka.parked_events TO " +
      drainer.name());
  db.sql().exec(
      "GRANT INSERT (action, source, event_uuid, table_schema, table_name, statement, "
      "external_id, data, created_at, note) ON pg2kafka.queue_audit TO " +
      drainer.name());
  db.sql().exec(
      "GRANT USAGE ON SEQUENCE pg2kafka.parked_events_id_seq, "
      "pg2kafka.queue_audit_id_seq TO " +
      drainer.name());
  Session as_owner(owner.url());
  as_owner.exec("CREATE TABLE app.t (id int PRIMARY KEY, k text, v int)");
  as_owner.exec("INSERT INTO app.t VALUES (1, 'a', 1)");
  as_owner.exec("GRANT USAGE ON SCHEMA app TO " + writer.name() + ", " + column_writer.name());
  as_owner.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON app.t TO " + writer.name());
  as_owner.exec("GRANT SELECT (id, v), UPDATE (v) ON app.t TO " + column_writer.name());

  // The owner sets up and tears down its own table, and nobody else's.
  EXPECT_EQ(as_owner.value("SELECT pg2kafka.setup('app.t', 'k')"), "t");
  EXPECT_NE(as_owner.try_exec("SELECT pg2kafka.setup('public.theirs', 'v')"), "");
  EXPECT_NE(as_owner.try_exec("SELECT pg2kafka.teardown('public.theirs')"), "");
  EXPECT_EQ(as_owner.value("WITH d AS (DELETE FROM pg2kafka.tracked_tables "
                           "WHERE relid = 'public.theirs'::regclass RETURNING 1) "
                           "SELECT count(*) FROM d"),
            "0");
  Session as_outsider(outsider.url());
  EXPECT_NE(as_outsider.try_exec("SELECT pg2kafka.setup('app.t', 'k')"), "");
  EXPECT_NE(as_outsider.try_exec("SELECT pg2kafka.teardown('app.t')"), "");

  // Writers are captured with their own rights, also through a column-level grant.
  Session as_writer(writer.url()), as_column_writer(column_writer.url());
  as_writer.exec("INSERT INTO app.t VALUES (2, 'b', 2)");
  as_writer.exec("UPDATE app.t SET v = 20 WHERE id = 2");
  as_column_writer.exec("UPDATE app.t SET v = 10 WHERE id = 1");
  as_writer.exec("DELETE FROM app.t WHERE id = 2");

  // Forging: events for a table without the matching privilege, or columns that are the
  // queue's own; altering, reading or removing queued events.
  auto forge = [](Session& s, const std::string& table, const std::string& statement,
                  const std::string& extra_columns = "", const std::string& extra_values = "") {
    return s.try_exec(
        "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, "
        "key_column, events, data" +
        extra_columns + ") VALUES (" + table + ", '" + statement + "', 'k', 1, '[\"x\"]'" +
        extra_values + ")");
  };
  for (const char* statement : {"INSERT", "UPDATE", "DELETE", "TRUNCATE", "SNAPSHOT"})
    EXPECT_NE(forge(as_writer, "'public', 'theirs'", statement).find("row-level security"),
              std::string::npos)
        << statement;
  for (const char* statement : {"TRUNCATE", "SNAPSHOT"})  // no TRUNCATE, not the owner
    EXPECT_NE(forge(as_writer, "'app', 't'", statement).find("row-level security"),
              std::string::npos)
        << statement;
  EXPECT_NE(forge(as_column_writer, "'app', 't'", "DELETE").find("row-level security"),
            std::string::npos);
  EXPECT_NE(forge(as_writer, "'app', 'nonexistent'", "INSERT"), "");
  for (const char* column : {"id", "uuid", "txid", "created_at"}) {
    std::string value = std::string(column) == "id"     ? "1"
                        : std::string(column) == "uuid" ? "gen_random_uuid()"
                        : std::string(column) == "txid" ? "'3'"
                                                        : "now()";
    EXPECT_NE(forge(as_writer, "'app', 't'", "INSERT", std::string(", ") + column, ", " + value)
                  .find("permission denied"),
              std::string::npos)
        << column;
  }
  for (Session* s : {&as_writer, &as_owner, &as_outsider}) {
    EXPECT_NE(s->try_exec("UPDATE pg2kafka.event_batches SET data = '[]'"), "");
    EXPECT_NE(s->try_exec("DELETE FROM pg2kafka.event_batches"), "");
    EXPECT_NE(s->try_exec("SELECT * FROM pg2kafka.event_batches"), "");
    EXPECT_NE(s->try_exec("SELECT * FROM pg2kafka.outbound_event_queue"), "");
    EXPECT_NE(s->try_exec("SELECT pg2kafka.adopt_restored_events()"), "");
  }
  Session as_drainer(drainer.url());
  EXPECT_NE(forge(as_drainer, "'app', 't'", "INSERT"), "");
  EXPECT_NE(forge(as_drainer, "'public', 'theirs'", "INSERT").find("row-level security"),
            std::string::npos);
  EXPECT_NE(as_drainer.try_exec("UPDATE pg2kafka.event_batches SET data = '[]'"), "");
  EXPECT_EQ(as_writer.value("WITH d AS (UPDATE pg2kafka.tracked_tables SET key_column = 'v' "
                            "RETURNING 1) SELECT count(*) FROM d"),
            "0");

  // The drainer, with the README's grants, delivers exactly the genuine events, and setup's
  // backfill (read through the owner's reader, once the drainer runs: the row as it is then).
  auto source = make_source(drainer.url());
  source->open();
  auto events = drain(*source);
  EXPECT_EQ(describe(events), (std::vector<std::string>{
                                  R"(t INSERT b {"id":2,"k":"b","v":2})",
                                  R"(t UPDATE b {"v":20})",
                                  R"(t UPDATE a {"v":10})",
                                  R"(t DELETE b {"k":"b"})",
                                  R"(t SNAPSHOT a {"id":1,"k":"a","v":10})",
                              }));
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Security, QueueAccessCannotBeRedirectedBySearchPath) {
  // pg2kafka.may_queue runs as the role it judges, without SET search_path (it runs for every
  // queued row): every name in it is qualified. A role that puts look-alikes of what it calls
  // first in its search_path must still be refused.
  TestDatabase db;
  TestRole attacker(db, "attacker");
  db.sql().exec("CREATE TABLE theirs (id int PRIMARY KEY, v text)");
  db.sql().exec("SELECT pg2kafka.setup('theirs', 'id')");
  db.sql().exec("CREATE SCHEMA evil AUTHORIZATION " + attacker.name());
  Session as_attacker(attacker.url());
  as_attacker.exec(R"sql(
    CREATE FUNCTION evil.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
    CREATE OPERATOR evil.= (FUNCTION = evil.yes, LEFTARG = text, RIGHTARG = text);
    CREATE OPERATOR evil.<> (FUNCTION = evil.yes, LEFTARG = text, RIGHTARG = text);
    CREATE FUNCTION evil.has_any_column_privilege(oid, text) RETURNS boolean LANGUAGE sql
      AS 'SELECT true';
    CREATE FUNCTION evil.has_table_privilege(oid, text) RETURNS boolean LANGUAGE sql
      AS 'SELECT true';
    CREATE FUNCTION evil.pg_has_role(oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
    CREATE FUNCTION evil.json_typeof(json) RETURNS text LANGUAGE sql AS 'SELECT ''array''';
    CREATE TYPE evil.oid AS ENUM ('x');
    SET search_path = evil, pg_catalog;
  )sql");
  for (const char* statement : {"INSERT", "UPDATE", "DELETE", "TRUNCATE", "SNAPSHOT"}) {
    std::string err = as_attacker.try_exec(
        std::string("INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, "
                    "key_column, events, data) VALUES ('public', 'theirs', '") +
        statement + "', 'id', 1, " + (std::string(statement) == "TRUNCATE" ? "NULL" : "'[1]'") +
        ")");
    EXPECT_NE(err.find("row-level security"), std::string::npos) << statement << ": " << err;
  }
  EXPECT_EQ(queued_events(db.sql()), "0");
}
