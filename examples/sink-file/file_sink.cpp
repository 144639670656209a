// An example third-party sink: appends every record to a file as one JSON line.
//
// It shows the whole plugin contract in one page:
//   - the option table (types, defaults, required flags, descriptions),
//   - a constructor that validates options and does no I/O,
//   - open() for I/O that can fail (RetryError: the host retries; ConfigError: exit code 2),
//   - write() that reports each record through Host::report only once it is really stored,
//   - flush() as a barrier.
// It uses only <pg2kafka/sdk/plugin.hpp>: no other library is needed to write a plugin.
#include <pg2kafka/sdk/plugin.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

using namespace pg2kafka;

class FileSink : public sdk::Sink {
 public:
  FileSink(sdk::Host host, const sdk::Options& options)
      : host_(host), path_(options.string("path")), fsync_(options.boolean("fsync")) {
    if (path_.empty()) throw sdk::ConfigError("path must not be empty");
  }

  ~FileSink() override {
    if (file_) std::fclose(file_);
  }

  void open() override {
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_) {
      int e = errno;
      // A missing directory or a permission problem will not fix itself: a configuration error.
      if (e == ENOENT || e == EACCES || e == EISDIR)
        throw sdk::ConfigError("cannot open '" + path_ + "' for appending: " + std::strerror(e));
      throw sdk::RetryError("cannot open '" + path_ + "' yet: " + std::strerror(e));
    }
    host_.info("appending records to " + path_);
  }

  void write(std::span<const p2k_record> records) override {
    buffer_.clear();
    for (const auto& r : records) {
      buffer_ += "{\"topic\":";
      sdk::append_json_string(buffer_, {r.topic.data, r.topic.size});
      buffer_ += ",\"key\":";
      if (r.key.data)
        sdk::append_json_string(buffer_, {r.key.data, r.key.size});
      else
        buffer_ += "null";
      buffer_ += ",\"id\":";
      sdk::append_json_string(buffer_, {r.id.data ? r.id.data : "", r.id.size});
      buffer_ += ",\"value\":";
      sdk::append_json_string(buffer_, {r.value.data ? r.value.data : "", r.value.size});
      buffer_ += "}\n";
    }
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size() ||
        std::fflush(file_) != 0 || (fsync_ && ::fsync(fileno(file_)) != 0)) {
      // Throwing makes the host fail (and later retry) the whole call; report nothing ourselves.
      // A partial line may be left behind: consumers of this example must tolerate duplicates.
      throw sdk::RetryError("cannot append to '" + path_ + "': " + std::strerror(errno));
    }
    // Only now is every record stored: report them.
    for (const auto& r : records) host_.report(r.position, P2K_OK);
  }

  // write() reports before it returns, so there is never anything left to wait for.
  bool flush(std::chrono::milliseconds) override { return true; }

 private:
  sdk::Host host_;
  std::string path_;
  bool fsync_;
  FILE* file_ = nullptr;
  std::string buffer_;
};

const p2k_option kOptions[] = {
    sdk::option("path", P2K_OPT_STRING, nullptr,
                "File to append records to, one JSON line per record: {\"topic\", \"key\", "
                "\"id\", \"value\"}. Created when missing; its directory must exist.",
                P2K_OPT_REQUIRED),
    sdk::option("fsync", P2K_OPT_BOOL, "false",
                "Call fsync after every batch, so that a record is reported delivered only once "
                "it is on disk (slower; survives a power loss)."),
};

}  // namespace

P2K_SINK_PLUGIN(FileSink, "file", "1.0.0", "Appends records to a file, one JSON line each.",
                kOptions)
