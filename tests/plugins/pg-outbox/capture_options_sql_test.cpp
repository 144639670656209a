// Capture options in SQL (migration 013, function set 8; sql/README.md, "Capture options"):
// what the capture functions and the queue's triggers store in pg2kafka.event_batches for each
// option, alone and combined, in both capture modes and for partitioned tables; the options'
// validation; and the new objects tested as the attacker (the masking secret and its trigger,
// provenance, user code reached by capture).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;

namespace {

// RFC 4231, test case 2: HMAC-SHA-256 with key "Jefe" of "what do ya want for nothing?".
const std::string kRfc4231Message = "what do ya want for nothing?";
const std::string kRfc4231Mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

// "<statement> <data> | <old_data> | <options> | <headers' keys and actor>" of each queued batch
// of `table`, in queue order.
std::vector<std::string> queued(Session& s, const std::string& table) {
  std::vector<std::string> out;
  for (const auto& r :
       s.rows("SELECT statement, coalesce(data::text, '-'), coalesce(old_data::text, '-'), "
              "coalesce(options::text, '-'), "
              "coalesce((SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(headers) k) "
              "         || coalesce(' actor=' || (headers ->> 'actor'), ''), '-') "
              "FROM pg2kafka.event_batches WHERE table_name = '" +
              table + "' ORDER BY id"))
    out.push_back(*r[0] + " " + *r[1] + " | " + *r[2] + " | " + *r[3] + " | " + *r[4]);
  return out;
}

// The HMAC-SHA-256 (hex) of `text` with the database's current secret, computed here the long way
// (the test's own pgcrypto-free implementation of RFC 2104 over sha256).
std::string hmac(Session& s, const std::string& text) {
  return s.value("SELECT encode(sha256(m.outer_key || sha256(m.inner_key || convert_to('" + text +
                 "', 'UTF8'))), 'hex') FROM pg2kafka.mask_secret m");
}

std::string triggers_of(Session& s, const std::string& table) {
  return s.value(
      "SELECT coalesce(string_agg(tgname || ' ' || tgfoid::regproc::text || ' ' || "
      "array_to_string(pg2kafka.trigger_arguments(tgargs, tgnargs), '|'), '; ' ORDER BY tgname), "
      "'none') FROM pg_trigger WHERE tgrelid = '" +
      table + "'::regclass");
}

bool denied(const std::string& error) {
  return error.find("permission denied") != std::string::npos ||
         error.find("must be owner") != std::string::npos;
}

}  // namespace

