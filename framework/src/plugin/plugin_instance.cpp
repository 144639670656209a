#include "plugin/plugin_instance.hpp"

#include <algorithm>
#include <limits>

#include "config/diagnostics.hpp"
#include "runtime/log.hpp"

namespace pg2kafka::plugin {
namespace {

void host_log(void* ctx, p2k_log_level level, const char* message) {
  auto* c = static_cast<HostContext*>(ctx);
  log::write(level, c->name, message ? message : "");
}

void host_report(void* ctx, uint64_t position, p2k_status status, const char* message) {
  auto* c = static_cast<HostContext*>(ctx);
  if (c->outcomes) c->outcomes->push(Outcome{position, status, message ? message : ""});
}

// A timeout as the C operations take it: whole milliseconds, never negative (plugin.h).
int timeout_ms(std::chrono::milliseconds t) {
  return static_cast<int>(std::clamp<int64_t>(t.count(), 0, std::numeric_limits<int>::max()));
}

void host_option_error(void* ctx, const char* key, const char* message) {
  auto* c = static_cast<HostContext*>(ctx);
  std::lock_guard lock(c->mutex);
  c->problems.emplace_back(key ? key : "", message ? message : "no reason given");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> HostContext::take_problems() {
  std::lock_guard lock(mutex);
  return std::exchange(problems, {});
}

void OutcomeQueue::push(Outcome o) {
  {
    std::lock_guard lock(mutex_);
    items_.push_back(std::move(o));
  }
  cv_.notify_one();
}

std::vector<Outcome> OutcomeQueue::take() {
  std::lock_guard lock(mutex_);
  return std::exchange(items_, {});
}

void OutcomeQueue::wait(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return !items_.empty(); });
}

InstanceBase::InstanceBase(PluginHandle plugin, const config::ResolvedOptions& options,
                           bool takes_reports)
    : plugin_(std::move(plugin)),
      name_(plugin_->name()),
      outcomes_(takes_reports ? std::make_unique<OutcomeQueue>() : nullptr),
      options_(options),
      context_(std::make_unique<HostContext>()),
      samples_(name_, [](const std::string& m) { log::warn(m); }) {
  context_->name = name_;
  context_->outcomes = outcomes_.get();
  host_.struct_size = sizeof(p2k_host);
  host_.abi_major = P2K_ABI_MAJOR;
  host_.abi_minor = P2K_ABI_MINOR;
  host_.ctx = context_.get();
  host_.log = &host_log;
  host_.report = takes_reports ? &host_report : nullptr;
  host_.option_error = &host_option_error;
}

InstanceBase::~InstanceBase() {
  close();
  destroy();
}

CallResult InstanceBase::open() {
  auto r = call("open", [&] { return open_op_(instance_, error_, sizeof error_); });
  open_ = open_ || r.ok();
  return r;
}

void InstanceBase::close() {
  if (!open_) return;
  open_ = false;
  call_logged("close", [&] {
    close_op_(instance_);
    return P2K_OK;
  });
}

std::string InstanceBase::interrupt() {
  std::shared_lock lock(concurrent_mutex_);
  if (destroyed_) return "closed";
  const char* op = current_op_.load();
  std::string doing = "idle";
  if (op) {
    auto since =
        std::chrono::steady_clock::time_point(std::chrono::nanoseconds(current_since_ns_.load()));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - since)
                  .count();
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", static_cast<double>(ms) / 1000.0);
    doing = std::string("blocked in ") + op + " for " + seconds + " s";
  }
  if (!interrupt_op_) return doing + (op ? ", and it cannot be interrupted" : "");
  try {
    interrupt_op_(instance_);
  } catch (...) {
    log::error("plugin '" + name_ + "' let an exception escape from interrupt");
  }
  return doing;
}

std::optional<std::pair<std::string, std::chrono::milliseconds>> InstanceBase::current_call()
    const {
  const char* op = current_op_.load();
  if (!op) return std::nullopt;
  auto since =
      std::chrono::steady_clock::time_point(std::chrono::nanoseconds(current_since_ns_.load()));
  return std::make_pair(std::string(op), std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - since));
}

void InstanceBase::metrics(metrics::Exposition& out) {
  std::shared_lock lock(concurrent_mutex_);
  if (destroyed_ || !metrics_op_) return;
  std::lock_guard one_at_a_time(observe_mutex_);
  samples_.begin(out);
  try {
    metrics_op_(instance_, &metrics::PluginSamples::callback, &samples_);
  } catch (...) {
    log::error("plugin '" + name_ + "' let an exception escape from metrics");
  }
}

