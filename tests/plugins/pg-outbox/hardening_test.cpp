// What a hostile tester found: calls blocked behind a lock or a frozen server (interrupt,
// lock_timeout, statement_timeout), DNS failures, and options that `check` accepted while `run`
// refused them (an empty connection string, application_name, the startup packet, values libpq
// refuses only when connecting, retention).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <set>
#include <thread>

#include "pg_test_support.hpp"
#include "test_support.hpp"

using namespace p2k_pg_test;
using pg2kafka::pg_outbox::OutboxSource;
using pg2kafka::sdk::ConfigError;
using pg2kafka::sdk::RetryError;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

namespace {

bool eventually(const std::function<bool()>& condition, milliseconds patience) {
  auto deadline = Clock::now() + patience;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return condition();
}

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

std::string port() {
  return p2k_test::state_value("pg.env", "P2K_TEST_PG_PORT");
}

// What a call ended with.
struct Outcome {
  bool returned = false;
  bool retry = false;
  bool config = false;
  std::string message;
};

template <class F>
Outcome outcome_of(F&& call) {
  Outcome o;
  try {
    call();
    o.returned = true;
  } catch (const RetryError& e) {
    o.retry = true;
    o.message = e.what();
  } catch (const ConfigError& e) {
    o.config = true;
    o.message = e.what();
  } catch (const std::exception& e) {
    o.message = e.what();
  }
  return o;
}

// A poll running on a thread of its own, as the host's pipeline thread would; interrupted and
// joined at the end whatever happened.
class BackgroundPoll {
 public:
  BackgroundPoll(OutboxSource& source, milliseconds timeout) : source_(source) {
    thread_ = std::thread([this, timeout] {
      outcome_ = outcome_of([&] { source_.poll(100, timeout); });
      done_ = true;
    });
  }
  ~BackgroundPoll() {
    if (thread_.joinable()) {
      source_.interrupt();
      thread_.join();
    }
  }
  bool done() const { return done_; }
  // Interrupts the source and waits for the poll; returns how long that took.
  milliseconds interrupt_and_join() {
    auto start = Clock::now();
    source_.interrupt();
    thread_.join();
    return since(start);
  }
  milliseconds join() {
    auto start = Clock::now();
    thread_.join();
    return since(start);
  }
  const Outcome& outcome() const { return outcome_; }