TEST(CaptureOptionsSql, StatementMode_EachOptionAloneAndCombined_StoresFilteredRows) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("UPDATE pg2kafka.mask_secret SET secret = 'Jefe'");
  // The key derivation is RFC 2104's: the stored key blocks give RFC 4231's test vector.
  EXPECT_EQ(hmac(s, kRfc4231Message), kRfc4231Mac);
  s.exec("CREATE TABLE t (id int PRIMARY KEY, name text, secret text, pw text, n numeric)");
  EXPECT_EQ(s.value("SELECT pg2kafka.setup('t', 'id', '{\"exclude\": [\"secret\"], \"mask\": "
                    "[\"name\"], \"redact\": [\"pw\"]}')"),
            "t");
  EXPECT_EQ(s.value("SELECT options::text FROM pg2kafka.tracked_tables"),
            R"({"mask": ["name"], "redact": ["pw"], "exclude": ["secret"]})");
  s.exec("INSERT INTO t VALUES (1, '" + kRfc4231Message +
         "', 's', 'p', 1.50), (2, NULL, 's', 'p', 2)");
  s.exec("UPDATE t SET secret = 'changed'");  // only an excluded column: nothing to send
  s.exec("UPDATE t SET n = 3 WHERE id = 1");
  s.exec("DELETE FROM t WHERE id = 2");
  s.exec("TRUNCATE t");
  const std::string m = "\"" + kRfc4231Mac + "\"";
  EXPECT_EQ(
      queued(s, "t"),
      (std::vector<std::string>{
          "INSERT [{\"id\":1,\"name\":" + m +
              ",\"pw\":null,\"n\":1.50}, "
              "{\"id\":2,\"name\":null,\"pw\":null,\"n\":2}] | - | {\"mask\": [\"name\"]} | -",
          "UPDATE [{\"id\":1,\"name\":" + m + ",\"pw\":null,\"n\":3}] | [{\"id\":1,\"name\":" + m +
              ",\"pw\":null,\"n\":1.50}] | {\"mask\": [\"name\"]} | -",
          "DELETE [2] | - | {\"mask\": [\"name\"]} | -",
          "TRUNCATE - | - | {\"mask\": true} | -",
      }));

  // Masks are stable across statements, and change with the secret.
  s.exec("TRUNCATE pg2kafka.event_batches");
  s.exec("INSERT INTO t VALUES (3, '" + kRfc4231Message + "', 's', 'p', 1)");
  EXPECT_EQ(s.value("SELECT data -> 0 ->> 'name' FROM pg2kafka.event_batches"), kRfc4231Mac);
  s.exec("UPDATE pg2kafka.mask_secret SET secret = DEFAULT");
  EXPECT_EQ(s.value("SELECT length(secret) FROM pg2kafka.mask_secret"), "32");
  s.exec("INSERT INTO t VALUES (4, '" + kRfc4231Message + "', 's', 'p', 1)");
  std::string rotated = s.value(
      "SELECT data -> 0 ->> 'name' FROM pg2kafka.event_batches "
      "ORDER BY id DESC LIMIT 1");
  EXPECT_NE(rotated, kRfc4231Mac);
  EXPECT_EQ(rotated, hmac(s, kRfc4231Message));
  EXPECT_EQ(rotated.size(), 64u);

  // include alone (the key must be in it), then nothing at all but a topic.
  s.exec("CREATE TABLE u (id int PRIMARY KEY, a text, b text)");
  s.exec("SELECT pg2kafka.setup('u', 'id', '{\"include\": [\"id\", \"b\"]}')");
  s.exec("INSERT INTO u VALUES (1, 'a', 'b')");
  s.exec("UPDATE u SET a = 'x'");  // not included: nothing
  EXPECT_TRUE(
      s.value("SELECT pg2kafka.configure('u', '{\"include\": null, \"topic\": \"x.y\"}')") == "t");
  s.exec("ALTER TABLE u ADD COLUMN c int");
  s.exec("UPDATE u SET a = 'y'");
  EXPECT_EQ(queued(s, "u"), (std::vector<std::string>{
                                "INSERT [{\"id\":1,\"b\":\"b\"}] | - | {} | -",
                                "UPDATE [{\"id\":1,\"a\":\"y\",\"b\":\"b\",\"c\":null}] | "
                                "[{\"id\":1,\"a\":\"x\",\"b\":\"b\",\"c\":null}] | {} | -",
                            }));
  EXPECT_EQ(
      s.value("SELECT options::text FROM pg2kafka.tracked_tables WHERE relid = 'u'::regclass"),
      R"({"topic": "x.y"})");
  // A table whose options are all reset gets the plain triggers back (3 arguments).
  EXPECT_EQ(s.value("SELECT pg2kafka.configure('u', '{\"topic\": null}')"), "t");
  EXPECT_EQ(s.scalar("SELECT options FROM pg2kafka.tracked_tables WHERE relid = 'u'::regclass"),
            std::nullopt);
  EXPECT_EQ(triggers_of(s, "u").find("capture_changes"), std::string::npos) << triggers_of(s, "u");
  EXPECT_NE(triggers_of(s, "u").find("pg2kafka_insert pg2kafka.capture_insert id|1|"),
            std::string::npos);
  EXPECT_EQ(s.value("SELECT pg2kafka.configure('u', '{}')"), "f");
  EXPECT_EQ(s.scalar("SELECT pg2kafka.tracking_problem('u')"), std::nullopt);
  EXPECT_EQ(s.scalar("SELECT pg2kafka.tracking_problem('t')"), std::nullopt);
}

TEST(CaptureOptionsSql, RowMode_UpdateOfExcludedColumnsOnlyQueuesNothing_DeleteRowAndRename) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("CREATE TABLE t (id int PRIMARY KEY, secret text, v text)");
  s.exec(
      "SELECT pg2kafka.setup('t', 'id', '{\"capture\": \"row\", \"exclude\": [\"secret\"], "
      "\"delete\": \"row\", \"update\": \"full\", \"before\": \"changed\", \"tombstones\": true, "
      "\"key_changes\": \"delete\"}')");
  s.exec("INSERT INTO t VALUES (1, 's', 'v')");
  s.exec("UPDATE t SET secret = 'other'");
  // A rename never turns an excluded column into a sent one.
  s.exec("ALTER TABLE t RENAME COLUMN secret TO not_secret");
  s.exec("UPDATE t SET not_secret = 'again'");
  s.exec("UPDATE t SET v = 'w'");
  s.exec("DELETE FROM t");
  const std::string o =
      R"({"before": "changed", "delete": "row", "update": "full", "tombstones": true, )"
      R"("key_changes": "delete"})";
  EXPECT_EQ(queued(s, "t"),
            (std::vector<std::string>{
                "INSERT [{\"id\":1,\"v\":\"v\"}] | - | " + o + " | -",
                "UPDATE [{\"id\":1,\"v\":\"w\"}] | [{\"id\":1,\"v\":\"v\"}] | " + o + " | -",
                "DELETE [{\"id\":1,\"v\":\"w\"}] | - | " + o + " | -",
            }));
  EXPECT_EQ(s.scalar("SELECT pg2kafka.tracking_problem('t')"), std::nullopt);
  // configure keeps the renamed column excluded (the registry follows it by attnum).
  EXPECT_EQ(s.value("SELECT pg2kafka.configure('t', '{\"delete\": null}')"), "t");
  EXPECT_EQ(s.value("SELECT options -> 'exclude' FROM pg2kafka.tracked_tables"),
            R"(["not_secret"])");
  s.exec("INSERT INTO t VALUES (2, 's', 'v')");
  s.exec("DELETE FROM t");
  EXPECT_EQ(s.value("SELECT data::text FROM pg2kafka.event_batches ORDER BY id DESC LIMIT 1"),
            "[2]");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.event_batches WHERE data::text LIKE '%s%'"),
            "0");
}

