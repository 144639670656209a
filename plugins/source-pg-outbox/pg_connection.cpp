#include "pg_connection.hpp"

#include <poll.h>

#include <charconv>
#include <cstring>
#include <memory>

namespace pg2kafka::pg_outbox {

namespace {

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

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
  return s.rfind("08", 0) == 0 || s.rfind("53", 0) == 0 || s == "57P01" || s == "57P02" ||
         s == "57P03" || s == "40001" || s == "40P01" || s == "55P03";
}

std::string redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

ConnInfo ConnInfo::parse(const std::string& conninfo) {
  char* errmsg = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &errmsg);
  if (!options) {
    // libpq's parse errors may quote a fragment of the string, which may be the password:
    // keep the message but hide every quoted fragment.
    std::string reason = errmsg ? trim_newlines(errmsg) : "out of memory";
    if (errmsg) PQfreemem(errmsg);
    std::string hidden;
    bool quoted = false;
    for (char c : reason) {
      if (c == '"') {
        hidden += quoted ? "***\"" : "\"";
        quoted = !quoted;
      } else if (!quoted) {
        hidden += c;
      }
    }
    throw std::invalid_argument(hidden);
  }
  ConnInfo info;
  info.conninfo = conninfo;
  std::string host, hostaddr, port, dbname, user;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (!o->val) continue;
    std::string_view k = o->keyword;
    if (k == "password") info.password = o->val;
    if (k == "connect_timeout") info.has_connect_timeout = true;
    if (k == "host") host = o->val;
    if (k == "hostaddr") hostaddr = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") dbname = o->val;
    if (k == "user") user = o->val;
  }
  PQconninfoFree(options);
  std::string where = !host.empty() ? host : !hostaddr.empty() ? hostaddr : "the local socket";
  info.target = where + ":" + (port.empty() ? "5432" : port);
  info.target += ", database " + (dbname.empty() ? std::string("(default)") : dbname);
  info.target += ", user " + (user.empty() ? std::string("(default)") : user);
  info.target = redact(info.target, info.password);
  return info;
}

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

PgConnection::PgConnection(const ConnInfo& info, const std::string& application_name,
                           NoticeHandler notice_handler, void* notice_ctx)
    : password_(info.password) {
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
    std::string reason = redact(trim_newlines(PQerrorMessage(conn_)), password_);
    PQfinish(conn_);
    conn_ = nullptr;
    bool permanent = contains(reason, "password authentication failed") ||
                     contains(reason, "no password supplied") ||
                     contains(reason, "authentication failed") ||
                     contains(reason, "no pg_hba.conf entry") ||
                     (contains(reason, "does not exist") &&
                      (contains(reason, "database \"") || contains(reason, "role \""))) ||
                     contains(reason, "invalid ") || contains(reason, "could not translate host");
    throw PgConnectError("cannot connect to PostgreSQL at " + info.target + ": " + reason,
                         permanent);
  }
  if (notice_handler) {
    notice_target_ = {notice_handler, notice_ctx};
    PQsetNoticeProcessor(conn_, &forward_notice, &notice_target_);
  } else {
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
}

PgConnection::~PgConnection() {
  if (conn_) PQfinish(conn_);
}

PgError PgConnection::error_from(const PGresult* result) const {
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  if (message.empty()) message = "unknown error";
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  return PgError(redact(trim_newlines(message), password_), state ? state : "",
                 PQstatus(conn_) != CONNECTION_OK);
}

PgResult PgConnection::check(PGresult* raw) {
  PgResult result(raw);
  ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw error_from(raw);
  return result;
}

PgResult PgConnection::exec(const std::string& sql) {
  return check(PQexec(conn_, sql.c_str()));
}

void PgConnection::prepare(const std::string& name, const std::string& sql,
                           const std::vector<Oid>& types) {
  check(PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data()));
}

PgResult PgConnection::exec_prepared(const std::string& name,
                                     const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return check(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                              nullptr, nullptr, 0));
}

bool PgConnection::wait_for_notification(std::chrono::milliseconds timeout) {
  auto drain = [this] {
    bool any = false;
    while (PGnotify* n = PQnotifies(conn_)) {
      any = true;
      PQfreemem(n);
    }
    return any;
  };
  if (!PQconsumeInput(conn_)) throw error_from(nullptr);
  if (drain()) return true;
  pollfd pfd{PQsocket(conn_), POLLIN, 0};
  if (pfd.fd < 0) throw error_from(nullptr);
  int ready = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, timeout.count())));
  if (ready <= 0) return false;
  if (!PQconsumeInput(conn_)) throw error_from(nullptr);
  return drain();
}

}  // namespace pg2kafka::pg_outbox
