// A thin RAII wrapper around one libpq connection, used by the pg-outbox source.
//
// It only adds what the source needs on top of libpq: results that free themselves, errors as
// exceptions that say whether the connection is gone, prepared statements, waiting for a
// notification, messages from which the connection's password has been removed, and waits that
// another thread can cut short (Interrupter). It is not thread-safe: one PgConnection belongs to
// one thread at a time (the pipeline thread); only its Interrupter may be used from others.
#pragma once

#include <libpq-fe.h>

#include "conn_info.hpp"
#include "interrupter.hpp"

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

  // Runs one statement with parameters of the given types (OIDs), unprepared (the unnamed
  // statement: nothing stays behind on the server). Throws PgError or PgInterrupted.
  PgResult exec_params(const std::string& sql, const std::vector<Oid>& types,
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
