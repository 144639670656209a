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
// and anything else (sdk::FatalError, std::exception) for a permanent failure. The exception's
// message becomes the error the user sees, so make it name the problem and the fix.
//
// Threading and memory rules are those of plugin.h: the host calls a plugin instance from one
// thread at a time; Host::report and Host::log may be called from any thread.
#ifndef PG2KAFKA_SDK_PLUGIN_HPP
#define PG2KAFKA_SDK_PLUGIN_HPP

#include <pg2kafka/plugin.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
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

// Bad configuration: the pipeline stops with exit code 2.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(P2K_INVALID_CONFIG, message) {}
};

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

// ---------------------------------------------------------------------------------------------
// Option table helpers
// ---------------------------------------------------------------------------------------------

// Builds one entry of a plugin's option table. `default_value` is in the user-facing text form
// ("5s", "1000", "true") or nullptr; see plugin.h for the types.
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

  // The value of `key`; throws ConfigError when it is absent (an optional option without default).
  const std::string& string(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw ConfigError("option '" + std::string(key) + "' is not set");
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
      throw ConfigError("option '" + std::string(key) + "' is not a whole number: '" + text + "'");
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
// Base classes. Constructors take (Host, const Options&) and must do no I/O.
// ---------------------------------------------------------------------------------------------

class Source {
 public:
  virtual ~Source() = default;
  // Connect. Throw RetryError for a transient failure.
  virtual void open() {}
  // Up to max_records new records, waiting at most `timeout` for the first; nullptr or an empty
  // batch when nothing is pending.
  virtual std::unique_ptr<RecordBatch> poll(size_t max_records,
                                            std::chrono::milliseconds timeout) = 0;
  // Every record with position <= through was delivered.
  virtual void ack(uint64_t through) = 0;
  // The topics the source currently produces to (may be empty when unknown).
  virtual std::vector<std::string> list_topics() { return {}; }
  virtual void close() {}
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual void open() {}
  // Check (or create) a topic before anything is written to it.
  virtual void prepare_topic(std::string_view /*topic*/) {}
  // Start delivering; report every record exactly once through Host::report. If this throws,
  // the host fails every record of the call with the exception's status: report none of them.
  virtual void write(std::span<const p2k_record> records) = 0;
  // Serve delivery reports for up to `timeout`.
  virtual void poll(std::chrono::milliseconds /*timeout*/) {}
  // True once every record written so far has been reported; false if `timeout` ran out.
  virtual bool flush(std::chrono::milliseconds timeout) = 0;
  virtual void close() {}
};

// ---------------------------------------------------------------------------------------------
// Trampolines (implementation detail of the macros below)
// ---------------------------------------------------------------------------------------------

namespace detail {

inline void copy_error(char* err, size_t err_size, const char* message) {
  if (!err || err_size == 0) return;
  size_t n = std::min(std::strlen(message), err_size - 1);
  std::memcpy(err, message, n);
  err[n] = '\0';
}

// Runs f, turning every exception into a status and an error message.
template <class F>
p2k_status guarded(char* err, size_t err_size, F&& f) noexcept {
  try {
    f();
    return P2K_OK;
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

template <class T>
struct SourceTrampolines {
  static T* self(void* p) { return static_cast<T*>(p); }
  static p2k_status create(const p2k_host* host, const p2k_option_value* opts, size_t n, void** out,
                           char* err, size_t es) {
    return guarded(err, es, [&] { *out = new T(Host(host), Options(opts, n)); });
  }
  static p2k_status open(void* p, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->open(); });
  }
  static p2k_status poll(void* p, size_t max, int timeout_ms, p2k_batch* out, char* err,
                         size_t es) {
    return guarded(err, es, [&] {
      out->records = nullptr;
      out->count = 0;
      out->handle = nullptr;
      auto batch = self(p)->poll(max, std::chrono::milliseconds(timeout_ms));
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
    char ignored[1];
    guarded(ignored, sizeof ignored, [&] { self(p)->close(); });
  }
  static void destroy(void* p) { delete self(p); }

  static const p2k_source_ops* ops() {
    static const p2k_source_ops o{sizeof(p2k_source_ops), &create, &open,   &poll, &ack, &release,
                                  &list_topics,           &close,  &destroy};
    return &o;
  }
};

template <class T>
struct SinkTrampolines {
  static T* self(void* p) { return static_cast<T*>(p); }
  static p2k_status create(const p2k_host* host, const p2k_option_value* opts, size_t n, void** out,
                           char* err, size_t es) {
    return guarded(err, es, [&] { *out = new T(Host(host), Options(opts, n)); });
  }
  static p2k_status open(void* p, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->open(); });
  }
  static p2k_status prepare_topic(void* p, p2k_slice topic, char* err, size_t es) {
    return guarded(err, es,
                   [&] { self(p)->prepare_topic(std::string_view(topic.data, topic.size)); });
  }
  static p2k_status write(void* p, const p2k_record* records, size_t count, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->write(std::span<const p2k_record>(records, count)); });
  }
  static void poll(void* p, int timeout_ms) {
    char ignored[1];
    guarded(ignored, sizeof ignored, [&] { self(p)->poll(std::chrono::milliseconds(timeout_ms)); });
  }
  static p2k_status flush(void* p, int timeout_ms, char* err, size_t es) {
    p2k_status status = P2K_OK;
    p2k_status thrown = guarded(err, es, [&] {
      if (!self(p)->flush(std::chrono::milliseconds(timeout_ms))) {
        copy_error(err, es, "flush timed out before every record was reported");
        status = P2K_RETRY;
      }
    });
    return thrown != P2K_OK ? thrown : status;
  }
  static void close(void* p) {
    char ignored[1];
    guarded(ignored, sizeof ignored, [&] { self(p)->close(); });
  }
  static void destroy(void* p) { delete self(p); }

  static const p2k_sink_ops* ops() {
    static const p2k_sink_ops o{sizeof(p2k_sink_ops),
                                &create,
                                &open,
                                &prepare_topic,
                                &write,
                                &poll,
                                &flush,
                                &close,
                                &destroy};
    return &o;
  }
};

