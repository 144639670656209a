// The kafka sink plugin: identity and the exported entry point. Delivery is in kafka_sink.cpp,
// topic checks and creation in topic_admin.cpp, the sorting of librdkafka's errors in
// kafka_errors.cpp, the option table and its parsing in sink_config.cpp.
#include <pg2kafka/sdk/plugin.hpp>

#include "kafka_sink.hpp"

P2K_SINK_PLUGIN(pg2kafka::kafka::KafkaSink, "kafka", "0.1.0",
                "Produces records to Apache Kafka topics (librdkafka, idempotent, acks=all).",
                pg2kafka::kafka::sink_options())
