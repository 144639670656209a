#include "pg_connection.hpp"

#include <dlfcn.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <system_error>
#include <thread>

namespace pg2kafka::pg_outbox {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

void forward_notice(void* arg, const char* message) {
  auto* target = static_cast<std::pair<NoticeHandler, void*>*>(arg);
  if (target->first) target->first(target->second, message);
}

}  // namespace

bool PgError::transient() const {
  if (connection_lost_) return true;
  const std::string& s = sqlstate_;
  // 55P03 lock_not_available (lock_timeout), 57014 query_canceled (statement_timeout,
  // pg_cancel_backend, an interrupt).
  return s.rfind("08", 0) == 0 || s.rfind("53", 0) == 0 || s == "57P01" || s == "57P02" ||
         s == "57P03" || s == "40001" || s == "40P01" || s == "55P03" || s == "57014";
}

// ---------------------------------------------------------------------------------------------
// Results and the connection
// ---------------------------------------------------------------------------------------------

int64_t PgResult::int64(int row, int col) const {
  std::string_view t = text(row, col);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size())
    throw std::runtime_error("unexpected non-integer value from PostgreSQL: " + std::string(t));
  return v;
}

int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(result_.get());
  return (n && *n) ? std::strtoll(n, nullptr, 10) : 0;
}

namespace {

constexpr const char* kInterruptedWhileConnecting =
    "interrupted: the connection attempt was given up";

// What interrupt() cancels while a query runs: registered for the scope of one query.
class QueryScope {
 public:
  QueryScope(Interrupter* interrupter, std::shared_ptr<PGcancel> cancel)
      : interrupter_(interrupter) {
    if (interrupter_ && !interrupter_->query_started(std::move(cancel)))
      throw PgInterrupted("interrupted before the query was sent");
  }
  ~QueryScope() {
    if (interrupter_) interrupter_->query_ended();
  }
  QueryScope(const QueryScope&) = delete;
  QueryScope& operator=(const QueryScope&) = delete;

 private:
  Interrupter* interrupter_;
};

}  // namespace

PgConnection::PgConnection(const ConnInfo& info, const std::string& application_name,
                           NoticeHandler notice_handler, void* notice_ctx, Interrupter* interrupter)
    : secrets_(info.secrets), interrupter_(interrupter) {
  if (interrupter_ && interrupter_->interrupted()) throw PgInterrupted(kInterruptedWhileConnecting);
  // Keywords are applied in order and a later one wins: what precedes "dbname" (the expanded
  // connection string) is a default the user's string can override; what follows is forced.
  std::vector<const char*> keys{"application_name"};
  std::vector<const char*> values{application_name.c_str()};
  if (!info.has_connect_timeout) {
    keys.push_back("connect_timeout");
    values.push_back("10");
  }
  keys.push_back("dbname");
  values.push_back(info.conninfo.c_str());
  keys.push_back("client_encoding");  // the source emits UTF-8 JSON
  values.push_back("UTF8");
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (!conn_) throw PgConnectError("out of memory while connecting to PostgreSQL", false);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string reason = redact(trim_newlines(PQerrorMessage(conn_)), secrets_);
    PQfinish(conn_);
    conn_ = nullptr;
    if (interrupter_ && interrupter_->interrupted())
      throw PgInterrupted(kInterruptedWhileConnecting);
    // An unresolvable host name is not among these: DNS can fail for a while, like any network.
    bool permanent = contains(reason, "password authentication failed") ||
                     contains(reason, "no password supplied") ||
                     contains(reason, "authentication failed") ||
                     contains(reason, "no pg_hba.conf entry") ||
                     (contains(reason, "does not exist") &&
                      (contains(reason, "database \"") || contains(reason, "role \""))) ||
                     contains(reason, "invalid ") || contains(reason, "service file") ||
                     contains(reason, "definition of service");
    throw PgConnectError("cannot connect to PostgreSQL at " + info.target + ": " + reason,
                         permanent);
  }
  if (interrupter_ && interrupter_->interrupted()) {
    PQfinish(conn_);
    conn_ = nullptr;
    throw PgInterrupted(kInterruptedWhileConnecting);
  }
  if (notice_handler) {
    notice_target_ = {notice_handler, notice_ctx};
    PQsetNoticeProcessor(conn_, &forward_notice, &notice_target_);
  } else {
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  // Queries are sent and awaited without blocking, so that the waits can watch the interrupter.
  PQsetnonblocking(conn_, 1);
  cancel_ = std::shared_ptr<PGcancel>(PQgetCancel(conn_), [](PGcancel* c) {
    if (c) PQfreeCancel(c);
  });
}

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

