// The connection string, checked without I/O: what libpq or the server would refuse only when
// connecting is refused here, and where the source connects is described for messages without a
// secret.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pg2kafka::pg_outbox {

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

// Replaces every occurrence of `secret` in `text` with "***" (no-op for an empty secret).
std::string redact(std::string text, std::string_view secret);
std::string redact(std::string text, const std::vector<std::string>& secrets);

// "host:port, database D, user U": where a connection goes, as every message shows it (an empty
// port is PostgreSQL's 5432).
std::string target_text(std::string_view host, std::string_view port, std::string_view database,
                        std::string_view user);

// libpq's messages end with newlines; messages of ours do not.
std::string trim_newlines(std::string s);

}  // namespace pg2kafka::pg_outbox