std::optional<CallResult> InstanceBase::health() {
  std::shared_lock lock(concurrent_mutex_);
  if (destroyed_ || !health_op_) return std::nullopt;
  std::lock_guard one_at_a_time(observe_mutex_);
  char message[512] = {0};
  CallResult r;
  try {
    r.status = health_op_(instance_, message, sizeof message);
  } catch (...) {
    r.status = P2K_RETRY;
    std::snprintf(message, sizeof message, "plugin '%s' let an exception escape from health",
                  name_.c_str());
  }
  message[sizeof message - 1] = '\0';
  r.message = message;
  if (r.status != P2K_OK && r.status != P2K_RETRY) {
    r.message = "health returned status " + std::to_string(static_cast<int>(r.status)) +
                (r.message.empty() ? "" : ": " + r.message);
    r.status = P2K_RETRY;
  }
  return r;
}

template <class F>
CallResult InstanceBase::call(const char* operation, F&& f) {
  error_[0] = '\0';
  context_->take_problems();
  CallResult r;
  current_since_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  current_op_ = operation;
  struct Done {
    std::atomic<const char*>& op;
    ~Done() { op = nullptr; }
  } done{current_op_};
  try {
    r.status = f();
  } catch (const std::exception& e) {
    r.status = P2K_FATAL;
    r.message =
        "plugin '" + name_ + "' let an exception escape from " + operation + ": " + e.what();
    return r;
  } catch (...) {
    r.status = P2K_FATAL;
    r.message = "plugin '" + name_ + "' let an exception escape from " + operation;
    return r;
  }
  auto problems = context_->take_problems();
  if (r.status != P2K_OK) {
    error_[sizeof error_ - 1] = '\0';
    r.message = error_[0] ? error_ : std::string(operation) + " failed without a message";
    if (r.status < P2K_OK || r.status > P2K_INVALID_CONFIG) {
      r.message = "plugin '" + name_ + "' returned unknown status " +
                  std::to_string(static_cast<int>(r.status)) + " from " + operation + ": " +
                  r.message;
      r.status = P2K_FATAL;
    }
  }
  if (r.status == P2K_INVALID_CONFIG && !problems.empty()) {
    r.message.clear();
    for (const auto& [key, message] : problems)
      r.message += (r.message.empty() ? "" : "; ") + options_.diagnostic(key, message).format();
  }
  return r;
}

template <class F>
void InstanceBase::call_logged(const char* operation, F&& f) {
  auto r = call(operation, std::forward<F>(f));
  if (!r.ok()) log::error(r.message);
}

void InstanceBase::destroy() {
  std::unique_lock lock(concurrent_mutex_);
  if (destroyed_ || !instance_) return;
  destroyed_ = true;
  try {
    destroy_op_(instance_);
  } catch (...) {
    log::error("plugin '" + name_ + "' let an exception escape from destroy");
  }
}

template <class Ops>
void InstanceBase::create(const Ops& ops) {
  auto values = options_.c_values();
  error_[0] = '\0';
  context_->take_problems();
  void* instance = nullptr;
  p2k_status status;
  try {
    status = ops.create(&host_, values.data(), values.size(), &instance, error_, sizeof error_);
  } catch (const std::exception& e) {
    throw PluginError("plugin '" + name_ + "' let an exception escape from create: " + e.what());
  } catch (...) {
    throw PluginError("plugin '" + name_ + "' let an exception escape from create");
  }
  auto problems = context_->take_problems();
  if (status == P2K_OK && instance) {
    instance_ = instance;
    open_op_ = ops.open;
    close_op_ = ops.close;
    destroy_op_ = ops.destroy;
    // Rule 5 of plugin.h "Versioning": nothing a later minor than the answered one added.
    if (plugin_->abi_minor() >= 2 && ops.struct_size >= P2K_SIZE_THROUGH(Ops, interrupt))
      interrupt_op_ = ops.interrupt;
    if (plugin_->abi_minor() >= 3 && ops.struct_size >= P2K_SIZE_THROUGH(Ops, health)) {
      metrics_op_ = ops.metrics;
      health_op_ = ops.health;
    }
    return;
  }
  error_[sizeof error_ - 1] = '\0';
  std::string message = error_[0] ? error_ : "create failed without a message";
  if (status == P2K_INVALID_CONFIG) {
    config::Diagnostics d;
    for (const auto& [key, text] : problems)
      d.add(options_.diagnostic(key, key.empty() ? "plugin '" + name_ + "': " + text : text));
    if (problems.empty())
      d.add(options_.diagnostic({}, "plugin '" + name_ + "' rejected its options: " + message));
    throw config::ConfigError(std::move(d));
  }
  if (status == P2K_OK) message = "create returned no instance";
  throw PluginError("plugin '" + name_ + "' could not be created: " + message);
}

// ---------------------------------------------------------------------------------------------

