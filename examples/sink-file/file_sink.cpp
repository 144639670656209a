// An example third-party sink: appends every record to a file as one JSON line.
//
// It shows the whole plugin contract in one page:
//   - the option table (types, defaults, required flags, descriptions): the one place where the
//     options and their defaults are declared,
//   - a constructor that validates options, does no I/O and starts no thread,
//   - open() for I/O that can fail (RetryError: the host retries; ConfigError: exit code 2),
//   - asynchronous delivery, the usual case for a sink: write() only queues the records and
//     returns; a thread of the sink's own appends them (sdk::AsyncDelivery) and reports each
//     record only once it is really stored, so the host never waits for the disk,
//   - flush() as a barrier.
// It has no poll(): it reports from its own thread, and the host waits for those reports without
// spinning. It leaves the per-key order after a failure to the host (plugin ABI 1.1).
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
    if (path_.empty()) throw sdk::ConfigError("path", "must not be empty");
  }

  void open() override {
    if (!file_) {
      file_.reset(std::fopen(path_.c_str(), "a"));
      if (!file_) {
        int e = errno;
        // A missing directory or a permission problem will not fix itself: a configuration error.
        if (e == ENOENT || e == EACCES || e == EISDIR)
          throw sdk::ConfigError("path",
                                 "cannot open '" + path_ + "' for appending: " + std::strerror(e));
        throw sdk::RetryError("cannot open '" + path_ + "' yet: " + std::strerror(e));
      }
    }
    delivery_.start();
    host_.info("appending records to " + path_);
  }

  // Copies the records into the delivery queue and returns at once.
  void write(std::span<const p2k_record> records) override { delivery_.enqueue(records); }

  bool flush(std::chrono::milliseconds timeout) override { return delivery_.flush(timeout); }

  // Lets the batch being appended finish; what is still queued is reported RETRY (the host
  // delivers it again on its next run).
  void close() override { delivery_.stop(); }

 private:
  // Runs on the delivery thread, with up to 1000 records at a time. Returning reports every
  // record of the batch OK; throwing reports every one with the exception's status.
  void append(std::span<const sdk::OwnedRecord> batch) {
    std::string& out = buffer_;
    out.clear();
    for (const auto& r : batch) {
      out += "{\"topic\":";
      sdk::append_json_string(out, r.topic);
      out += ",\"key\":";
      if (r.key)
        sdk::append_json_string(out, *r.key);
      else
        out += "null";
      out += ",\"id\":";
      sdk::append_json_string(out, r.id);
      out += ",\"value\":";
      sdk::append_json_string(out, r.value);
      out += "}\n";
    }
    FILE* f = file_.get();
    if (std::fwrite(out.data(), 1, out.size(), f) != out.size() || std::fflush(f) != 0 ||
        (fsync_ && ::fsync(fileno(f)) != 0)) {
      int e = errno;
      std::clearerr(f);
      // A full disk may be freed: transient. A partial line may be left behind; consumers of
      // this example must tolerate it, as they tolerate duplicates.
      throw sdk::RetryError("cannot append to '" + path_ + "': " + std::strerror(e));
    }
  }

  struct CloseFile {
    void operator()(FILE* f) const { std::fclose(f); }
  };

  sdk::Host host_;
  std::string path_;
  bool fsync_;
  std::unique_ptr<FILE, CloseFile> file_;
  std::string buffer_;  // used by the delivery thread only
  // Last member: destroyed first, so its thread is joined before the file is closed.
  sdk::AsyncDelivery delivery_{
      host_, [this](std::span<const sdk::OwnedRecord> batch) { append(batch); }, 1, 1000};
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

P2K_SINK_PLUGIN(FileSink, "file", "1.1.0", "Appends records to a file, one JSON line each.",
                kOptions)