std::string PgConnection::target() const {
  auto text = [](const char* s) { return std::string_view(s ? s : ""); };
  return target_text(text(PQhost(conn_)), text(PQport(conn_)), text(PQdb(conn_)),
                     text(PQuser(conn_)));
}

PgError PgConnection::error_from(const PGresult* result) const {
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  if (message.empty()) message = "unknown error";
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return PgError(redact(trim_newlines(message), secrets_), state ? state : "",
                 PQstatus(conn_) != CONNECTION_OK);
}

PgResult PgConnection::check(PGresult* raw) {
  PgResult result(raw);
  ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw error_from(raw);
  return result;
}

short PgConnection::wait_socket(short events, std::optional<Clock::time_point> deadline) {
  int sock = PQsocket(conn_);
  if (sock < 0) throw error_from(nullptr);
  while (true) {
    pollfd fds[2] = {{sock, events, 0}, {interrupter_ ? interrupter_->fd() : -1, POLLIN, 0}};
    int timeout = -1;
    if (deadline) {
      auto left = std::chrono::ceil<milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) return 0;
      timeout = static_cast<int>(std::min<int64_t>(left, INT_MAX));
    }
    int ready = ::poll(fds, 2, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw PgError(std::string("waiting for PostgreSQL failed: ") + std::strerror(errno), "",
                    true);
    }
    if (fds[1].revents) throw PgInterrupted("interrupted while waiting for PostgreSQL");
    if (ready > 0 && fds[0].revents) return fds[0].revents;
  }
}

PgResult PgConnection::finish(int sent) {
  if (!sent) throw error_from(nullptr);
  std::optional<Clock::time_point> deadline;
  if (reply_timeout_.count() > 0) deadline = Clock::now() + reply_timeout_;
  auto no_answer = [&] {
    abandoned_ = true;
    return PgError("PostgreSQL did not answer within " + std::to_string(reply_timeout_.count()) +
                       " ms (statement_timeout should have ended the query before): the server "
                       "or the network is stuck",
                   "", true);
  };
  try {
    // Send the whole query; the server's output is read meanwhile, as it may not read before
    // it can write.
    while (true) {
      int flushed = PQflush(conn_);
      if (flushed == 0) break;
      if (flushed < 0) throw error_from(nullptr);
      short ready = wait_socket(POLLIN | POLLOUT, deadline);
      if (ready == 0) throw no_answer();
      if ((ready & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn_))
        throw error_from(nullptr);
    }
    // Every result, keeping the last one (as PQexec does: after an error the server runs none of
    // the remaining statements, so an error is the last).
    std::unique_ptr<PGresult, decltype(&PQclear)> last(nullptr, &PQclear);
    while (true) {
      while (!PQisBusy(conn_)) {
        PGresult* next = PQgetResult(conn_);
        if (!next) return check(last.release());
        last.reset(next);
      }
      short ready = wait_socket(POLLIN, deadline);
      if (ready == 0) throw no_answer();
      if (!PQconsumeInput(conn_)) throw error_from(nullptr);
    }
  } catch (const PgInterrupted&) {
    abandoned_ = true;  // the query may still run: this connection cannot take another
    throw;
  }
}

PgResult PgConnection::exec(const std::string& sql) {
  QueryScope scope(interrupter_, cancel_);
  return finish(PQsendQuery(conn_, sql.c_str()));
}

void PgConnection::prepare(const std::string& name, const std::string& sql,
                           const std::vector<Oid>& types) {
  QueryScope scope(interrupter_, cancel_);
  finish(PQsendPrepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()),
                       types.data()));
}

PgResult PgConnection::exec_prepared(const std::string& name,
                                     const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  QueryScope scope(interrupter_, cancel_);
  return finish(PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()),
                                    values.data(), nullptr, nullptr, 0));
}

PgResult PgConnection::exec_params(const std::string& sql, const std::vector<Oid>& types,
                                   const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  QueryScope scope(interrupter_, cancel_);
  return finish(PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                                  types.empty() ? nullptr : types.data(), values.data(), nullptr,
                                  nullptr, 0));
}

bool PgConnection::wait_for_notification(milliseconds timeout) {
  auto drain = [this] {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (interrupter_ && interrupter_->interrupted())
    throw PgInterrupted("interrupted while waiting for notifications");
  if (!PQconsumeInput(conn_)) throw error_from(nullptr);
  if (drain()) return true;
  short ready = wait_socket(POLLIN, Clock::now() + std::max(timeout, milliseconds(0)));
  if (ready == 0) return false;
  if (!PQconsumeInput(conn_)) throw error_from(nullptr);
  return drain();
}

}  // namespace pg2kafka::pg_outbox
