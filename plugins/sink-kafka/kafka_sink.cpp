#include "kafka_sink.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "kafka_errors.hpp"

namespace pg2kafka::kafka {
namespace {

using sdk::view;

using Clock = std::chrono::steady_clock;
using rdk::to_ms;
using std::chrono::milliseconds;

std::string_view header_value(const rd_kafka_message_t& m, std::string_view name) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) || !headers) return {};
  const void* value = nullptr;
  size_t size = 0;
  std::string hname(name);
  if (rd_kafka_header_get_last(headers, hname.c_str(), &value, &size)) return {};
  return std::string_view(static_cast<const char*>(value), size);
}

size_t message_bytes(const rd_kafka_message_t& m) {
  size_t total = m.len + m.key_len;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) || !headers) return total;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; !rd_kafka_header_get_all(headers, i, &name, &value, &size); ++i)
    total += std::strlen(name) + size;
  return total;
}

size_t record_bytes(const p2k_record& r) {
  size_t total = r.key.size + r.value.size + kEventIdHeader.size() + r.id.size;
  for (size_t i = 0; i < r.header_count; ++i)
    total += r.headers[i].name.size + r.headers[i].value.size;
  return total;
}

}  // namespace

KafkaSink::KafkaSink(sdk::Host host, const sdk::Options& options)
    : KafkaSink(host, parse_config(options)) {}

KafkaSink::KafkaSink(sdk::Host host, SinkConfig config)
    : host_(host), config_(std::move(config)), health_(config_.bootstrap_list()) {}

KafkaSink::~KafkaSink() {
  shut_down();
}

void KafkaSink::open() {
  std::lock_guard lock(client_mutex_);
  if (producer_) return;
  health_.opening();
  try {
    open_locked();
  } catch (const sdk::RetryError& e) {
    health_.open_failed(e.what(), true);
    throw;
  } catch (const std::exception& e) {
    health_.open_failed(e.what(), false);
    throw;
  }
  health_.opened();
  start_service();
}

void KafkaSink::open_locked() {
  rdk::ConfPtr conf = producer_conf(config_, [](const std::string& name, const char* reason) {
    throw sdk::ConfigError("librdkafka refused property '" + name + "'" +
                           (is_secret_property(name) ? "" : std::string(": ") + reason));
  });
  rd_kafka_conf_set_opaque(conf.get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaSink::on_delivery);
  rd_kafka_conf_set_error_cb(conf.get(), &KafkaSink::on_error);
  rd_kafka_conf_set_log_cb(conf.get(), &KafkaSink::on_log);
  if (config_.statistics_interval_ms > 0)
    rd_kafka_conf_set_stats_cb(conf.get(), &KafkaSink::on_statistics);
  // A new client counts from 0 again: the metrics go on from the previous client's totals.
  statistics_.new_client();
  try {
    producer_ = rdk::new_producer(std::move(conf));
  } catch (const std::runtime_error& e) {
    throw sdk::ConfigError(std::string("cannot create the Kafka producer: ") + e.what());
  }
  last_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  last_error_text_.clear();

  int brokers = 0;
  auto err = rdk::cluster_metadata(producer_.get(), config_.request_timeout(), brokers);
  if (err) {
    rd_kafka_poll(producer_.get(), 0);  // serves the error callback: tells why
    std::string why = last_error_text_.empty() ? error_text(err) : last_error_text_;
    p2k_status status = open_status(last_error_);
    producer_.reset();
    if (status == P2K_INVALID_CONFIG)
      throw sdk::ConfigError("cannot authenticate to Kafka at " + config_.bootstrap_list() + ": " +
                             why +
                             ". Check rdkafka.security.protocol and the rdkafka.sasl.* and "
                             "rdkafka.ssl.* options");
    throw sdk::RetryError("cannot reach Kafka at " + config_.bootstrap_list() + " within " +
                          std::to_string(config_.request_timeout_ms) + " ms: " + why);
  }
  host_.info("kafka sink connected to " + config_.bootstrap_list() + " (" +
             std::to_string(brokers) + " broker" + (brokers == 1 ? "" : "s") + ")");
}

