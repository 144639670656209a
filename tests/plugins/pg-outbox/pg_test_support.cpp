#include "pg_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "embedded_sql.hpp"
#include "test_support.hpp"

namespace p2k_pg_test {

using pg2kafka::pg_outbox::OutboxSource;

std::string server_url() {
  std::string url = p2k_test::state_value("pg.env", "P2K_TEST_PG_URL");
  return url.substr(0, url.rfind('/'));
}

std::string url_for(const std::string& database) {
  return server_url() + "/" + database;
}

std::string pg_tool(const std::string& name) {
  return p2k_test::state_value("pg.env", "P2K_TEST_PG_BIN") + "/" + name;
}

std::string dump_and_restore(const std::string& from, const std::string& to) {
  p2k_test::TempDir dir;
  std::string dump = (dir.path() / "db.dump").string();
  auto r = p2k_test::run({pg_tool("pg_dump"), "-Fc", "-f", dump, from});
  if (r.exit_code != 0) return "pg_dump: " + r.err;
  r = p2k_test::run({pg_tool("pg_restore"), "--exit-on-error", "-d", to, dump});
  if (r.exit_code != 0) return "pg_restore: " + r.err;
  return "";
}

void restart_cluster() {
  std::istringstream words(p2k_test::state_value("pg.env", "P2K_TEST_PG_CTL"));
  std::vector<std::string> argv;
  for (std::string w; words >> w;) argv.push_back(w);
  argv.insert(argv.end(), {"restart", "-m", "immediate"});
  auto r = p2k_test::run(argv, {}, std::chrono::seconds(90));
  if (r.exit_code != 0) throw std::runtime_error("pg_ctl restart failed: " + r.out + r.err);
}

Session::Session(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string m = PQerrorMessage(conn_);
    PQfinish(conn_);
    throw std::runtime_error("test session cannot connect: " + m);
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
}

Session::~Session() {
  PQfinish(conn_);
}

std::string Session::try_exec(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  ExecStatusType s = PQresultStatus(r);
  std::string err;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    err = PQresultErrorMessage(r);
    if (err.empty()) err = PQerrorMessage(conn_);
  }
  PQclear(r);
  return err;
}

void Session::exec(const std::string& sql) {
  std::string err = try_exec(sql);
  if (!err.empty()) throw std::runtime_error("SQL failed: " + sql + "\n" + err);
}

std::vector<std::vector<std::optional<std::string>>> Session::rows(const std::string& sql) {
  PGresult* r = PQexec(conn_, sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error("SQL failed: " + sql + "\n" + err);
  }
  std::vector<std::vector<std::optional<std::string>>> out;
  for (int i = 0; i < PQntuples(r); ++i) {
    std::vector<std::optional<std::string>> row;
    for (int j = 0; j < PQnfields(r); ++j) {
      if (PQgetisnull(r, i, j))
        row.emplace_back(std::nullopt);
      else
        row.emplace_back(std::string(PQgetvalue(r, i, j), PQgetlength(r, i, j)));
    }
    out.push_back(std::move(row));
  }
  PQclear(r);
  return out;
}

std::optional<std::string> Session::scalar(const std::string& sql) {
  auto r = rows(sql);
  if (r.empty() || r[0].empty()) return std::nullopt;
  return r[0][0];
}

std::string Session::value(const std::string& sql) {
  auto v = scalar(sql);
  if (!v) throw std::runtime_error("SQL returned NULL or nothing: " + sql);
  return *v;
}

void Session::send(const std::string& sql) {
  if (!PQsendQuery(conn_, sql.c_str()))
    throw std::runtime_error(std::string("PQsendQuery failed: ") + PQerrorMessage(conn_));
}

bool Session::busy() {
  PQconsumeInput(conn_);
  return PQisBusy(conn_) != 0;
}

std::string Session::finish() {
  std::string err;
  while (PGresult* r = PQgetResult(conn_)) {
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && err.empty()) err = PQresultErrorMessage(r);
    PQclear(r);
  }
  return err;
}

