// A thin RAII wrapper around one libpq connection, used by the pg-outbox source.
//
// It only adds what the source needs on top of libpq: results that free themselves, errors as
// exceptions that say whether the connection is gone, prepared statements, waiting for a
// notification, messages from which the connection's password has been removed, and waits that
// another thread can cut short (Interrupter). It is not thread-safe: one PgConnection belongs to
// one thread at a time (the pipeline thread); only its Interrupter may be used from others.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pg2kafka::pg_outbox {

// A failed query or connection attempt. The message never contains the connection's password.
class PgError : public std::runtime_error {
 public:
  PgError(const std::string& message, std::string sqlstate, bool connection_lost)
      : std::runtime_error(message),
        sqlstate_(std::move(sqlstate)),
        connection_lost_(connection_lost) {}
  // Five-character SQLSTATE, empty when the server sent none (e.g. the connection broke).
  const std::string& sqlstate() const { return sqlstate_; }
  // True when the connection is unusable afterwards and must be re-established.
  bool connection_lost() const { return connection_lost_; }
  // True for failures that can go away by themselves (connection trouble, server shutting down
  // or starting, serialization failures, deadlocks, lack of resources, lock_timeout and
  // statement_timeout, a cancelled query).
  bool transient() const;

 private:
  std::string sqlstate_;
  bool connection_lost_;
};

// Why a connection attempt failed.
class PgConnectError : public std::runtime_error {
 public:
  PgConnectError(const std::string& message, bool permanent)
      : std::runtime_error(message), permanent_(permanent) {}
  // True when retrying cannot help: authentication failed, the database or role does not exist,
  // a value libpq refuses, a connection service that is not defined.
  bool permanent() const { return permanent_; }

 private:
  bool permanent_;
};

// A wait that Interrupter::interrupt() cut short. When it interrupted a query, the connection is
// unusable (the query may run on until the cancel request reaches the server): drop it.
class PgInterrupted : public std::runtime_error {
 public:
  explicit PgInterrupted(const std::string& message) : std::runtime_error(message) {}
};

// A connection string that libpq would refuse, or that could never work (see ConnInfo::parse).
class ConnInfoError : public std::invalid_argument {
 public:
  explicit ConnInfoError(const std::string& message) : std::invalid_argument(message) {}
};

// The parsed connection string: what the source needs to know without connecting.
struct ConnInfo {
  std::string conninfo;  // as the user gave it (URL or key=value); never print it
  // Secrets to remove from every message: the password and PGPASSWORD's value.
  std::vector<std::string> secrets;
  // The string or the environment (PGCONNECT_TIMEOUT) sets connect_timeout.
  bool has_connect_timeout = false;
  // The application_name the string sets (it wins over the option), if any.
  std::optional<std::string> application_name;
  // "host:port, database D, user U" for messages, with libpq's defaults applied as libpq applies
  // them: the PG* environment variables (named at the end when they are used), then the built-in
  // defaults. A host left to libpq's default is "the local socket". Never holds a password.
  std::string target;
  // The end of `target` that says where values came from, e.g. " (from the environment: PGHOST,
  // PGPORT)"; empty when the string gave everything.
  std::string origins;

  // Parses `conninfo` with libpq's own parser and checks, without any I/O, what libpq would
  // refuse only when connecting (sslmode and the other choices, whole numbers, port numbers, host
  // and port counts) and what the server would refuse (a startup packet over 10000 bytes), the
  // environment included. Throws ConnInfoError with a message that does not echo the string's
  // secrets. `application_name` is what the source asks for (empty: none).
  static ConnInfo parse(const std::string& conninfo, const std::string& application_name = {});
};

// The largest startup packet PostgreSQL accepts (MAX_STARTUP_PACKET_LENGTH), in bytes.
constexpr size_t kMaxStartupPacket = 10000;
// The longest name PostgreSQL keeps (NAMEDATALEN - 1): longer ones are cut.
constexpr size_t kMaxNameBytes = 63;

// Why `name` cannot be an application_name (too long, or a byte outside printable ASCII, which
// the server would turn into '?'), or "" when it can.
std::string application_name_problem(std::string_view name);

// Lets another thread stop what a PgConnection waits for: the query running (a cancel request is
// sent to the server), a notification, a sleep. Sticky: once interrupted, every later wait and
// query of the connections using it fails at once with PgInterrupted. interrupt() and
// interrupted() are thread-safe and never block; the rest belongs to the connection's thread.
class Interrupter {
 public:
  // Throws std::system_error when no eventfd can be had.
  Interrupter();
  // Waits up to 2 s for a cancel request still being sent (see interrupt()).
  ~Interrupter();
  Interrupter(const Interrupter&) = delete;
  Interrupter& operator=(const Interrupter&) = delete;

