// What the HTTP server answers (http.listen): GET /metrics (Prometheus text), /healthz
// (liveness: the pipeline thread is not stuck in a plugin call) and /readyz (readiness: the
// pipeline runs, and neither side reports trouble).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.hpp"
#include "metrics/host_metrics.hpp"
#include "plugin/plugin_instance.hpp"

namespace pg2kafka::http {

struct Readiness {
  bool ready = false;
  std::vector<std::string> lines;  // one per side, and the pipeline's phase
};

class Endpoints {
 public:
  // Everything must outlive the server that calls handle().
  Endpoints(const metrics::HostMetrics& host, plugin::SourceInstance& source,
            plugin::SinkInstance& sink, std::chrono::milliseconds liveness_timeout);

  Response handle(std::string_view path);
  Response metrics();
  Response healthz();
  Response readyz();
  Readiness readiness();

 private:
  const metrics::HostMetrics& host_;
  plugin::SourceInstance& source_;
  plugin::SinkInstance& sink_;
  std::chrono::milliseconds liveness_timeout_;
};

}  // namespace pg2kafka::http
