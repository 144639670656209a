#include "pg_connection.hpp"

#include <pg2kafka/sdk/text.hpp>

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

// libpq's rule for its integer parameters: an int, with white space around it allowed.
bool libpq_int(const std::string& text, int& out) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(begin, &end, 10);
  if (end == begin || errno != 0 || v != static_cast<int>(v)) return false;
  while (*end != '\0' && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (*end != '\0') return false;
  out = static_cast<int>(v);
  return true;
}

std::vector<std::string> split_commas(const std::string& text) {
  return sdk::split(text, ',');
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// The name of the operating system user, libpq's default user name.
std::string os_user() {
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwuid_r(geteuid(), &pw, buffer.data(), buffer.size(), &found) == 0 && found &&
      found->pw_name)
    return found->pw_name;
  return "(the operating system user)";
}

// One connection parameter as libpq will use it: from the string, else from its environment
// variable, else libpq's built-in default.
struct Param {
  std::optional<std::string> value;
  const char* envvar = nullptr;  // set when the value comes from the environment
  bool is_explicit = false;      // set by the connection string
};

// Where a value came from, for messages: "sslmode" or "PGSSLMODE (from the environment)".
std::string origin(const std::string& keyword, const Param& p) {
  if (p.envvar) return std::string(p.envvar) + " (from the environment)";
  return keyword;
}

void check_choice(const std::string& keyword, const Param& p,
                  std::initializer_list<const char*> choices) {
  if (!p.value) return;
  std::string allowed;
  for (const char* c : choices) {
    if (*p.value == c) return;
    allowed += allowed.empty() ? "" : ", ";
    allowed += c;
  }
  throw ConnInfoError(origin(keyword, p) + " is \"" + *p.value + "\": libpq takes one of " +
                      allowed);
}

void check_int(const std::string& keyword, const Param& p) {
  int ignored = 0;
  if (p.value && !libpq_int(*p.value, ignored))
    throw ConnInfoError(origin(keyword, p) + " is \"" + *p.value +
                        "\": libpq takes a whole number there");
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

std::string redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
    text.replace(at, secret.size(), "***");
  return text;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) text = redact(std::move(text), s);
  return text;
}

std::string application_name_problem(std::string_view name) {
  if (name.size() > kMaxNameBytes)
    return "is " + std::to_string(name.size()) + " bytes long: PostgreSQL keeps at most " +
           std::to_string(kMaxNameBytes) + " (it would cut the rest)";
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c > 0x7e)
      return "has a byte that is not printable ASCII (byte " + std::to_string(i + 1) +
             "): PostgreSQL would show it as '?'; use ASCII letters, digits, spaces and "
             "punctuation";
  }
  return "";
}