TestDatabase::TestDatabase(bool install_schema) {
  std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::string base;
  for (char c : test) {
    if (std::isalnum(static_cast<unsigned char>(c))) base += static_cast<char>(std::tolower(c));
    if (base.size() >= 40) break;
  }
  std::random_device rd;
  name_ = "p2k_" + base + "_" + std::to_string(rd() % 1000000);
  Session admin(url_for("postgres"));
  admin.exec("CREATE DATABASE " + name_);
  session_ = std::make_unique<Session>(url());
  if (install_schema) install_schema_sql(*session_);
}

TestRole::TestRole(const TestDatabase& db, const std::string& purpose) : db_(db) {
  std::random_device rd;
  name_ = "p2k_" + purpose + "_" + std::to_string(rd() % 1000000);
  Session admin(db.url());
  admin.exec("CREATE ROLE " + name_ + " LOGIN");
}

TestRole::~TestRole() {
  try {
    Session admin(db_.url());
    admin.try_exec("DROP OWNED BY " + name_ + " CASCADE");
    Session server(url_for("postgres"));
    server.try_exec("DROP ROLE IF EXISTS " + name_);
  } catch (...) {
  }
}

std::string TestRole::url() const {
  std::string base = server_url();  // postgresql://postgres@host:port
  return "postgresql://" + name_ + base.substr(base.find('@')) + "/" + db_.name();
}

void apply_migrations_up_to(Session& sql, int version) {
  for (const auto& m : pg2kafka::pg_outbox::migrations())
    if (m.version <= version) sql.exec(std::string("BEGIN;\n") + m.sql + "\nCOMMIT;");
}

void apply_function_set(Session& sql) {
  std::string all = "BEGIN;\n";
  for (const auto& f : pg2kafka::pg_outbox::function_set().files) all += std::string(f.sql) + "\n";
  sql.exec(all + "COMMIT;");
}

void install_schema_sql(Session& sql) {
  apply_migrations_up_to(sql, std::numeric_limits<int>::max());
  apply_function_set(sql);
}

void seed_products(Session& sql) {
  sql.exec("CREATE TABLE products (id BIGSERIAL, sku TEXT, name TEXT)");
  sql.exec("INSERT INTO products (sku, name) VALUES ('CM01-R', 'Red Coffee Mug')");
  sql.exec("INSERT INTO products (sku, name) VALUES ('CM01-B', 'Blue Coffee Mug')");
}

void tracked_table(Session& sql, const std::string& name) {
  sql.exec("CREATE TABLE " + name + " (k text, v int)");
  sql.exec("SELECT pg2kafka.setup('" + name + "', 'k')");
}

