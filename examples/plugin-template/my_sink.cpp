// my-sink: a template for a pg2kafka sink plugin. It delivers records on a thread of its own
// (sdk::AsyncDelivery), which suits any destination reached through a blocking client (HTTP, a
// database, a file). See docs/plugin-authoring.md for the contract.
//
// TODO: rename the class, the plugin (NAME in CMakeLists.txt and the macro below), declare your
// options, and replace send() with the delivery to your destination.
#include <pg2kafka/sdk/plugin.hpp>

namespace {

using namespace pg2kafka;

class MySink : public sdk::Sink {
 public:
  // Read and check the options; no I/O, no threads. The option table below holds the defaults:
  // read every option that has one without a fallback of your own.
  MySink(sdk::Host host, const sdk::Options& options)
      : host_(host), endpoint_(options.string("endpoint")), workers_(options.integer("workers")) {
    if (endpoint_.find(' ') != std::string::npos)
      throw sdk::ConfigError("endpoint", "must not contain spaces");  // shown at its file:line
  }

  // Connect (throw sdk::RetryError while the destination is unreachable), then start delivering.
  void open() override {
    // TODO: connect to endpoint_.
    delivery_.start();
  }

  // Queue the records and return; the delivery threads report each one.
  void write(std::span<const p2k_record> records) override { delivery_.enqueue(records); }

  bool flush(std::chrono::milliseconds timeout) override { return delivery_.flush(timeout); }

  void close() override { delivery_.stop(); }

 private:
  // On a delivery thread: deliver one record. Return when the destination has stored it; throw
  // sdk::RetryError when it may work later, anything else when it never will.
  void send(const sdk::OwnedRecord& record) {
    // TODO: deliver record.value (with record.key, record.topic, record.id) to endpoint_.
    (void)record;
  }

  sdk::Host host_;
  std::string endpoint_;
  int64_t workers_;
  // Last member, so that its threads stop before the members send() uses go away.
  sdk::AsyncDelivery delivery_{host_,
                               [this](std::span<const sdk::OwnedRecord> batch) {
                                 for (const auto& r : batch) send(r);
                               },
                               static_cast<size_t>(workers_), 1};
};

const p2k_option kOptions[] = {
    sdk::option("endpoint", P2K_OPT_STRING, nullptr,
                "TODO: where the records go. Full sentences: users read this in `pg2kafka plugins "
                "describe my-sink`.",
                P2K_OPT_REQUIRED),
    sdk::option("workers", P2K_OPT_INT, "1",
                "How many records are delivered at the same time, each on its own thread. Records "
                "then complete out of order; pg2kafka keeps the order per key.",
                0, nullptr, 1, 64),
    // A secret is declared, of any type: P2K_OPT_IS_SECRET values are never printed.
    sdk::option("headers.", P2K_OPT_PREFIX, nullptr,
                "TODO (example): extra headers sent with each record, e.g. headers.Authorization. "
                "Secret: never printed.",
                P2K_OPT_IS_SECRET),
};

}  // namespace

P2K_SINK_PLUGIN(MySink, "my-sink", "0.1.0", "TODO: one line saying what it does.", kOptions)
