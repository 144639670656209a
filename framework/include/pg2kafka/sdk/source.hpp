// Source: the base class of a source plugin. Constructors take (Host, const Options&) and must do
// no I/O and start no thread.
#pragma once

#include <pg2kafka/plugin.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pg2kafka/sdk/metrics.hpp>
#include <pg2kafka/sdk/record_batch.hpp>

namespace pg2kafka::sdk {

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
  // Since ABI 1.3 (the host calls these only when it knows them; a source overriding them still
  // loads into older hosts). Called from ANOTHER thread (the host's HTTP thread), concurrently
  // with every other member, and must not block (sdk/metrics.hpp): write the source's metrics;
  // say whether it is ready. The SDK gives the host these operations only when overridden.
  virtual void metrics(MetricWriter& /*out*/) {}
  virtual Health health() { return {}; }
  // Since ABI 1.3, for `pg2kafka status`: the state of the origin as one JSON object (plugin.h,
  // p2k_source_ops.status), on an instance that is never opened. Throw RetryError when the origin
  // is unreachable. The SDK gives the host a status operation only when overridden.
  virtual std::string status() { return {}; }
  // Since ABI 1.4 (plugin.h, p2k_source_ops.park and "Permanent failures and parking"): keep a
  // record that can never be delivered at the origin, durably, before the host acknowledges its
  // position, and hold back the later records of its scope until an operator retries or skips
  // it. On the pipeline thread. The SDK gives the host a park operation only when overridden.
  virtual void park(const p2k_record& /*record*/, const std::string& /*error*/) {}
  // Since ABI 1.4, for `pg2kafka queue` (plugin.h, p2k_source_ops.queue): answer one JSON request
  // with one JSON object, on an instance that is never opened. Throw ConfigError for a request
  // that cannot be done as asked, RetryError when the origin is unreachable. The SDK gives the
  // host a queue operation only when overridden.
  virtual std::string queue(const std::string& /*request*/) { return {}; }
};

}  // namespace pg2kafka::sdk
