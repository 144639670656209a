// The stdout sink: one JSON line per record, for dry runs and pipelines into other tools.
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <cstdio>
#include <string>

namespace pg2kafka::plugins {

class StdoutSink : public sdk::Sink {
 public:
  // It reports every record OK from write() or fails the whole call: it never reports RETRY for a
  // single record, so it relies on nothing newer than ABI 1.0 and loads into every 1.x host.
  static constexpr uint32_t kAbiMinorNeeded = 0;

  StdoutSink(sdk::Host host, const sdk::Options& options);
  // Fails (FatalError) when the stream is not open for writing: pg2kafka started with it closed
  // (`>&-`, and the host opened it read-only on /dev/null) or read-only.
  void open() override;
  void write(std::span<const p2k_record> records) override;
  bool flush(std::chrono::milliseconds timeout) override;

  // The line printed for one record (without the newline); exposed for tests.
  static void format(const p2k_record& record, bool value_only, std::string& out);

 private:
  sdk::Host host_;
  bool value_only_;
  FILE* stream_;
  std::string buffer_;
};

}  // namespace pg2kafka::plugins
