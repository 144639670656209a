#include "sink_health.hpp"

#include "kafka_errors.hpp"

namespace pg2kafka::kafka {
namespace {

// librdkafka's reasons end with " (after 12ms in state CONNECT)": not for the operator.
std::string short_reason(std::string reason) {
  auto at = reason.rfind(" (after ");
  if (at != std::string::npos && !reason.empty() && reason.back() == ')') reason.erase(at);
  return reason;
}

}  // namespace

void SinkHealth::opening() {
  std::lock_guard lock(mutex_);
  phase_ = Phase::kOpening;
  update_suspect();
}

void SinkHealth::opened() {
  std::lock_guard lock(mutex_);
  phase_ = Phase::kOpen;
  open_error_.clear();
  brokers_up_ = 0;
  brokers_total_ = -1;
  down_since_.reset();
  auth_error_.reset();
  last_reason_.clear();
  update_suspect();
}

void SinkHealth::open_failed(const std::string& message, bool unreachable) {
  std::lock_guard lock(mutex_);
  phase_ = Phase::kOpenFailed;
  open_error_ = short_reason(message);
  if (unreachable)
    open_error_ += ": check that the brokers run and that bootstrap_servers names them";
  update_suspect();
}

void SinkHealth::closed() {
  std::lock_guard lock(mutex_);
  phase_ = Phase::kClosed;
  update_suspect();
}

void SinkHealth::broker_error(rd_kafka_resp_err_t err, const std::string& reason,
                              Clock::time_point now) {
  std::lock_guard lock(mutex_);
  std::string text = reason.empty() ? rd_kafka_err2str(err) : short_reason(reason);
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    // "1/1 brokers are down": the reason of the error before it names the broker and the cause.
    if (last_reason_.empty()) last_reason_ = text;
    if (!down_since_) down_since_ = now;
  } else if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE) {
    // One connection failed: maybe the start of an outage, maybe one broker of several (or an
    // idle connection the broker closed). Down until a broker proves reachable: the probe asks
    // at once, and answers well within the grace when another broker is up.
    last_reason_ = text;
    if (!down_since_) down_since_ = now;
  } else if (is_authentication_error(err)) {
    auth_error_ = text;
    last_reason_ = text;
  } else {
    last_reason_ = text;
  }
  update_suspect();
}

void SinkHealth::fatal(std::string message) {
  std::lock_guard lock(mutex_);
  fatal_ = std::move(message);
  update_suspect();
}

void SinkHealth::brokers_seen(bool any_up, int up, int total, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  brokers_up_ = up;
  brokers_total_ = total;
  if (any_up) {
    down_since_.reset();
    auth_error_.reset();
    last_reason_.clear();
  } else if (!down_since_) {
    down_since_ = now;
  }
  update_suspect();
}

void SinkHealth::mark_reachable() {
  std::lock_guard lock(mutex_);
  down_since_.reset();
  auth_error_.reset();
  last_reason_.clear();
  update_suspect();
}

void SinkHealth::update_suspect() {
  suspect_.store(phase_ == Phase::kOpen && !fatal_ && (down_since_ || auth_error_),
                 std::memory_order_relaxed);
}

sdk::Health SinkHealth::health(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  if (fatal_) return {false, *fatal_};
  switch (phase_) {
    case Phase::kNotOpened:
      return {false, "not connected yet: the kafka sink connects to " + bootstrap_ +
                         " when the pipeline opens it"};
    case Phase::kOpening:
      // While open is tried again, the reason the last attempt failed is what matters.
      if (!open_error_.empty()) return {false, open_error_};
      return {false, "connecting to Kafka at " + bootstrap_};
    case Phase::kOpenFailed:
      return {false, open_error_};
    case Phase::kClosed:
      return {false, "the kafka sink is closed"};
    case Phase::kOpen:
      break;
  }
  if (auth_error_)
    return {false, "cannot authenticate to Kafka at " + bootstrap_ + ": " + *auth_error_ +
                       ". Check rdkafka.security.protocol and the rdkafka.sasl.* and "
                       "rdkafka.ssl.* options"};
  std::string reason = last_reason_.empty() ? "every broker is down" : last_reason_;
  if (down_since_) {
    auto down = std::chrono::duration_cast<std::chrono::seconds>(now - *down_since_);
    if (down >= kDownGrace)
      return {false, "no Kafka broker reachable for " + std::to_string(down.count()) + " s (" +
                         reason + "): check that the brokers run and that bootstrap_servers (" +
                         bootstrap_ + ") names them"};
    return {true, "reconnecting to Kafka: " + reason};
  }
  if (brokers_total_ > 0 && brokers_up_ > 0)
    return {true, "connected to " + std::to_string(brokers_up_) + " of " +
                      std::to_string(brokers_total_) + " Kafka broker" +
                      (brokers_total_ == 1 ? "" : "s")};
  return {true, "connected to Kafka at " + bootstrap_};
}

}  // namespace pg2kafka::kafka
