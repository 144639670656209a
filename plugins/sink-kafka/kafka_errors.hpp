// How the kafka sink reads librdkafka's error codes: which ones are worth a retry, which ones
// the user has to fix (permissions, settings), and which ones stop the pipeline. The tables of
// codes live here and nowhere else; the sink's other files only decide what to tell the user.
//
// A verdict is the p2k_status the host gets to see:
//   P2K_RETRY           transient: the host writes the record (or opens, checks) again later;
//   P2K_FATAL           no retry can fix it: the pipeline stops;
//   P2K_INVALID_CONFIG  the pipeline file must change (only from open and topic preparation).
//
// Pure functions of the code: no I/O, no librdkafka handle needed (kafka_errors_test.cpp).
#pragma once

#include <pg2kafka/plugin.h>

#include <librdkafka/rdkafka.h>

#include <string>

namespace pg2kafka::kafka {

// librdkafka's name for `err` and its description, as messages show them:
// "_MSG_TIMED_OUT (Local: Message timed out)".
std::string error_text(rd_kafka_resp_err_t err);

// --- The tables ---

// Errors after which the same request may well succeed later: the cluster is unreachable, busy,
// electing a leader, short of in-sync replicas, or librdkafka gave the message up (timeout, purge,
// full local queue). For a record, librdkafka has already retried these internally until
// message_timeout; the host writes the record again after a backoff.
bool is_retriable(rd_kafka_resp_err_t err);

// The broker refused for want of an ACL permission (on the topic, the cluster, a transactional id
// or a group). Never retriable: someone has to grant the permission.
bool is_authorization_error(rd_kafka_resp_err_t err);

// The connection could not be authenticated (SASL, TLS): a setting of the rdkafka.security.*,
// rdkafka.sasl.* or rdkafka.ssl.* options is wrong. Never retriable.
bool is_authentication_error(rd_kafka_resp_err_t err);

// The broker refused to create a topic because of what was asked for: the partition count, the
// replication factor, a topic config, a creation policy, or an argument librdkafka refused.
bool is_invalid_topic_settings(rd_kafka_resp_err_t err);

// The idempotent producer was fenced: another producer with the same identity took over.
bool is_producer_fenced(rd_kafka_resp_err_t err);

// The topic is not known to the cluster (it may have been deleted since it was checked).
bool is_unknown_topic(rd_kafka_resp_err_t err);

// --- Verdicts ---

// A record that the producer refused to enqueue, or that its delivery report says the broker did
// not store: P2K_RETRY when is_retriable(err), P2K_FATAL otherwise (a record too large, missing
// permissions, librdkafka's _FATAL, anything unknown).
p2k_status record_status(rd_kafka_resp_err_t err);

// Opening failed because the cluster did not answer a metadata request; `cause` is the last error
// librdkafka reported through its error callback (NO_ERROR when it reported none):
// P2K_INVALID_CONFIG when authentication failed, P2K_RETRY otherwise (unreachable for now).
p2k_status open_status(rd_kafka_resp_err_t cause);

// The broker refused to create a topic (`err` is neither NO_ERROR nor TOPIC_ALREADY_EXISTS, which
// are no failures): P2K_INVALID_CONFIG for is_invalid_topic_settings, P2K_RETRY for
// is_retriable, P2K_FATAL otherwise (missing permissions included).
p2k_status create_topic_status(rd_kafka_resp_err_t err);

// What a metadata answer's error for one topic says about the topic.
enum class TopicState {
  kExists,        // NO_ERROR; LEADER_NOT_AVAILABLE too (it exists, a leader is being elected)
  kMissing,       // UNKNOWN_TOPIC_OR_PART, _UNKNOWN_TOPIC: create it, or tell the user to
  kUnauthorized,  // TOPIC_AUTHORIZATION_FAILED: fatal, the principal lacks DESCRIBE
  kInvalidName,   // TOPIC_EXCEPTION: fatal, Kafka does not accept the name
  kUnanswered,    // anything else: the cluster could not tell for now, so retry
};
TopicState topic_state(rd_kafka_resp_err_t topic_error);

}  // namespace pg2kafka::kafka
