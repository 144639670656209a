// pg2kafka C++ SDK for plugin authors (header-only, compiled into each plugin).
//
// The SDK turns the C interface of <pg2kafka/plugin.h> into a few classes:
//
//   class MySink : public pg2kafka::sdk::Sink {
//    public:
//     MySink(pg2kafka::sdk::Host host, const pg2kafka::sdk::Options& options);
//     void write(std::span<const p2k_record> records) override;   // report() each one later
//     bool flush(std::chrono::milliseconds timeout) override;
//   };
//   P2K_SINK_PLUGIN(MySink, "my-sink", "1.0.0", "Writes records somewhere.", kOptions)
//
// Every call from the host goes through a trampoline that catches all exceptions and turns them
// into a status: throw sdk::RetryError for a transient failure, sdk::ConfigError for bad options
// (naming the option, so the host can point at where the user set it) and anything else
// (sdk::FatalError, std::exception) for a permanent failure. The exception's message becomes the
// error the user sees, so make it name the problem and the fix.
//
// Threading and memory rules are those of plugin.h: the host calls a plugin instance from one
// thread at a time; Host::report and Host::log may be called from any thread.
//
// What is here, in order: errors; slices and JSON text; the option table and typed option
// values; the host handle; RecordBatch (a source's records); the Source and Sink base classes;
// helpers for sinks that deliver on threads of their own (OwnedRecord, InFlight, AsyncDelivery);
// and the P2K_SOURCE_PLUGIN / P2K_SINK_PLUGIN macros with the ABI version negotiation.
#ifndef PG2KAFKA_SDK_PLUGIN_HPP
#define PG2KAFKA_SDK_PLUGIN_HPP

#include <pg2kafka/plugin.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace pg2kafka::sdk {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// Base of the SDK's exceptions: carries the status the trampoline returns to the host.
class Error : public std::runtime_error {
 public:
  Error(p2k_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  p2k_status status() const noexcept { return status_; }

 private:
  p2k_status status_;
};

// Transient: the host retries the operation (or the record) after a backoff.
class RetryError : public Error {
 public:
  explicit RetryError(const std::string& message) : Error(P2K_RETRY, message) {}
};

// Permanent: the pipeline stops with exit code 4.
class FatalError : public Error {
 public:
  explicit FatalError(const std::string& message) : Error(P2K_FATAL, message) {}
};

// Bad configuration (from a constructor or open()): the pipeline stops with exit code 2. Name the
// option when the problem is about one: the host then shows the problem at the place where the
// user set that option (file:line:column), e.g.
//
//   throw sdk::ConfigError("batch_size", "must be a multiple of 8");
//
// Several problems at once (so the user fixes them all in one go):
//
//   sdk::ConfigError::Problems problems;
//   if (...) problems.push_back({"acks", "must be 'all' when enable_idempotence is true"});
//   if (!problems.empty()) throw sdk::ConfigError(std::move(problems));
//
// A message should not repeat the option's name (the host adds it) nor contain a secret value.
class ConfigError : public Error {
 public:
  struct Problem {
    std::string option;  // empty: about no single option
    std::string message;
  };
  using Problems = std::vector<Problem>;

  // A problem of no single option.
  explicit ConfigError(const std::string& message)
      : Error(P2K_INVALID_CONFIG, message), problems_{{{}, message}} {}
  // A problem with one option.
  ConfigError(std::string option, const std::string& message)
      : Error(P2K_INVALID_CONFIG, describe({{option, message}})),
        problems_{{std::move(option), message}} {}
  // Several problems (at least one).
  explicit ConfigError(Problems problems)
      : Error(P2K_INVALID_CONFIG, describe(problems)), problems_(std::move(problems)) {}

  const Problems& problems() const noexcept { return problems_; }

  // The text of what(): "option 'x': message", several joined with "; ". It is what a host
  // without p2k_host.option_error (ABI 1.0) shows, and what logs show.
  static std::string describe(const Problems& problems) {
    std::string out;
    if (problems.size() > 1) out = std::to_string(problems.size()) + " problems: ";
    for (size_t i = 0; i < problems.size(); ++i) {
      if (i) out += "; ";
      if (!problems[i].option.empty()) out += "option '" + problems[i].option + "': ";
      out += problems[i].message;
    }
    return out;
  }

