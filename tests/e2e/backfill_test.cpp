// Online, resumable backfills (issue 17) end to end: the pg2kafka binary with the kafka sink drains
// a tracked table of 100k-150k rows while writers keep changing it, against the `postgres` and
// `kafka` fixtures. Afterwards the whole topic is read back and replayed per key as a consumer
// would (SNAPSHOT and INSERT replace the row, UPDATE merges its changed columns, DELETE removes
// it): the result must be exactly the table. Around that: how long setup holds the writers up,
// and a daemon killed (SIGKILL) or PostgreSQL crash-restarted in the middle of the backfill,
// which must then resume where it stopped.
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "kafka_test_util.hpp"
#include "pg_test_support.hpp"
#include "test_support.hpp"

namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using Rows = std::vector<std::vector<std::optional<std::string>>>;

constexpr int kPartitions = 3;

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<milliseconds>(d).count()) + " ms";
}

bool wait_until(const std::function<bool()>& done, milliseconds timeout,
                milliseconds step = milliseconds(20)) {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(step);
  }
  return done();
}

// How often `text` occurs in `in`.
size_t occurrences(const std::string& in, const std::string& text) {
  size_t n = 0;
  for (auto at = in.find(text); at != std::string::npos; at = in.find(text, at + 1)) ++n;
  return n;
}

