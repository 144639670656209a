// Implementation detail of P2K_SOURCE_PLUGIN / P2K_SINK_PLUGIN: the trampolines that turn the C
// operations into calls of the plugin's class (and exceptions into statuses), and the ABI version
// negotiation of the entry point.
#pragma once

#include <pg2kafka/plugin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include <pg2kafka/sdk/errors.hpp>
#include <pg2kafka/sdk/host.hpp>
#include <pg2kafka/sdk/json.hpp>
#include <pg2kafka/sdk/options.hpp>
#include <pg2kafka/sdk/record_batch.hpp>
#include <pg2kafka/sdk/sink.hpp>
#include <pg2kafka/sdk/source.hpp>

namespace pg2kafka::sdk {

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

// Whether T overrides metrics, health (of Base) and Source::status.
template <class T, class Base>
constexpr bool overrides_metrics =
    !std::is_same_v<decltype(&T::metrics), void (Base::*)(MetricWriter&)>;
template <class T, class Base>
constexpr bool overrides_health = !std::is_same_v<decltype(&T::health), Health (Base::*)()>;
template <class T>
constexpr bool overrides_status = !std::is_same_v<decltype(&T::status), std::string (Source::*)()>;
template <class T>
constexpr bool overrides_park =
    !std::is_same_v<decltype(&T::park), void (Source::*)(const p2k_record&, const std::string&)>;
template <class T>
constexpr bool overrides_queue =
    !std::is_same_v<decltype(&T::queue), std::string (Source::*)(const std::string&)>;

// What sources and sinks share: the instance handed to the host, create, open, close, destroy,
// interrupt, metrics and health. `Base` is Source or Sink.
template <class T, class Base>
struct InstanceTrampolines {
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
  // No interrupt operation unless the class has one of its own: the host then knows that a
  // blocked call cannot be interrupted.
  static constexpr void (*interrupt_op())(void*) {
    return overrides_interrupt<T, Base> ? &interrupt : nullptr;
  }
  static void metrics(void* p, p2k_metric_fn fn, void* ctx) {
    logged(host(p), "metrics", [&] {
      MetricWriter out(fn, ctx);
      self(p)->metrics(out);
    });
  }
  static constexpr void (*metrics_op())(void*, p2k_metric_fn, void*) {
    return overrides_metrics<T, Base> ? &metrics : nullptr;
  }
  static p2k_status health(void* p, char* message, size_t size) {
    Health h;
    p2k_status status = guarded(message, size, [&] { h = self(p)->health(); });
    if (status != P2K_OK) return P2K_RETRY;  // the exception's message says why
    copy_error(message, size, h.message.c_str());
    return h.ready ? P2K_OK : P2K_RETRY;
  }
  static constexpr p2k_status (*health_op())(void*, char*, size_t) {
    return overrides_health<T, Base> ? &health : nullptr;
  }
};

template <class T>
struct SourceTrampolines : InstanceTrampolines<T, Source> {
  using Common = InstanceTrampolines<T, Source>;
  using Common::self;
  static p2k_status poll(void* p, size_t max, int timeout_ms, p2k_batch* out, char* err,
                         size_t es) {
    return guarded(err, es, [&] {
      out->records = nullptr;
      out->count = 0;
      out->handle = nullptr;
      if (P2K_HAS_FIELD(out, p2k_batch, unusable)) out->unusable = nullptr;
      if (max == 0) return;
      auto batch = self(p)->poll(max, std::chrono::milliseconds(std::max(timeout_ms, 0)));
      if (!batch || batch->empty()) return;
      const char* const* unusable = batch->unusable();
      if (unusable && !P2K_HAS_FIELD(out, p2k_batch, unusable)) {
        // A host before 1.4 cannot set such a record aside: fail the poll, as sources did then.
        for (size_t i = 0; i < batch->size(); ++i)
          if (unusable[i]) throw FatalError(unusable[i]);
      }
      if (batch->has_null_values() && Common::host(p).abi_minor() < 5)
        throw FatalError(
            "this source returned a record with a null value (a tombstone), which this host "
            "(ABI 1." +
            std::to_string(Common::host(p).abi_minor()) +
            ") cannot tell from an empty value: upgrade pg2kafka to a release of ABI 1.5 or later, "
            "or turn off what makes the source send null values");
      out->records = batch->records();
      out->count = batch->size();
      if (unusable) out->unusable = unusable;
      out->handle = batch.release();
    });
  }
  static p2k_status ack(void* p, uint64_t through, char* err, size_t es) {
    return guarded(err, es, [&] { self(p)->ack(through); });
  }
  static void release(void*, void* handle) { delete static_cast<RecordBatch*>(handle); }
  static p2k_status status(void* p, p2k_text_fn fn, void* ctx, char* err, size_t es) {
    return guarded(err, es, [&] {
      std::string text = self(p)->status();
      fn(ctx, p2k_slice{text.data(), text.size()});
    });
  }
  static p2k_status park(void* p, const p2k_record* record, const char* error, char* err,
                         size_t es) {
    return guarded(err, es, [&] { self(p)->park(*record, error ? error : ""); });
  }
  static p2k_status queue(void* p, const char* request, p2k_text_fn fn, void* ctx, char* err,
                          size_t es) {
    return guarded(err, es, [&] {
      std::string text = self(p)->queue(request ? request : "");
      fn(ctx, p2k_slice{text.data(), text.size()});
    });
  }
  static p2k_status list_topics(void* p, p2k_topic_fn fn, void* ctx, char* err, size_t es) {
    return guarded(err, es, [&] {
      for (const auto& t : self(p)->list_topics()) fn(ctx, p2k_slice{t.data(), t.size()});
    });
  }

  static const p2k_source_ops* ops() {
    static const p2k_source_ops o{sizeof(p2k_source_ops),
                                  &Common::create,
                                  &Common::open,
                                  &poll,
                                  &ack,
                                  &release,
                                  &list_topics,
                                  &Common::close,
                                  &Common::destroy,
                                  Common::interrupt_op(),
                                  Common::metrics_op(),
                                  Common::health_op(),
                                  overrides_status<T> ? &status : nullptr,
                                  overrides_park<T> ? &park : nullptr,
                                  overrides_queue<T> ? &queue : nullptr};
    return &o;
  }
};

template <class T>
struct SinkTrampolines : InstanceTrampolines<T, Sink> {
  using Common = InstanceTrampolines<T, Sink>;
  using Common::host;
  using Common::self;
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

  static const p2k_sink_ops* ops() {
    // No poll operation unless the class has one of its own: an empty poll would make the host
    // spin instead of waiting for reports (plugin.h, p2k_sink_ops.poll).
    static const p2k_sink_ops o{sizeof(p2k_sink_ops),
                                &Common::create,
                                &Common::open,
                                &prepare_topic,
                                &write,
                                overrides_poll<T> ? &poll : nullptr,
                                &flush,
                                &Common::close,
                                &Common::destroy,
                                Common::interrupt_op(),
                                Common::metrics_op(),
                                Common::health_op()};
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