 private:
  Problems problems_;
};

// ---------------------------------------------------------------------------------------------
// Slices
// ---------------------------------------------------------------------------------------------

// A p2k_slice as a string_view; an absent slice (data == NULL) is an empty view.
constexpr std::string_view view(p2k_slice s) noexcept {
  return s.data ? std::string_view(s.data, s.size) : std::string_view();
}
// A p2k_slice as an optional string_view: nullopt when absent (a null key).
constexpr std::optional<std::string_view> optional_view(p2k_slice s) noexcept {
  if (!s.data) return std::nullopt;
  return std::string_view(s.data, s.size);
}
// A slice over `text`, which must outlive it.
constexpr p2k_slice slice(std::string_view text) noexcept {
  return p2k_slice{text.data(), text.size()};
}

// ---------------------------------------------------------------------------------------------
// JSON text
// ---------------------------------------------------------------------------------------------

// Appends `text` as a JSON string (quoted; quotes, backslashes and control characters escaped;
// other bytes, UTF-8 included, copied as they are). For plugins that build JSON messages.
inline void append_json_string(std::string& out, std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  // Runs of bytes that need no escape are copied at once (most text is one such run).
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

namespace detail {

// Checks one JSON text (RFC 8259: one value, UTF-8) and copies it to `out` byte for byte (numbers,
// escapes and the whitespace between tokens are not rewritten), except that a line break between
// tokens becomes a space, so that the copy is one line. (Inside strings JSON has no raw line
// breaks.)
class JsonOneLine {
 public:
  JsonOneLine(std::string_view in, std::string& out) : in_(in), out_(out) {}

  bool run() {
    size_t start = out_.size();
    skip_space();
    bool ok = value(0);
    skip_space();
    if (!ok || pos_ != in_.size()) {
      out_.resize(start);
      return false;
    }
    return true;
  }

 private:
  // Deeper nesting is refused (embedded as a string by append_json_or_string) rather than
  // recursed into without bound.
  static constexpr int kMaxDepth = 512;

  bool at_end() const { return pos_ >= in_.size(); }
  char peek() const { return in_[pos_]; }
  void skip_space() {
    for (; !at_end(); ++pos_) {
      char c = peek();
      if (c == ' ' || c == '\t')
        out_ += c;
      else if (c == '\n' || c == '\r')
        out_ += ' ';
      else
        return;
    }
  }
  bool literal(std::string_view word) {
    if (in_.substr(pos_, word.size()) != word) return false;
    out_ += word;
    pos_ += word.size();
    return true;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  bool value(int depth) {
    if (at_end() || depth > kMaxDepth) return false;
    switch (peek()) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number();
    }
  }

  bool object(int depth) {
    out_ += '{';
    ++pos_;
    skip_space();
    if (!at_end() && peek() == '}') {
      out_ += '}';
      ++pos_;
      return true;
    }
    while (true) {
      skip_space();
      if (at_end() || peek() != '"' || !string()) return false;
      skip_space();
      if (at_end() || peek() != ':') return false;
      out_ += ':';
      ++pos_;
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
      if (at_end()) return false;
      char c = in_[pos_++];
      out_ += c;
      if (c == '}') return true;
      if (c != ',') return false;
    }
  }

  bool array(int depth) {
    out_ += '[';
    ++pos_;
    skip_space();
    if (!at_end() && peek() == ']') {
      out_ += ']';
      ++pos_;
      return true;
    }
    while (true) {
      skip_space();
      if (!value(depth + 1)) return false;
      skip_space();
      if (at_end()) return false;
      char c = in_[pos_++];
      out_ += c;
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  bool number() {
    size_t start = pos_;
    if (!at_end() && peek() == '-') ++pos_;
    if (at_end()) return false;
    if (peek() == '0') {
      ++pos_;
    } else if (digit(peek())) {
      while (!at_end() && digit(peek())) ++pos_;
    } else {
      return false;
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (at_end() || !digit(peek())) return false;
      while (!at_end() && digit(peek())) ++pos_;
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (at_end() || !digit(peek())) return false;
      while (!at_end() && digit(peek())) ++pos_;
    }
    out_.append(in_.data() + start, pos_ - start);
    return true;
  }

  static bool hex(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  // One UTF-8 sequence starting at pos_ (not ASCII): well-formed, shortest form, no surrogates.
  bool utf8() {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(in_[i]); };
    unsigned char c = byte(pos_);
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (pos_ + n >= in_.size()) return false;
    for (size_t i = 1; i <= n; ++i) {
      unsigned char cc = byte(pos_ + i);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    pos_ += n + 1;
    return true;
  }

  bool string() {
    size_t start = pos_++;
    while (true) {
      if (at_end()) return false;
      auto c = static_cast<unsigned char>(peek());
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        ++pos_;
        if (at_end()) return false;
        char e = in_[pos_++];
        if (e == 'u') {
          for (int i = 0; i < 4; ++i, ++pos_)
            if (at_end() || !hex(peek())) return false;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
          return false;
        }
      } else if (c < 0x80) {
        ++pos_;
      } else if (!utf8()) {
        return false;
      }
    }
    out_.append(in_.data() + start, pos_ - start);
    return true;
  }

  std::string_view in_;
  std::string& out_;
  size_t pos_ = 0;
};

}  // namespace detail

// Whether `text` is one valid JSON value (RFC 8259, UTF-8; surrounding whitespace allowed).
inline bool is_json(std::string_view text) {
  std::string scratch;
  return detail::JsonOneLine(text, scratch).run();
}

// Appends `text` as JSON if it is JSON, byte for byte except that line breaks between tokens
// become spaces (so that it stays on one line), and returns true; else appends nothing and returns
// false. A compact value (what pg-outbox sends) is copied exactly.
inline bool append_json(std::string& out, std::string_view text) {
  return detail::JsonOneLine(text, out).run();
}

// "Embed as JSON if it is JSON": appends `text` as JSON when it is valid JSON (see append_json),
// else as a JSON string, so that the result is valid JSON whatever the payload. For sinks that
// wrap record values in a JSON envelope.
inline void append_json_or_string(std::string& out, std::string_view text) {
  if (!append_json(out, text)) append_json_string(out, text);
}

// ---------------------------------------------------------------------------------------------
// Option table helpers
// ---------------------------------------------------------------------------------------------

// Builds one entry of a plugin's option table. `default_value` is in the user-facing text form
// ("5s", "1000", "true") or nullptr; see plugin.h for the types and flags (P2K_OPT_REQUIRED,
// P2K_OPT_IS_SECRET). The table is the one place where options and their defaults live: read
// every option that has a default without a fallback of your own (Options::integer and the
// others throw when an option is absent), and leave range checks to min_value/max_value.
constexpr p2k_option option(const char* name, p2k_option_type type, const char* default_value,
                            const char* description, uint32_t flags = 0,
                            const char* const* choices = nullptr, int64_t min_value = 0,
                            int64_t max_value = 0) {
  return p2k_option{sizeof(p2k_option), name,    type,      flags,    default_value,
                    description,        choices, min_value, max_value};
}

// ---------------------------------------------------------------------------------------------
// Options: typed access to the validated, normalised values passed to create()
// ---------------------------------------------------------------------------------------------

class Options {
 public:
  Options() = default;
  Options(const p2k_option_value* values, size_t count) {
    for (size_t i = 0; i < count; ++i) values_[values[i].key] = values[i].value;
  }

  bool has(std::string_view key) const { return values_.find(key) != values_.end(); }

  std::optional<std::string> find(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }

  // The value of `key`; throws ConfigError when it is absent (an optional option without
  // default).
  const std::string& string(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw ConfigError(std::string(key), "is not set");
    return it->second;
  }

  int64_t integer(std::string_view key) const { return parse_int(key, string(key)); }
  bool boolean(std::string_view key) const { return string(key) == "true"; }
  std::chrono::milliseconds duration(std::string_view key) const {
    return std::chrono::milliseconds(parse_int(key, string(key)));
  }
  uint64_t size(std::string_view key) const {
    return static_cast<uint64_t>(parse_int(key, string(key)));
  }

  // A LIST option's elements (empty when absent).
  std::vector<std::string> list(std::string_view key) const {
    std::vector<std::string> out;
    auto value = find(key);
    if (!value || value->empty()) return out;
    size_t start = 0;
    while (true) {
      size_t comma = value->find(',', start);
      out.push_back(value->substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return out;
  }

  // Every passthrough key that starts with `prefix` (e.g. "rdkafka."), with the prefix removed.
  std::map<std::string, std::string> with_prefix(std::string_view prefix) const {
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : values_) {
      if (k.size() > prefix.size() && std::string_view(k).substr(0, prefix.size()) == prefix)
        out[k.substr(prefix.size())] = v;
    }
    return out;
  }

  const std::map<std::string, std::string, std::less<>>& all() const { return values_; }

 private:
  static int64_t parse_int(std::string_view key, const std::string& text) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size())
      throw ConfigError(std::string(key), "is not a whole number: '" + text + "'");
    return v;
  }

  std::map<std::string, std::string, std::less<>> values_;
};

// ---------------------------------------------------------------------------------------------
// Host: the plugin's handle on the host (logging, delivery reports)
// ---------------------------------------------------------------------------------------------

class Host {
 public:
  Host() = default;
  explicit Host(const p2k_host* host) : host_(host) {}

  void log(p2k_log_level level, const std::string& message) const {
    if (host_ && host_->log) host_->log(host_->ctx, level, message.c_str());
  }
  void error(const std::string& m) const { log(P2K_LOG_ERROR, m); }
  void warn(const std::string& m) const { log(P2K_LOG_WARN, m); }
  void info(const std::string& m) const { log(P2K_LOG_INFO, m); }
  void debug(const std::string& m) const { log(P2K_LOG_DEBUG, m); }

  // Sinks: the outcome of one written record, exactly once per write. Thread-safe.
  void report(uint64_t position, p2k_status status, const std::string& message = {}) const {
    if (host_ && host_->report)
      host_->report(host_->ctx, position, status, message.empty() ? nullptr : message.c_str());
  }

  // Whether the host takes configuration problems option by option (ABI 1.1). The SDK uses it
  // for ConfigError; plugins rarely need it.
  bool has_option_error() const {
    return P2K_HAS_FIELD(host_, p2k_host, option_error) && host_->option_error;
  }
  void option_error(const std::string& option, const std::string& message) const {
    if (has_option_error())
      host_->option_error(host_->ctx, option.empty() ? nullptr : option.c_str(), message.c_str());
  }

  // The host's ABI minor version (0 without a host).
  uint32_t abi_minor() const { return host_ ? host_->abi_minor : 0; }
  const p2k_host* raw() const { return host_; }

 private:
  const p2k_host* host_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// RecordBatch: owns the memory behind the records a source returns from poll()
// ---------------------------------------------------------------------------------------------

class RecordBatch {
 public:
  RecordBatch() = default;
  // Records point into the batch's own strings: a batch moves (keeping them) but never copies.
  RecordBatch(const RecordBatch&) = delete;
  RecordBatch& operator=(const RecordBatch&) = delete;
  RecordBatch(RecordBatch&&) = default;
  RecordBatch& operator=(RecordBatch&&) = default;

  // A header as add() takes it: views that must stay valid until add() returns (the batch copies
  // them). Careful with temporaries: a std::vector<Header> built from std::to_string(...) points
  // to strings that are gone by the time add() runs; keep such strings in variables.
  struct Header {
    std::string_view name;
    std::string_view value;
  };

  // Appends a record; the batch keeps its own copies of all strings (a topic, header name or
  // header value equal to the previous record's is stored once). Positions must increase.
  void add(uint64_t position, std::string_view topic, std::optional<std::string> key,
           std::string value, int64_t timestamp_ms, std::string id,
           std::initializer_list<Header> headers = {}) {
    add_record(position, topic, std::move(key), std::move(value), timestamp_ms, std::move(id),
               headers.begin(), headers.size());
  }
  void add(uint64_t position, std::string_view topic, std::optional<std::string> key,
           std::string value, int64_t timestamp_ms, std::string id,
           const std::vector<Header>& headers) {
    add_record(position, topic, std::move(key), std::move(value), timestamp_ms, std::move(id),
               headers.data(), headers.size());
  }

  size_t size() const { return owned_.size(); }
  bool empty() const { return owned_.empty(); }
  uint64_t last_position() const { return owned_.empty() ? 0 : owned_.back().position; }

  // The records in C form; pointers stay valid while the batch lives and is not added to.
  const p2k_record* records() {
    if (records_.size() != owned_.size()) build();
    return records_.data();
  }

 private:
  struct Owned {
    uint64_t position;
    const std::string* topic;
    std::optional<std::string> key;
    std::string value;
    int64_t timestamp_ms;
    std::string id;
    size_t first_header;  // index into headers_
    size_t header_count;
  };

  static p2k_slice slice(const std::string& s) { return p2k_slice{s.data(), s.size()}; }

  // A stored copy of `text`, shared with the previous record when it holds the same text at
  // the same place (`previous`: that copy or nullptr).
  const std::string* keep(std::string_view text, const std::string* previous) {
    if (previous && *previous == text) return previous;
    return &strings_.emplace_back(text);
  }

  void add_record(uint64_t position, std::string_view topic, std::optional<std::string> key,
                  std::string value, int64_t timestamp_ms, std::string id, const Header* headers,
                  size_t header_count) {
    const Owned* prev = owned_.empty() ? nullptr : &owned_.back();
    const std::string* kept_topic = keep(topic, prev ? prev->topic : nullptr);
    size_t first = headers_.size();
    for (size_t i = 0; i < header_count; ++i) {
      const std::pair<const std::string*, const std::string*>* same =
          prev && i < prev->header_count ? &headers_[prev->first_header + i] : nullptr;
      headers_.emplace_back(keep(headers[i].name, same ? same->first : nullptr),
                            keep(headers[i].value, same ? same->second : nullptr));
    }
    owned_.push_back(Owned{position, kept_topic, std::move(key), std::move(value), timestamp_ms,
                           std::move(id), first, header_count});
    records_.clear();
  }

  void build() {
    records_.clear();
    records_.reserve(owned_.size());
    c_headers_.clear();
    c_headers_.reserve(headers_.size());  // no reallocation below: records point into it
    for (const auto& [name, value] : headers_)
      c_headers_.push_back(p2k_header{slice(*name), slice(*value)});
    for (const auto& o : owned_) {
      p2k_record r{};
      r.struct_size = sizeof(p2k_record);
      r.position = o.position;
      r.topic = slice(*o.topic);
      r.key = o.key ? slice(*o.key) : p2k_slice{nullptr, 0};
      r.value = slice(o.value);
      r.timestamp_ms = o.timestamp_ms;
      r.id = slice(o.id);
      r.headers = o.header_count ? c_headers_.data() + o.first_header : nullptr;
      r.header_count = o.header_count;
      records_.push_back(r);
    }
  }

  std::deque<Owned> owned_;
  std::deque<std::string> strings_;  // topics and headers; deque: stable addresses
  std::vector<std::pair<const std::string*, const std::string*>> headers_;
  std::vector<p2k_header> c_headers_;
  std::vector<p2k_record> records_;
};

// ---------------------------------------------------------------------------------------------
// Base classes. Constructors take (Host, const Options&) and must do no I/O and start no thread.
// ---------------------------------------------------------------------------------------------

class Source {
 public:
  // The oldest ABI minor this source needs (plugin.h, "Versioning"): a source built with this SDK
  // loads into every host since 1.0 unless it uses something newer. Declare a larger value in
  // your class (`static constexpr uint32_t kAbiMinorNeeded = 1;`) when it relies on a host
  // behaviour a later minor added. An option table that uses a later flag raises it by itself.
  static constexpr uint32_t kAbiMinorNeeded = 0;

  virtual ~Source() = default;
  // Connect. Throw RetryError for a transient failure.
  virtual void open() {}
  // Up to max_records (>= 1) new records, waiting at most `timeout` (>= 0) for the first; nullptr
  // or an empty batch when nothing is pending.
  virtual std::unique_ptr<RecordBatch> poll(size_t max_records,
                                            std::chrono::milliseconds timeout) = 0;
  // Every record with position <= through was delivered.
  virtual void ack(uint64_t through) = 0;
  // The topics the source currently produces to (may be empty when unknown).
  virtual std::vector<std::string> list_topics() { return {}; }
  virtual void close() {}
  // Called from ANOTHER thread when the host's stop may not wait any longer (plugin.h,
  // p2k_source_ops.interrupt): make the call blocked now return soon (throw RetryError from it)
  // and every later call but close() fail at once. Must not block; thread-safe against every
  // other member. Override it when a call can block for long (a query, a network wait); the SDK
  // gives the host an interrupt operation only then.
  virtual void interrupt() {}
};

class Sink {
 public:
  // The oldest ABI minor this sink needs. 1 by default: since 1.1 the host keeps the per-key
  // order after a RETRY, so a sink written against this SDK only reports outcomes. A sink that
  // never reports RETRY for single records (it reports OK, or fails whole write() calls) relies
  // on nothing new and may declare 0 to load into 1.0 hosts too.
  static constexpr uint32_t kAbiMinorNeeded = 1;

  virtual ~Sink() = default;
  virtual void open() {}
  // Check (or create) a topic before anything is written to it.
  virtual void prepare_topic(std::string_view /*topic*/) {}
  // Start delivering; report every record exactly once through Host::report (from here or from a
  // thread of your own). If this throws, the host fails every record of the call with the
  // exception's status: report none of them.
  virtual void write(std::span<const p2k_record> records) = 0;
  // Only for sinks whose client reports when called (librdkafka): serve delivery reports,
  // blocking until one was served or `timeout` ran out. Override it only then: the SDK gives the
  // host a poll operation only when the sink class overrides this, and a sink that reports from
  // its own threads must not have one (the host then waits without using the CPU).
  virtual void poll(std::chrono::milliseconds /*timeout*/) {}
  // True once every record written so far has been reported; false if `timeout` ran out.
  virtual bool flush(std::chrono::milliseconds timeout) = 0;
  virtual void close() {}
  // As Source::interrupt: called from another thread; make a blocked write, flush or poll return
  // soon. Must not block. Override it only when such a call can block for long.
  virtual void interrupt() {}
};

// ---------------------------------------------------------------------------------------------
// Helpers for sinks that deliver after write() returned (on threads of their own)
// ---------------------------------------------------------------------------------------------

// A record copied out of the host's memory, which a sink may keep as long as it likes.
struct OwnedRecord {
  uint64_t position = 0;
  std::string topic;
  std::optional<std::string> key;  // nullopt: a null key
  std::string value;
  int64_t timestamp_ms = 0;
  std::string id;
  std::vector<std::pair<std::string, std::string>> headers;

  OwnedRecord() = default;
  explicit OwnedRecord(const p2k_record& r)
      : position(r.position),
        topic(view(r.topic)),
        value(view(r.value)),
        timestamp_ms(r.timestamp_ms),
        id(view(r.id)) {
    if (r.key.data) key.emplace(r.key.data, r.key.size);
    headers.reserve(r.header_count);
    for (size_t i = 0; i < r.header_count; ++i)
      headers.emplace_back(view(r.headers[i].name), view(r.headers[i].value));
  }
};

// Counts records written and not yet reported, and waits until none is left: the bookkeeping
// behind flush() for a sink whose deliveries complete on other threads. Call add() in write()
// before handing records on, and done() after reporting them. Thread-safe.
class InFlight {
 public:
  void add(size_t n = 1) {
    std::lock_guard lock(mutex_);
    count_ += n;
  }
  void done(size_t n = 1) {
    {
      std::lock_guard lock(mutex_);
      count_ -= std::min(n, count_);
    }
    idle_.notify_all();
  }
  size_t count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  // True once nothing is in flight; false when `timeout` ran out first.
  bool wait_until_empty(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [&] { return count_ == 0; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  size_t count_ = 0;
};

// A delivery queue served by worker threads, for sinks whose client blocks (an HTTP request, a
// file write with fsync): write() hands the records to enqueue() and returns; workers take them
// in order, in batches of up to `max_batch`, and call `deliver` with each batch. When deliver
// returns, every record of the batch is reported OK; when it throws, every record is reported
// with the exception's status (RetryError: RETRY; anything else: FATAL) and its message, prefixed
// with the record's event id. flush() waits until every record was reported.
//
// With several workers, batches complete out of order: that is fine, the host keeps the per-key
// order (ABI 1.1). Call start() from open() (create may not start threads) and stop() from
// close(); the destructor stops too. Declare the AsyncDelivery as the LAST member of your sink,
// so that it is destroyed (and its workers joined) before the members `deliver` uses.
class AsyncDelivery {
 public:
  using Deliver = std::function<void(std::span<const OwnedRecord> batch)>;

  AsyncDelivery(Host host, Deliver deliver, size_t workers = 1, size_t max_batch = 1)
      : host_(host),
        deliver_(std::move(deliver)),
        workers_(std::max<size_t>(workers, 1)),
        max_batch_(std::max<size_t>(max_batch, 1)) {}
  ~AsyncDelivery() { stop(); }
  AsyncDelivery(const AsyncDelivery&) = delete;
  AsyncDelivery& operator=(const AsyncDelivery&) = delete;

  void start() {
    std::lock_guard lock(mutex_);
    if (!threads_.empty()) return;
    stopping_ = false;
    for (size_t i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
  }

  // Copies the records into the queue. Throws FatalError when not started (or stopped).
  void enqueue(std::span<const p2k_record> records) {
    {
      std::lock_guard lock(mutex_);
      if (threads_.empty() || stopping_)
        throw FatalError("the sink is not open: write() before open() or after close()");
      for (const auto& r : records) queue_.emplace_back(r);
      in_flight_.add(records.size());
    }
    work_.notify_all();
  }

  // True once every enqueued record was reported; false when `timeout` ran out first.
  bool flush(std::chrono::milliseconds timeout) { return in_flight_.wait_until_empty(timeout); }

  // Records enqueued and not yet reported.
  size_t in_flight() const { return in_flight_.count(); }

  // Lets the workers finish the batches they are delivering, reports every record still queued
  // RETRY (it was not delivered) and joins the workers. Safe to call more than once.
  void stop() {
    std::deque<OwnedRecord> left;
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      left.swap(queue_);
      threads.swap(threads_);
    }
    work_.notify_all();
    for (const auto& r : left)
      host_.report(r.position, P2K_RETRY,
                   "event " + r.id + " was not delivered: the sink closed before it was sent");
    in_flight_.done(left.size());
    for (auto& t : threads) t.join();
  }

 private:
  void work() {
    std::vector<OwnedRecord> batch;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        size_t n = std::min(max_batch_, queue_.size());
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.begin() + static_cast<ptrdiff_t>(n)));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      }
      p2k_status status = P2K_OK;
      std::string why;
      try {
        deliver_(batch);
      } catch (const Error& e) {
        status = e.status() == P2K_RETRY ? P2K_RETRY : P2K_FATAL;
        why = e.what();
      } catch (const std::exception& e) {
        status = P2K_FATAL;
        why = e.what();
      } catch (...) {
        status = P2K_FATAL;
        why = "unknown exception";
      }
      for (const auto& r : batch)
        host_.report(r.position, status, status == P2K_OK ? "" : "event " + r.id + ": " + why);
      in_flight_.done(batch.size());
    }
  }

  Host host_;
  Deliver deliver_;
  size_t workers_;
  size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable work_;
  std::deque<OwnedRecord> queue_;
  bool stopping_ = false;
  InFlight in_flight_;
  std::vector<std::thread> threads_;
};

// ---------------------------------------------------------------------------------------------
// Trampolines and version negotiation (implementation detail of the macros below)
// ---------------------------------------------------------------------------------------------

namespace detail {

inline void copy_error(char* err, size_t err_size, const char* message) {
  if (!err || err_size == 0) return;
  size_t n = std::min(std::strlen(message), err_size - 1);
  std::memcpy(err, message, n);
  err[n] = '\0';
}

// Runs f, turning every exception into a status and an error message. A ConfigError's problems
// also go to the host one by one when it takes them (ABI 1.1), naming their options.
template <class F>
p2k_status guarded(char* err, size_t err_size, F&& f, const Host& host = Host()) noexcept {
  try {
    f();
    return P2K_OK;
  } catch (const ConfigError& e) {
    try {
      if (host.has_option_error())
        for (const auto& p : e.problems()) host.option_error(p.option, p.message);
    } catch (...) {
      // Out of memory while reporting: err still says it all.
    }
    copy_error(err, err_size, e.what());
    return P2K_INVALID_CONFIG;
  } catch (const Error& e) {
    copy_error(err, err_size, e.what());
    return e.status();
  } catch (const std::exception& e) {
    copy_error(err, err_size, e.what());
    return P2K_FATAL;
  } catch (...) {
    copy_error(err, err_size, "unknown exception in plugin");
    return P2K_FATAL;
  }
}

// For operations that cannot fail (close, destroy, a sink's poll, interrupt): an exception is
// logged as an error, never swallowed silently.
template <class F>
void logged(const Host& host, const char* operation, F&& f) noexcept {
  char message[512];
  if (guarded(message, sizeof message, std::forward<F>(f)) == P2K_OK) return;
  try {
    host.error(std::string("exception in ") + operation + " (the host goes on): " + message);
  } catch (...) {
    // Out of memory while logging: nothing left to do.
  }
}

// What the SDK hands the host as the instance: the plugin's object and its host.
template <class T>
struct Instance {
  Host host;
  std::unique_ptr<T> object;
};

// Whether T overrides Sink::poll (then &T::poll is a member of T, or of a class between).
template <class T>
constexpr bool overrides_poll =
    !std::is_same_v<decltype(&T::poll), void (Sink::*)(std::chrono::milliseconds)>;

// Whether T overrides interrupt (of Base: Source or Sink).
template <class T, class Base>
constexpr bool overrides_interrupt = !std::is_same_v<decltype(&T::interrupt), void (Base::*)()>;

template <class T>
struct SourceTrampolines {
  static T* self(void* p) { return static_cast<Instance<T>*>(p)->object.get(); }
  static const Host& host(void* p) { return static_cast<Instance<T>*>(p)->host; }
  static p2k_status create(const p2k_host* h, const p2k_option_value* opts, size_t n, void** out,
                           char* err, size_t es) {
    Host host(h);
    return guarded(
        err, es,
        [&] {
          auto instance = std::make_unique<Instance<T>>();
          instance->host = host;
          instance->object = std::make_unique<T>(host, Options(opts, n));
          *out = instance.release();
        },
        host);
  }
  static p2k_status open(void* p, char* err, size_t es) {
    return guarded(
        err, es, [&] { self(p)->open(); }, host(p));
  }
  static p2k_status poll(void* p, size_t max, int timeout_ms, p2k_batch* out, char* err,
                         size_t es) {
    return guarded(err, es, [&] {
      out->records = nullptr;
      out->count = 0;
      out->handle = nullptr;
      if (max == 0) return;
      auto batch = self(p)->poll(max, std::chrono::milliseconds(std::max(timeout_ms, 0)));
      if (!batch || batch->empty()) return;
      out->records = batch->records();
      out->count = batch->size();
      out->handle = batch.release();
    });
  }
  static p2k_status ack(void* p, uint64_t through, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->ack(through); });
  }
  static void release(void*, void* handle) { delete static_cast<RecordBatch*>(handle); }
  static p2k_status list_topics(void* p, p2k_topic_fn fn, void* ctx, char* err, size_t es) {
    return guarded(err, es, [&] {
      for (const auto& t : self(p)->list_topics()) fn(ctx, p2k_slice{t.data(), t.size()});
    });
  }
  static void close(void* p) {
    logged(host(p), "close", [&] { self(p)->close(); });
  }
  static void destroy(void* p) {
    Host h = host(p);
    logged(h, "destroy", [&] { delete static_cast<Instance<T>*>(p); });
  }
  static void interrupt(void* p) {
    logged(host(p), "interrupt", [&] { self(p)->interrupt(); });
  }

  static const p2k_source_ops* ops() {
    static const p2k_source_ops o{sizeof(p2k_source_ops),
                                  &create,
                                  &open,
                                  &poll,
                                  &ack,
                                  &release,
                                  &list_topics,
                                  &close,
                                  &destroy,
                                  overrides_interrupt<T, Source> ? &interrupt : nullptr};
    return &o;
  }
};

template <class T>
struct SinkTrampolines {
  static T* self(void* p) { return static_cast<Instance<T>*>(p)->object.get(); }
  static const Host& host(void* p) { return static_cast<Instance<T>*>(p)->host; }
  static p2k_status create(const p2k_host* h, const p2k_option_value* opts, size_t n, void** out,
                           char* err, size_t es) {
    Host host(h);
    return guarded(
        err, es,
        [&] {
          auto instance = std::make_unique<Instance<T>>();
          instance->host = host;
          instance->object = std::make_unique<T>(host, Options(opts, n));
          *out = instance.release();
        },
        host);
  }
  static p2k_status open(void* p, char* err, size_t es) {
    return guarded(
        err, es, [&] { self(p)->open(); }, host(p));
  }
  static p2k_status prepare_topic(void* p, p2k_slice topic, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->prepare_topic(view(topic)); });
  }
  static p2k_status write(void* p, const p2k_record* records, size_t count, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->write(std::span<const p2k_record>(records, count)); });
  }
  static void poll(void* p, int timeout_ms) {
    logged(host(p), "poll",
           [&] { self(p)->poll(std::chrono::milliseconds(std::max(timeout_ms, 0))); });
  }
  static p2k_status flush(void* p, int timeout_ms, char* err, size_t es) {
    p2k_status status = P2K_OK;
    p2k_status thrown = guarded(err, es, [&] {
      if (!self(p)->flush(std::chrono::milliseconds(std::max(timeout_ms, 0)))) {
        copy_error(err, es, "flush timed out before every record was reported");
        status = P2K_RETRY;
      }
    });
    return thrown != P2K_OK ? thrown : status;
  }
  static void close(void* p) {
    logged(host(p), "close", [&] { self(p)->close(); });
  }
  static void destroy(void* p) {
    Host h = host(p);
    logged(h, "destroy", [&] { delete static_cast<Instance<T>*>(p); });
  }
  static void interrupt(void* p) {
    logged(host(p), "interrupt", [&] { self(p)->interrupt(); });
  }

  static const p2k_sink_ops* ops() {
    // No poll operation unless the class has one of its own: an empty poll would make the host
    // spin instead of waiting for reports (plugin.h, p2k_sink_ops.poll).
    static const p2k_sink_ops o{sizeof(p2k_sink_ops),
                                &create,
                                &open,
                                &prepare_topic,
                                &write,
                                overrides_poll<T> ? &poll : nullptr,
                                &flush,
                                &close,
                                &destroy,
                                overrides_interrupt<T, Sink> ? &interrupt : nullptr};
    return &o;
  }
};

