#include "kafka_stats.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace pg2kafka::kafka {
namespace {

namespace json = boost::json;

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("librdkafka statistics: " + what);
}

// The number `key` of `o` as an int64 (0 when missing); librdkafka writes integers only.
int64_t integer(const json::object& o, std::string_view key, std::string_view where) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64())
    return v->get_uint64() > static_cast<uint64_t>(INT64_MAX)
               ? INT64_MAX
               : static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  invalid(std::string(where) + "\"" + std::string(key) + "\" is not a number");
}

// A counter: never negative.
uint64_t count(const json::object& o, std::string_view key, std::string_view where) {
  int64_t v = integer(o, key, where);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

std::string text(const json::object& o, std::string_view key, std::string_view where) {
  const json::value* v = o.if_contains(key);
  if (!v) return {};
  if (!v->is_string()) invalid(std::string(where) + "\"" + std::string(key) + "\" is not a string");
  return std::string(v->get_string());
}

const json::object* object(const json::object& o, std::string_view key, std::string_view where) {
  const json::value* v = o.if_contains(key);
  if (!v) return nullptr;
  if (!v->is_object())
    invalid(std::string(where) + "\"" + std::string(key) + "\" is not an object");
  return &v->get_object();
}

BrokerStatistics broker(const std::string& key, const json::value& value) {
  std::string where = "broker \"" + key + "\": ";
  if (!value.is_object()) invalid(where + "not an object");
  const json::object& o = value.get_object();
  BrokerStatistics b;
  b.name = text(o, "name", where);
  if (b.name.empty()) b.name = key;
  b.nodeid = integer(o, "nodeid", where);
  b.source = text(o, "source", where);
  b.state = text(o, "state", where);
  b.outbuf_cnt = integer(o, "outbuf_cnt", where);
  b.waitresp_cnt = integer(o, "waitresp_cnt", where);
  b.tx = count(o, "tx", where);
  b.txerrs = count(o, "txerrs", where);
  b.txretries = count(o, "txretries", where);
  b.req_timeouts = count(o, "req_timeouts", where);
  b.connects = count(o, "connects", where);
  b.disconnects = count(o, "disconnects", where);
  if (const json::object* rtt = object(o, "rtt", where)) {
    std::string rtt_where = where + "rtt: ";
    b.rtt_cnt = integer(*rtt, "cnt", rtt_where);
    b.rtt_avg_us = integer(*rtt, "avg", rtt_where);
    b.rtt_p99_us = integer(*rtt, "p99", rtt_where);
  }
  return b;
}

}  // namespace

int Statistics::learned_up() const {
  int n = 0;
  for (const auto& b : brokers) n += b.learned() && b.up();
  return n;
}

int Statistics::learned_total() const {
  int n = 0;
  for (const auto& b : brokers) n += b.learned();
  return n;
}

bool Statistics::any_up() const {
  for (const auto& b : brokers)
    if (b.real() && b.up()) return true;
  return false;
}

Statistics parse_statistics(std::string_view text_in) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text_in.data(), text_in.size()), ec);
  if (ec) invalid("not JSON: " + ec.message());
  if (!root.is_object()) invalid("not a JSON object");
  const json::object& o = root.get_object();
  if (!o.contains("ts")) invalid("no \"ts\" member");
  const json::object* brokers = object(o, "brokers", "");
  if (!brokers) invalid("no \"brokers\" member");

  Statistics s;
  s.ts_us = integer(o, "ts", "");
  s.msg_cnt = integer(o, "msg_cnt", "");
  s.msg_size = integer(o, "msg_size", "");
  s.msg_max = integer(o, "msg_max", "");
  s.msg_size_max = integer(o, "msg_size_max", "");
  s.txmsgs = count(o, "txmsgs", "");
  s.txmsg_bytes = count(o, "txmsg_bytes", "");
  s.brokers.reserve(brokers->size());
  for (const auto& [key, value] : *brokers) s.brokers.push_back(broker(key, value));
  return s;
}

// ---- StatisticsMetrics ----

void StatisticsMetrics::new_client() {
  std::lock_guard lock(mutex_);
  for (const auto& [key, value] : last_) base_[key] += value;
  last_.clear();
}

double StatisticsMetrics::total(const std::string& key, uint64_t value) {
  uint64_t& last = last_[key];
  uint64_t& base = base_[key];
  if (value < last) base += last;  // the client's counter restarted
  last = value;
  return static_cast<double>(base + value);
}

