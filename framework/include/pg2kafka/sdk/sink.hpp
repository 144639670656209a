// Sink: the base class of a sink plugin. Constructors take (Host, const Options&) and must do no
// I/O and start no thread.
#pragma once

#include <pg2kafka/plugin.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

#include <pg2kafka/sdk/metrics.hpp>

namespace pg2kafka::sdk {

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
  // Since ABI 1.3: as Source::metrics and Source::health (another thread, must not block). A sink
  // is not ready while its destination cannot take records.
  virtual void metrics(MetricWriter& /*out*/) {}
  virtual Health health() { return {}; }
};

}  // namespace pg2kafka::sdk