// The oldest minor that the flags of an option table need (a host that does not know a flag
// would ignore it: an unknown P2K_OPT_IS_SECRET would print the secret).
inline uint32_t minor_needed_by(std::span<const p2k_option> options) {
  uint32_t minor = 0;
  for (const auto& o : options)
    if (o.flags & P2K_OPT_IS_SECRET) minor = std::max<uint32_t>(minor, 1);
  return minor;
}

// The minor to answer a host with (plugin.h, "Versioning" rule 4): the newest that both know,
// but never less than what the plugin needs (an older host then refuses it, naming both).
constexpr uint32_t answer_minor(uint32_t host_minor, uint32_t needed) {
  uint32_t both = host_minor < P2K_ABI_MINOR ? host_minor : P2K_ABI_MINOR;
  return both < needed ? needed : both;
}

// The descriptor of every minor this SDK can answer with, built once; `Tag` makes the storage
// unique per plugin class.
template <class Tag>
const p2k_plugin* descriptor(uint32_t host_major, uint32_t host_minor, uint32_t class_needs,
                             p2k_kind kind, const char* name, const char* version,
                             const char* summary, std::span<const p2k_option> options,
                             const p2k_source_ops* source, const p2k_sink_ops* sink) {
  static const uint32_t needed = std::max(class_needs, minor_needed_by(options));
  static const std::array<p2k_plugin, P2K_ABI_MINOR + 1> answers = [&] {
    std::array<p2k_plugin, P2K_ABI_MINOR + 1> a{};
    for (uint32_t minor = 0; minor <= P2K_ABI_MINOR; ++minor)
      // p2k_plugin has not grown since 1.0: every minor's layout is the whole struct. When a
      // minor adds fields, answers for older minors set the struct_size of their layout.
      a[minor] = p2k_plugin{sizeof(p2k_plugin),
                            P2K_ABI_MAJOR,
                            minor,
                            kind,
                            name,
                            version,
                            summary,
                            options.empty() ? nullptr : options.data(),
                            options.size(),
                            source,
                            sink};
    return a;
  }();
  // Another major: answer anyway, so that the host can name both versions.
  if (host_major != P2K_ABI_MAJOR) return &answers[std::min(needed, uint32_t{P2K_ABI_MINOR})];
  return &answers[std::min(answer_minor(host_minor, needed), uint32_t{P2K_ABI_MINOR})];
}

