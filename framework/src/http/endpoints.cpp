#include "http/endpoints.hpp"

#include <cstdio>

namespace pg2kafka::http {
namespace {

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

Endpoints::Endpoints(const metrics::HostMetrics& host, plugin::SourceInstance& source,
                     plugin::SinkInstance& sink, std::chrono::milliseconds liveness_timeout)
    : host_(host), source_(source), sink_(sink), liveness_timeout_(liveness_timeout) {}

Response Endpoints::handle(std::string_view path) {
  if (path == "/metrics") return metrics();
  if (path == "/healthz") return healthz();
  if (path == "/readyz") return readyz();
  if (path == "/")
    return {200, "text/plain; charset=utf-8",
            "pg2kafka: /metrics (Prometheus), /healthz (liveness), /readyz (readiness)\n"};
  return {404, "text/plain; charset=utf-8",
          "not found: pg2kafka serves /metrics, /healthz and /readyz\n"};
}

Response Endpoints::metrics() {
  metrics::Exposition out;
  auto started = std::chrono::steady_clock::now();
  host_.write(out);
  bool ready = readiness().ready;
  out.add("pg2kafka_ready", "1 when the pipeline runs and neither side reports trouble (/readyz).",
          P2K_METRIC_GAUGE, {}, ready ? 1 : 0);
  source_.metrics(out);
  sink_.metrics(out);
  out.add("pg2kafka_scrape_duration_seconds",
          "How long this answer took to gather, plugins' metrics and health included.",
          P2K_METRIC_GAUGE, {},
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  return {200, "text/plain; version=0.0.4; charset=utf-8", out.text()};
}

Response Endpoints::healthz() {
  std::string body;
  for (auto* side :
       {static_cast<plugin::InstanceBase*>(&source_), static_cast<plugin::InstanceBase*>(&sink_)}) {
    auto call = side->current_call();
    if (!call) continue;
    const char* kind = side == &source_ ? "source" : "sink";
    std::string what = std::string(kind) + " '" + side->name() + "' " + call->first + " for " +
                       seconds_text(call->second);
    if (liveness_timeout_.count() > 0 && call->second > liveness_timeout_)
      return {503, "text/plain; charset=utf-8",
              "stuck: the pipeline thread has been inside " + what +
                  ", longer than http.liveness_timeout (" + seconds_text(liveness_timeout_) +
                  ")\n"};
    body = "ok: the pipeline thread is inside " + what + "\n";
  }
  if (body.empty())
    body = std::string("ok: ") +
           metrics::phase_name(static_cast<metrics::Phase>(host_.phase.load())) + "\n";
  return {200, "text/plain; charset=utf-8", body};
}

Readiness Endpoints::readiness() {
  Readiness r;
  auto phase = static_cast<metrics::Phase>(host_.phase.load());
  r.ready = phase == metrics::Phase::kRunning;
  r.lines.push_back(std::string("pipeline: ") + metrics::phase_name(phase));
  auto side = [&](plugin::InstanceBase& instance, const char* kind,
                  std::optional<std::string> trouble) {
    std::string who = std::string(kind) + " '" + instance.name() + "': ";
    auto health = instance.health();
    if (trouble) {
      r.ready = false;
      r.lines.push_back(who + "not ready: " + *trouble);
    } else if (health && !health->ok()) {
      r.ready = false;
      r.lines.push_back(who + "not ready" +
                        (health->message.empty() ? "" : ": " + health->message));
    } else {
      r.lines.push_back(who + "ready" +
                        (health && !health->message.empty() ? ": " + health->message : ""));
    }
  };
  side(source_, "source", host_.source_trouble());
  side(sink_, "sink", host_.sink_trouble());
  return r;
}

Response Endpoints::readyz() {
  Readiness r = readiness();
  std::string body = r.ready ? "ready\n" : "not ready\n";
  for (const auto& l : r.lines) body += l + "\n";
  return {r.ready ? 200u : 503u, "text/plain; charset=utf-8", body};
}

}  // namespace pg2kafka::http