 private:
  OutboxSource& source_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  Outcome outcome_;
};

// Sets environment variables for the scope of a test.
class EnvGuard {
 public:
  explicit EnvGuard(const std::map<std::string, std::string>& values) {
    for (const auto& [k, v] : values) {
      const char* old = std::getenv(k.c_str());
      saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
      setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~EnvGuard() {
    for (const auto& [k, v] : saved_) {
      if (v)
        setenv(k.c_str(), v->c_str(), 1);
      else
        unsetenv(k.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Stops a backend (SIGSTOP) for the scope: a frozen server. It must be idle (it then holds no
// shared lock that other sessions could wait for).
class FrozenBackend {
 public:
  FrozenBackend(Session& sql, int pid) : pid_(pid) {
    EXPECT_TRUE(eventually(
        [&] {
          return sql.scalar("SELECT state FROM pg_stat_activity WHERE pid = " +
                            std::to_string(pid)) == "idle";
        },
        seconds(5)));
    kill(pid_, SIGSTOP);
  }
  ~FrozenBackend() { thaw(); }
  void thaw() {
    if (pid_ > 0) kill(pid_, SIGCONT);
    pid_ = -1;
  }

 private:
  int pid_;
};

std::string wait_event_of(Session& sql, int pid) {
  return sql
      .scalar("SELECT wait_event_type FROM pg_stat_activity WHERE pid = " + std::to_string(pid))
      .value_or("");
}

// Every call but close() fails at once with RetryError("interrupted: ...").
void expect_every_call_refused(OutboxSource& source) {
  std::vector<std::pair<const char*, std::function<void()>>> calls{
      {"poll", [&] { source.poll(10, milliseconds(5000)); }},
      {"ack", [&] { source.ack(1); }},
      {"list_topics", [&] { source.list_topics(); }},
      {"open", [&] { source.open(); }}};
  for (const auto& [name, call] : calls) {
    auto start = Clock::now();
    Outcome o = outcome_of(call);
    EXPECT_LT(since(start), milliseconds(200)) << name;
    EXPECT_TRUE(o.retry) << name << ": " << o.message;
    EXPECT_EQ(o.message.rfind("interrupted: ", 0), 0u) << name << ": " << o.message;
  }
  source.close();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// interrupt()
// ---------------------------------------------------------------------------------------------

TEST(Interrupt, APollBlockedBehindAnExclusiveLock_EndsWithinASecond_TheQueryIsCancelled) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1)");
  // No timeout of the server's own: only the interrupt can end the wait.
  auto source = make_source(db.url(), {{"lock_timeout", "0"}, {"statement_timeout", "0"}});
  source->open();
  int pid = source->backend_pid();
  Session locker(db.url());
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE pg2kafka.event_batches IN ACCESS EXCLUSIVE MODE");
  BackgroundPoll poll(*source, milliseconds(60000));
  ASSERT_TRUE(eventually([&] { return wait_event_of(db.sql(), pid) == "Lock"; }, seconds(10)));
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_FALSE(poll.done());
  milliseconds took = poll.interrupt_and_join();
  EXPECT_LT(took, milliseconds(1000));
  EXPECT_TRUE(poll.outcome().retry) << poll.outcome().message;
  EXPECT_EQ(poll.outcome().message.rfind("interrupted: ", 0), 0u) << poll.outcome().message;
  EXPECT_NE(poll.outcome().message.find("query is cancelled"), std::string::npos)
      << poll.outcome().message;
  // The server stopped waiting too (the cancel request reached it): the session is gone, and
  // with it the drain lock.
  EXPECT_TRUE(eventually(
      [&] {
        return db.sql().value("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                              std::to_string(pid)) == "0";
      },
      seconds(5)));
  expect_every_call_refused(*source);
  locker.exec("COMMIT");
  EXPECT_EQ(queued_events(db.sql()), "1");  // nothing was taken from the queue
}

TEST(Interrupt, TheIdleWaitForNotifications_EndsAtOnce) {
  TestDatabase db;
  tracked_table(db.sql());
  auto source = make_source(
      db.url(), {{"notify", "true"}, {"poll_interval", "600000"}, {"min_poll_interval", "600000"}});
  source->open();
  BackgroundPoll poll(*source, milliseconds(60000));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(poll.done());
  milliseconds took = poll.interrupt_and_join();
  EXPECT_LT(took, milliseconds(1000));
  EXPECT_TRUE(poll.outcome().retry) << poll.outcome().message;
  EXPECT_NE(poll.outcome().message.find("interrupted: stopped waiting for notifications"),
            std::string::npos)
      << poll.outcome().message;
  expect_every_call_refused(*source);
}

TEST(Interrupt, TheSleepBetweenLooksWithoutNotify_AndAStandbysWait_EndAtOnce) {
  TestDatabase db;
  tracked_table(db.sql());
  std::map<std::string, std::string> options{
      {"notify", "false"}, {"poll_interval", "600000"}, {"min_poll_interval", "600000"}};
  auto active = make_source(db.url(), options);
  auto standby = make_source(db.url(), options);
  active->open();
  standby->open();
  ASSERT_TRUE(active->active());
  ASSERT_FALSE(standby->active());
  for (OutboxSource* source : {standby.get(), active.get()}) {
    BackgroundPoll poll(*source, milliseconds(60000));
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_FALSE(poll.done());
    milliseconds took = poll.interrupt_and_join();
    EXPECT_LT(took, milliseconds(1000));
    EXPECT_TRUE(poll.outcome().retry) << poll.outcome().message;
    EXPECT_EQ(poll.outcome().message.rfind("interrupted: stopped waiting for the next", 0), 0u)
        << poll.outcome().message;
    expect_every_call_refused(*source);
  }
}

TEST(Interrupt, APollWaitingForAFrozenServer_EndsWithinASecond) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1)");
  auto source = make_source(db.url(), {{"statement_timeout", "0"}});
  source->open();
  int pid = source->backend_pid();
  FrozenBackend frozen(db.sql(), pid);
  BackgroundPoll poll(*source, milliseconds(60000));
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_FALSE(poll.done());  // the server never answers
  milliseconds took = poll.interrupt_and_join();
  EXPECT_LT(took, milliseconds(1000));
  EXPECT_TRUE(poll.outcome().retry) << poll.outcome().message;
  EXPECT_EQ(poll.outcome().message.rfind("interrupted: ", 0), 0u) << poll.outcome().message;
  frozen.thaw();
  // Once it runs again the backend sees the cancel request and its closed connection.
  EXPECT_TRUE(eventually(
      [&] {
        return db.sql().value("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                              std::to_string(pid)) == "0";
      },
      seconds(10)));
  expect_every_call_refused(*source);
  EXPECT_EQ(queued_events(db.sql()), "1");
}

TEST(Interrupt, BeforeOpen_EveryCallButCloseIsRefusedAtOnce) {
  TestDatabase db;
  auto source = make_source(db.url());
  source->interrupt();
  source->interrupt();  // twice is fine
  expect_every_call_refused(*source);
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db.name() +
                           "' AND application_name = 'pg2kafka-test'"),
            "0");  // it never connected
}

// ---------------------------------------------------------------------------------------------
// lock_timeout and statement_timeout
// ---------------------------------------------------------------------------------------------

TEST(Timeouts, LockTimeoutEndsCallsBlockedByALock_AsTransient_AndNothingIsLost) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 3);
  auto source = make_source(db.url(), {{"lock_timeout", "300"}});
  source->open();
  auto first = poll_until(*source, 3, /*ack=*/false);
  ASSERT_EQ(keys_of(first), (std::set<std::string>{"k1", "k2", "k3"}));

  Session locker(db.url());
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE pg2kafka.event_batches IN ACCESS EXCLUSIVE MODE");
  auto start = Clock::now();
  Outcome ack = outcome_of([&] { source->ack(first.back().position); });
  EXPECT_LT(since(start), milliseconds(3000));
  EXPECT_TRUE(ack.retry) << ack.message;
  EXPECT_NE(ack.message.find("lock timeout"), std::string::npos) << ack.message;
  EXPECT_NE(ack.message.find("lock_timeout is 300 ms"), std::string::npos) << ack.message;
  start = Clock::now();
  Outcome poll = outcome_of([&] { source->poll(100, milliseconds(5000)); });
  EXPECT_LT(since(start), milliseconds(3000));
  EXPECT_TRUE(poll.retry) << poll.message;
  EXPECT_NE(poll.message.find("lock timeout"), std::string::npos) << poll.message;
  locker.exec("COMMIT");

  // The acknowledgement goes through when retried; events written meanwhile all arrive.
  source->ack(first.back().position);
  EXPECT_EQ(queued_events(db.sql()), "0");
  insert_one_by_one(db.sql(), 4, 6);
  auto rest = drain(*source);
  EXPECT_EQ(keys_of(rest), (std::set<std::string>{"k4", "k5", "k6"}));
  EXPECT_EQ(rest.size(), 3u);
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Timeouts, StatementTimeoutEndsAPollBlockedByALock_AsTransient_AndNothingIsLost) {
  TestDatabase db;
  tracked_table(db.sql());
  insert_one_by_one(db.sql(), 1, 2);
  auto source = make_source(db.url(), {{"lock_timeout", "0"}, {"statement_timeout", "1000"}});
  source->open();
  Session locker(db.url());
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE pg2kafka.event_batches IN ACCESS EXCLUSIVE MODE");
  auto start = Clock::now();
  Outcome poll = outcome_of([&] { source->poll(100, milliseconds(5000)); });
  EXPECT_GE(since(start), milliseconds(900));
  EXPECT_LT(since(start), milliseconds(4000));
  EXPECT_TRUE(poll.retry) << poll.message;
  EXPECT_NE(poll.message.find("statement timeout"), std::string::npos) << poll.message;
  EXPECT_NE(poll.message.find("statement_timeout is 1000 ms"), std::string::npos) << poll.message;
  locker.exec("COMMIT");
  auto events = drain(*source);
  EXPECT_EQ(keys_of(events), (std::set<std::string>{"k1", "k2"}));
  EXPECT_EQ(queued_events(db.sql()), "0");
}

TEST(Timeouts, AServerThatStopsAnswering_IsGivenUpAfterStatementTimeoutAndAGrace_ThenReconnected) {
  TestDatabase db;
  tracked_table(db.sql());
  db.sql().exec("INSERT INTO t VALUES ('a', 1)");
  LogSink logs;
  auto source = make_source(db.url(), {{"statement_timeout", "1000"}}, &logs);
  source->open();
  int pid = source->backend_pid();
  {
    FrozenBackend frozen(db.sql(), pid);
    auto start = Clock::now();
    Outcome poll = outcome_of([&] { source->poll(100, milliseconds(30000)); });
    // statement_timeout (1 s) plus as much again.
    EXPECT_GE(since(start), milliseconds(1900));
    EXPECT_LT(since(start), milliseconds(5000));
    EXPECT_TRUE(poll.retry) << poll.message;
    EXPECT_NE(poll.message.find("did not answer within 2000 ms"), std::string::npos)
        << poll.message;
    EXPECT_NE(poll.message.find("reconnecting"), std::string::npos) << poll.message;
  }
  auto events = poll_until(*source, 1);
  EXPECT_EQ(keys_of(events), (std::set<std::string>{"a"}));
  EXPECT_NE(source->backend_pid(), pid);
}

TEST(Timeouts, AreOptionsWithBounds) {
  TestDatabase db;
  EXPECT_NO_THROW(make_source(db.url(), {{"lock_timeout", "0"}, {"statement_timeout", "0"}}));
  EXPECT_NO_THROW(
      make_source(db.url(), {{"lock_timeout", "86400000"}, {"statement_timeout", "1000"}}));
  try {
    make_source(db.url(), {{"statement_timeout", "500"}, {"lock_timeout", "86400001"}});
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 2u) << e.what();
    EXPECT_EQ(e.problems()[0].option, "lock_timeout");
    EXPECT_EQ(e.problems()[1].option, "statement_timeout");
    EXPECT_NE(e.problems()[1].message.find("at least 1s"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Connection strings
// ---------------------------------------------------------------------------------------------

TEST(Connection, AnUnresolvableHostIsRetried_NamingTheHost) {
  auto source = make_source(
      "postgresql://someone:Secr3tPassw0rd@nonexistent.invalid:5432/db?connect_timeout=2");
  Outcome open = outcome_of([&] { source->open(); });
  EXPECT_TRUE(open.retry) << open.message;
  EXPECT_NE(open.message.find("nonexistent.invalid:5432"), std::string::npos) << open.message;
  EXPECT_NE(open.message.find("could not translate host name"), std::string::npos) << open.message;
  EXPECT_EQ(open.message.find("Secr3tPassw0rd"), std::string::npos) << open.message;
}

TEST(Connection, AServiceThatIsNotDefined_StopsTheSource_InsteadOfBeingRetriedForever) {
  EnvGuard env(
      std::map<std::string, std::string>{{"PGSERVICEFILE", "/nonexistent/pg_service.conf"}});
  auto source = make_source("service=p2k_nowhere dbname=x");
  EXPECT_NE(source->config().connection.target.find(
                "service \"p2k_nowhere\" of the connection service file may change these"),
            std::string::npos)
      << source->config().connection.target;
  Outcome open = outcome_of([&] { source->open(); });
  EXPECT_TRUE(open.config) << open.message;
  EXPECT_NE(open.message.find("service file \"/nonexistent/pg_service.conf\" not found"),
            std::string::npos)
      << open.message;
}

TEST(Connection, AnEmptyConnectionIsAConfigErrorNamingTheOptionAndTheFix) {
  for (const std::string value : {"", "   ", " \t\n"}) {
    try {
      make_source(value);
      FAIL() << "accepted '" << value << "'";
    } catch (const ConfigError& e) {
      ASSERT_EQ(e.problems().size(), 1u);
      EXPECT_EQ(e.problems()[0].option, "connection");
      EXPECT_NE(e.problems()[0].message.find("is empty"), std::string::npos) << e.what();
      EXPECT_NE(e.problems()[0].message.find("postgresql://"), std::string::npos) << e.what();
    }
  }
}

TEST(Connection, TheTargetIsWhatLibpqUses_PGHOSTAndPGPORTFromTheEnvironmentIncluded) {
  TestDatabase db;
  LogSink logs;
  {
    EnvGuard env({{"PGHOST", "127.0.0.1"},
                  {"PGPORT", port()},
                  {"PGUSER", "postgres"},
                  {"PGPASSWORD", "EnvS3cretPw"}});
    auto source = make_source("dbname=" + db.name(), {}, &logs);
    const std::string& target = source->config().connection.target;
    EXPECT_EQ(target, "127.0.0.1:" + port() + ", database " + db.name() +
                          ", user postgres (from the environment: PGHOST, PGPORT, PGUSER)");
    source->open();
    EXPECT_NE(logs.all().find("connected to PostgreSQL at 127.0.0.1:" + port() + ", database " +
                              db.name() + ", user postgres"),
              std::string::npos)
        << logs.all();
    source->close();
  }
  {
    EnvGuard env({{"PGHOST", "127.0.0.1"}, {"PGPORT", "1"}, {"PGPASSWORD", "EnvS3cretPw"}});
    auto source = make_source("dbname=" + db.name() + " connect_timeout=2", {}, &logs);
    Outcome open = outcome_of([&] { source->open(); });
    EXPECT_TRUE(open.retry) << open.message;
    EXPECT_NE(open.message.find("at 127.0.0.1:1, database " + db.name()), std::string::npos)
        << open.message;
    EXPECT_NE(open.message.find("from the environment: PGHOST, PGPORT"), std::string::npos)
        << open.message;
  }
  {
    // The string wins over the environment; a database left out is the user's name.
    EnvGuard env({{"PGHOST", "/nonexistent-socket-dir"}, {"PGDATABASE", "envdb"}});
    auto source = make_source("host=127.0.0.1 port=" + port() + " user=someone");
    EXPECT_EQ(source->config().connection.target,
              "127.0.0.1:" + port() +
                  ", database envdb, user someone (from the environment: "
                  "PGDATABASE)");
  }
  {
    auto source = make_source("host=127.0.0.1 user=someone password=Pw1 dbname=x");
    EXPECT_EQ(source->config().connection.target, "127.0.0.1:5432, database x, user someone");
  }
  EXPECT_EQ(logs.all().find("EnvS3cretPw"), std::string::npos) << logs.all();
}

TEST(Connection, ApplicationNameIsAtMost63BytesOfPrintableAscii) {
  TestDatabase db;
  auto refused = [&](const std::map<std::string, std::string>& overrides,
                     const std::string& url) -> ConfigError::Problems {
    try {
      make_source(url, overrides);
    } catch (const ConfigError& e) {
      EXPECT_LT(std::string(e.what()).size(), 1000u);  // the value is not echoed
      return e.problems();
    }
    ADD_FAILURE() << "accepted";
    return {};
  };
  auto problems = refused({{"application_name", std::string(64, 'a')}}, db.url());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].option, "application_name");
  EXPECT_NE(problems[0].message.find("64 bytes"), std::string::npos) << problems[0].message;
  EXPECT_NE(problems[0].message.find("at most 63"), std::string::npos) << problems[0].message;
  problems = refused({{"application_name", std::string(50 << 20, 'x')}}, db.url());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].option, "application_name");
  for (const std::string bad : {"na\xc3\xafve", "tab\there", "bell\x07"}) {
    problems = refused({{"application_name", bad}}, db.url());
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].message.find("printable ASCII"), std::string::npos)
        << problems[0].message;
  }
  // One set in the connection string is held to the same rule.
  problems = refused({}, db.url() + "?application_name=" + std::string(64, 'b'));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].option, "connection");
  EXPECT_NE(problems[0].message.find("its application_name is 64 bytes"), std::string::npos)
      << problems[0].message;

  // 63 bytes of printable ASCII arrive whole.
  std::string name = "pg2kafka ~ " + std::string(52, 'z');
  ASSERT_EQ(name.size(), 63u);
  auto source = make_source(db.url(), {{"application_name", name}});
  source->open();
  EXPECT_EQ(db.sql().value("SELECT application_name FROM pg_stat_activity WHERE pid = " +
                           std::to_string(source->backend_pid())),
            name);
}