TEST(CaptureOptionsSql, StatementMode_ExcludedOnlyUpdateQueuesNothing_DeleteRowKeepsLargeValues) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("CREATE TABLE t (id int PRIMARY KEY, secret text, big text)");
  s.exec("SELECT pg2kafka.setup('t', 'id', '{\"exclude\": [\"secret\"], \"delete\": \"row\"}')");
  s.exec("INSERT INTO t SELECT g, 's', 'b' FROM generate_series(1, 3) g");
  s.exec("UPDATE t SET secret = 'x'");
  EXPECT_EQ(s.value("SELECT string_agg(statement, ',' ORDER BY id) FROM pg2kafka.event_batches"),
            "INSERT");
  // A 5 MB value is stored whole, in data and old_data, and in a DELETE of the whole row.
  s.exec("UPDATE t SET big = repeat('x', 5 * 1024 * 1024) WHERE id = 1");
  s.exec("DELETE FROM t WHERE id = 1");
  EXPECT_EQ(s.value("SELECT string_agg(statement || ':' || length(data -> 0 ->> 'big') || ':' || "
                    "coalesce(length(old_data -> 0 ->> 'big')::text, '-'), ',' ORDER BY id) "
                    "FROM pg2kafka.event_batches WHERE statement <> 'INSERT'"),
            "UPDATE:5242880:1,DELETE:5242880:-");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.event_batches WHERE data::text LIKE "
                    "'%secret%' OR old_data::text LIKE '%secret%'"),
            "0");
}

TEST(CaptureOptionsSql, Partitioned_ThroughTheRootAndStraightToAPartition_CompositeKey) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec(R"sql(
    CREATE TABLE p (tenant text, id int, secret text, v text, PRIMARY KEY (tenant, id))
      PARTITION BY LIST (tenant);
    CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('acme');
    -- Another column order: other attnums than the root's.
    CREATE TABLE p_b (v text, secret text, id int NOT NULL, tenant text NOT NULL);
    ALTER TABLE p ATTACH PARTITION p_b FOR VALUES IN ('beta');
  )sql");
  EXPECT_EQ(s.value("SELECT pg2kafka.setup('p', NULL, '{\"key\": [\"tenant\", \"id\"], "
                    "\"exclude\": [\"secret\"], \"redact\": [\"v\"]}')"),
            "t");
  EXPECT_EQ(
      s.value("SELECT key_column || ' ' || option_columns::text FROM pg2kafka.tracked_tables"),
      R"(tenant {"key": [1, 2], "redact": [4], "exclude": [3]})");
  s.exec("INSERT INTO p VALUES ('acme', 42, 's', 'x'), ('beta', 1, 's', 'y')");
  s.exec("INSERT INTO p_b VALUES ('y2', 's', 2, 'beta')");
  s.exec("UPDATE p_b SET secret = 'q'");  // excluded only: nothing
  s.exec("ALTER TABLE p RENAME COLUMN secret TO s2");
  s.exec("UPDATE p SET s2 = 'r', id = id + 100 WHERE id = 42");
  s.exec("DELETE FROM p WHERE tenant = 'beta'");
  const std::string o = R"({"key": ["tenant", "id"]})";
  EXPECT_EQ(queued(s, "p"),
            (std::vector<std::string>{
                "INSERT [{\"tenant\":\"acme\",\"id\":42,\"v\":null}] | - | " + o + " | -",
                "INSERT [{\"v\":null,\"id\":1,\"tenant\":\"beta\"}] | - | " + o + " | -",
                "INSERT [{\"v\":null,\"id\":2,\"tenant\":\"beta\"}] | - | " + o + " | -",
                "UPDATE [{\"tenant\":\"acme\",\"id\":142,\"v\":null}] | "
                "[{\"tenant\":\"acme\",\"id\":42,\"v\":null}] | " +
                    o + " | -",
                "DELETE [[\"beta\",1]] | - | " + o + " | -",
                "DELETE [[\"beta\",2]] | - | " + o + " | -",
            }));
  EXPECT_EQ(s.scalar("SELECT pg2kafka.tracking_problem('p')"), std::nullopt);
  // The composite key is given to setup only.
  std::string err = s.try_exec("SELECT pg2kafka.configure('p', '{\"key\": [\"id\", \"tenant\"]}')");
  EXPECT_NE(err.find("cannot be changed by configure"), std::string::npos) << err;
  EXPECT_EQ(s.value("SELECT pg2kafka.setup('p', 'tenant')"), "f");
}

