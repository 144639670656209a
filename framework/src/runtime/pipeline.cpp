#include "runtime/pipeline.hpp"

#include <pg2kafka/sdk/plugin.hpp>

#include <algorithm>
#include <cstring>
#include <thread>

#include "runtime/deadline.hpp"
#include "runtime/exit_codes.hpp"
#include "runtime/log.hpp"

namespace pg2kafka::runtime {
namespace {

// While records are in flight and the source just came back empty, look again this soon, so a
// new event does not wait a whole poll_timeout behind a delivery report.
constexpr std::chrono::milliseconds kBusyRepoll{2};
// How often a running pipeline logs its throughput (when it delivered anything).
constexpr std::chrono::seconds kProgressInterval{30};

std::string record_label(const p2k_record& r) {
  std::string out = "position " + std::to_string(r.position);
  if (r.id.size) out = "event " + std::string(sdk::view(r.id)) + " (" + out + ")";
  return out;
}

const char* const kNullValueRefused =
    "it has a null value (a tombstone), and the sink's plugin was built for an ABI older than "
    "1.5, which may take that for an empty value: upgrade the sink plugin, or turn tombstones "
    "off for this table (pg2kafka.configure(table, '{\"tombstones\": false}'))";

// The longest error a dead letter's header carries, cut at a character boundary.
constexpr size_t kMaxErrorHeader = 4096;

std::string header_error(const std::string& error) {
  if (error.size() <= kMaxErrorHeader) return error;
  size_t end = kMaxErrorHeader;
  while (end > 0 && (static_cast<unsigned char>(error[end]) & 0xC0) == 0x80) --end;
  return error.substr(0, end);
}

p2k_slice slice(const std::string& s) {
  return p2k_slice{s.data(), s.size()};
}

// A dead letter (plugin.h, "Permanent failures and parking"): the record that failed, written to
// the dead-letter topic with headers saying what happened. It keeps the source's batch alive
// (the original's key, value and headers point into it) and owns everything it adds.
struct DeadLetter {
  std::shared_ptr<void> original_holder;
  p2k_record original;
  std::string topic, original_topic, error, value_size, reason_text;
  Pipeline::ParkReason reason;
  std::vector<p2k_header> headers;
  p2k_record record;
};

std::shared_ptr<DeadLetter> make_dead_letter(const p2k_record& original,
                                             std::shared_ptr<void> original_holder,
                                             const std::string& topic, const std::string& error,
                                             Pipeline::ParkReason reason, bool with_value) {
  auto d = std::make_shared<DeadLetter>();
  d->original_holder = std::move(original_holder);
  d->original = original;
  d->topic = topic;
  d->original_topic = std::string(sdk::view(original.topic));
  d->error = header_error(error);
  d->reason = reason;
  d->reason_text = Pipeline::reason_name(reason);
  d->value_size = std::to_string(original.value.size);
  auto add = [&](const char* name, const std::string& value) {
    d->headers.push_back(p2k_header{p2k_slice{name, std::strlen(name)}, slice(value)});
  };
  for (size_t i = 0; i < original.header_count; ++i) d->headers.push_back(original.headers[i]);
  add("pg2kafka.original_topic", d->original_topic);
  static constexpr std::string_view kEventId = "pg2kafka.event_id";
  d->headers.push_back(p2k_header{p2k_slice{kEventId.data(), kEventId.size()}, original.id});
  add("pg2kafka.error", d->error);
  add("pg2kafka.reason", d->reason_text);
  static const std::string kTrue = "true";
  if (!with_value) {
    add("pg2kafka.value_omitted", kTrue);
    add("pg2kafka.value_size", d->value_size);
  }
  d->record = original;
  d->record.topic = slice(d->topic);
  if (!with_value) d->record.value = p2k_slice{"", 0};
  d->record.headers = d->headers.data();
  d->record.header_count = d->headers.size();
  return d;
}

}  // namespace

// A source batch: released back to the source once no pending record points into it.
struct Pipeline::Batch {
  Batch(plugin::SourceInstance& s, void* h) : source(s), handle(h) {}
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  plugin::SourceInstance& source;
  void* handle;
  ~Batch() {
    if (handle) source.release(handle);
  }
};

Pipeline::Pipeline(plugin::SourceInstance& source, plugin::SinkInstance& sink,
                   const config::HostSettings& settings, RunMode mode, StopControl& stop)
    : source_(source),
      sink_(sink),
      settings_(settings),
      mode_(mode),
      stop_(stop),
      sink_backoff_(settings.retry_initial_backoff, settings.retry_max_backoff),
      source_backoff_(settings.retry_initial_backoff, settings.retry_max_backoff),
      ack_backoff_(settings.retry_initial_backoff, settings.retry_max_backoff),
      park_(settings.park_failures && !mode.dry_run),
      dead_letters_(park_ && !settings.dead_letter_topic.empty()),
      park_backoff_(settings.retry_initial_backoff, settings.retry_max_backoff) {}

Pipeline::~Pipeline() {
  window_.clear();
}

metrics::TopicCounters& Pipeline::counters(const p2k_record& r) {
  std::string_view topic = sdk::view(r.topic);
  if (!last_counters_ || topic != last_topic_) {
    last_counters_ = &metrics_.topic(topic);
    last_topic_.assign(topic);
  }
  return *last_counters_;
}

void Pipeline::update_gauges() {
  metrics_.in_flight_records.store(window_.unconfirmed(), std::memory_order_relaxed);
  metrics_.in_flight_bytes.store(window_.unconfirmed_bytes(), std::memory_order_relaxed);
  metrics_.awaiting_retry.store(window_.awaiting_retry(), std::memory_order_relaxed);
  metrics_.parking.store(window_.set_aside_count(), std::memory_order_relaxed);
}

namespace {
int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

void Pipeline::fail(std::string message) {
  if (failed_) return;
  failed_ = true;
  exit_code_ = kExitRuntime;
  failure_ = std::move(message);
  log::error(failure_);
}

void Pipeline::sleep_until(Clock::time_point until, int level) {
  while (stop_.level() < level) {
    auto now = Clock::now();
    if (now >= until) return;
    // sleep_until: a remainder below a millisecond must sleep too, not spin.
    std::this_thread::sleep_until(std::min(until, now + std::chrono::milliseconds(50)));
  }
}

bool Pipeline::open_with_retry() {
  // Unreachable at start is usually a mistake (a wrong host, a firewall): give up after
  // open_timeout so the user hears of it; once running, connection loss is retried forever.
  auto give_up_at = Clock::now() + settings_.open_timeout;
  for (auto* step : {"source", "sink"}) {
    bool is_source = std::string(step) == "source";
    metrics_.phase =
        static_cast<int>(is_source ? metrics::Phase::kOpeningSource : metrics::Phase::kOpeningSink);
    sdk::Backoff backoff(settings_.retry_initial_backoff, settings_.retry_max_backoff);
    while (true) {
      auto r = is_source ? source_.open() : sink_.open();
      if (r.ok()) {
        is_source ? metrics_.clear_source_trouble() : metrics_.clear_sink_trouble();
        break;
      }
      std::string who =
          std::string(step) + " '" + (is_source ? source_.name() : sink_.name()) + "'";
      if (is_source) {
        metrics_.source_retries.add();
        metrics_.set_source_trouble("cannot open: " + r.message);
      } else {
        metrics_.sink_retries.add();
        metrics_.set_sink_trouble("cannot open: " + r.message);
      }
      if (r.status == P2K_RETRY && settings_.open_timeout.count() > 0 &&
          Clock::now() >= give_up_at) {
        fail("cannot open " + who + " within open_timeout (" +
             std::to_string(settings_.open_timeout.count()) + " ms): " + r.message);
        return false;
      }
      if (r.status == P2K_RETRY) {
        auto wait = backoff.next();
        log::warn("cannot open " + who + " yet: " + r.message + " (retrying in " +
                  std::to_string(wait.count()) + " ms)");
        sleep_until(Clock::now() + wait, StopControl::kStopping);
        if (stopping()) {
          log::info("stop requested while opening " + who);
          return false;
        }
        continue;
      }
      fail("cannot open " + who + ": " + r.message);
      if (r.status == P2K_INVALID_CONFIG) exit_code_ = kExitConfig;
      return false;
    }
  }
  metrics_.phase = static_cast<int>(metrics::Phase::kPreparingTopics);
  std::vector<std::string> topics;
  auto r = source_.list_topics(topics);
  if (!r.ok()) {
    fail("source '" + source_.name() + "' could not list its topics: " + r.message);
    return false;
  }
  // The dead-letter topic is checked at start like the source's topics.
  if (dead_letters_) topics.push_back(settings_.dead_letter_topic);
  for (const auto& t : topics) {
    if (prepared_topics_.count(t)) continue;
    auto p = sink_.prepare_topic(t);
    if (!p.ok()) {
      bool dead = dead_letters_ && t == settings_.dead_letter_topic;
      fail("sink '" + sink_.name() + "' cannot write to " +
           (dead ? "the dead-letter topic '" : "topic '") + t + "'" +
           (dead ? " (dead_letter.topic)" : "") + ": " + p.message);
      if (p.status == P2K_INVALID_CONFIG) exit_code_ = kExitConfig;
      return false;
    }
    prepared_topics_.insert(t);
  }
  return true;
}

bool Pipeline::prepare_topics(const p2k_record* records, size_t count) {
  std::string_view last;
  for (size_t i = 0; i < count; ++i) {
    std::string_view topic = sdk::view(records[i].topic);
    if (topic == last || prepared_topics_.count(topic)) {
      last = topic;
      continue;
    }
    auto p = sink_.prepare_topic(std::string(topic));
    if (!p.ok()) {
      // A topic that cannot be prepared now may become writable (a retry), or never (fatal).
      if (p.status == P2K_RETRY) {
        log::warn("sink '" + sink_.name() + "' cannot write to topic '" + std::string(topic) +
                  "' yet: " + p.message);
        return false;
      }
      fail("sink '" + sink_.name() + "' cannot write to topic '" + std::string(topic) +
           "': " + p.message);
      return false;
    }
    prepared_topics_.insert(std::string(topic));
    last = topic;
  }
  return true;
}

void Pipeline::poll_source() {
  size_t unconfirmed = window_.unconfirmed();
  size_t room = settings_.max_in_flight - std::min(settings_.max_in_flight, unconfirmed);
  size_t max = std::min(settings_.batch_size, room);
  if (max == 0) return;
  bool idle = unconfirmed == 0;
  auto timeout = (mode_.once || !idle) ? std::chrono::milliseconds(0) : settings_.poll_timeout;
  p2k_batch batch{};
  auto r = source_.poll(max, timeout, batch);
  metrics_.polls.add();
  if (!r.ok()) {
    last_poll_empty_ = true;
    if (r.status == P2K_RETRY) {
      auto wait = source_backoff_.next();
      log::warn("source '" + source_.name() + "' failed to poll: " + r.message + " (retrying in " +
                std::to_string(wait.count()) + " ms)");
      next_poll_ = Clock::now() + wait;
      metrics_.source_retries.add();
      metrics_.source_backoff_until_ns.store(steady_ns(next_poll_), std::memory_order_relaxed);
      metrics_.set_source_trouble("poll failed: " + r.message);
      return;
    }
    fail("source '" + source_.name() + "' failed: " + r.message);
    return;
  }
  source_backoff_.reset();
  metrics_.clear_source_trouble();
  last_poll_empty_ = batch.count == 0;
  if (batch.count == 0) {
    metrics_.empty_polls.add();
    if (mode_.once && idle) drained_ = true;
    if (!idle) next_poll_ = Clock::now() + std::min(kBusyRepoll, settings_.poll_timeout);
    return;
  }
  auto holder = std::make_shared<Batch>(source_, batch.handle);
  // A sink before ABI 1.5 may take a null value (a tombstone) for an empty one, so it is never
  // given one. Every later tombstone would meet the same sink: the pipeline stops (even when it
  // parks: a parked tombstone could only be retried into the same sink, and one set aside would
  // let later records of its key overtake it).
  if (sink_.plugin().abi_minor() < 5) {
    for (size_t i = 0; i < batch.count; ++i) {
      if (batch.records[i].value.data || (batch.unusable && batch.unusable[i])) continue;
      fail("sink '" + sink_.name() + "' (a plugin of ABI 1." +
           std::to_string(sink_.plugin().abi_minor()) + ") cannot be given " +
           record_label(batch.records[i]) + ": " + kNullValueRefused +
           ". Nothing from this record on is acknowledged: it stays in the source.");
      return;
    }
  }
  for (size_t i = 0; i < batch.count; ++i) {
    const p2k_record& rec = batch.records[i];
    counters(rec).polled.add();
    bool unusable = batch.unusable && batch.unusable[i];
    if (!(unusable ? window_.add_set_aside(rec, holder) : window_.add(rec, holder))) {
      fail("source '" + source_.name() + "' returned position " + std::to_string(rec.position) +
           " after " + std::to_string(window_.last_added().value_or(0)) +
           ": positions must strictly increase (a bug in the plugin)");
      return;
    }
    if (unusable) permanent_failure(rec, batch.unusable[i], ParkReason::kUnusable);
    if (failed_) return;
  }
  stats_.polled += batch.count;
  if (!batch.unusable) {
    write({batch.records, batch.count});
    return;
  }
  // The runs of deliverable records between the unusable ones, in order.
  size_t start = 0;
  for (size_t i = 0; i <= batch.count && !failed_; ++i) {
    if (i < batch.count && !batch.unusable[i]) continue;
    if (i > start) write({batch.records + start, i - start});
    start = i + 1;
  }
}

// A transient failure: the records marked awaiting a retry are written again after a backoff,
// one backoff per round of retries.
void Pipeline::retry_later(const std::string& what, const std::string& why) {
  if (retry_scheduled_) return;
  auto wait = sink_backoff_.next();
  retry_due_ = Clock::now() + wait;
  retry_scheduled_ = true;
  metrics_.sink_retries.add();
  metrics_.sink_backoff_until_ns.store(steady_ns(retry_due_), std::memory_order_relaxed);
  metrics_.set_sink_trouble(what + ": " + why);
  log::warn("sink '" + sink_.name() + "' " + what + ": " + why + " (retrying in " +
            std::to_string(wait.count()) + " ms)");
}

// Writes the given records (in position order, each already in the window) in one call.
void Pipeline::write(std::span<const p2k_record> records) {
  auto mark_retry = [&](const std::string& why) {
    for (const auto& r : records) {
      window_.failed(r.position);
      counters(r).retried.add();
    }
    stats_.retried += records.size();
    retry_later("could not take " + std::to_string(records.size()) + " records", why);
  };
  if (!prepare_topics(records.data(), records.size())) {
    if (!failed_) mark_retry("a topic is not writable yet");
    return;
  }
  for (const auto& rec : records) counters(rec).written.add();
  auto r = sink_.write(records.data(), records.size());
  if (r.ok()) return;
  if (r.status == P2K_RETRY) {
    mark_retry(r.message);
    return;
  }
  for (const auto& rec : records) counters(rec).failed.add();
  fail("sink '" + sink_.name() + "' failed permanently writing " + record_label(records.front()) +
       " and " + std::to_string(records.size() - 1) + " more: " + r.message);
}

void Pipeline::on_outcome(const plugin::Outcome& o) {
  const p2k_record* record = window_.awaiting(o.position);
  if (!record && window_.take_stray_outcome(o.position)) return;  // held: parked anyway
  if (!record) {
    fail("sink '" + sink_.name() + "' reported position " + std::to_string(o.position) +
         ", which is not awaiting an outcome (reported twice, or never written): a bug in the "
         "sink plugin");
    return;
  }
  switch (o.status) {
    case P2K_OK: {
      auto letter = dead_letters_ ? window_.letter(o.position) : DeliveryWindow::Letter::kNone;
      if (letter != DeliveryWindow::Letter::kNone) {
        auto dead = std::static_pointer_cast<DeadLetter>(window_.holder(o.position));
        counters(dead->original).dead_lettered.add();
        if (letter == DeliveryWindow::Letter::kWithoutValue)
          metrics_.dead_letters_without_value.add();
      }
      auto& c = counters(*record);
      c.delivered.add();
      c.delivered_bytes.add(record->key.size + record->value.size);
      if (record->timestamp_ms > 0)
        metrics_.delivery_latency.observe(
            std::max<double>(0, static_cast<double>(outcome_now_ms_ - record->timestamp_ms) / 1e3));
      window_.delivered(o.position);
      sink_backoff_.reset();
      metrics_.clear_sink_trouble();
      return;
    }
    case P2K_RETRY: {
      std::string label = record_label(*record);
      counters(*record).retried.add();
      window_.failed(o.position);
      ++stats_.retried;
      retry_later("could not deliver " + label + " for now", o.message);
      return;
    }
    default: {
      counters(*record).failed.add();
      std::string why = o.message.empty() ? "no reason given" : o.message;
      auto letter = dead_letters_ ? window_.letter(o.position) : DeliveryWindow::Letter::kNone;
      if (letter == DeliveryWindow::Letter::kNone) {
        permanent_failure(*record, why, ParkReason::kFailed);
        return;
      }
      auto dead = std::static_pointer_cast<DeadLetter>(window_.holder(o.position));
      if (letter == DeliveryWindow::Letter::kWithValue) {
        log::warn("sink '" + sink_.name() + "' refused the dead letter of " +
                  record_label(dead->original) + " on topic '" + settings_.dead_letter_topic +
                  "' (" + why + "); writing it again without its value (" + dead->value_size +
                  " bytes)");
        window_.set_aside(o.position);
        write_dead_letter(SetAside{o.position, dead->error, dead->reason}, /*with_value=*/false);
        return;
      }
      fail("sink '" + sink_.name() + "' cannot write the dead letter of " +
           record_label(dead->original) + " to topic '" + settings_.dead_letter_topic +
           "', even without its value: " + why +
           ". The event is parked in the source; make the dead-letter topic writable (or "
           "remove dead_letter.topic) and start again.");
    }
  }
}

const char* Pipeline::reason_name(ParkReason r) {
  switch (r) {
    case ParkReason::kUnusable:
      return "unusable";
    case ParkReason::kHeld:
      return "held";
    default:
      return "failed";
  }
}

void Pipeline::permanent_failure(const p2k_record& record, const std::string& error,
                                 ParkReason reason) {
  bool unusable = reason == ParkReason::kUnusable;
  if (!park_) {
    fail((unusable ? "source '" + source_.name() + "' cannot make " + record_label(record) +
                         " deliverable: "
                   : "sink '" + sink_.name() + "' failed permanently on " + record_label(record) +
                         ": ") +
         error +
         ". Nothing from this record on is acknowledged: it stays in the source. (With "
         "on_permanent_failure=park such a record is set aside, with the later records of its "
         "key, and the rest goes on.)");
    return;
  }
  // Kept in position order (a record may fail after a later one of another key was set aside).
  auto add = [&](SetAside a) {
    auto at = std::upper_bound(set_aside_.begin(), set_aside_.end(), a.position,
                               [](uint64_t p, const SetAside& x) { return p < x.position; });
    set_aside_.insert(at, std::move(a));
  };
  if (unusable) {
    // A record the source could not read has no key to hold back (the source says so).
    add(SetAside{record.position, error, reason});
    return;
  }
  uint64_t position = record.position;
  std::string held_why = "held behind event " + std::string(sdk::view(record.id)) +
                         ", which failed permanently on the same key";
  window_.set_aside(position);
  add(SetAside{position, error, reason});
  for (uint64_t later : window_.hold_later_of_key(position))
    add(SetAside{later, held_why, ParkReason::kHeld});
}

void Pipeline::park_set_aside() {
  // In position order; a record waits while an earlier one of its key may still fail, so that a
  // key's records are parked (and later retried) in their order.
  for (size_t i = 0; i < set_aside_.size() && !failed_ && Clock::now() >= park_due_;) {
    const SetAside& s = set_aside_[i];
    const p2k_record* record = window_.set_aside_record(s.position);
    if (!record) {  // cannot happen: only this loop takes records out of that state
      set_aside_.erase(set_aside_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    if (window_.earlier_of_key_unresolved(s.position)) {
      ++i;
      continue;
    }
    auto r = source_.park(*record, s.error);
    if (r.status == P2K_RETRY) {
      auto wait = park_backoff_.next();
      park_due_ = Clock::now() + wait;
      metrics_.park_retries.add();
      metrics_.set_source_trouble("parking failed: " + r.message);
      log::warn("source '" + source_.name() + "' could not park " + record_label(*record) +
                " yet: " + r.message + " (retrying in " + std::to_string(wait.count()) + " ms)");
      return;
    }
    if (!r.ok()) {
      fail("source '" + source_.name() + "' could not park " + record_label(*record) + ": " +
           r.message + ". Nothing from this record on is acknowledged: it stays in the source.");
      return;
    }
    park_backoff_.reset();
    counters(*record).parked.add();
    ++stats_.parked;
    std::string id(sdk::view(record->id));
    if (s.reason == ParkReason::kHeld)
      log::info("parked " + record_label(*record) + " too: " + s.error,
                {log::field("event_id", id), log::field("reason", reason_name(s.reason))});
    else
      log::warn("parked " + record_label(*record) + " of topic '" +
                    std::string(sdk::view(record->topic)) + "' (" + reason_name(s.reason) + "): " +
                    s.error + ". Later records of its key are held with it; `pg2kafka queue show " +
                    id + "` shows it, `pg2kafka queue retry " + id +
                    "` delivers them again once the cause is fixed",
                {log::field("event_id", id), log::field("reason", reason_name(s.reason))});
    // Held records are not failures of their own: no dead letter (as for those the source holds).
    if (!dead_letters_ || s.reason == ParkReason::kHeld)
      window_.settle(s.position);
    else
      write_dead_letter(s, /*with_value=*/true);
    set_aside_.erase(set_aside_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void Pipeline::write_dead_letter(const SetAside& s, bool with_value) {
  uint64_t position = s.position;
  std::shared_ptr<DeadLetter> letter;
  if (window_.letter(position) == DeliveryWindow::Letter::kNone) {
    letter = make_dead_letter(*window_.set_aside_record(position), window_.holder(position),
                              settings_.dead_letter_topic, s.error, s.reason, with_value);
  } else {
    auto previous = std::static_pointer_cast<DeadLetter>(window_.holder(position));
    letter =
        make_dead_letter(previous->original, previous->original_holder, settings_.dead_letter_topic,
                         previous->error, previous->reason, with_value);
  }
  p2k_record record = letter->record;
  window_.replace(
      position, record, letter,
      with_value ? DeliveryWindow::Letter::kWithValue : DeliveryWindow::Letter::kWithoutValue);
  record.position = position;
  write({&record, 1});
}

void Pipeline::handle_outcomes() {
  auto outcomes = sink_.outcomes().take();
  if (!outcomes.empty() || window_.unconfirmed() == 0) last_outcome_at_ = Clock::now();
  if (!outcomes.empty())
    outcome_now_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& o : outcomes) {
    if (failed_ && (o.status != P2K_OK || !window_.awaiting(o.position))) continue;
    on_outcome(o);
  }
}

// A sink that never reports would make the host wait forever, and --once never end: say so,
// once per shutdown_timeout (at least a second), naming the record the host waits for first.
void Pipeline::warn_if_sink_silent() {
  auto now = Clock::now();
  auto interval =
      std::max<std::chrono::milliseconds>(settings_.shutdown_timeout, std::chrono::seconds(1));
  if (window_.awaiting_outcome() == 0 || now - last_outcome_at_ < interval ||
      now < next_silence_warning_)
    return;
  next_silence_warning_ = now + interval;
  auto silent = std::chrono::duration_cast<std::chrono::seconds>(now - last_outcome_at_).count();
  const p2k_record* oldest = window_.oldest_awaiting_outcome();
  log::warn("sink '" + sink_.name() + "' has reported no outcome for " + std::to_string(silent) +
            " s while " + std::to_string(window_.awaiting_outcome()) +
            " records await one; the oldest is " + (oldest ? record_label(*oldest) : "unknown") +
            ". Still waiting: nothing after it is acknowledged until the sink confirms it (is its "
            "destination reachable?)");
}

bool Pipeline::retry_due() const {
  return window_.awaiting_retry() > 0 && window_.awaiting_outcome() == 0 &&
         Clock::now() >= retry_due_;
}

void Pipeline::write_due_retries() {
  if (!retry_due()) return;
  // The window hands them out only once nothing else awaits an outcome, so that the retried
  // records go out after everything written before them, and adds the later records of their
  // keys that were delivered meanwhile (the per-key ordering rule, see delivery_window.hpp).
  auto records = window_.take_rewrites();
  if (records.empty()) return;
  retry_scheduled_ = false;
  write(records);
}

void Pipeline::acknowledge() {
  size_t confirmed = 0;
  if (auto through = window_.take_ackable(&confirmed)) ack_wanted_ = through;
  stats_.delivered += confirmed;
  confirmed_unacked_ += confirmed;
  if (mode_.dry_run || !ack_wanted_ || Clock::now() < ack_due_) return;
  auto r = source_.ack(*ack_wanted_);
  if (r.ok()) {
    stats_.acked_through = ack_wanted_;
    ack_wanted_.reset();
    ack_backoff_.reset();
    metrics_.acknowledged.add(confirmed_unacked_);
    confirmed_unacked_ = 0;
    return;
  }
  if (r.status == P2K_RETRY) {
    auto wait = ack_backoff_.next();
    log::warn("source '" + source_.name() + "' could not acknowledge through position " +
              std::to_string(*ack_wanted_) + ": " + r.message + " (retrying in " +
              std::to_string(wait.count()) + " ms)");
    ack_due_ = Clock::now() + wait;
    metrics_.source_retries.add();
    metrics_.ack_backoff_until_ns.store(steady_ns(ack_due_), std::memory_order_relaxed);
    metrics_.set_source_trouble("acknowledging failed: " + r.message);
    return;
  }
  fail("source '" + source_.name() + "' failed to acknowledge: " + r.message);
}

int Pipeline::run() {
  if (!open_with_retry()) return finish(!failed_);
  log::info("pipeline running: source '" + source_.name() + "' -> sink '" + sink_.name() + "'" +
            (mode_.dry_run ? " (dry run: nothing is acknowledged)" : "") +
            (mode_.once ? " (once)" : ""));
  metrics_.phase = static_cast<int>(metrics::Phase::kRunning);
  auto next_report = Clock::now() + kProgressInterval;
  uint64_t reported_delivered = 0;
  while (!failed_ && !stopping()) {
    if (Clock::now() >= next_report) {
      if (stats_.delivered != reported_delivered) {
        auto seconds = std::chrono::duration_cast<std::chrono::seconds>(kProgressInterval).count();
        uint64_t delivered = stats_.delivered - reported_delivered;
        log::info(std::to_string(delivered) + " records delivered in the last " +
                      std::to_string(seconds) + " s (" + std::to_string(delivered / seconds) +
                      "/s), " + std::to_string(window_.unconfirmed()) + " in flight",
                  {log::field("delivered", delivered),
                   log::field("per_second", delivered / static_cast<uint64_t>(seconds)),
                   log::field("in_flight", window_.unconfirmed())});
        reported_delivered = stats_.delivered;
      }
      next_report = Clock::now() + kProgressInterval;
    }
    handle_outcomes();
    warn_if_sink_silent();
    if (!failed_) park_set_aside();
    if (!failed_) write_due_retries();
    if (!failed_) acknowledge();
    update_gauges();
    if (failed_) break;
    bool ack_outstanding = !mode_.dry_run && ack_wanted_.has_value();
    size_t unconfirmed = window_.unconfirmed();
    if (drained_ && unconfirmed == 0 && !ack_outstanding) break;  // --once is done

    auto now = Clock::now();
    bool can_poll =
        !drained_ && window_.awaiting_retry() == 0 && now >= next_poll_ &&
        unconfirmed < settings_.max_in_flight &&
        (unconfirmed == 0 || window_.unconfirmed_bytes() < settings_.max_in_flight_bytes);
    if (can_poll) {
      bool idle = unconfirmed == 0;
      poll_source();
      update_gauges();
      if (failed_) break;
      if (!last_poll_empty_) {
        sink_.wait(std::chrono::milliseconds(0));
        continue;
      }
      // An idle poll already waited up to poll_timeout; never poll faster than that when idle,
      // even if the source returns early.
      if (idle && !mode_.once) next_poll_ = std::max(next_poll_, now + settings_.poll_timeout);
      if (idle) continue;
    }
    // Wait for whatever comes first: an outcome (the wait returns as soon as one arrives), a
    // retry that became writable, the next poll, an ack retry. A retry that is due but waits
    // for outstanding outcomes is not a reason to wake up: those outcomes are.
    auto until = now + settings_.poll_timeout;
    if (window_.awaiting_retry() > 0 && window_.awaiting_outcome() == 0)
      until = std::min(until, retry_due_);
    if (!drained_ && next_poll_ > now) until = std::min(until, next_poll_);
    if (!set_aside_.empty() && park_due_ > now) until = std::min(until, park_due_);
    if (ack_outstanding)
      until = drained_ && unconfirmed == 0 ? ack_due_ : std::min(until, ack_due_);
    if (window_.unconfirmed() > 0)
      sink_.wait(millis_until(until, now));
    else
      sleep_until(until, StopControl::kStopping);
  }
  return finish(!failed_);
}

int Pipeline::finish(bool clean) {
  // Stop polling; give the sink a bounded time to confirm what is in flight (retrying what it
  // asks to retry), then acknowledge what was confirmed. The time counts from the stop request
  // (the stop control forces the stop when it runs out).
  metrics_.phase = static_cast<int>(metrics::Phase::kStopping);
  auto deadline = stop_.shutting_down();
  if (stopping() && window_.unconfirmed() > 0)
    log::info("stopping: waiting up to " +
              std::to_string(millis_until(deadline, Clock::now()).count()) + " ms for " +
              std::to_string(window_.unconfirmed()) + " records in flight");
  while (window_.unconfirmed() > 0 && Clock::now() < deadline && !forced()) {
    if (!failed_) park_set_aside();
    if (!failed_) write_due_retries();
    auto left = millis_until(deadline, Clock::now());
    if (window_.awaiting_outcome() == 0) {
      if (failed_) break;
      auto until = deadline;
      if (window_.awaiting_retry() > 0) until = std::min(until, retry_due_);
      if (!set_aside_.empty() && park_due_ > Clock::now()) until = std::min(until, park_due_);
      sleep_until(until, StopControl::kForced);
      continue;
    }
    auto f = sink_.flush(std::min(left, std::chrono::milliseconds(100)));
    handle_outcomes();
    if (failed_ && f.ok()) break;
  }
  handle_outcomes();
  // A forced stop acknowledges nothing more: the source may be what is blocked.
  if (!forced()) acknowledge();
  // An ack that failed transiently is retried until the shutdown deadline.
  while (ack_wanted_ && !mode_.dry_run && !failed_ && ack_due_ < deadline && !forced()) {
    std::this_thread::sleep_until(ack_due_);
    acknowledge();
  }
  size_t unconfirmed = window_.unconfirmed();
  update_gauges();
  window_.clear();  // releases the source's batches before the source is closed
  metrics_.phase = static_cast<int>(metrics::Phase::kStopped);
  sink_.close();
  source_.close();
  std::string summary = std::to_string(stats_.delivered) + " records delivered" +
                        (mode_.dry_run          ? " (dry run, none acknowledged)"
                         : stats_.acked_through ? ", acknowledged through position " +
                                                      std::to_string(*stats_.acked_through)
                                                : ", none acknowledged");
  log::Fields summary_fields{log::field("delivered", stats_.delivered)};
  if (stats_.acked_through)
    summary_fields.push_back(log::field("acknowledged_through", *stats_.acked_through));
  if (!clean) {
    log::error("pipeline stopped on a failure: " + summary, summary_fields);
    return exit_code_ ? exit_code_ : kExitRuntime;
  }
  if (forced()) {
    log::error("pipeline stop was forced with " + std::to_string(unconfirmed) +
               " records unconfirmed: what was not acknowledged stays in the source and is "
               "delivered again by the next run (" +
               summary + ")");
    return kExitRuntime;
  }
  if (unconfirmed > 0 || (!mode_.dry_run && ack_wanted_)) {
    log::error("pipeline stopped with " + std::to_string(unconfirmed) +
               " records unconfirmed: they stay in the source and will be delivered again (" +
               summary + ")");
    return kExitRuntime;
  }
  log::info("pipeline stopped: " + summary, summary_fields);
  return kExitOk;
}

}  // namespace pg2kafka::runtime