void KafkaSink::prepare_topic(std::string_view name) {
  std::lock_guard lock(client_mutex_);
  if (!producer_)
    throw sdk::FatalError("kafka sink: prepare_topic before open (a bug in the host)");
  topic(name);
}

KafkaSink::Topic& KafkaSink::topic(std::string_view name) {
  if (last_topic_ && last_topic_->name == name && !last_topic_->recheck) return *last_topic_;
  auto it = topics_.find(name);
  if (it == topics_.end() || it->second.recheck) {
    // Cached only once checked: a failed check is tried again on the next call.
    std::string key(name);
    CheckedTopic checked = check_topic(producer_.get(), config_, host_, key);
    it = topics_.try_emplace(key).first;
    it->second = Topic{key, std::move(checked), false};
  }
  last_topic_ = &it->second;
  return it->second;
}

KafkaSink::Topic& KafkaSink::cached_topic(std::string_view name) {
  if (last_topic_ && last_topic_->name == name) return *last_topic_;
  last_topic_ = &topics_.find(name)->second;
  return *last_topic_;
}

uint32_t KafkaSink::acquire_slot(uint64_t position) {
  uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[index] = Slot{position, true};
  return index;
}

void KafkaSink::release_slot(uint32_t index) {
  slots_[index].in_use = false;
  free_slots_.push_back(index);
}

void KafkaSink::write(std::span<const p2k_record> records) {
  std::lock_guard lock(client_mutex_);
  if (!producer_) throw sdk::FatalError("kafka sink: write before open (a bug in the host)");
  if (fatal_) throw sdk::FatalError(*fatal_);
  // Every topic first: a missing one fails the whole call before anything is enqueued.
  for (const auto& r : records) topic(view(r.topic));

  rd_kafka_t* rk = producer_.get();
  for (size_t i = 0; i < records.size(); ++i) {
    const p2k_record& r = records[i];
    Topic& t = cached_topic(view(r.topic));  // checked by the loop above

    rd_kafka_headers_t* headers = rd_kafka_headers_new(r.header_count + 1);
    for (size_t h = 0; h < r.header_count; ++h) {
      const p2k_header& header = r.headers[h];
      rd_kafka_header_add(headers, header.name.data, static_cast<ssize_t>(header.name.size),
                          header.value.data, static_cast<ssize_t>(header.value.size));
    }
    rd_kafka_header_add(headers, kEventIdHeader.data(), static_cast<ssize_t>(kEventIdHeader.size()),
                        r.id.data, static_cast<ssize_t>(r.id.size));

    uint32_t slot = acquire_slot(r.position);
    rd_kafka_resp_err_t err;
    std::optional<Clock::time_point> queue_deadline;
    while (true) {
      err = rd_kafka_producev(
          rk, RD_KAFKA_V_RKT(t.checked.handle()), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data), r.value.size),
          RD_KAFKA_V_KEY(r.key.data, r.key.data ? r.key.size : 0),
          RD_KAFKA_V_TIMESTAMP(r.timestamp_ms), RD_KAFKA_V_HEADERS(headers),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<uintptr_t>(slot))), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
      // The local queue is full: serve delivery reports (which frees room) for a bounded time.
      auto now = Clock::now();
      if (!queue_deadline) queue_deadline = now + config_.request_timeout();
      if (now >= *queue_deadline) break;
      rd_kafka_poll(rk, 10);
    }
    if (!err) {
      ++in_flight_;
      continue;
    }
    rd_kafka_headers_destroy(headers);  // not taken by librdkafka on failure
    release_slot(slot);
    delivery_errors_.get({rd_kafka_err2name(err)}).add();

    std::string id(view(r.id));
    std::string message;
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      message = "the producer's local queue stayed full for " +
                std::to_string(config_.request_timeout_ms) + " ms (is Kafka slow or unreachable?)";
    } else if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      char limit[32] = "?";
      size_t size = sizeof limit;
      rd_kafka_conf_get(rd_kafka_conf(rk), "message.max.bytes", limit, &size);
      message = "event " + id + " for Kafka topic '" + t.name +
                "' is too large: " + std::to_string(record_bytes(r)) +
                " bytes (key, value and headers), more than the producer's limit of " + limit +
                " bytes (message.max.bytes). Nothing was dropped: the event stays in the source. "
                "Raise rdkafka.message.max.bytes and the topic's max.message.bytes, or make the "
                "event smaller";
    } else if (err == RD_KAFKA_RESP_ERR__FATAL) {
      message = fatal_reason();
    } else if (record_status(err) == P2K_RETRY) {
      message = "cannot enqueue event " + id + " for Kafka: " + error_text(err);
    } else {
      message =
          "cannot enqueue event " + id + " for Kafka topic '" + t.name + "': " + error_text(err);
    }
    // Too large is this record's own failure: reported for it alone, so that a pipeline that
    // parks such records parks only it (plugin.h, "Permanent failures and parking").
    failed_before_send(records, i, record_status(err), message,
                       err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    return;
  }
}