TEST(CaptureOptionsSql, Snapshots_SetupCopiesAMaskedTable_TheReaderAppliesSelection) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("UPDATE pg2kafka.mask_secret SET secret = 'Jefe'");
  // No primary key: copied by setup, selection applied, masked by the queue's trigger.
  s.exec("CREATE TABLE c (k text, name text, secret text)");
  s.exec("INSERT INTO c VALUES ('a', '" + kRfc4231Message + "', 's')");
  s.exec("SELECT pg2kafka.setup('c', 'k', '{\"exclude\": [\"secret\"], \"mask\": [\"name\"]}')");
  EXPECT_EQ(queued(s, "c"),
            (std::vector<std::string>{"SNAPSHOT [{\"k\":\"a\",\"name\":\"" + kRfc4231Mac +
                                      "\"}] | - | {\"mask\": true} | -"}));
  // A primary key, but masked: copied too, never read in chunks; so is a backfill of it.
  s.exec("CREATE TABLE m (id int PRIMARY KEY, name text)");
  s.exec("INSERT INTO m VALUES (1, '" + kRfc4231Message + "')");
  s.exec("SELECT pg2kafka.setup('m', 'id', '{\"mask\": [\"name\"], \"provenance\": true}')");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.backfills"), "0");
  s.exec("INSERT INTO m VALUES (2, 'two')");
  EXPECT_EQ(s.scalar("SELECT pg2kafka.backfill('m', 'id = 2')"), std::nullopt);
  EXPECT_EQ(queued(s, "m"), (std::vector<std::string>{
                                "SNAPSHOT [{\"id\":1,\"name\":\"" + kRfc4231Mac +
                                    "\"}] | - | {\"mask\": true} | "
                                    "application_name,client_addr,current_user,session_user,txid",
                                "INSERT [{\"id\":2,\"name\":\"" + hmac(s, "two") +
                                    "\"}] | - | {\"mask\": [\"name\"]} | "
                                    "application_name,client_addr,current_user,session_user,txid",
                                "SNAPSHOT [{\"id\":2,\"name\":\"" + hmac(s, "two") +
                                    "\"}] | - | {\"mask\": true} | "
                                    "application_name,client_addr,current_user,session_user,txid",
                            }));
  // Not masked: a backfill, whose reader sends what capture sends.
  s.exec("CREATE TABLE r (id int PRIMARY KEY, secret text, pw text, v text)");
  s.exec("INSERT INTO r VALUES (1, 's', 'p', 'v')");
  s.exec("SELECT pg2kafka.setup('r', 'id', '{\"exclude\": [\"secret\"], \"redact\": [\"pw\"]}')");
  std::string reader = s.value("SELECT reader::text FROM pg2kafka.backfills");
  EXPECT_EQ(
      s.value("SELECT string_agg(data::text, ',') FROM " + reader.substr(0, reader.find('(')) +
              "((SELECT id FROM pg2kafka.backfills), "
              "NULL, 10)"),
      R"({"id":1,"pw":null,"v":"v"})");
  // Configured to mask later: the reader refuses (chunks would hand clear values out).
  s.exec("SELECT pg2kafka.configure('r', '{\"mask\": [\"v\"]}')");
  std::string err = s.try_exec("SELECT * FROM " + reader.substr(0, reader.find('(')) +
                               "((SELECT id FROM pg2kafka.backfills), NULL, 10)");
  EXPECT_NE(err.find("masked"), std::string::npos) << err;
}

TEST(CaptureOptionsSql, Provenance_TheTransactionsOwnSettingsOnly_TruthfulWhateverIsInserted) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("CREATE TABLE t (id int PRIMARY KEY, v text)");
  s.exec("SELECT pg2kafka.setup('t', 'id', '{\"provenance\": [\"actor\", \"ticket\"]}')");
  s.exec(
      "BEGIN; SET LOCAL pg2kafka.actor = 'alice'; SET LOCAL application_name = 'app1';"
      "INSERT INTO t VALUES (1, 'a'); TRUNCATE t; COMMIT");
  s.exec("INSERT INTO t VALUES (2, 'b')");
  s.exec("BEGIN; SET LOCAL pg2kafka.actor = '" + std::string(2000, 'x') +
         "'; DELETE FROM t; COMMIT");
  auto rows = s.rows(
      "SELECT statement, headers ->> 'actor', headers ->> 'application_name', "
      "headers ->> 'current_user', headers ? 'ticket', (headers ->> 'txid')::xid8 = txid "
      "FROM pg2kafka.event_batches ORDER BY id");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(*rows[0][1], "alice");
  EXPECT_EQ(*rows[0][2], "app1");
  EXPECT_EQ(*rows[0][3], "postgres");
  EXPECT_EQ(*rows[0][4], "f");
  EXPECT_EQ(*rows[0][5], "t");
  EXPECT_EQ(*rows[1][0], "TRUNCATE");
  EXPECT_EQ(*rows[1][1], "alice");
  EXPECT_EQ(rows[2][1], std::nullopt);  // another transaction
  EXPECT_EQ(rows[3][1]->size(), 1024u);

  // A role queueing directly forges nothing: the headers are the truth.
  TestRole writer(db, "writer");
  s.exec("GRANT INSERT, UPDATE, DELETE ON t TO " + writer.name());
  Session w(writer.url());
  w.exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data, headers) VALUES ('public', 't', 'INSERT', 'id', 1, '[{\"id\":9}]', "
      "'{\"current_user\": \"postgres\", \"actor\": \"root\"}')");
  w.exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data, headers) VALUES ('public', 't', 'INSERT', 'id', 1, '[{\"id\":10}]', "
      "'[\"current_user\", \"Bad-Name\", \"actor\", 7]')");
  auto forged = s.rows(
      "SELECT headers ->> 'current_user', headers ->> 'session_user', headers ? 'actor' FROM "
      "pg2kafka.event_batches WHERE data::text LIKE '%9%' OR data::text LIKE '%10%' ORDER BY id");
  ASSERT_EQ(forged.size(), 2u);
  for (const auto& r : forged) {
    EXPECT_EQ(*r[0], writer.name());
    EXPECT_EQ(*r[1], writer.name());
    EXPECT_EQ(*r[2], "f");
  }
  // Nor can it read back what it queued.
  EXPECT_TRUE(denied(w.try_exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data, headers) VALUES ('public', 't', 'INSERT', 'id', 1, '[{\"id\":11}]', '[]') "
      "RETURNING headers")));
}