// A libpq session that connects again after losing its connection (a PostgreSQL restart), for
// the writers and for watching the backfill's progress.
class Conn {
 public:
  explicit Conn(std::string url) : url_(std::move(url)) {}
  ~Conn() { reset(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // The rows of one statement, or nullopt with the reason in error(). A lost connection is
  // dropped; the next call connects again.
  std::optional<Rows> query(const std::string& sql) {
    if (!ensure()) return std::nullopt;
    PGresult* r = PQexec(conn_, sql.c_str());
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
      error_ = PQresultErrorMessage(r);
      if (error_.empty()) error_ = PQerrorMessage(conn_);
      PQclear(r);
      if (PQstatus(conn_) != CONNECTION_OK) reset();
      return std::nullopt;
    }
    Rows out(static_cast<size_t>(PQntuples(r)));
    for (int i = 0; i < PQntuples(r); ++i)
      for (int j = 0; j < PQnfields(r); ++j)
        out[i].push_back(PQgetisnull(r, i, j) ? std::nullopt
                                              : std::optional<std::string>(PQgetvalue(r, i, j)));
    PQclear(r);
    return out;
  }

  // Like query, retried for up to `patience` (through a restart), then throws.
  Rows must(const std::string& sql, milliseconds patience = milliseconds(30'000)) {
    auto until = Clock::now() + patience;
    while (true) {
      if (auto rows = query(sql)) return *rows;
      if (Clock::now() > until) throw std::runtime_error("SQL failed: " + sql + "\n" + error_);
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  // The first column of the first row ("" for NULL or no row).
  std::string value(const std::string& sql, milliseconds patience = milliseconds(30'000)) {
    Rows rows = must(sql, patience);
    return rows.empty() || rows[0].empty() || !rows[0][0] ? "" : *rows[0][0];
  }

  const std::string& error() const { return error_; }

 private:
  bool ensure() {
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return true;
    reset();
    conn_ = PQconnectdb(url_.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      error_ = PQerrorMessage(conn_);
      reset();
      return false;
    }
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    return true;
  }
  void reset() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  std::string url_;
  PGconn* conn_ = nullptr;
  std::string error_;
};

// Application writers: plain sessions, each running one-row UPDATEs of random rows (and some
// INSERTs, DELETEs, no-op UPDATEs; the first also 50-row UPDATEs) every 2-5 ms, timing every
// statement by the wall clock. The second writes just ahead of the backfill's cursor, when given
// the chunk size: the rows the next chunks read, where a chunk read in another snapshot than its
// window's would send a row older than the events sent before it. A lost connection is made again
// (a PostgreSQL restart).
class Writers {
 public:
  struct Statement {
    Clock::time_point start, end;
    bool ok;
  };

  Writers(const std::string& url, int threads, int64_t id_limit, int chunk_rows) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back(
          [this, url, i, id_limit, chunk_rows] { run(url, i, id_limit, chunk_rows); });
  }
  ~Writers() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  size_t count() const { return count_; }
  size_t failures() const { return failures_; }
  // The first failed statement and its error ("none" when none failed).
  std::string first_error() const {
    std::lock_guard lock(mutex_);
    return errors_.empty() ? "none" : errors_[0];
  }

  // The longest statement that ran at some point of [from, to], and how many did (after stop()).
  Clock::duration longest_overlapping(Clock::time_point from, Clock::time_point to,
                                      size_t* overlapping = nullptr) const {
    std::lock_guard lock(mutex_);
    Clock::duration longest{0};
    size_t n = 0;
    for (const Statement& s : done_) {
      if (s.start > to || s.end < from) continue;
      ++n;
      longest = std::max(longest, s.end - s.start);
    }
    if (overlapping) *overlapping = n;
    return longest;
  }

 private:
  void run(const std::string& url, int index, int64_t id_limit, int chunk_rows) {
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_int_distribution<int64_t> any_id(1, id_limit);
    std::uniform_int_distribution<int> percent(0, 99), pause_us(2000, 5000);
    Conn conn(url);
    std::vector<Statement> mine;
    int64_t cursor = 0;  // the open backfill's last recorded key (0: none)
    auto cursor_read_at = Clock::now();
    while (!stop_) {
      int64_t row = any_id(rng);
      if (index == 1 && chunk_rows > 0) {
        if (Clock::now() >= cursor_read_at) {
          // Up to two chunks are sent and not yet recorded: the cursor is up to that far ahead.
          auto key = conn.query(
              "SELECT coalesce(max(last_key[1]::bigint), 0) FROM pg2kafka.backfills "
              "WHERE state IN ('pending', 'running')");
          if (key && !key->empty() && (*key)[0][0]) cursor = std::stoll(*(*key)[0][0]);
          cursor_read_at = Clock::now() + milliseconds(50);
        }
        if (cursor > 0)
          row = std::uniform_int_distribution<int64_t>(cursor + 1, cursor + 3 * chunk_rows)(rng);
      }
      const std::string id = std::to_string(row);
      const int p = percent(rng);
      std::string sql;
      if (p < 55)
        sql = "UPDATE t SET n = n + 1, s = md5(random()::text) WHERE id = " + id;
      else if (p < 68)
        sql = "UPDATE t SET amount = amount + 0.01, ts = now() WHERE id = " + id;
      else if (p < 71)
        sql = "UPDATE t SET n = n WHERE id = " + id;  // changes nothing: no event
      else if (p < 84)
        sql = "INSERT INTO t VALUES (" + id + ", -1, 'inserted " + id +
              "', 0.5, now()) ON CONFLICT (id) DO NOTHING";
      else if (p < 97 || index != 0)
        sql = "DELETE FROM t WHERE id = " + id;
      else
        sql = "UPDATE t SET n = n + 1, s = 'range' WHERE id BETWEEN " + id + " AND " + id + " + 49";
      auto start = Clock::now();
      bool ok = conn.query(sql).has_value();
      mine.push_back({start, Clock::now(), ok});
      ++count_;
      if (!ok) {
        ++failures_;
        std::lock_guard lock(mutex_);
        if (errors_.size() < 5) errors_.push_back(sql + ": " + conn.error());
      }
      std::this_thread::sleep_for(ok ? std::chrono::microseconds(pause_us(rng)) : milliseconds(50));
    }
    std::lock_guard lock(mutex_);
    done_.insert(done_.end(), mine.begin(), mine.end());
  }

  std::atomic<bool> stop_{false};
  std::atomic<size_t> count_{0}, failures_{0};
  mutable std::mutex mutex_;
  std::vector<Statement> done_;
  std::vector<std::string> errors_;
  std::vector<std::thread> threads_;
};

// `pg2kafka run` as a child process, its stdout and stderr in a log file.
class Daemon {
 public:
  Daemon(const std::string& config, std::string log) : log_(std::move(log)) {
    std::vector<std::string> args{p2k_test::ctest_env("P2K_BINARY"), "run", "--config", config};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Everything the child needs is prepared before fork(): the writers' threads keep running.
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }
  ~Daemon() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  void kill(int signal) const { ::kill(pid_, signal); }
  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return true;
    pid_ = -1;
    exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return false;
  }
  // The exit code, or -signal; -1000 when it did not end within `timeout`.
  int wait(milliseconds timeout = milliseconds(30'000)) {
    return wait_until([&] { return !running(); }, timeout, milliseconds(10)) ? exit_ : -1000;
  }
  std::string log() const { return p2k_test::read_file(log_); }
  // Waits until the pipeline runs (its plugins open), when a stop signal is its to handle.
  bool started() const {
    return wait_until([&] { return log().find("pipeline running") != std::string::npos; },
                      milliseconds(30'000));
  }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int exit_ = -1000;
};

// The backfill's row of pg2kafka.backfills, watched for going backwards.
struct BackfillWatch {
  struct Sample {
    std::string state;
    int64_t rows_done = 0;
  };
  std::optional<Sample> last;
  std::vector<std::string> violations;
  size_t samples = 0;

  Sample sample(Conn& conn) {
    Rows rows = conn.must("SELECT state, rows_done FROM pg2kafka.backfills ORDER BY id");
    if (rows.size() != 1)
      throw std::runtime_error(std::to_string(rows.size()) + " backfills instead of one");
    Sample s{*rows[0][0], std::stoll(*rows[0][1])};
    ++samples;
    if (last && s.rows_done < last->rows_done)
      violations.push_back("rows_done went back from " + std::to_string(last->rows_done) + " to " +
                           std::to_string(s.rows_done));
    if (last && last->state == "done" && s.state != "done")
      violations.push_back("state went from done to " + s.state);
    if (s.state == "failed" || s.state == "cancelled")
      violations.push_back("the backfill ended " + s.state + ": " +
                           conn.value("SELECT error FROM pg2kafka.backfills"));
    last = s;
    return s;
  }
};

// The topic replayed per key, in order, as the issue's consumer does.
struct Replay {
  std::map<std::string, json::object> rows;
  std::map<std::string, size_t> statements;  // messages per statement
  std::set<std::string> snapshot_keys;       // the keys of the SNAPSHOT messages
  std::vector<std::string> problems;         // messages no consumer could apply
};

Replay replay(const std::vector<p2k_test::kafka::Message>& messages) {
  Replay r;
  // read_topic sorts by partition, then offset; a key's messages are all in one partition, so
  // this is each key's order.
  for (const auto& m : messages) {
    if (!m.key || !m.value) {
      r.problems.push_back("a message without key or value at partition " +
                           std::to_string(m.partition) + " offset " + std::to_string(m.offset));
      continue;
    }
    json::object envelope = json::parse(*m.value).as_object();
    std::string statement(envelope.at("statement").as_string());
    ++r.statements[statement];
    if (!envelope.at("external_id").is_string() || envelope.at("external_id").as_string() != *m.key)
      r.problems.push_back("key " + *m.key + " but external_id " +
                           json::serialize(envelope.at("external_id")));
    const json::value& data = envelope.at("data");
    if (statement == "SNAPSHOT") r.snapshot_keys.insert(*m.key);
    if (statement == "SNAPSHOT" || statement == "INSERT") {
      r.rows[*m.key] = data.as_object();
    } else if (statement == "UPDATE") {
      // A row updated before its chunk was sent is still unknown here: its SNAPSHOT follows.
      json::object& row = r.rows[*m.key];
      for (const auto& member : data.as_object()) row[member.key()] = member.value();
    } else if (statement == "DELETE") {
      r.rows.erase(*m.key);
    } else {
      r.problems.push_back("unexpected " + statement + " for key " + *m.key);
    }
  }
  return r;
}

// A test database of its own (schema installed), its topic, and a pg2kafka pipeline to it.
class BackfillE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<p2k_pg_test::TestDatabase>();
    url_ = db_->url();
    brokers_ = p2k_test::kafka::fixture_brokers();
    topic_ = "pg2kafka." + db_->name() + ".t";
    p2k_test::kafka::create_topic(brokers_, topic_, kPartitions);
    watcher_ = std::make_unique<Conn>(url_);
  }

  void TearDown() override {
    if (!HasFailure()) return;
    // What the daemons said, for the failure's story.
    for (const auto& [name, path] : logs_) {
      auto lines = p2k_test::lines(p2k_test::read_file(path));
      std::ostringstream tail;
      for (size_t i = lines.size() > 40 ? lines.size() - 40 : 0; i < lines.size(); ++i)
        tail << "  " << lines[i] << "\n";
      std::cerr << "--- " << name << " (last 40 lines):\n" << tail.str();
    }
  }

  // A table with a primary key (the tracked key column) and value columns of several types.
  void make_table(int64_t rows) {
    db_->sql().exec(
        "CREATE TABLE t (id bigint PRIMARY KEY, n integer NOT NULL, s text, "
        "amount numeric(12, 2), ts timestamptz)");
    db_->sql().exec(
        "INSERT INTO t SELECT g, g % 1000, md5(g::text), (g % 10000) / 100.0, "
        "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' "
        "FROM generate_series(1, " +
        std::to_string(rows) + ") g");
    db_->sql().exec("ANALYZE t");
  }

  std::string config(int chunk_rows, const std::string& pause = "0ms") {
    return dir_.write("pipeline-" + std::to_string(chunk_rows) + ".json", R"({
      "source": {"plugin": "pg-outbox", "options": {
        "connection": ")" + url_ + R"(",
        "backfill_chunk_rows": )" + std::to_string(chunk_rows) + R"(,
        "backfill_pause": ")" + pause + R"(",
        "poll_interval": "200ms"}},
      "sink": {"plugin": "kafka", "options": {"bootstrap_servers": ")" + brokers_ +
                                                                              R"("}},
      "pipeline": {"retry.initial_backoff": "50ms", "retry.max_backoff": "1s",
                   "shutdown_timeout": "20s"}})");
  }

  // A log file for a daemon, shown when the test fails.
  std::string log(const std::string& name) {
    std::string path = (dir_.path() / (name + ".log")).string();
    logs_.emplace_back(name, path);
    return path;
  }

  std::string setup_table() {
    Rows r = watcher_->must("SELECT pg2kafka.setup('t', 'id')");
    return r.at(0).at(0).value_or("NULL");
  }

  int64_t queued() {
    return std::stoll(watcher_->value("SELECT count(*) FROM pg2kafka.event_batches"));
  }

  // Reads the whole topic, replays it and compares it with the table, row by row, column by
  // column (as JSON values). Returns the replay for further checks.
  Replay expect_topic_replays_to_table() {
    Rows table = watcher_->must("SELECT id::text, row_to_json(t)::text FROM t ORDER BY id");
    auto messages =
        p2k_test::kafka::read_topic(brokers_, topic_, table.size(), std::chrono::seconds(60));
    Replay r = replay(messages);
    EXPECT_TRUE(r.problems.empty()) << r.problems.size() << " problems, e.g. " << r.problems[0];
    std::vector<std::string> differences;
    std::vector<std::string> keys;
    std::map<std::string, bool> in_table;
    for (const auto& row : table) {
      const std::string& key = *row[0];
      in_table[key] = true;
      json::value expected = json::parse(*row[1]);
      auto it = r.rows.find(key);
      if (it == r.rows.end()) {
        differences.push_back("key " + key + " is missing; the table has " + *row[1]);
        keys.push_back(key);
      } else if (json::value(it->second) != expected) {
        differences.push_back("key " + key + ": replayed " + json::serialize(it->second) +
                              ", the table has " + *row[1]);
        keys.push_back(key);
      }
    }
    for (const auto& [key, row] : r.rows) {
      if (in_table.count(key)) continue;
      differences.push_back("key " + key + " is not in the table; replayed " +
                            json::serialize(row));
      keys.push_back(key);
    }
    std::ostringstream story;
    for (size_t i = 0; i < differences.size() && i < 5; ++i) {
      story << differences[i] << "\n  its messages:\n";
      for (const auto& m : messages)
        if (m.key == keys[i]) story << "    " << m.value.value_or("null") << "\n";
    }
    EXPECT_TRUE(differences.empty())
        << differences.size() << " of " << table.size() << " rows differ from the replay of "
        << messages.size() << " messages, e.g.:\n"
        << story.str();
    EXPECT_GE(messages.size(), table.size());
    return r;
  }

  // A backfill interrupted `interruptions` times resumed after its last recorded chunk: rows_done
  // counted no row twice (recorded chunks follow one another), and the only rows sent twice are
  // those of the chunks in flight at an interruption (at most two sent and not yet recorded).
  static void expect_resumed(const Replay& r, int64_t rows_done, int interruptions, int chunk) {
    auto it = r.statements.find("SNAPSHOT");
    const int64_t snapshots = it == r.statements.end() ? 0 : static_cast<int64_t>(it->second);
    const int64_t distinct = static_cast<int64_t>(r.snapshot_keys.size());
    EXPECT_LE(rows_done, distinct) << "rows_done counts rows twice";
    EXPECT_LE(snapshots - distinct, int64_t{interruptions} * 3 * chunk)
        << "rows sent again: " << snapshots << " SNAPSHOT messages for " << distinct << " keys";
  }

  std::unique_ptr<p2k_pg_test::TestDatabase> db_;
  std::string url_, brokers_, topic_;
  p2k_test::TempDir dir_;
  std::vector<std::pair<std::string, std::string>> logs_;
  std::unique_ptr<Conn> watcher_;
};

// setup on a table with a primary key only creates the triggers (in short lock attempts) and asks
// for a backfill: no writer is held up for long. The daemon sends the rows in chunks of 2000,
// each read in the snapshot of a drain window, while the writers keep writing; the topic then
// replays exactly to the table.
TEST_F(BackfillE2E, SetupUnderSteadyWriters_NoWriterWaitsLong_AndTheTopicReplaysToTheTable) {
  constexpr int64_t kRows = 100'000;
  constexpr int kChunk = 2000;
  make_table(kRows);
  Daemon daemon(config(kChunk), log("daemon"));
  ASSERT_TRUE(daemon.started()) << daemon.log();

  Writers writers(url_, 3, kRows * 6 / 5, kChunk);
  ASSERT_TRUE(wait_until([&] { return writers.count() >= 300; }, milliseconds(30'000)));
  auto setup_start = Clock::now();
  std::string started = setup_table();
  auto setup_end = Clock::now();
  EXPECT_EQ(started, "t");
  size_t writes_at_setup = writers.count();

  // The writers go on while the chunks are sent (and for at least two seconds).
  BackfillWatch watch;
  auto writing_since = Clock::now();
  std::optional<size_t> writes_during_backfill;
  bool done = wait_until(
      [&] {
        if (watch.sample(*watcher_).state != "done") return false;
        if (!writes_during_backfill) writes_during_backfill = writers.count() - writes_at_setup;
        return Clock::now() - writing_since > milliseconds(2000);
      },
      milliseconds(60'000));
  writers.stop();
  EXPECT_TRUE(done) << "the backfill did not end: " << watch.last->state << " "
                    << watch.last->rows_done;
  EXPECT_TRUE(wait_until([&] { return queued() == 0; }, milliseconds(60'000)))
      << queued() << " batches still queued";
  EXPECT_TRUE(daemon.running()) << daemon.log();
  daemon.kill(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();

  size_t overlapping = 0;
  auto longest = writers.longest_overlapping(setup_start, setup_end, &overlapping);
  EXPECT_LT(longest, milliseconds(100))
      << ms_text(longest) << ": the longest writer statement during setup (which took "
      << ms_text(setup_end - setup_start) << ", " << overlapping
      << " statements ran meanwhile); the longest of all "
      << ms_text(writers.longest_overlapping(Clock::time_point::min(), Clock::time_point::max()));
  EXPECT_EQ(writers.failures(), 0u) << writers.first_error();
  EXPECT_GT(writes_during_backfill.value_or(0), 100u)
      << "the chunks are meant to interleave with writes";
  EXPECT_TRUE(watch.violations.empty()) << watch.violations[0];
  std::cout << "setup took " << ms_text(setup_end - setup_start) << "; longest writer statement "
            << ms_text(longest) << " (" << overlapping << " statements meanwhile); "
            << writes_during_backfill.value_or(0) << " writes during the backfill; rows_done "
            << watch.last->rows_done << "\n";

  expect_topic_replays_to_table();
}

// A daemon killed (SIGKILL) at random points of a backfill, and started again each time, resumes
// after the last chunk it recorded: the progress never goes back, few rows are sent twice, the
// backfill ends done (the last run is stopped by SIGTERM half-way, and `run --once` finishes it),
// and the topic still replays to the table.
TEST_F(BackfillE2E, KilledAtRandomPoints_ResumesAndTheReplayStillEqualsTheTable) {
  constexpr int64_t kRows = 150'000;
  constexpr int kChunk = 500;
  constexpr int kKills = 4;
  make_table(kRows);
  ASSERT_EQ(setup_table(), "t");
  BackfillWatch watch;
  ASSERT_EQ(watch.sample(*watcher_).state, "pending");
  // Paced (10 ms between chunks: some 5 s for the whole table here) so that the kills, 0.2-1.5 s
  // into each run, fall all along the backfill.
  const std::string cfg = config(kChunk, "10ms");
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(200, 1500);
  std::ostringstream story;  // what each kill interrupted
  story << "seed " << seed << "\n";
  int mid_backfill = 0;

  Writers writers(url_, 3, kRows * 6 / 5, kChunk);
  ASSERT_TRUE(wait_until([&] { return writers.count() >= 100; }, milliseconds(30'000)));
  for (int k = 1; k <= kKills; ++k) {
    Daemon daemon(cfg, log("daemon-" + std::to_string(k)));
    // The delay counts from the pipeline's start (its plugins open in about a second before).
    ASSERT_TRUE(daemon.started()) << daemon.log();
    auto delay = milliseconds(delay_ms(rng));
    auto until = Clock::now() + delay;
    while (Clock::now() < until) {
      watch.sample(*watcher_);
      std::this_thread::sleep_for(milliseconds(20));
    }
    daemon.kill(SIGKILL);
    EXPECT_EQ(daemon.wait(), -SIGKILL) << daemon.log();
    auto after = watch.sample(*watcher_);
    story << "kill " << k << " " << delay.count() << " ms into its pipeline: " << after.state
          << ", " << after.rows_done << " rows done\n";
    if (after.state != "done" && after.rows_done > 0) ++mid_backfill;
  }
  {
    Daemon daemon(cfg, log("daemon-last"));
    ASSERT_TRUE(daemon.started()) << daemon.log();
    wait_until([&] { return watch.sample(*watcher_).state == "done"; }, milliseconds(1500));
    writers.stop();
    auto before = watch.sample(*watcher_);
    daemon.kill(SIGTERM);
    EXPECT_EQ(daemon.wait(), 0) << daemon.log();
    story << "SIGTERM: " << before.state << ", " << before.rows_done << " rows done\n";
  }
  auto once =
      p2k_test::run_pg2kafka({"run", "--once", "--config", cfg}, {}, std::chrono::seconds(90));
  EXPECT_EQ(once.exit_code, 0) << once.err;
  auto last = watch.sample(*watcher_);
  story << "run --once: " << last.state << ", " << last.rows_done << " rows done\n";
  EXPECT_EQ(last.state, "done") << story.str() << once.err;
  EXPECT_EQ(queued(), 0) << once.err;
  EXPECT_TRUE(watch.violations.empty()) << watch.violations[0] << "\n" << story.str();
  EXPECT_EQ(writers.failures(), 0u) << writers.first_error();
  EXPECT_GE(mid_backfill, 1) << "no kill came in the middle of the backfill:\n" << story.str();

  // Resumed, not started over: the daemons after the first said so, and few rows went twice.
  size_t resumed = occurrences(once.err, "resuming after");
  for (const auto& [name, path] : logs_)
    resumed += occurrences(p2k_test::read_file(path), "resuming after");
  EXPECT_GE(resumed, 1u) << story.str();
  Replay r = expect_topic_replays_to_table();
  expect_resumed(r, last.rows_done, kKills, kChunk);
  std::cout << story.str() << r.statements["SNAPSHOT"] << " SNAPSHOT messages for "
            << r.snapshot_keys.size() << " keys, " << resumed << " resumptions\n";
}

// A PostgreSQL crash-restart (immediate mode) in the middle of a backfill: the daemon reconnects
// by itself, the backfill resumes and ends done, and the topic replays to the table. Runs alone
// (RUN_SERIAL): it restarts the fixture's cluster under everyone's feet.
TEST_F(BackfillE2E, AcrossAPostgresRestart_ResumesAndTheReplayStillEqualsTheTable) {
  constexpr int64_t kRows = 100'000;
  constexpr int kChunk = 1000;
  make_table(kRows);
  ASSERT_EQ(setup_table(), "t");
  BackfillWatch watch;
  Writers writers(url_, 3, kRows * 6 / 5, kChunk);
  Daemon daemon(config(kChunk, "10ms"), log("daemon"));
  ASSERT_TRUE(daemon.started()) << daemon.log();
  // Restart once a fifth of the rows are recorded as sent.
  ASSERT_TRUE(wait_until([&] { return watch.sample(*watcher_).rows_done >= kRows / 5; },
                         milliseconds(60'000)))
      << daemon.log();
  auto at_restart = *watch.last;
  ASSERT_NE(at_restart.state, "done") << "the backfill ended before the restart";
  p2k_pg_test::restart_cluster();
  size_t writes_at_restart = writers.count();

  bool done = wait_until([&] { return watch.sample(*watcher_).state == "done"; },
                         milliseconds(90'000), milliseconds(50));
  EXPECT_TRUE(done) << watch.last->state << " " << watch.last->rows_done;
  EXPECT_TRUE(
      wait_until([&] { return writers.count() > writes_at_restart + 100; }, milliseconds(30'000)))
      << "the writers did not get going again: " << writers.first_error();
  writers.stop();
  EXPECT_TRUE(wait_until([&] { return queued() == 0; }, milliseconds(60'000)))
      << queued() << " batches still queued";
  EXPECT_TRUE(daemon.running()) << daemon.log();
  daemon.kill(SIGTERM);
  EXPECT_EQ(daemon.wait(), 0) << daemon.log();

  std::string log = daemon.log();
  EXPECT_GE(occurrences(log, "connected to PostgreSQL at"), 2u) << "no reconnection? " << log;
  EXPECT_GT(watch.last->rows_done, at_restart.rows_done);
  EXPECT_TRUE(watch.violations.empty()) << watch.violations[0];
  Replay r = expect_topic_replays_to_table();
  expect_resumed(r, watch.last->rows_done, 1, kChunk);
  std::cout << "restart at " << at_restart.rows_done << " rows done; " << r.statements["SNAPSHOT"]
            << " SNAPSHOT messages for " << r.snapshot_keys.size() << " keys, "
            << watch.last->rows_done << " rows done; " << writers.failures()
            << " writer statements failed\n";
}

}  // namespace
