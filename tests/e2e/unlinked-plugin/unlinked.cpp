// Calls a function that no linked library defines.
#include <pg2kafka/sdk/plugin.hpp>

extern "C" int p2k_function_of_a_library_not_linked(void);

namespace {
class Unlinked : public pg2kafka::sdk::Sink {
 public:
  Unlinked(pg2kafka::sdk::Host, const pg2kafka::sdk::Options&) {}
  void write(std::span<const p2k_record>) override { p2k_function_of_a_library_not_linked(); }
  bool flush(std::chrono::milliseconds) override { return true; }
};
}  // namespace

P2K_SINK_PLUGIN(Unlinked, "unlinked", "1.0.0", "Forgot to link a library.")