TEST(CaptureOptionsSql, BadOptions_EachAClearErrorAndNothingChanges) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("CREATE TABLE t (id int PRIMARY KEY, a text, b text, \"we'ird\" text)");
  s.exec("SELECT pg2kafka.setup('t', 'id', '{\"exclude\": [\"b\"]}')");
  const std::string registry_before =
      s.value("SELECT row(capture, options, option_columns)::text FROM pg2kafka.tracked_tables");
  const std::string triggers_before = triggers_of(s, "t");
  const std::string hostile = "'); DROP TABLE t; --";
  const std::string longname(5000, 'z');
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"colour": 1})", "unknown option \"colour\""},
      {R"([1, 2])", "must be a JSON object"},
      {R"("x")", "must be a JSON object"},
      {R"({"exclude": "a"})", "must be an array of column names"},
      {R"({"exclude": [1]})", "must be an array of column names"},
      {R"({"mask": ["nope"]})", "has no column \"nope\""},
      {R"({"exclude": ["a", "a"]})", "names column \"a\" twice"},
      {R"({"include": ["id"], "exclude": ["a"]})", "exclude each other"},
      {R"({"include": ["a"], "exclude": null})", "must list key column \"id\""},
      {R"({"exclude": ["id"]})", "key column \"id\" cannot be in option \"exclude\""},
      {R"({"mask": ["id"]})", "key column \"id\" cannot be in option \"mask\""},
      {R"({"redact": ["id"]})", "key column \"id\" cannot be in option \"redact\""},
      {R"({"mask": ["a"], "redact": ["a"]})", "both masked and redacted"},
      {R"({"topic": ""})", "Kafka topic name"},
      {R"({"topic": ".."})", "Kafka topic name"},
      {R"({"topic": "a b"})", "Kafka topic name"},
      {"{\"topic\": \"" + std::string(250, 't') + "\"}", "Kafka topic name"},
      {R"({"topic": 5})", "Kafka topic name"},
      {R"({"provenance": ["Actor"]})", "is not a setting name"},
      {R"({"provenance": ["current_user"]})", "is not a setting name"},
      {R"({"provenance": ["id"]})", "is not a setting name"},
      {R"({"provenance": ["error"]})", "is not a setting name"},
      {R"({"topic": "pg2kafka.db.other"})", "must not start with \"pg2kafka.\""},
      {R"({"topic": "pg2kafka_db_other"})", "must not start with \"pg2kafka.\""},
      {R"({"provenance": "yes"})", "must be true, false or an array"},
      {R"({"provenance": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]})",
       "at most 16"},
      {R"({"update": "all"})", "option \"update\" must be one of \"changed\", \"full\""},
      {R"({"before": true})", "option \"before\" must be one of"},
      {R"({"delete": "everything"})", "option \"delete\" must be one of"},
      {R"({"key_changes": 1})", "option \"key_changes\" must be one of"},
      {R"({"tombstones": "yes"})", "must be true or false"},
      {R"({"capture": "sometimes"})", "must be \"statement\" or \"row\""},
      {R"({"key": ["id", "a"]})", "cannot be changed by configure"},
      {"{\"exclude\": [\"" + hostile + "\"]}", "has no column \"'); DROP TABLE t; --\""},
      {"{\"" + hostile + "\": 1}", "unknown option \"'); DROP TABLE t; --\""},
      {"{\"mask\": [\"" + longname + "\"]}", "has no column \"zzz"},
      {"{\"" + longname + "\": 1}", "unknown option \"zzz"},
  };
  for (const auto& [options, expected] : cases) {
    std::string quoted;
    for (char c : options) {
      quoted += c;
      if (c == '\'') quoted += '\'';
    }
    std::string err = s.try_exec("SELECT pg2kafka.configure('t', '" + quoted + "')");
    EXPECT_NE(err.find(expected), std::string::npos) << options << ": " << err;
    EXPECT_LT(err.size(), 1200u) << options;
  }
  EXPECT_EQ(s.value("SELECT row(capture, options, option_columns)::text FROM "
                    "pg2kafka.tracked_tables"),
            registry_before);
  EXPECT_EQ(triggers_of(s, "t"), triggers_before);
  EXPECT_EQ(s.value("SELECT to_regclass('t') IS NOT NULL"), "t");

  // setup's own: a composite key of one column, duplicates, a key column not first of it.
  s.exec("CREATE TABLE u (a int, b int, c int)");
  const std::vector<std::pair<std::string, std::string>> setups = {
      {R"(NULL, '{"key": ["a"]}')", "at least 2 columns"},
      {R"(NULL, '{"key": ["a", "a"]}')", "names column \"a\" twice"},
      {R"('b', '{"key": ["a", "b"]}')", "must be the first column of option \"key\""},
      {R"(NULL, '{"key": ["a", "b"], "include": ["a"]}')", "must list key column \"b\""},
      {R"(NULL, '{"key": ["a", "b"], "mask": ["b"]}')", "key column \"b\" cannot be in"},
      {R"(NULL, NULL)", "must not be NULL"},
  };
  for (const auto& [args, expected] : setups) {
    std::string err = s.try_exec("SELECT pg2kafka.setup('u', " + args + ")");
    EXPECT_NE(err.find(expected), std::string::npos) << args << ": " << err;
  }
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.tracked_tables WHERE relid = 'u'::regclass"),
            "0");
  EXPECT_EQ(triggers_of(s, "u"), "none");
}