void KafkaSink::failed_before_send(std::span<const p2k_record> records, size_t index,
                                   p2k_status status, const std::string& message,
                                   bool record_only) {
  // Nothing of the call was accepted yet: fail the call, the host fails every record of it
  // (unless the failure is the record's own).
  if (index == 0 && !record_only) {
    if (status == P2K_RETRY) throw sdk::RetryError(message);
    throw sdk::FatalError(message);
  }
  // Part of the call is on its way: report the rest ourselves (the host keeps the order).
  host_.report(records[index].position, status, message);
  for (size_t i = index + 1; i < records.size(); ++i)
    host_.report(records[i].position, P2K_RETRY,
                 "event " + std::string(view(records[i].id)) +
                     " was not sent: an earlier record of the same write could not be enqueued");
}

void KafkaSink::on_delivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  static_cast<KafkaSink*>(opaque)->delivered(*message);
}

void KafkaSink::delivered(const rd_kafka_message_t& m) {
  auto index = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(m._private));
  Slot slot = slots_[index];
  release_slot(index);
  --in_flight_;

  if (!m.err) {
    health_.reachable();
    host_.report(slot.position, P2K_OK);
    return;
  }
  delivery_errors_.get({rd_kafka_err2name(m.err)}).add();
  std::string id(header_value(m, kEventIdHeader));
  std::string topic_name = m.rkt ? rd_kafka_topic_name(m.rkt) : "?";
  p2k_status status = record_status(m.err);
  std::string message;
  if (m.err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
    message = too_large_message(m, id, topic_name);
  } else if (m.err == RD_KAFKA_RESP_ERR__FATAL) {
    message = fatal_reason();
  } else if (status == P2K_RETRY) {
    message = "Kafka did not confirm event " + id + " for topic '" + topic_name +
              "': " + error_text(m.err);
  } else {
    message = "Kafka refused event " + id + " for topic '" + topic_name + "': " + error_text(m.err);
    if (is_authorization_error(m.err))
      message +=
          ". Grant the producer's principal WRITE on the topic (and IDEMPOTENT_WRITE on the "
          "cluster for Kafka before 3.0)";
  }
  if (is_unknown_topic(m.err)) {
    // The topic may have been deleted: check it again before the next write to it.
    if (auto it = topics_.find(topic_name); it != topics_.end()) it->second.recheck = true;
  }
  host_.report(slot.position, status, message);
}