  // Wakes every wait, now and later, and has the query running (if any) cancelled. The cancel
  // request (PQcancel: a connection to the server) goes out on a thread of its own, so that this
  // returns at once even when the server does not answer.
  void interrupt() noexcept;
  bool interrupted() const noexcept { return interrupted_.load(std::memory_order_acquire); }
  // Readable once interrupted (and from then on), for poll(2).
  int fd() const noexcept { return fd_; }
  // Sleeps for `duration` or until interrupted; returns false when interrupted.
  bool sleep(std::chrono::milliseconds duration) const;

  // The connection's thread: `cancel` (of the connection about to run a query) is what
  // interrupt() cancels until query_ended(). Returns false, registering nothing, when interrupted.
  bool query_started(std::shared_ptr<PGcancel> cancel);
  void query_ended();

 private:
  struct CancelJob;
  std::atomic<bool> interrupted_{false};
  int fd_ = -1;
  std::mutex mutex_;
  std::shared_ptr<PGcancel> running_;  // the query's connection, between the two calls above
  std::shared_ptr<CancelJob> job_;     // the cancel request sent by interrupt(), if any
};

// Replaces every occurrence of `secret` in `text` with "***" (no-op for an empty secret).
std::string redact(std::string text, std::string_view secret);
std::string redact(std::string text, const std::vector<std::string>& secrets);

class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}
  int rows() const { return PQntuples(result_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string_view text(int row, int col) const {
    return {PQgetvalue(result_.get(), row, col),
            static_cast<size_t>(PQgetlength(result_.get(), row, col))};
  }
  std::optional<std::string> optional_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return std::string(text(row, col));
  }
  int64_t int64(int row, int col) const;
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  // Rows affected by an INSERT/UPDATE/DELETE.
  int64_t affected() const;

 private:
  std::unique_ptr<PGresult, decltype(&PQclear)> result_;
};

// Receives libpq notices and warnings (e.g. "relation already exists, skipping").
using NoticeHandler = void (*)(void* ctx, const char* message);

class PgConnection {
 public:
  // Connects (blocking: libpq's connect_timeout bounds it, per host address). `application_name`
  // is used unless the connection string sets one. Waits (queries, notifications) end early when
  // `interrupter` (optional; it must outlive the connection) is interrupted. Throws
  // PgConnectError, or PgInterrupted when interrupted before or while connecting.
  PgConnection(const ConnInfo& info, const std::string& application_name,
               NoticeHandler notice_handler = nullptr, void* notice_ctx = nullptr,
               Interrupter* interrupter = nullptr);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements with the simple query protocol. Throws PgError (PgInterrupted
  // when interrupted).
  PgResult exec(const std::string& sql);
  // Prepares a named statement with explicit parameter types (OIDs; 0 = let the server infer).
  void prepare(const std::string& name, const std::string& sql, const std::vector<Oid>& types);
  // Runs a prepared statement; std::nullopt passes SQL NULL. Throws PgError or PgInterrupted.
  PgResult exec_prepared(const std::string& name,
                         const std::vector<std::optional<std::string>>& params);

  // Waits up to `timeout` for a notification on a LISTENed channel; returns true when at least
  // one arrived (all pending ones are consumed). Throws PgError when the connection broke,
  // PgInterrupted when interrupted.
  bool wait_for_notification(std::chrono::milliseconds timeout);

  // The longest wait for the server's answer to a query (0: none, the default). When it runs
  // out, the query throws PgError with connection_lost() (the server did not answer: the
  // connection is given up).
  void set_reply_timeout(std::chrono::milliseconds timeout) { reply_timeout_ = timeout; }

  bool broken() const { return abandoned_ || PQstatus(conn_) != CONNECTION_OK; }
  // The backend's process id (for pg_terminate_backend in tests and for logs).
  int backend_pid() const { return PQbackendPID(conn_); }
  // Where libpq connected: "host:port, database D, user U" (the host is a socket directory for
  // a local socket).
  std::string target() const;

 private:
  PgResult check(PGresult* result);
  PgError error_from(const PGresult* result) const;
  // After a PQsend* call (`sent`: its result): flushes the query, waits for its results and
  // returns the last one, as PQexec does.
  PgResult finish(int sent);
  // Waits until the socket is ready for `events` and returns its revents, or 0 when `deadline`
  // passed first; throws PgInterrupted when interrupted.
  short wait_socket(short events, std::optional<std::chrono::steady_clock::time_point> deadline);

  PGconn* conn_ = nullptr;
  // A query was left running (interrupted, or no answer in time): the connection is unusable.
  bool abandoned_ = false;
  std::vector<std::string> secrets_;
  std::pair<NoticeHandler, void*> notice_target_{nullptr, nullptr};
  Interrupter* interrupter_ = nullptr;
  std::shared_ptr<PGcancel> cancel_;
  std::chrono::milliseconds reply_timeout_{0};
};

}  // namespace pg2kafka::pg_outbox