TestDatabase::~TestDatabase() {
  session_.reset();
  try {
    Session admin(url_for("postgres"));
    admin.try_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {
  }
}

LogSink::LogSink() {
  host.struct_size = sizeof(p2k_host);
  host.abi_major = P2K_ABI_MAJOR;
  host.abi_minor = P2K_ABI_MINOR;
  host.ctx = this;
  host.log = [](void* ctx, p2k_log_level, const char* message) {
    auto* self = static_cast<LogSink*>(ctx);
    std::lock_guard lock(self->mutex);
    self->lines.emplace_back(message);
  };
}

std::string LogSink::all() {
  std::lock_guard lock(mutex);
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

std::unique_ptr<OutboxSource> make_source(const std::string& url,
                                          const std::map<std::string, std::string>& overrides,
                                          LogSink* logs) {
  std::map<std::string, std::string> values{{"connection", url},
                                            {"perform_migrations", "false"},
                                            {"topic_namespace", ""},
                                            {"batch_size", "1000"},
                                            {"poll_interval", "100"},
                                            {"notify", "true"},
                                            {"acknowledged", "delete"},
                                            {"retention", "604800000"},
                                            {"application_name", "pg2kafka-test"}};
  for (const auto& [k, v] : overrides) values[k] = v;
  std::vector<p2k_option_value> raw;
  for (const auto& [k, v] : values) raw.push_back({k.c_str(), v.c_str()});
  pg2kafka::sdk::Options options(raw.data(), raw.size());
  pg2kafka::sdk::Host host(logs ? &logs->host : nullptr);
  return std::make_unique<OutboxSource>(host, options);
}

std::vector<Event> to_events(pg2kafka::sdk::RecordBatch& batch) {
  std::vector<Event> out;
  const p2k_record* r = batch.records();
  for (size_t i = 0; i < batch.size(); ++i) {
    Event e;
    e.position = r[i].position;
    e.topic.assign(r[i].topic.data, r[i].topic.size);
    if (r[i].key.data) e.key = std::string(r[i].key.data, r[i].key.size);
    e.null_value = r[i].value.data == nullptr;
    if (!e.null_value) e.value.assign(r[i].value.data, r[i].value.size);
    e.id.assign(r[i].id.data, r[i].id.size);
    e.timestamp_ms = r[i].timestamp_ms;
    for (size_t h = 0; h < r[i].header_count; ++h)
      e.headers[std::string(r[i].headers[h].name.data, r[i].headers[h].name.size)] =
          std::string(r[i].headers[h].value.data, r[i].headers[h].value.size);
    if (!e.null_value) e.json = boost::json::parse(e.value).as_object();  // throws if invalid
    out.push_back(std::move(e));
  }
  return out;
}

std::set<std::string> keys_of(const std::vector<Event>& events) {
  std::set<std::string> out;
  for (const auto& e : events)
    if (e.key) out.insert(*e.key);
  return out;
}

std::vector<std::string> describe(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    out.push_back(e.topic.substr(e.topic.rfind('.') + 1) + " " + e.statement() + " " +
                  e.key.value_or("null") + " " + boost::json::serialize(e.data()));
  return out;
}

namespace {

std::vector<Event> poll_loop(OutboxSource& source, size_t want, bool stop_on_empty, bool ack,
                             std::chrono::seconds patience) {
  std::vector<Event> out;
  auto deadline = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<pg2kafka::sdk::RecordBatch> batch;
    try {
      // 15 ms: longer than the default min_poll_interval, by which a window that follows a
      // caught-up one is delayed, so an empty poll means an empty queue.
      batch = source.poll(1000, std::chrono::milliseconds(stop_on_empty ? 15 : 200));
    } catch (const pg2kafka::sdk::RetryError&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!batch || batch->empty()) {
      if (stop_on_empty && source.active()) break;
      continue;
    }
    auto events = to_events(*batch);
    if (ack) {
      while (true) {
        try {
          source.ack(batch->last_position());
          break;
        } catch (const pg2kafka::sdk::RetryError&) {
          if (std::chrono::steady_clock::now() > deadline) throw;
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
    for (auto& e : events) out.push_back(std::move(e));
    if (!stop_on_empty && out.size() >= want) break;
  }
  return out;
}

}  // namespace

std::vector<Event> drain(OutboxSource& source, bool ack, std::chrono::seconds patience) {
  return poll_loop(source, 0, true, ack, patience);
}

std::vector<Event> poll_until(OutboxSource& source, size_t count, bool ack,
                              std::chrono::seconds patience) {
  return poll_loop(source, count, false, ack, patience);
}

std::string queued_events(Session& sql) {
  return sql.value("SELECT coalesce(sum(events), 0) FROM pg2kafka.event_batches");
}

void insert_one_by_one(Session& sql, int from, int to, const std::string& table) {
  sql.exec("DO $$ BEGIN FOR i IN " + std::to_string(from) + ".." + std::to_string(to) +
           " LOOP INSERT INTO " + table + " (k, v) VALUES ('k' || i, i); END LOOP; END $$");
}

}  // namespace p2k_pg_test