void StatisticsMetrics::update(const Statistics& s, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Snapshot snap;
  snap.received = now;
  snap.queue_messages = static_cast<double>(s.msg_cnt);
  snap.queue_bytes = static_cast<double>(s.msg_size);
  snap.queue_max_messages = static_cast<double>(s.msg_max);
  snap.queue_max_bytes = static_cast<double>(s.msg_size_max);
  snap.transmitted_messages = total("txmsgs", s.txmsgs);
  snap.transmitted_bytes = total("txmsg_bytes", s.txmsg_bytes);
  for (const auto& b : s.brokers) {
    // Bootstrap brokers (nodeid -1) are a second connection to brokers that are also listed
    // under their id, used for the first metadata request: idle or down most of the time, their
    // series would only be noise. The internal and logical ones are no connections at all.
    if (!b.learned()) continue;
    Broker out;
    out.name = b.name;
    out.up = b.up();
    out.requests_in_flight = static_cast<double>(b.outbuf_cnt + b.waitresp_cnt);
    if (b.rtt_cnt > 0) last_rtt_[b.name] = {b.rtt_avg_us / 1e6, b.rtt_p99_us / 1e6};
    if (auto it = last_rtt_.find(b.name); it != last_rtt_.end()) {
      out.rtt_avg_s = it->second.first;
      out.rtt_p99_s = it->second.second;
    }
    std::string key = "\x1f" + b.name;
    out.requests = total("tx" + key, b.tx);
    out.transmit_errors = total("txerrs" + key, b.txerrs);
    out.transmit_retries = total("txretries" + key, b.txretries);
    out.request_timeouts = total("req_timeouts" + key, b.req_timeouts);
    out.connects = total("connects" + key, b.connects);
    out.disconnects = total("disconnects" + key, b.disconnects);
    snap.brokers.push_back(std::move(out));
  }
  snapshot_ = std::move(snap);
}

bool StatisticsMetrics::empty() const {
  std::lock_guard lock(mutex_);
  return !snapshot_;
}

void StatisticsMetrics::write(sdk::MetricWriter& out, Clock::time_point now) const {
  std::optional<Snapshot> snap;
  {
    std::lock_guard lock(mutex_);
    snap = snapshot_;
  }
  if (!snap) return;
  double age = std::chrono::duration<double>(now - snap->received).count();
  out.gauge("statistics_age_seconds",
            "Seconds since librdkafka last emitted the statistics these figures come from.",
            age < 0 ? 0 : age);
  out.gauge("queue_messages",
            "Messages in the producer's queues: waiting to be sent or sent and not yet "
            "confirmed by the broker.",
            snap->queue_messages);
  out.gauge("queue_bytes", "Bytes of the messages in the producer's queues.", snap->queue_bytes);
  out.gauge("queue_max_messages",
            "The most messages the producer's queues hold (queue.buffering.max.messages).",
            snap->queue_max_messages);
  out.gauge("queue_max_bytes",
            "The most bytes of messages the producer's queues hold "
            "(queue.buffering.max.kbytes).",
            snap->queue_max_bytes);
  out.counter("transmitted_messages_total", "Messages the producer sent to the brokers.",
              snap->transmitted_messages);
  out.counter("transmitted_bytes_total",
              "Bytes of messages, with their batch framing, the producer sent to the brokers.",
              snap->transmitted_bytes);
  for (const auto& b : snap->brokers) {
    std::initializer_list<sdk::Label> labels = {{"broker", b.name}};
    out.gauge("broker_up", "1 while the connection to the broker is up, else 0.", b.up ? 1 : 0,
              labels);
    if (b.rtt_avg_s)
      out.gauge("broker_rtt_seconds",
                "Average round-trip time of requests to the broker, over the last statistics "
                "interval in which it answered any.",
                *b.rtt_avg_s, labels);
    if (b.rtt_p99_s)
      out.gauge("broker_rtt_p99_seconds",
                "99th percentile of the round-trip time of requests to the broker, over the last "
                "statistics interval in which it answered any.",
                *b.rtt_p99_s, labels);
    out.gauge("broker_requests_in_flight",
              "Requests to the broker waiting to be sent or waiting for their response.",
              b.requests_in_flight, labels);
    out.counter("broker_requests_total", "Requests sent to the broker.", b.requests, labels);
    out.counter("broker_transmit_errors_total", "Errors sending requests to the broker.",
                b.transmit_errors, labels);
    out.counter("broker_transmit_retries_total", "Requests to the broker sent again.",
                b.transmit_retries, labels);
    out.counter("broker_request_timeouts_total", "Requests to the broker that timed out.",
                b.request_timeouts, labels);
    out.counter("broker_connects_total",
                "Connection attempts to the broker, failed ones and name resolution failures "
                "included.",
                b.connects, labels);
    out.counter("broker_disconnects_total",
                "Connections to the broker that were closed (by the broker, the network or a load "
                "balancer).",
                b.disconnects, labels);
  }
}

}  // namespace pg2kafka::kafka
