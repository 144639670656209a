#include "conn_info.hpp"

#include <libpq-fe.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <map>

#include <pg2kafka/sdk/text.hpp>

namespace pg2kafka::pg_outbox {

std::string target_text(std::string_view host, std::string_view port, std::string_view database,
                        std::string_view user) {
  return std::string(host) + ":" + std::string(port.empty() ? "5432" : port) + ", database " +
         std::string(database) + ", user " + std::string(user);
}

std::string trim_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

namespace {

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
    info.target = target_text(where, shown_port, shown_db.empty() ? user : shown_db,
                              shown_user.empty() ? user : shown_user);
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

}  // namespace pg2kafka::pg_outbox