template <size_t N>
const p2k_plugin* descriptor(p2k_kind kind, const char* name, const char* version,
                             const char* summary, const p2k_option (&options)[N],
                             const p2k_source_ops* source, const p2k_sink_ops* sink) {
  static const p2k_plugin d{sizeof(p2k_plugin),
                            P2K_ABI_MAJOR,
                            P2K_ABI_MINOR,
                            kind,
                            name,
                            version,
                            summary,
                            options,
                            N,
                            source,
                            sink};
  return &d;
}

}  // namespace detail
}  // namespace pg2kafka::sdk

// Defines the plugin's entry point for a Source subclass. `options` is a static array of
// p2k_option (see sdk::option). Use once per plugin, at namespace scope.
#define P2K_SOURCE_PLUGIN(Class, name, version, summary, options)                   \
  extern "C" P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t, uint32_t) { \
    return ::pg2kafka::sdk::detail::descriptor(                                     \
        P2K_KIND_SOURCE, name, version, summary, options,                           \
        ::pg2kafka::sdk::detail::SourceTrampolines<Class>::ops(), nullptr);         \
  }

// Defines the plugin's entry point for a Sink subclass.
#define P2K_SINK_PLUGIN(Class, name, version, summary, options)                     \
  extern "C" P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t, uint32_t) { \
    return ::pg2kafka::sdk::detail::descriptor(                                     \
        P2K_KIND_SINK, name, version, summary, options, nullptr,                    \
        ::pg2kafka::sdk::detail::SinkTrampolines<Class>::ops());                    \
  }

#endif  // PG2KAFKA_SDK_PLUGIN_HPP
