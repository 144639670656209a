// Running plugin instances: C++ owners of a source or sink instance that make every call through
// the C operations table, with an error buffer, a guard against exceptions escaping a plugin, and
// (for sinks) the thread-safe queue that collects delivery reports.
#pragma once

#include <pg2kafka/plugin.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "config/option_values.hpp"
#include "metrics/exposition.hpp"
#include "plugin/plugin_loader.hpp"

namespace pg2kafka::plugin {

struct CallResult {
  p2k_status status = P2K_OK;
  std::string message;
  bool ok() const { return status == P2K_OK; }
};

struct Outcome {
  uint64_t position;
  p2k_status status;
  std::string message;
};

// Delivery reports from a sink, pushed from any thread, taken by the pipeline thread.
class OutcomeQueue {
 public:
  void push(Outcome o);
  std::vector<Outcome> take();
  // Waits until an outcome is queued or `timeout` passes.
  void wait(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Outcome> items_;
};

// What the host hands a plugin instance as p2k_host.ctx: who it is, where its reports go, and
// the configuration problems it names through p2k_host.option_error.
struct HostContext {
  std::string name;
  OutcomeQueue* outcomes;  // null for sources
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> problems;  // (option or "", message)
  std::vector<std::pair<std::string, std::string>> take_problems();
};

// Common to sources and sinks: the host struct handed to the plugin, its lifecycle (create, open,
// close, destroy: the destructor closes and destroys) and interrupt.
class InstanceBase {
 public:
  InstanceBase(const InstanceBase&) = delete;
  InstanceBase& operator=(const InstanceBase&) = delete;
  const LoadedPlugin& plugin() const { return *plugin_; }
  const std::string& name() const { return name_; }
  CallResult open();
  // Closes an instance that was opened (once); nothing otherwise.
  void close();
  // Whether the plugin has an interrupt operation the host may call (it answered ABI 1.2 or
  // later and has one).
  bool interruptible() const { return interrupt_op_ != nullptr; }
  // From any thread (the host's stop control): calls the plugin's interrupt, unless it has none
  // or the instance is being destroyed. Returns what the instance is doing, for the log: "blocked
  // in poll for 31.2 s", "idle".
  std::string interrupt();
  // The plugin call running now on the pipeline thread and for how long, or nullopt when idle.
  // From any thread (the /healthz check).
  std::optional<std::pair<std::string, std::chrono::milliseconds>> current_call() const;

  // Since ABI 1.3, from the host's HTTP thread (see plugin.h, "Metrics, health and status"),
  // serialised per instance and against destroy (after which they do nothing).
  bool has_metrics() const { return metrics_op_ != nullptr; }
  bool has_health() const { return health_op_ != nullptr; }
  // Adds the plugin's samples, checked, to `out`.
  void metrics(metrics::Exposition& out);
  // The plugin's readiness: nullopt when it has no health operation (or is destroyed).
  std::optional<CallResult> health();

 protected:
  // `takes_reports`: a sink, whose delivery reports go to outcomes_.
  InstanceBase(PluginHandle plugin, const config::ResolvedOptions& options, bool takes_reports);
  ~InstanceBase();
  // Calls the plugin's create (from the derived class's constructor, with its operations table);
  // throws config::ConfigError (P2K_INVALID_CONFIG, with every problem the plugin named, located
  // in the pipeline file) or PluginError.
  template <class Ops>
  void create(const Ops& ops);
  // Calls `f` (a plugin operation), turning a C++ exception that escaped the plugin into FATAL.
  // For P2K_INVALID_CONFIG the message lists the problems the plugin named, located.
  template <class F>
  CallResult call(const char* operation, F&& f);
  // The same for operations that cannot fail (release, close, a sink's poll): a failure (an
  // escaped exception) is logged.
  template <class F>
  void call_logged(const char* operation, F&& f);
  // Destroys the instance, after which interrupt() does nothing.
  void destroy();

  PluginHandle plugin_;
  std::string name_;
  // Before the context and the instance: reports may come until destroy returned.
  std::unique_ptr<OutcomeQueue> outcomes_;
  config::ResolvedOptions options_;  // as passed to create: locates the plugin's option errors
  std::unique_ptr<HostContext> context_;
  p2k_host host_{};
  void* instance_ = nullptr;
  char error_[1024] = {0};
  p2k_status (*open_op_)(void*, char*, size_t) = nullptr;
  void (*close_op_)(void*) = nullptr;
  void (*destroy_op_)(void*) = nullptr;
  void (*interrupt_op_)(void*) = nullptr;
  void (*metrics_op_)(void*, p2k_metric_fn, void*) = nullptr;
  p2k_status (*health_op_)(void*, char*, size_t) = nullptr;
  bool open_ = false;
  // The calls from other threads (interrupt, metrics, health: shared) against destroy (unique).
  std::shared_mutex concurrent_mutex_;
  std::mutex observe_mutex_;  // metrics and health one at a time
  metrics::PluginSamples samples_;
  bool destroyed_ = false;
  // The operation running now (nullptr: none) and since when, read by interrupt().
  std::atomic<const char*> current_op_{nullptr};
  std::atomic<int64_t> current_since_ns_{0};
};

class SourceInstance : public InstanceBase {
 public:
  // Creates an instance (no I/O). Throws PluginError when create fails with P2K_FATAL, and
  // config::ConfigError for P2K_INVALID_CONFIG.
  SourceInstance(PluginHandle plugin, const config::ResolvedOptions& options);
  CallResult poll(size_t max_records, std::chrono::milliseconds timeout, p2k_batch& batch);
  CallResult ack(uint64_t through);
  void release(void* handle);
  CallResult list_topics(std::vector<std::string>& topics);
  // Since ABI 1.3: whether the source describes its origin for `pg2kafka status`, and the
  // description (one JSON text), on an instance that is not opened.
  bool has_status() const { return status_op_ != nullptr; }
  CallResult status(std::string& json);
  // Since ABI 1.4 (plugin.h, "Permanent failures and parking"): whether the source can park
  // records, parking one (on the pipeline thread), and administering its queue for
  // `pg2kafka queue` (one JSON request, one JSON answer; on an instance that is not opened).
  bool has_park() const { return park_op_ != nullptr; }
  CallResult park(const p2k_record& record, const std::string& error);
  bool has_queue() const { return queue_op_ != nullptr; }
  CallResult queue(const std::string& request, std::string& json);

 private:
  const p2k_source_ops& ops() const { return *plugin_->descriptor().source; }
  p2k_status (*status_op_)(void*, p2k_text_fn, void*, char*, size_t) = nullptr;
  p2k_status (*park_op_)(void*, const p2k_record*, const char*, char*, size_t) = nullptr;
  p2k_status (*queue_op_)(void*, const char*, p2k_text_fn, void*, char*, size_t) = nullptr;
};

class SinkInstance : public InstanceBase {
 public:
  SinkInstance(PluginHandle plugin, const config::ResolvedOptions& options);
  CallResult prepare_topic(const std::string& topic);
  CallResult write(const p2k_record* records, size_t count);
  // Waits for delivery reports for up to `timeout`: through the sink's poll when it has one,
  // else on the outcome queue.
  void wait(std::chrono::milliseconds timeout);
  CallResult flush(std::chrono::milliseconds timeout);
  OutcomeQueue& outcomes() { return *outcomes_; }

 private:
  const p2k_sink_ops& ops() const { return *plugin_->descriptor().sink; }
};

}  // namespace pg2kafka::plugin
