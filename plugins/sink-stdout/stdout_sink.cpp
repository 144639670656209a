#include "stdout_sink.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace pg2kafka::plugins {
namespace {

using sdk::append_json_string;
using sdk::view;

}  // namespace

StdoutSink::StdoutSink(sdk::Host host, const sdk::Options& options)
    : host_(host),
      value_only_(options.string("format") == "value"),
      stream_(options.string("stream") == "stderr" ? stderr : stdout) {}

void StdoutSink::open() {
  const char* name = stream_ == stdout ? "stdout" : "stderr";
  int flags = fcntl(fileno(stream_), F_GETFL);
  if (flags == -1 || (flags & O_ACCMODE) == O_RDONLY)
    throw sdk::FatalError(
        std::string(name) +
        " is not open for writing (it was closed when pg2kafka started, e.g. `>&-`): nothing "
        "printed would reach anyone, so nothing is delivered or acknowledged. Redirect " +
        name + " to a file or a pipe instead" +
        (stream_ == stdout ? ", or use the sink's stream option" : ""));
}

void StdoutSink::format(const p2k_record& r, bool value_only, std::string& out) {
  // The value is embedded as JSON when it is JSON (the usual case: pg-outbox's envelope), else as
  // a JSON string, so that every line stays valid JSON whatever the payload. A null value (a
  // tombstone) is null.
  auto value = [&] {
    if (r.value.data)
      sdk::append_json_or_string(out, view(r.value));
    else
      out += "null";
  };
  if (value_only) {
    value();
    return;
  }
  out += "{\"topic\":";
  append_json_string(out, view(r.topic));
  out += ",\"key\":";
  if (r.key.data)
    append_json_string(out, view(r.key));
  else
    out += "null";
  out += ",\"value\":";
  value();
  out += "}";
}

void StdoutSink::write(std::span<const p2k_record> records) {
  buffer_.clear();
  for (const auto& r : records) {
    format(r, value_only_, buffer_);
    buffer_ += '\n';
  }
  // One write and one flush per batch; a record counts as delivered only once both succeeded.
  errno = 0;
  size_t written = std::fwrite(buffer_.data(), 1, buffer_.size(), stream_);
  if (written != buffer_.size() || std::fflush(stream_) != 0) {
    int e = errno;
    std::clearerr(stream_);
    if (e == EPIPE)
      throw sdk::FatalError(std::string(stream_ == stdout ? "stdout" : "stderr") +
                            " is closed (broken pipe): the program reading pg2kafka's output "
                            "went away; nothing after the last complete line was delivered");
    throw sdk::FatalError(std::string("cannot write to ") +
                          (stream_ == stdout ? "stdout" : "stderr") + ": " +
                          (e ? std::strerror(e) : "short write"));
  }
  for (const auto& r : records) host_.report(r.position, P2K_OK);
}

bool StdoutSink::flush(std::chrono::milliseconds) {
  return true;
}

}  // namespace pg2kafka::plugins