SourceInstance::SourceInstance(PluginHandle plugin, const config::ResolvedOptions& options)
    : InstanceBase(std::move(plugin), options, /*takes_reports=*/false) {
  create(ops());
  if (plugin_->abi_minor() >= 3 && ops().struct_size >= P2K_SIZE_THROUGH(p2k_source_ops, status))
    status_op_ = ops().status;
  if (plugin_->abi_minor() >= 4 && ops().struct_size >= P2K_SIZE_THROUGH(p2k_source_ops, queue)) {
    park_op_ = ops().park;
    queue_op_ = ops().queue;
  }
}

CallResult SourceInstance::park(const p2k_record& record, const std::string& error) {
  if (!park_op_) return {P2K_FATAL, "source '" + name_ + "' cannot park records"};
  return call("park",
              [&] { return park_op_(instance_, &record, error.c_str(), error_, sizeof error_); });
}

CallResult SourceInstance::queue(const std::string& request, std::string& json) {
  json.clear();
  if (!queue_op_) return {P2K_FATAL, "source '" + name_ + "' has no queue to administer"};
  auto collect = [](void* c, p2k_slice text) {
    if (text.data) static_cast<std::string*>(c)->append(text.data, text.size);
  };
  return call("queue", [&] {
    return queue_op_(instance_, request.c_str(), collect, &json, error_, sizeof error_);
  });
}

CallResult SourceInstance::status(std::string& json) {
  json.clear();
  if (!status_op_) return {P2K_FATAL, "source '" + name_ + "' cannot describe its state"};
  auto collect = [](void* c, p2k_slice text) {
    if (text.data) static_cast<std::string*>(c)->append(text.data, text.size);
  };
  return call("status",
              [&] { return status_op_(instance_, collect, &json, error_, sizeof error_); });
}

CallResult SourceInstance::poll(size_t max_records, std::chrono::milliseconds timeout,
                                p2k_batch& batch) {
  batch = p2k_batch{sizeof(p2k_batch), nullptr, 0, nullptr, nullptr};
  auto r = call("poll", [&] {
    return ops().poll(instance_, max_records, timeout_ms(timeout), &batch, error_, sizeof error_);
  });
  // Rule 5 of plugin.h "Versioning": a field of a later minor than the answered one means nothing.
  if (plugin_->abi_minor() < 4) batch.unusable = nullptr;
  if (r.ok() && batch.count > 0 && !batch.records) {
    r.status = P2K_FATAL;
    r.message = "plugin '" + name_ + "' returned " + std::to_string(batch.count) +
                " records without a records pointer";
  }
  if (r.ok() && batch.count > max_records) {
    r.status = P2K_FATAL;
    r.message = "plugin '" + name_ + "' returned " + std::to_string(batch.count) +
                " records when asked for at most " + std::to_string(max_records);
  }
  return r;
}

CallResult SourceInstance::ack(uint64_t through) {
  return call("ack", [&] { return ops().ack(instance_, through, error_, sizeof error_); });
}

void SourceInstance::release(void* handle) {
  call_logged("release", [&] {
    ops().release(instance_, handle);
    return P2K_OK;
  });
}

CallResult SourceInstance::list_topics(std::vector<std::string>& topics) {
  if (!ops().list_topics) return {};
  auto collect = [](void* c, p2k_slice topic) {
    static_cast<std::vector<std::string>*>(c)->emplace_back(topic.data, topic.size);
  };
  return call("list_topics", [&] {
    return ops().list_topics(instance_, collect, &topics, error_, sizeof error_);
  });
}

// ---------------------------------------------------------------------------------------------

SinkInstance::SinkInstance(PluginHandle plugin, const config::ResolvedOptions& options)
    : InstanceBase(std::move(plugin), options, /*takes_reports=*/true) {
  create(ops());
}

CallResult SinkInstance::prepare_topic(const std::string& topic) {
  if (!ops().prepare_topic) return {};
  return call("prepare_topic", [&] {
    return ops().prepare_topic(instance_, p2k_slice{topic.data(), topic.size()}, error_,
                               sizeof error_);
  });
}

CallResult SinkInstance::write(const p2k_record* records, size_t count) {
  return call("write",
              [&] { return ops().write(instance_, records, count, error_, sizeof error_); });
}

void SinkInstance::wait(std::chrono::milliseconds timeout) {
  if (ops().poll) {
    call_logged("poll", [&] {
      ops().poll(instance_, timeout_ms(timeout));
      return P2K_OK;
    });
  } else {
    outcomes_->wait(timeout);
  }
}

CallResult SinkInstance::flush(std::chrono::milliseconds timeout) {
  return call("flush",
              [&] { return ops().flush(instance_, timeout_ms(timeout), error_, sizeof error_); });
}

}  // namespace pg2kafka::plugin