namespace {

// A key=value string whose startup packet (as pg_test_support's Session sends it: user and
// database only; as the source sends it: plus application_name and client_encoding) is `bytes`
// long, padded with a custom setting in `options`.
std::string padded_conninfo(const std::string& database, size_t bytes, bool as_source) {
  size_t fixed = 4 + 1 + (5 + 8 + 1) + (9 + database.size() + 1) + (8 + 1);  // ... options=
  if (as_source) fixed += (17 + 13 + 1) + (16 + 4 + 1);                      // pg2kafka-test, UTF8
  std::string prefix = "-c p2k.pad=";
  std::string options = prefix + std::string(bytes - fixed - prefix.size(), 'x');
  return "host=127.0.0.1 port=" + port() + " user=postgres dbname=" + database + " options='" +
         options + "'";
}

}  // namespace

TEST(Connection, AStartupPacketOverTheServersLimit_IsAConfigError_AtTheServersExactBound) {
  TestDatabase db;
  // The server's limit, seen with a plain libpq connection: 10000 bytes pass, 10001 do not.
  EXPECT_NO_THROW(Session(padded_conninfo(db.name(), 10000, false)));
  EXPECT_THROW(Session(padded_conninfo(db.name(), 10001, false)), std::runtime_error);
  // The source refuses what the server would refuse, at create, and connects with the rest.
  auto source = make_source(padded_conninfo(db.name(), 10000, true));
  source->open();
  source->close();
  try {
    make_source(padded_conninfo(db.name(), 10001, true));
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems()[0].option, "connection");
    EXPECT_NE(std::string(e.what()).find("takes 10001 bytes; PostgreSQL refuses more than 10000"),
              std::string::npos)
        << e.what();
  }
}