std::string KafkaSink::too_large_message(const rd_kafka_message_t& m, std::string_view id,
                                         const std::string& topic_name) {
  std::optional<int64_t> limit;
  if (auto it = topics_.find(topic_name); it != topics_.end())
    limit = it->second.checked.max_message_bytes(
        std::min(config_.request_timeout(), milliseconds(5000)));
  size_t size = message_bytes(m);
  std::string text = "event " + std::string(id) + " is too large for Kafka topic '" + topic_name +
                     "': the message is " + std::to_string(size) +
                     " bytes (key, value and headers) and the broker accepts at most " +
                     (limit ? std::to_string(*limit) + " bytes" : std::string("its limit")) +
                     " for this topic (max.message.bytes). Nothing was dropped: the event stays "
                     "in the source. Raise the topic's limit, e.g. " +
                     raise_max_message_bytes_command(config_, topic_name) +
                     ", or make the event smaller";
  if (limit && static_cast<int64_t>(size) <= *limit)
    text +=
        ". The message alone fits, but the batch it was sent in did not: set the kafka "
        "sink's batch_size below " +
        std::to_string(*limit);
  return text;
}

std::string KafkaSink::fatal_reason() const {
  if (fatal_) return *fatal_;
  char text[512] = "";
  auto err = producer_ ? rd_kafka_fatal_error(producer_.get(), text, sizeof text)
                       : RD_KAFKA_RESP_ERR_NO_ERROR;
  return "the Kafka producer failed fatally: " + (err ? error_text(err) + ": " + text : "unknown");
}

void KafkaSink::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    char text[512] = "";
    auto original = rd_kafka_fatal_error(rk, text, sizeof text);
    std::string why =
        "the Kafka producer failed fatally and cannot continue: " + error_text(original) + ": " +
        text;
    if (is_producer_fenced(original))
      why += " (another producer with the same identity fenced this one)";
    if (is_authorization_error(original))
      why +=
          ". Grant the producer's principal the permissions it needs (WRITE on the topics; "
          "IDEMPOTENT_WRITE on the cluster for brokers before Kafka 3.0)";
    self->fatal_ = why;
    self->health_.fatal(why);
    self->host_.error(why);
    return;
  }
  std::string text = reason ? reason : rd_kafka_err2str(code);
  // "1/1 brokers are down" follows the error that says why (a refused connection, a failed
  // authentication): keep that one for open's message and verdict.
  if (code != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || !self->last_error_) {
    self->last_error_ = code;
    self->last_error_text_ = text;
  }
  self->health_.broker_error(code, text, Clock::now());
  // librdkafka also logs these through the log callback; one line is enough.
  self->host_.debug(std::string("kafka: ") + rd_kafka_err2name(code) + ": " + text);
}

void KafkaSink::on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  auto* self = static_cast<KafkaSink*>(rd_kafka_opaque(rk));
  if (!self) return;
  p2k_log_level l = level <= 4 ? P2K_LOG_WARN : level <= 6 ? P2K_LOG_INFO : P2K_LOG_DEBUG;
  self->host_.log(l, std::string("librdkafka ") + facility + ": " + text);
}

void KafkaSink::poll(milliseconds timeout) {
  std::unique_lock lock(client_mutex_);
  if (producer_) {
    rd_kafka_poll(producer_.get(), to_ms(timeout));
  } else {
    lock.unlock();
    std::this_thread::sleep_for(timeout);
  }
}

bool KafkaSink::flush(milliseconds timeout) {
  std::lock_guard lock(client_mutex_);
  if (!producer_) return in_flight_ == 0;
  auto deadline = Clock::now() + timeout;
  rd_kafka_flush(producer_.get(), to_ms(timeout));
  // rd_kafka_flush may return once the queues are empty; the barrier is our own count.
  while (in_flight_ > 0) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    rd_kafka_poll(producer_.get(), to_ms(std::min(left, milliseconds(100))));
  }
  return in_flight_ == 0;
}

void KafkaSink::close() {
  shut_down();
}

void KafkaSink::shut_down() {
  stop_service();
  std::lock_guard lock(client_mutex_);
  shut_down_locked();
}

