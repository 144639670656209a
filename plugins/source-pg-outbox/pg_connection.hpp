// A thin RAII wrapper around one libpq connection, used by the pg-outbox source.
//
// It only adds what the source needs on top of libpq: results that free themselves, errors as
// exceptions that say whether the connection is gone, prepared statements, waiting for a
// notification, and messages from which the connection's password has been removed. It is not
// thread-safe: one PgConnection belongs to one thread at a time (the pipeline thread).
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
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
  // or starting, serialization failures, deadlocks, lack of resources).
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
  // True when retrying cannot help: authentication failed, the database or role does not exist.
  bool permanent() const { return permanent_; }

 private:
  bool permanent_;
};

// The parsed connection string: what the source needs to know without connecting.
struct ConnInfo {
  std::string conninfo;  // as the user gave it (URL or key=value); never print it
  std::string password;  // decoded password from the string, empty if none
  bool has_connect_timeout = false;
  // "host:port/dbname as user" for messages, with defaults shown as libpq would apply them.
  std::string target;

  // Parses `conninfo` with libpq's own parser. Throws std::invalid_argument with a message that
  // does not echo the string.
  static ConnInfo parse(const std::string& conninfo);
};

// Replaces every occurrence of `secret` in `text` with "***" (no-op for an empty secret).
std::string redact(std::string text, std::string_view secret);

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
  // Connects (blocking). `application_name` is used unless the connection string sets one.
  // Throws PgConnectError.
  PgConnection(const ConnInfo& info, const std::string& application_name,
               NoticeHandler notice_handler = nullptr, void* notice_ctx = nullptr);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements with the simple query protocol. Throws PgError.
  PgResult exec(const std::string& sql);
  // Prepares a named statement with explicit parameter types (OIDs; 0 = let the server infer).
  void prepare(const std::string& name, const std::string& sql, const std::vector<Oid>& types);
  // Runs a prepared statement; std::nullopt passes SQL NULL. Throws PgError.
  PgResult exec_prepared(const std::string& name,
                         const std::vector<std::optional<std::string>>& params);

  // Waits up to `timeout` for a notification on a LISTENed channel; returns true when at least
  // one arrived (all pending ones are consumed). Throws PgError when the connection broke.
  bool wait_for_notification(std::chrono::milliseconds timeout);

  bool broken() const { return PQstatus(conn_) != CONNECTION_OK; }
  // The backend's process id (for pg_terminate_backend in tests and for logs).
  int backend_pid() const { return PQbackendPID(conn_); }

 private:
  PgResult check(PGresult* result);
  PgError error_from(const PGresult* result) const;

  PGconn* conn_ = nullptr;
  std::string password_;
  std::pair<NoticeHandler, void*> notice_target_{nullptr, nullptr};
};

}  // namespace pg2kafka::pg_outbox