TEST(Connection, ValuesLibpqRefusesOnlyWhenConnecting_AreRefusedAtCreate_AsLibpqWould) {
  const std::string base = "host=127.0.0.1 port=1 dbname=x user=y password=Secr3tPw ";
  const std::vector<std::string> refused{"sslmode=bogus",
                                         "sslmode=REQUIRE",
                                         "gssencmode=always",
                                         "channel_binding=maybe",
                                         "target_session_attrs=primary-ish",
                                         "ssl_min_protocol_version=SSLv3",
                                         "ssl_min_protocol_version=TLSv1.3 "
                                         "ssl_max_protocol_version=tlsv1.2",
                                         "ssl_max_protocol_version=TLSv1.1",  // min: TLSv1.2
                                         "port=abc",
                                         "port=0",
                                         "port=70000",
                                         "host=127.0.0.1,127.0.0.1,127.0.0.1 port=1,2",
                                         "hostaddr=127.0.0.1,127.0.0.2",
                                         "hostaddr=db.example.com",
                                         "connect_timeout=abc",
                                         "connect_timeout=99999999999",
                                         "keepalives=yes",
                                         "tcp_user_timeout=1s"};
  const std::vector<std::string> accepted{"sslmode=disable",
                                          "ssl_min_protocol_version=tlsv1.2",
                                          "ssl_min_protocol_version=TLSv1.2 "
                                          "ssl_max_protocol_version=TLSv1.2",
                                          "target_session_attrs=prefer-standby",
                                          "port=' 1 '",
                                          "host=127.0.0.1,127.0.0.1 port=1,",
                                          "host=127.0.0.1,127.0.0.1 port=1",
                                          "hostaddr=127.0.0.1",
                                          "connect_timeout=' 3 '",
                                          "keepalives=0"};
  // libpq itself: the first refuses before connecting, the second gets as far as the closed port.
  auto libpq_says = [](const std::string& conninfo) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    return m;
  };
  for (const std::string& s : refused) {
    std::string m = libpq_says(base + s);
    EXPECT_EQ(m.find("Connection refused"), std::string::npos) << s << ": libpq said " << m;
    try {
      make_source(base + s);
      ADD_FAILURE() << "accepted " << s;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.problems()[0].option, "connection") << s;
      EXPECT_EQ(std::string(e.what()).find("Secr3tPw"), std::string::npos) << e.what();
    }
  }
  for (const std::string& s : accepted) {
    std::string m = libpq_says(base + s);
    EXPECT_NE(m.find("Connection refused"), std::string::npos) << s << ": libpq said " << m;
    EXPECT_NO_THROW(make_source(base + s)) << s;
  }
  // A connection attempt cannot be interrupted, so it must end by itself.
  for (const std::string s : {"connect_timeout=0", "connect_timeout=-1"}) {
    try {
      make_source(base + s);
      ADD_FAILURE() << "accepted " << s;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("waits forever"), std::string::npos) << e.what();
    }
  }
  // From the environment too, named as such; a value in the string wins over it.
  EnvGuard env({{"PGSSLMODE", "bogus"}, {"PGCONNECT_TIMEOUT", "soon"}});
  try {
    make_source("host=127.0.0.1 dbname=x");
    FAIL() << "accepted PGSSLMODE=bogus";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("PGSSLMODE (from the environment) is \"bogus\""),
              std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(make_source("host=127.0.0.1 dbname=x sslmode=require connect_timeout=5"));
}

