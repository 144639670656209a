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
// This is the one header a plugin includes. The SDK's parts, each in its own header under sdk/:
//   errors.hpp          RetryError, FatalError, ConfigError
//   json.hpp            slices (view, slice) and JSON text (append_json_string, append_json...)
//   options.hpp         the option table (sdk::option) and typed option values (sdk::Options)
//   host.hpp            the host handle: logging, delivery reports
//   record_batch.hpp    RecordBatch: the records a source returns
//   source.hpp, sink.hpp  the base classes
//   metrics.hpp         Counter, Gauge, Histogram and their labelled families; MetricWriter and
//                       Health, for the metrics and health operations (ABI 1.3)
//   text.hpp            lower(), split(), utf8_length_at()
//   backoff.hpp         exponential backoff for retries of a plugin's own
//   async_delivery.hpp  helpers for sinks that deliver on threads of their own (OwnedRecord,
//                       InFlight, AsyncDelivery)
//   detail/entry_point.hpp  the trampolines and the ABI version negotiation behind the macros
// and here, the P2K_SOURCE_PLUGIN / P2K_SINK_PLUGIN macros.
#ifndef PG2KAFKA_SDK_PLUGIN_HPP
#define PG2KAFKA_SDK_PLUGIN_HPP

#include <pg2kafka/plugin.h>

#include <pg2kafka/sdk/async_delivery.hpp>
#include <pg2kafka/sdk/backoff.hpp>
#include <pg2kafka/sdk/detail/entry_point.hpp>
#include <pg2kafka/sdk/errors.hpp>
#include <pg2kafka/sdk/host.hpp>
#include <pg2kafka/sdk/json.hpp>
#include <pg2kafka/sdk/metrics.hpp>
#include <pg2kafka/sdk/options.hpp>
#include <pg2kafka/sdk/record_batch.hpp>
#include <pg2kafka/sdk/sink.hpp>
#include <pg2kafka/sdk/source.hpp>
#include <pg2kafka/sdk/text.hpp>

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
