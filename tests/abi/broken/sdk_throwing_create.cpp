// A plugin built with the SDK whose constructor throws: the SDK must turn it into a status.
#include <pg2kafka/sdk/plugin.hpp>

namespace {
class Throwing : public pg2kafka::sdk::Sink {
 public:
  Throwing(pg2kafka::sdk::Host, const pg2kafka::sdk::Options&) {
    throw std::runtime_error("constructor exploded");
  }
  void write(std::span<const p2k_record>) override {}
  bool flush(std::chrono::milliseconds) override { return true; }
};
}  // namespace

// No option table: a plugin without options leaves the argument out.
P2K_SINK_PLUGIN(Throwing, "sdk-throwing", "1.0.0", "Throws from create.")