TEST(Config, ATopicNamespaceTooLongForAnyKafkaTopic_IsRefused) {
  std::string url = server_url() + "/x";
  EXPECT_NO_THROW(make_source(url, {{"topic_namespace", std::string(236, 'n')}}));
  EXPECT_EQ(pg2kafka::pg_outbox::topic_name(std::string(236, 'n'), "d", "public", "t").size(),
            249u);
  try {
    make_source(url, {{"topic_namespace", std::string(237, 'n')}});
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems()[0].option, "topic_namespace");
    EXPECT_NE(std::string(e.what()).find("use at most 236"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// retention
// ---------------------------------------------------------------------------------------------

TEST(Retention, IsBounded_AndThePurgeWorksAtTheBound) {
  TestDatabase db;
  tracked_table(db.sql());
  try {
    make_source(db.url(), {{"retention", std::to_string(99999999999LL * 3600 * 1000)}});
    FAIL() << "accepted 99999999999h";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.problems()[0].option, "retention");
    EXPECT_NE(std::string(e.what()).find("36500 days"), std::string::npos) << e.what();
  }
  db.sql().exec(
      "INSERT INTO pg2kafka.acknowledged_batches (id, uuid, table_name, statement, events, "
      "created_at, table_schema, txid, acked_at) VALUES (-1, gen_random_uuid(), 't', 'TRUNCATE', "
      "1, now(), 'public', '1', '1900-01-01')");
  db.sql().exec("INSERT INTO t VALUES ('a', 1)");
  auto source =
      make_source(db.url(), {{"acknowledged", "keep"},
                             {"retention", std::to_string(pg2kafka::pg_outbox::kMaxRetentionMs)}});
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 1u);
  // Older than 100 years: purged; the one just delivered: kept.
  EXPECT_EQ(db.sql().scalar("SELECT string_agg(id::text, ',') FROM pg2kafka.acknowledged_batches "
                            "WHERE id < 0"),
            std::nullopt);
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.acknowledged_batches WHERE id > 0"), "1");
}