ConnInfo ConnInfo::parse(const std::string& conninfo, const std::string& application_name) {
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
  // The values libpq will use, as it applies them when connecting: the string's, else the
  // environment's, else the built-in default. (A service file can supply values too: with a
  // service, values the string does not set are not checked, and the target says so.)
  std::map<std::string, Param, std::less<>> params;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    Param p;
    if (o->val) {
      p.value = o->val;
      p.is_explicit = true;
    } else if (o->envvar && std::getenv(o->envvar)) {
      p.value = std::getenv(o->envvar);
      p.envvar = o->envvar;
    } else if (o->compiled) {
      p.value = o->compiled;
    }
    params[o->keyword] = std::move(p);
  }
  PQconninfoFree(options);
  auto param = [&](std::string_view keyword) -> const Param& {
    static const Param none;
    auto it = params.find(keyword);
    return it == params.end() ? none : it->second;
  };
  auto value = [&](std::string_view keyword) { return param(keyword).value.value_or(""); };

  ConnInfo info;
  info.conninfo = conninfo;
  if (param("password").is_explicit && !value("password").empty())
    info.secrets.push_back(value("password"));
  if (const char* env = std::getenv("PGPASSWORD"); env && *env) info.secrets.push_back(env);
  info.has_connect_timeout = param("connect_timeout").value.has_value();
  if (param("application_name").is_explicit) info.application_name = value("application_name");

  const std::string service = value("service");
  const bool checked = service.empty();
  auto check = [&](std::string_view keyword) -> const Param* {
    const Param& p = param(keyword);
    return (p.is_explicit || checked) ? &p : nullptr;
  };
  try {
    // What libpq refuses only when it connects (connectOptions2 and after): refused here, so
    // that `pg2kafka check` finds it and a run does not stop on it later.
    if (auto p = check("sslmode"))
      check_choice("sslmode", *p,
                   {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"});
    if (auto p = check("gssencmode"))
      check_choice("gssencmode", *p, {"disable", "prefer", "require"});
    if (auto p = check("channel_binding"))
      check_choice("channel_binding", *p, {"disable", "prefer", "require"});
    if (auto p = check("target_session_attrs"))
      check_choice("target_session_attrs", *p,
                   {"any", "read-write", "read-only", "primary", "standby", "prefer-standby"});
    int tls_rank[2] = {0, 5};  // of the min and max versions (0 and 5: no bound)
    int i = 0;
    for (const char* keyword : {"ssl_min_protocol_version", "ssl_max_protocol_version"}) {
      auto p = check(keyword);
      int& rank = tls_rank[i++];
      if (!p || !p->value || p->value->empty()) continue;
      int r = 0;
      for (const char* v : {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}) {
        ++r;
        if (iequals(*p->value, v)) rank = r;
      }
      if (rank == 0 || rank == 5)
        throw ConnInfoError(origin(keyword, *p) + " is \"" + *p->value +
                            "\": libpq takes TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3");
    }
    if (tls_rank[0] > tls_rank[1])
      throw ConnInfoError(
          "ssl_min_protocol_version is above ssl_max_protocol_version: libpq refuses the range");
    for (const char* keyword : {"connect_timeout", "keepalives", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "tcp_user_timeout"})
      if (auto p = check(keyword)) check_int(keyword, *p);
    if (auto p = check("connect_timeout"); p && p->value) {
      int seconds = 0;
      libpq_int(*p->value, seconds);
      if (seconds <= 0)
        throw ConnInfoError(origin("connect_timeout", *p) + " is " + *p->value +
                            ": 0 and less mean that a connection attempt waits forever, which "
                            "pg2kafka does not allow (a connection attempt cannot be "
                            "interrupted, so it must end by itself): give a number of seconds "
                            "(the default is 10)");
    }
    // Hosts, their addresses and ports: as many of each (or one port for all). With a service,
    // only what the string sets counts (the service file may add to it).
    auto checked_value = [&](std::string_view keyword) {
      const Param& p = param(keyword);
      return (p.is_explicit || checked) ? p.value.value_or("") : std::string();
    };
    std::string hostaddr = checked_value("hostaddr"), host = checked_value("host"),
                port = checked_value("port");
    size_t hosts = !hostaddr.empty() ? split_commas(hostaddr).size()
                   : !host.empty()   ? split_commas(host).size()
                                     : 1;
    if (!hostaddr.empty()) {
      if (!host.empty() && split_commas(host).size() != hosts)
        throw ConnInfoError("host lists " + std::to_string(split_commas(host).size()) +
                            " names and hostaddr " + std::to_string(hosts) +
                            " addresses: libpq needs as many of each");
      for (const std::string& a : split_commas(hostaddr)) {
        if (a.empty()) continue;
        addrinfo hints{};
        hints.ai_flags = AI_NUMERICHOST;
        hints.ai_family = AF_UNSPEC;
        addrinfo* result = nullptr;
        if (getaddrinfo(a.c_str(), nullptr, &hints, &result) != 0)
          throw ConnInfoError(origin("hostaddr", param("hostaddr")) + " holds \"" + a +
                              "\", which is no numeric IP address (a host name goes into "
                              "`host`)");
        freeaddrinfo(result);
      }
    }
    if (!port.empty()) {
      auto ports = split_commas(port);
      if (ports.size() != 1 && ports.size() != hosts)
        throw ConnInfoError(origin("port", param("port")) + " lists " +
                            std::to_string(ports.size()) + " ports for " + std::to_string(hosts) +
                            " hosts: give one port for all, or one per host");
      for (const std::string& p : ports) {
        int n = 0;
        if (!p.empty() && (!libpq_int(p, n) || n < 1 || n > 65535))
          throw ConnInfoError(origin("port", param("port")) + " holds \"" + p +
                              "\", which is no port number (1 to 65535)");
      }
    }

    // application_name: the string's wins over the option, which wins over PGAPPNAME.
    std::string app = info.application_name.value_or(application_name);
    std::string app_origin = "its application_name";
    if (!info.application_name && application_name.empty()) {
      const char* env = std::getenv("PGAPPNAME");
      app = env ? env : "";
      app_origin = "PGAPPNAME (from the environment)";
    }
    if (info.application_name || application_name.empty()) {
      std::string problem = application_name_problem(app);
      if (!problem.empty()) throw ConnInfoError(app_origin + " " + problem);
    }

    // What goes into the startup packet, which the server refuses beyond 10000 bytes ("invalid
    // length of startup packet": the connection fails as if the server were unreachable, so
    // every attempt would fail the same way, forever).
    std::string user = value("user");
    if (user.empty()) user = os_user();
    std::string packet_user = checked ? user : checked_value("user");
    std::string database = checked_value("dbname");
    if (database.empty()) database = packet_user;
    size_t packet = 4 + 1;  // protocol version, final terminator
    auto add = [&](std::string_view key, std::string_view v) {
      if (!v.empty()) packet += key.size() + 1 + v.size() + 1;
    };
    add("user", packet_user);
    add("database", database);
    add("replication", checked_value("replication"));
    add("options", checked_value("options"));
    add("application_name", app);
    add("fallback_application_name", checked_value("fallback_application_name"));
    add("client_encoding", "UTF8");
    if (packet > kMaxStartupPacket)
      throw ConnInfoError(
          "what the connection sends the server when it starts (user, dbname, options, "
          "application_name) takes " +
          std::to_string(packet) + " bytes; PostgreSQL refuses more than " +
          std::to_string(kMaxStartupPacket) + ": shorten `options` (or the names)");

    // The target, for messages.
    std::vector<std::string> from_env;
    auto shown = [&](const char* keyword) {
      const Param& p = param(keyword);
      if (p.envvar && p.value && !p.value->empty()) from_env.push_back(p.envvar);
      return p.value.value_or("");
    };
    std::string where = shown("host");
    std::string address = shown("hostaddr");
    if (where.empty()) where = address;
    if (where.empty()) where = "the local socket";
    std::string shown_port = shown("port");
    std::string shown_db = shown("dbname");
    std::string shown_user = shown("user");
    info.target = where + ":" + (shown_port.empty() ? "5432" : shown_port);
    info.target += ", database " + (shown_db.empty() ? user : shown_db);
    info.target += ", user " + (shown_user.empty() ? user : shown_user);
    std::string notes;
    if (!from_env.empty()) {
      notes = "from the environment: ";
      for (size_t i = 0; i < from_env.size(); ++i) notes += (i ? ", " : "") + from_env[i];
    }
    if (!service.empty())
      notes += std::string(notes.empty() ? "" : "; ") + "service \"" + service +
               "\" of the connection service file may change these";
    if (!notes.empty()) info.origins = redact(" (" + notes + ")", info.secrets);
    info.target = redact(info.target, info.secrets) + info.origins;
  } catch (const ConnInfoError& e) {
    throw ConnInfoError(redact(e.what(), info.secrets));
  }
  return info;
}

// ---------------------------------------------------------------------------------------------
// Interrupter
// ---------------------------------------------------------------------------------------------

struct Interrupter::CancelJob {
  std::shared_ptr<PGcancel> cancel;
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
};

namespace {

// Keeps the file holding this code loaded for the life of the process (dlclose does nothing
// after this): a cancel request thread that is still blocked when its source is destroyed
// returns into this code later.
void pin_this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&pin_this_library), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void send_cancel(PGcancel* cancel) {
  char ignored[256];
  PQcancel(cancel, ignored, sizeof ignored);
}

}  // namespace

