#include "metrics/host_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <pg2kafka/sdk/metrics.hpp>

#include <cstdio>
#include <fstream>

namespace pg2kafka::metrics {

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kStarting:
      return "starting";
    case Phase::kOpeningSource:
      return "opening_source";
    case Phase::kOpeningSink:
      return "opening_sink";
    case Phase::kPreparingTopics:
      return "preparing_topics";
    case Phase::kRunning:
      return "running";
    case Phase::kStopping:
      return "stopping";
    case Phase::kStopped:
      return "stopped";
  }
  return "unknown";
}

HostMetrics::HostMetrics() : delivery_latency(sdk::latency_buckets()) {}

TopicCounters& HostMetrics::topic(std::string_view name) {
  // Only this (the pipeline) thread inserts, so looking up without the lock is safe.
  auto it = topics_.find(name);
  if (it != topics_.end()) return *it->second;
  std::lock_guard lock(mutex_);
  return *topics_.emplace(std::string(name), std::make_unique<TopicCounters>()).first->second;
}

void HostMetrics::set_source_trouble(std::string why) {
  std::lock_guard lock(mutex_);
  source_trouble_text_ = std::move(why);
  source_trouble_.store(true, std::memory_order_relaxed);
}

void HostMetrics::set_sink_trouble(std::string why) {
  std::lock_guard lock(mutex_);
  sink_trouble_text_ = std::move(why);
  sink_trouble_.store(true, std::memory_order_relaxed);
}

