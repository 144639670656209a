// Identity, options and entry point of the stdout sink.
#include "stdout_sink.hpp"

namespace {

using pg2kafka::sdk::option;

const char* const kFormats[] = {"envelope", "value", nullptr};
const char* const kStreams[] = {"stdout", "stderr", nullptr};

const p2k_option kOptions[] = {
    option("format", P2K_OPT_ENUM, "envelope",
           "What each output line holds. \"envelope\": a JSON object {\"topic\": ..., \"key\": "
           "..., \"value\": ...} where value is the message itself as JSON (or a JSON string "
           "when the message is not JSON) and key is null for a null key. \"value\": the message "
           "alone.",
           0, kFormats),
    option("stream", P2K_OPT_ENUM, "stdout",
           "Where the lines go: stdout, or stderr (to keep stdout for something else).", 0,
           kStreams),
};

}  // namespace

P2K_SINK_PLUGIN(
    pg2kafka::plugins::StdoutSink, "stdout", "0.1.0",
    "Prints each record as one JSON line, for dry runs and for piping into other tools.", kOptions)