Interrupter::Interrupter() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

Interrupter::~Interrupter() {
  if (job_) {
    std::unique_lock lock(job_->mutex);
    bool done = job_->cv.wait_for(lock, std::chrono::seconds(2), [&] { return job_->done; });
    lock.unlock();
    if (done) {
      job_->thread.join();
    } else {
      pin_this_library();
      job_->thread.detach();
    }
  }
  close(fd_);
}

void Interrupter::interrupt() noexcept {
  std::lock_guard lock(mutex_);
  if (interrupted_.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
  if (!running_) return;
  // A query is running: the server should stop it. PQcancel opens a connection to the server and
  // waits for it to close it, which takes as long as the network and the server want: on a
  // thread of its own.
  auto job = std::make_shared<CancelJob>();
  job->cancel = running_;
  try {
    job->thread = std::thread([job] {
      send_cancel(job->cancel.get());
      std::lock_guard done_lock(job->mutex);
      job->done = true;
      job->cv.notify_all();
    });
    job_ = std::move(job);
  } catch (...) {
    send_cancel(running_.get());  // no thread to be had: here, then
  }
}

bool Interrupter::sleep(milliseconds duration) const {
  auto deadline = Clock::now() + duration;
  while (!interrupted()) {
    auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return true;
    pollfd pfd{fd_, POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left, INT_MAX)));
  }
  return false;
}

bool Interrupter::query_started(std::shared_ptr<PGcancel> cancel) {
  std::lock_guard lock(mutex_);
  if (interrupted()) return false;
  running_ = std::move(cancel);
  return true;
}

void Interrupter::query_ended() {
  std::lock_guard lock(mutex_);
  running_.reset();
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
  auto text = [](const char* s) { return std::string(s ? s : ""); };
  std::string port = text(PQport(conn_));
  return text(PQhost(conn_)) + ":" + (port.empty() ? "5432" : port) + ", database " +
         text(PQdb(conn_)) + ", user " + text(PQuser(conn_));
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