TEST(CaptureOptionsSql, Outdated_TriggersWhoseOptionsDifferFromTheRegistry_SetupRepairs) {
  TestDatabase db;
  auto& s = db.sql();
  s.exec("CREATE TABLE t (id int PRIMARY KEY, a text)");
  s.exec("SELECT pg2kafka.setup('t', 'id', '{\"exclude\": [\"a\"]}')");
  // The triggers put back without options (by hand): the registry says otherwise.
  s.exec("SELECT pg2kafka.create_triggers('t', 'id', 1::smallint, 'statement')");
  EXPECT_EQ(s.value("SELECT pg2kafka.tracking_problem('t')"), "outdated");
  EXPECT_EQ(s.value("SELECT pg2kafka.setup('t', 'id')"), "f");
  EXPECT_EQ(s.scalar("SELECT pg2kafka.tracking_problem('t')"), std::nullopt);
  s.exec("INSERT INTO t VALUES (1, 'a')");
  EXPECT_EQ(s.value("SELECT data::text FROM pg2kafka.event_batches"), R"([{"id":1}])");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.event_batches WHERE statement = 'SNAPSHOT'"),
            "0");
}

TEST(CaptureOptionsSql, Attacker_MaskSecretAndTriggerFunctionsAreTheSchemaOwnersOnly) {
  TestDatabase db;
  auto& s = db.sql();
  TestRole writer(db, "writer");
  TestRole drainer(db, "drainer");
  s.exec("GRANT SELECT, DELETE ON pg2kafka.event_batches TO " + drainer.name());
  s.exec("GRANT SELECT ON pg2kafka.tracked_tables, pg2kafka.schema_migrations TO " +
         drainer.name());
  s.exec("GRANT SELECT, INSERT, DELETE ON pg2kafka.parked_events TO " + drainer.name());
  s.exec("GRANT USAGE ON SEQUENCE pg2kafka.parked_events_id_seq TO " + drainer.name());
  s.exec("CREATE TABLE t (id int PRIMARY KEY, name text)");
  s.exec("SELECT pg2kafka.setup('t', 'id', '{\"mask\": [\"name\"]}')");
  s.exec("GRANT SELECT, INSERT, UPDATE, DELETE ON t TO " + writer.name());
  for (const TestRole* role : {&writer, &drainer}) {
    Session a(role->url());
    EXPECT_TRUE(denied(a.try_exec("SELECT * FROM pg2kafka.mask_secret"))) << role->name();
    EXPECT_TRUE(denied(a.try_exec("UPDATE pg2kafka.mask_secret SET secret = 'x'")));
    EXPECT_TRUE(denied(a.try_exec("SELECT pg2kafka.event_batches_mask()")));
    a.exec("CREATE TEMP TABLE mine (options jsonb, data json)");
    std::string err = a.try_exec(
        "CREATE TRIGGER m BEFORE INSERT ON pg_temp.mine FOR EACH ROW EXECUTE FUNCTION "
        "pg2kafka.event_batches_mask()");
    EXPECT_TRUE(denied(err)) << err;
    err = a.try_exec(
        "CREATE TRIGGER p BEFORE INSERT ON pg_temp.mine FOR EACH ROW EXECUTE FUNCTION "
        "pg2kafka.event_batches_provenance()");
    EXPECT_TRUE(denied(err)) << err;
    // Configuring a table one does not own is refused, and changes nothing.
    err = a.try_exec("SELECT pg2kafka.configure('t', '{\"mask\": null}')");
    EXPECT_TRUE(denied(err)) << err;
  }
  // The parked events' new columns are covered by the drainer's INSERT.
  Session d(drainer.url());
  d.exec(
      "INSERT INTO pg2kafka.parked_events (uuid, table_schema, table_name, statement, "
      "created_at, reason, error, headers, tombstone) VALUES (gen_random_uuid(), 'public', 't', "
      "'DELETE', now(), 'failed', 'x', '{\"current_user\": \"w\"}', true)");
  // The schema owner could attach it elsewhere, but it refuses to run as another trigger.
  s.exec("CREATE TABLE other (options jsonb, data json)");
  s.exec(
      "CREATE TRIGGER m BEFORE INSERT ON other FOR EACH ROW EXECUTE FUNCTION "
      "pg2kafka.event_batches_mask()");
  std::string err = s.try_exec("INSERT INTO other VALUES ('{\"mask\": true}', '[]')");
  EXPECT_NE(err.find("is the trigger event_batches_mask"), std::string::npos) << err;

  // A writer's forged options cannot get a masked column stored in clear through capture, and
  // what it queues directly it cannot read back.
  Session w(writer.url());
  w.exec("INSERT INTO t VALUES (1, 'clear')");
  EXPECT_EQ(s.value("SELECT data -> 0 ->> 'name' FROM pg2kafka.event_batches WHERE "
                    "statement = 'INSERT'"),
            hmac(s, "clear"));
  std::string returning = w.try_exec(
      "INSERT INTO pg2kafka.event_batches (table_schema, table_name, statement, key_column, "
      "events, data, options) VALUES ('public', 't', 'INSERT', 'id', 1, "
      "'[{\"id\":2,\"name\":\"guess\"}]', '{\"mask\": true}') RETURNING data");
  EXPECT_TRUE(denied(returning)) << returning;
  EXPECT_EQ(s.value("SELECT pg2kafka.tracking_problem('t') IS NULL"), "t");
  EXPECT_EQ(s.value("SELECT options::text FROM pg2kafka.tracked_tables"), R"({"mask": ["name"]})");
}