void KafkaSink::shut_down_locked() {
  if (!producer_) return;
  health_.closed();
  rd_kafka_t* rk = producer_.get();
  // What the host's flush did not see confirmed is given up: purged messages come back as
  // delivery reports (RETRY), even if a purged in-flight one reached the broker (a duplicate).
  rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  auto deadline = Clock::now() + milliseconds(5000);
  while (in_flight_ > 0 && Clock::now() < deadline) rd_kafka_poll(rk, 50);
  last_topic_ = nullptr;
  topics_.clear();
  producer_.reset();
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].in_use) continue;
    host_.report(slots_[i].position, P2K_RETRY,
                 "the kafka sink closed before Kafka confirmed the record");
    release_slot(static_cast<uint32_t>(i));
  }
  in_flight_ = 0;
}

// ---- statistics, the service thread, metrics and health ----

int KafkaSink::on_statistics(rd_kafka_t*, char* json, size_t json_len, void* opaque) {
  try {
    static_cast<KafkaSink*>(opaque)->statistics_received(std::string_view(json, json_len));
  } catch (...) {
    // Out of memory: these statistics are lost, the next ones may do.
  }
  return 0;  // librdkafka frees the text
}

void KafkaSink::statistics_received(std::string_view json) {
  auto now = Clock::now();
  Statistics s;
  try {
    s = parse_statistics(json);
  } catch (const std::invalid_argument& e) {
    // Figures keep their last values; say it once, a newer librdkafka may have changed a field.
    if (!statistics_warned_)
      host_.warn(std::string("kafka sink: ignoring librdkafka's statistics (the broker and queue "
                             "metrics stay as they were): ") +
                 e.what());
    statistics_warned_ = true;
    return;
  }
  statistics_.update(s, now);
  health_.brokers_seen(s.any_up(), s.learned_up(), s.learned_total(), now);
}

void KafkaSink::start_service() {
  {
    std::lock_guard lock(service_mutex_);
    service_stop_ = false;
  }
  service_ = std::thread([this, rk = producer_.get()] { serve(rk); });
}

void KafkaSink::stop_service() {
  if (!service_.joinable()) return;
  {
    std::lock_guard lock(service_mutex_);
    service_stop_ = true;
  }
  service_wake_.notify_all();
  service_.join();
}

void KafkaSink::serve(rd_kafka_t* rk) {
  // How often errors and statistics are served while nothing is in flight, and how often the
  // cluster is asked for metadata while no broker is reachable (each request waits at most a
  // second, which bounds how long close waits for this thread).
  constexpr milliseconds kServeInterval(200), kProbeInterval(1000);
  const milliseconds probe_timeout = std::min(config_.request_timeout(), milliseconds(1000));
  auto next_probe = Clock::now();
  std::unique_lock lock(service_mutex_);
  while (!service_wake_.wait_for(lock, kServeInterval, [&] { return service_stop_; })) {
    lock.unlock();
    try {
      {
        // Never waits for the pipeline thread: when it holds the lock, it serves the callbacks.
        std::unique_lock client(client_mutex_, std::try_to_lock);
        if (client.owns_lock() && in_flight_ == 0) rd_kafka_poll(rk, 0);
      }
      if (health_.probe_wanted() && Clock::now() >= next_probe) {
        int brokers = 0;
        if (!rdk::cluster_metadata(rk, probe_timeout, brokers)) health_.reachable();
        next_probe = Clock::now() + kProbeInterval;
      }
    } catch (...) {
      // Out of memory in a callback: try again at the next round.
    }
    lock.lock();
  }
}

void KafkaSink::metrics(sdk::MetricWriter& out) {
  statistics_.write(out, Clock::now());
  delivery_errors_.write(out);
}

sdk::Health KafkaSink::health() {
  return health_.health(Clock::now());
}

}  // namespace pg2kafka::kafka