std::optional<std::string> HostMetrics::source_trouble() const {
  if (!source_trouble_.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(mutex_);
  return source_trouble_text_;
}

std::optional<std::string> HostMetrics::sink_trouble() const {
  if (!sink_trouble_.load(std::memory_order_relaxed)) return std::nullopt;
  std::lock_guard lock(mutex_);
  return sink_trouble_text_;
}

void HostMetrics::write(Exposition& out) const {
  auto counter = [&](const char* name, const char* help, const Labels& labels, uint64_t v) {
    out.add(name, help, P2K_METRIC_COUNTER, labels, static_cast<double>(v));
  };
  auto gauge = [&](const char* name, const char* help, const Labels& labels, double v) {
    out.add(name, help, P2K_METRIC_GAUGE, labels, v);
  };
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, c] : topics_) {
      Labels l{{"topic", name}};
      counter("pg2kafka_records_polled_total", "Records the source returned, by topic.", l,
              c->polled.value());
      counter("pg2kafka_records_written_total",
              "Records handed to the sink, by topic (a record written again counts again).", l,
              c->written.value());
      counter("pg2kafka_records_delivered_total",
              "Records the sink confirmed as durably stored, by topic.", l, c->delivered.value());
      counter("pg2kafka_delivered_bytes_total",
              "Bytes of keys and values the sink confirmed, by topic.", l,
              c->delivered_bytes.value());
      counter("pg2kafka_records_retried_total",
              "Records that failed transiently and are written again, by topic.", l,
              c->retried.value());
      counter("pg2kafka_records_failed_total",
              "Records that failed permanently, by topic (the pipeline stops, or parks them with "
              "on_permanent_failure=park).",
              l, c->failed.value());
      counter("pg2kafka_records_parked_total",
              "Records set aside in the source after a permanent failure "
              "(on_permanent_failure=park), by their topic.",
              l, c->parked.value());
      counter("pg2kafka_dead_letters_total",
              "Parked records whose copy the sink confirmed on the dead-letter topic, by their "
              "original topic.",
              l, c->dead_lettered.value());
    }
  }
  counter("pg2kafka_records_acknowledged_total",
          "Records acknowledged to the source (delivered, never sent again).", {},
          acknowledged.value());
  counter("pg2kafka_polls_total", "Polls of the source.", {}, polls.value());
  counter("pg2kafka_empty_polls_total", "Polls of the source that returned nothing.", {},
          empty_polls.value());
  counter("pg2kafka_retries_total",
          "Transient failures retried after a backoff, by the side that failed.",
          {{"side", "source"}}, source_retries.value());
  counter("pg2kafka_retries_total", "", {{"side", "sink"}}, sink_retries.value());
  gauge("pg2kafka_in_flight_records", "Records written to the sink and not yet confirmed.", {},
        static_cast<double>(in_flight_records.load(std::memory_order_relaxed)));
  gauge("pg2kafka_in_flight_bytes",
        "Bytes of keys and values written to the sink and not yet confirmed.", {},
        static_cast<double>(in_flight_bytes.load(std::memory_order_relaxed)));
  gauge("pg2kafka_records_awaiting_retry", "Records that failed transiently and wait for a retry.",
        {}, static_cast<double>(awaiting_retry.load(std::memory_order_relaxed)));
  gauge("pg2kafka_records_parking",
        "Records that failed permanently and are being parked (or their dead letter written).", {},
        static_cast<double>(parking.load(std::memory_order_relaxed)));
  counter("pg2kafka_dead_letters_without_value_total",
          "Dead letters written without the record's value, because the sink refused it with it "
          "(a value too large for the dead-letter topic too).",
          {}, dead_letters_without_value.value());
  counter("pg2kafka_park_retries_total",
          "Parks the source could not do for now (retried after a backoff).", {},
          park_retries.value());
  int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  auto backoff = [&](const char* op, const std::atomic<int64_t>& until) {
    int64_t left = until.load(std::memory_order_relaxed) - now_ns;
    gauge("pg2kafka_backoff_seconds",
          "Seconds left of the current backoff before an operation is tried again (0: none).",
          {{"operation", op}}, left > 0 ? static_cast<double>(left) / 1e9 : 0.0);
  };
  backoff("sink_write", sink_backoff_until_ns);
  backoff("source_poll", source_backoff_until_ns);
  backoff("source_ack", ack_backoff_until_ns);
  auto latency = delivery_latency.snapshot();
  out.add_histogram("pg2kafka_delivery_latency_seconds",
                    "Time from an event's creation (the record's timestamp) to the sink's "
                    "confirmation of its delivery.",
                    {}, delivery_latency.bounds(), latency.cumulative, latency.count, latency.sum);
  auto p = static_cast<Phase>(phase.load(std::memory_order_relaxed));
  for (Phase each : {Phase::kStarting, Phase::kOpeningSource, Phase::kOpeningSink,
                     Phase::kPreparingTopics, Phase::kRunning, Phase::kStopping, Phase::kStopped})
    gauge("pg2kafka_phase", "The pipeline's phase: 1 for the current one.",
          {{"phase", phase_name(each)}}, each == p ? 1 : 0);
  gauge("pg2kafka_up", "1 while the process serves metrics.", {}, 1);
  gauge("pg2kafka_build_info", "The version of pg2kafka and of its plugin interface.",
        {{"version", PG2KAFKA_VERSION},
         {"abi", std::to_string(P2K_ABI_MAJOR) + "." + std::to_string(P2K_ABI_MINOR)}},
        1);
  write_process_metrics(out, started_);
}

void write_process_metrics(Exposition& out, std::chrono::system_clock::time_point started) {
  auto gauge = [&](const char* name, const char* help, double v) {
    out.add(name, help, P2K_METRIC_GAUGE, {}, v);
  };
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    double cpu = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                 static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    out.add("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
            P2K_METRIC_COUNTER, {}, cpu);
  }
  // statm: sizes in pages; the second field is the resident set.
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
          static_cast<double>(resident_pages) * page);
    gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.",
          static_cast<double>(size_pages) * page);
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    int n = 0;
    while (readdir(d)) ++n;
    closedir(d);
    gauge("process_open_fds", "Open file descriptors.", n - 3);  // ".", ".." and this one
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    gauge("process_max_fds", "The limit of open file descriptors.",
          static_cast<double>(limit.rlim_cur));
  gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, seconds.",
        std::chrono::duration<double>(started.time_since_epoch()).count());
}

}  // namespace pg2kafka::metrics