TEST(CaptureOptionsSql, Attacker_UserCodeRunsOnlyAsTheWriter_LookAlikesNeverRun) {
  // The owner of a table (no other grant) gives it a type whose cast to json records who runs it,
  // puts look-alikes of what the new functions call first in its search_path, and captures it
  // with every SQL-side option, in both modes. The cast must only ever run as the owner (never as
  // the schema's owner, whose trigger masks the batch), the look-alikes never.
  for (const std::string mode : {"statement", "row"}) {
    TestDatabase db;
    TestRole owner(db, "owner");
    db.sql().exec("CREATE SCHEMA app AUTHORIZATION " + owner.name());
    Session a(owner.url());
    a.exec(R"sql(
      SET search_path = app;
      CREATE TABLE seen (who name, via text);
      CREATE FUNCTION plant(via text) RETURNS void LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO app.seen VALUES (current_user, via);
      END $$;
      CREATE TYPE st AS ENUM ('new');
      CREATE FUNCTION st_json(st) RETURNS json LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('cast'); RETURN '"new"'; END$$;
      CREATE CAST (st AS json) WITH FUNCTION st_json(st);
      CREATE TABLE t (id int PRIMARY KEY, s st, name text, secret text, pw text);
      CREATE FUNCTION json_each(json) RETURNS SETOF record LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('json_each'); END$$;
      CREATE FUNCTION to_json(text) RETURNS json LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('to_json'); RETURN '""'; END$$;
      CREATE FUNCTION sha256(bytea) RETURNS bytea LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('sha256'); RETURN ''; END$$;
      CREATE FUNCTION row_to_json(record) RETURNS json LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('row_to_json'); RETURN '{}'; END$$;
      CREATE FUNCTION current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('current_setting'); RETURN 'x'; END$$;
      CREATE FUNCTION teq(text, text) RETURNS boolean LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('text operator'); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
      CREATE OPERATOR app.= (FUNCTION = app.teq, LEFTARG = text, RIGHTARG = text);
      CREATE FUNCTION jq(jsonb, text) RETURNS boolean LANGUAGE plpgsql AS
        $$BEGIN PERFORM app.plant('jsonb operator'); RETURN true; END$$;
      CREATE OPERATOR app.? (FUNCTION = app.jq, LEFTARG = jsonb, RIGHTARG = text);
    )sql");
    a.exec("SELECT pg2kafka.setup('app.t', 'id', '{\"capture\": \"" + mode +
           "\", \"exclude\": [\"secret\"], \"mask\": [\"name\"], \"redact\": [\"pw\"], "
           "\"provenance\": [\"actor\"], \"delete\": \"row\"}')");
    a.exec("SET search_path = app, pg_catalog");
    a.exec("SET pg2kafka.actor = 'me'");
    a.exec("INSERT INTO app.t VALUES (1, 'new', 'n', 's', 'p')");
    a.exec("UPDATE app.t SET name = 'm'");
    a.exec("DELETE FROM app.t");
    a.exec("SELECT pg2kafka.configure('app.t', '{\"redact\": null}')");
    auto seen = db.sql().rows("SELECT DISTINCT who::text, via FROM app.seen ORDER BY 2");
    std::set<std::string> via;
    for (const auto& row : seen) {
      EXPECT_EQ(*row[0], owner.name()) << mode << " " << *row[1];
      via.insert(*row[1]);
    }
    EXPECT_EQ(via, (std::set<std::string>{"cast"})) << mode;
    EXPECT_EQ(db.sql().value("SELECT string_agg(statement || ' ' || (data -> 0 ->> 'name') || ' ' "
                             "|| (headers ->> 'actor'), ',' ORDER BY id) FROM "
                             "pg2kafka.event_batches"),
              "INSERT " + hmac(db.sql(), "n") + " me,UPDATE " + hmac(db.sql(), "m") +
                  " me,DELETE " + hmac(db.sql(), "m") + " me")
        << mode;
  }
}