inline std::span<const p2k_option> option_span() {
  return {};
}
template <size_t N>
std::span<const p2k_option> option_span(const p2k_option (&options)[N]) {
  return {options, N};
}
inline std::span<const p2k_option> option_span(std::span<const p2k_option> options) {
  return options;
}

}  // namespace detail
}  // namespace pg2kafka::sdk

// Defines the plugin's entry point for a Source subclass. `options` (optional) is a static array
// of p2k_option (see sdk::option); a plugin without options leaves it out. Use once per plugin,
// at namespace scope. The entry point answers each host with the newest ABI minor both know, but
// at least Class::kAbiMinorNeeded (and what the option table needs).
#define P2K_SOURCE_PLUGIN(Class, name, version, summary, ...)                                    \
  static_assert(Class::kAbiMinorNeeded <= P2K_ABI_MINOR,                                         \
                "kAbiMinorNeeded is newer than the plugin.h this plugin is built against");      \
  extern "C" P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t host_major,               \
                                                              uint32_t host_minor) {             \
    return ::pg2kafka::sdk::detail::descriptor<Class>(                                           \
        host_major, host_minor, Class::kAbiMinorNeeded, P2K_KIND_SOURCE, name, version, summary, \
        ::pg2kafka::sdk::detail::option_span(__VA_ARGS__),                                       \
        ::pg2kafka::sdk::detail::SourceTrampolines<Class>::ops(), nullptr);                      \
  }

// Defines the plugin's entry point for a Sink subclass; as P2K_SOURCE_PLUGIN.
#define P2K_SINK_PLUGIN(Class, name, version, summary, ...)                                    \
  static_assert(Class::kAbiMinorNeeded <= P2K_ABI_MINOR,                                       \
                "kAbiMinorNeeded is newer than the plugin.h this plugin is built against");    \
  extern "C" P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t host_major,             \
                                                              uint32_t host_minor) {           \
    return ::pg2kafka::sdk::detail::descriptor<Class>(                                         \
        host_major, host_minor, Class::kAbiMinorNeeded, P2K_KIND_SINK, name, version, summary, \
        ::pg2kafka::sdk::detail::option_span(__VA_ARGS__), nullptr,                            \
        ::pg2kafka::sdk::detail::SinkTrampolines<Class>::ops());                               \
  }

#endif  // PG2KAFKA_SDK_PLUGIN_HPP
