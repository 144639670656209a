// The kafka sink plugin: identity, option table and the exported entry point. The logic is in
// kafka_sink.cpp, the option parsing in sink_config.cpp.
#include <pg2kafka/sdk/plugin.hpp>

#include "kafka_sink.hpp"

namespace {

using pg2kafka::sdk::option;

constexpr const char* kAcks[] = {"all", "1", nullptr};
constexpr const char* kCompression[] = {"none", "gzip", "snappy", "lz4", "zstd", nullptr};
constexpr const char* kPartitioners[] = {"murmur2_random", "murmur2", "consistent_random",
                                         "consistent",     "random",  "fnv1a",
                                         "fnv1a_random",   nullptr};

constexpr p2k_option kOptions[] = {
    option("bootstrap_servers", P2K_OPT_LIST, nullptr,
           "The Kafka brokers to connect to first, as host:port elements (a list, or one "
           "comma-separated string). The URL form of the original pg2kafka, kafka://host:port, is "
           "accepted too: the scheme is ignored. Security (TLS, SASL) is set through rdkafka.* "
           "options, e.g. rdkafka.security.protocol=SASL_SSL.",
           P2K_OPT_REQUIRED),
    option("acks", P2K_OPT_ENUM, "all",
           "How many replicas must store a message before the broker confirms it: 'all' (every "
           "in-sync replica; required by enable_idempotence) or '1' (the leader only: a broker "
           "crash right after the confirmation can lose the message). A record is reported "
           "delivered only after this confirmation. acks=0 is not offered: without any "
           "confirmation pg2kafka could not know that a record was stored.",
           0, kAcks),
    option("enable_idempotence", P2K_OPT_BOOL, "true",
           "Use Kafka's idempotent producer: the broker drops the duplicates that internal "
           "retries would otherwise create, and messages of a partition stay in order across "
           "retries. Needs acks=all (and, on brokers before Kafka 3.0, the IDEMPOTENT_WRITE "
           "permission). Turn off only for brokers that do not support it."),
    option("compression", P2K_OPT_ENUM, "lz4",
           "How message batches are compressed on the wire and on the broker's disk: none, gzip, "
           "snappy, lz4 or zstd. lz4 compresses JSON envelopes about as well as snappy (the "
           "original's choice) at lower CPU cost per message; consumers decompress any of them "
           "transparently.",
           0, kCompression),
    option("linger", P2K_OPT_DURATION, "1ms",
           "How long the producer waits for more messages before it sends a batch (librdkafka "
           "linger.ms). Longer values make fewer, larger requests; shorter values lower latency. "
           "The host writes records in batches, so batches form under load even with a short "
           "linger; the default keeps commit-to-Kafka latency low for scattered writes.",
           0, nullptr, 0, 900000),
    option("batch_size", P2K_OPT_SIZE, "1MB",
           "The largest batch of messages sent to one partition in one request, in bytes "
           "(librdkafka batch.size). Keep it below the topics' max.message.bytes: the broker "
           "refuses a larger batch as a whole.",
           0, nullptr, 1, 2147483647),
    option("batch_num_messages", P2K_OPT_INT, "10000",
           "The largest number of messages in one batch (librdkafka batch.num.messages).", 0,
           nullptr, 1, 1000000),
    option("message_timeout", P2K_OPT_DURATION, "5m",
           "How long the producer keeps retrying a message (broker unreachable, leader "
           "elections) before it gives up and reports it for a retry by the pipeline "
           "(librdkafka message.timeout.ms). Nothing is lost when it runs out: the record is "
           "written again after a backoff.",
           0, nullptr, 1, 2147483647),
    option("request_timeout", P2K_OPT_DURATION, "10s",
           "How long opening the sink and checking or creating a topic wait for the cluster's "
           "answer, and how long a write waits for room in a full local queue, before giving up "
           "for now (the pipeline retries after a backoff).",
           0, nullptr, 100, 300000),
    option("partitioner", P2K_OPT_ENUM, "murmur2_random",
           "How a message's key chooses its partition. murmur2_random (the default) hashes keys "
           "like the Java producer's default partitioner, so the same key lands on the same "
           "partition as with Java producers; messages with a null key are spread randomly. The "
           "others are librdkafka's: murmur2, consistent_random, consistent, random, fnv1a and "
           "fnv1a_random.",
           0, kPartitioners),
    option("create_topics", P2K_OPT_BOOL, "false",
           "Create a missing topic (with topic_partitions and topic_replication_factor) through "
           "Kafka's admin API instead of stopping with an error. Needs the CREATE permission. "
           "Off by default: production topics are usually created deliberately, with their "
           "partition count, retention and replication chosen for them."),
    option("topic_partitions", P2K_OPT_INT, "-1",
           "The number of partitions of a topic created by create_topics; -1 takes the broker's "
           "num.partitions.",
           0, nullptr, -1, 100000),
    option("topic_replication_factor", P2K_OPT_INT, "-1",
           "The replication factor of a topic created by create_topics; -1 takes the broker's "
           "default.replication.factor.",
           0, nullptr, -1, 32767),
    option("client_id", P2K_OPT_STRING, "pg2kafka",
           "The client id the producer sends to the brokers (shown in their logs and quotas)."),
    option("rdkafka.", P2K_OPT_PREFIX, nullptr,
           "Any other librdkafka producer property, e.g. rdkafka.security.protocol=SASL_SSL, "
           "rdkafka.sasl.mechanism=SCRAM-SHA-512, rdkafka.sasl.username, rdkafka.sasl.password, "
           "rdkafka.ssl.ca.location. Values of keys containing password, secret, token or key "
           "are never printed. Refused: keys that load code (plugin.library.paths, "
           "ssl.engine.location) or run commands (sasl.kerberos.kinit.cmd), keys that would "
           "break the delivery guarantee (delivery.report.only.error, transactional.id) and "
           "keys that a named option above sets. socket.nagle.disable defaults to true."),
};

}  // namespace

P2K_SINK_PLUGIN(pg2kafka::kafka::KafkaSink, "kafka", "0.1.0",
                "Produces records to Apache Kafka topics (librdkafka, idempotent, acks=all).",
                kOptions)