// What the review of the first version found, each shown to hold now.
TEST(CaptureOptionsSql, MaskingNeverFailsOpen_ARepeatableReadWriterQueuesNoClearValue) {
  TestDatabase db;
  auto& s = db.sql();
  TestRole alice(db, "alice");
  TestRole writer(db, "writer");
  // alice owns a schema of her own.
  s.exec("GRANT CREATE ON DATABASE \"" + db.name() + "\" TO " + alice.name());
  Session a(alice.url());
  a.exec("CREATE SCHEMA own");
  a.exec("CREATE TABLE own.t (id int PRIMARY KEY, secret text)");
  a.exec("GRANT USAGE ON SCHEMA own TO " + writer.name());
  a.exec("GRANT SELECT, INSERT ON own.t TO " + writer.name());
  a.exec("SELECT pg2kafka.setup('own.t', 'id')");

  // A REPEATABLE READ writer took its snapshot before mask was configured: its registry reads
  // show no masked column, but its triggers are the new ones, which name it.
  Session w(writer.url());
  w.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
  w.exec("SELECT count(*) FROM pg2kafka.tracked_tables");  // the snapshot; no lock on own.t
  a.exec("SELECT pg2kafka.configure('own.t', '{\"mask\": [\"secret\"]}')");
  w.exec("INSERT INTO own.t VALUES (1, 'CLEAR-IN-RR')");
  w.exec("COMMIT");
  w.exec("INSERT INTO own.t VALUES (2, 'CLEAR-LATER')");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.event_batches WHERE table_name = 't'"), "2");
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.event_batches WHERE data::text ~ 'CLEAR'"), "0")
      << s.value("SELECT string_agg(data::text, ' ') FROM pg2kafka.event_batches");
}

TEST(CaptureOptionsSql, TheRegistryKeepsItsShape_AndAKeyColumnDroppedIsAProblem) {
  TestDatabase db;
  auto& s = db.sql();
  TestRole bob(db, "bob");
  s.exec("GRANT CREATE ON SCHEMA public TO " + bob.name());
  Session b(bob.url());
  b.exec("CREATE TABLE x (id int PRIMARY KEY, v text)");
  b.exec("SELECT pg2kafka.setup('x', 'id', '{\"exclude\": [\"v\"]}')");
  // Written around configure, a malformed row would break tracking_problems for everyone.
  for (const char* bad : {R"(option_columns = '{"include": 5}')",
                          R"(option_columns = '{"include": ["a"]}')", R"(options = '[1]')"}) {
    std::string err = b.try_exec(std::string("UPDATE pg2kafka.tracked_tables SET ") + bad);
    EXPECT_NE(err.find("tracked_tables_options_shape"), std::string::npos) << bad << ": " << err;
  }
  EXPECT_EQ(s.value("SELECT count(*) FROM pg2kafka.tracking_problems()"), "0");

  s.exec("CREATE TABLE ck (t text, n int, v text, PRIMARY KEY (t, n))");
  s.exec("SELECT pg2kafka.setup('ck', NULL, '{\"key\": [\"t\", \"n\"], \"tombstones\": true}')");
  s.exec("ALTER TABLE ck DROP COLUMN n CASCADE");
  EXPECT_EQ(s.value("SELECT problem FROM pg2kafka.tracking_problems() WHERE table_name = "
                    "'ck'::regclass"),
            "key column gone");
}

TEST(CaptureOptionsSql, ATopicBelongsToTheOwnerOfTheTableThatNamedItFirst) {
  TestDatabase db;
  auto& s = db.sql();
  TestRole alice(db, "alice");
  TestRole bob(db, "bob");
  s.exec("GRANT CREATE ON SCHEMA public TO " + alice.name() + ", " + bob.name());
  Session a(alice.url());
  Session b(bob.url());
  a.exec("CREATE TABLE a1 (id int PRIMARY KEY)");
  a.exec("CREATE TABLE a2 (id int PRIMARY KEY)");
  b.exec("CREATE TABLE b1 (id int PRIMARY KEY)");
  a.exec("SELECT pg2kafka.setup('a1', 'id', '{\"topic\": \"orders\"}')");
  a.exec("SELECT pg2kafka.setup('a2', 'id', '{\"topic\": \"orders\"}')");  // her own: shared
  b.exec("SELECT pg2kafka.setup('b1', 'id')");
  std::string err = b.try_exec("SELECT pg2kafka.configure('b1', '{\"topic\": \"orders\"}')");
  EXPECT_NE(err.find("the topic of a table of another owner"), std::string::npos) << err;
  EXPECT_EQ(
      s.scalar("SELECT options::text FROM pg2kafka.tracked_tables WHERE relid = 'b1'::regclass"),
      std::nullopt);
}
