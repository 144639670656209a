// How the kafka sink sorts librdkafka's error codes (kafka_errors.hpp): pure functions, no broker.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "kafka_errors.hpp"

namespace {

using namespace pg2kafka::kafka;

using Codes = std::initializer_list<rd_kafka_resp_err_t>;

// Every error code this librdkafka knows.
std::vector<rd_kafka_resp_err_t> every_code() {
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  std::vector<rd_kafka_resp_err_t> out;
  for (size_t i = 0; i < count; ++i)
    if (descs[i].name) out.push_back(descs[i].code);
  return out;
}

TEST(KafkaErrors, ErrorText_NamesTheCodeAndSaysWhatItMeans) {
  EXPECT_EQ(
      error_text(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT),
      std::string("_MSG_TIMED_OUT (") + rd_kafka_err2str(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) + ")");
  EXPECT_EQ(error_text(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
                .rfind("TOPIC_AUTHORIZATION_FAILED (", 0),
            0u);
}

TEST(KafkaErrors, TransientRecordErrors_AreRetry) {
  for (auto err :
       Codes{RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT,
             RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
             RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__PURGE_QUEUE,
             RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
             RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
             RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED}) {
    EXPECT_TRUE(is_retriable(err)) << error_text(err);
    EXPECT_EQ(record_status(err), P2K_RETRY) << error_text(err);
  }
}

TEST(KafkaErrors, LastingRecordErrors_AreFatal) {
  for (auto err : Codes{RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR__FATAL,
                        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                        RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_RECORD,
                        RD_KAFKA_RESP_ERR_INVALID_MSG, RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION,
                        RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR_UNKNOWN})
    EXPECT_EQ(record_status(err), P2K_FATAL) << error_text(err);
}

TEST(KafkaErrors, UnknownTopic_IsRetriable_SoTheTopicIsCheckedAgainBeforeTheRewrite) {
  for (auto err :
       Codes{RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART}) {
    EXPECT_TRUE(is_unknown_topic(err)) << error_text(err);
    EXPECT_EQ(record_status(err), P2K_RETRY) << error_text(err);
  }
  EXPECT_FALSE(is_unknown_topic(RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION));
  EXPECT_FALSE(is_unknown_topic(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED));
}

TEST(KafkaErrors, WhatAUserMustFix_IsNeverRetriable) {
  size_t checked = 0;
  for (auto err : every_code()) {
    if (!is_authorization_error(err) && !is_authentication_error(err) &&
        !is_invalid_topic_settings(err) && !is_producer_fenced(err))
      continue;
    ++checked;
    EXPECT_FALSE(is_retriable(err)) << error_text(err);
    EXPECT_EQ(record_status(err), P2K_FATAL) << error_text(err);
  }
  EXPECT_EQ(checked, 17u);  // every entry of those tables is a code this librdkafka knows
}

TEST(KafkaErrors, Tables_HoldTheirFamilies) {
  for (auto err : Codes{RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                        RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                        RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED})
    EXPECT_TRUE(is_authorization_error(err)) << error_text(err);
  for (auto err :
       Codes{RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR__SSL,
             RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
             RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM, RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE})
    EXPECT_TRUE(is_authentication_error(err)) << error_text(err);
  EXPECT_TRUE(is_producer_fenced(RD_KAFKA_RESP_ERR_PRODUCER_FENCED));
  EXPECT_TRUE(is_producer_fenced(RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH));
  EXPECT_FALSE(is_producer_fenced(RD_KAFKA_RESP_ERR__FATAL));
  for (auto err : Codes{RD_KAFKA_RESP_ERR_NO_ERROR, RD_KAFKA_RESP_ERR__TRANSPORT,
                        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE}) {
    EXPECT_FALSE(is_authorization_error(err)) << error_text(err);
    EXPECT_FALSE(is_authentication_error(err)) << error_text(err);
    EXPECT_FALSE(is_invalid_topic_settings(err)) << error_text(err);
  }
  EXPECT_FALSE(is_retriable(RD_KAFKA_RESP_ERR_NO_ERROR));
}

TEST(KafkaErrors, OpenFailure_IsConfigErrorOnlyWhenAuthenticationFailed) {
  for (auto err : Codes{RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR__SSL,
                        RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
                        RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM})
    EXPECT_EQ(open_status(err), P2K_INVALID_CONFIG) << error_text(err);
  // NO_ERROR: librdkafka reported nothing, the cluster simply did not answer.
  for (auto err : Codes{RD_KAFKA_RESP_ERR_NO_ERROR, RD_KAFKA_RESP_ERR__TRANSPORT,
                        RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE,
                        RD_KAFKA_RESP_ERR__TIMED_OUT})
    EXPECT_EQ(open_status(err), P2K_RETRY) << error_text(err);
}

TEST(KafkaErrors, CreateTopicRefusal_IsConfigForTheSettings_RetryWhenTransient_FatalOtherwise) {
  for (auto err :
       Codes{RD_KAFKA_RESP_ERR_INVALID_PARTITIONS, RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR,
             RD_KAFKA_RESP_ERR_INVALID_CONFIG, RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
             RD_KAFKA_RESP_ERR_INVALID_REQUEST, RD_KAFKA_RESP_ERR__INVALID_ARG})
    EXPECT_EQ(create_topic_status(err), P2K_INVALID_CONFIG) << error_text(err);
  // _TIMED_OUT: no answer to the CreateTopics request in time.
  for (auto err : Codes{RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                        RD_KAFKA_RESP_ERR_NOT_CONTROLLER, RD_KAFKA_RESP_ERR__TRANSPORT})
    EXPECT_EQ(create_topic_status(err), P2K_RETRY) << error_text(err);
  // _FAIL: an answer without a result.
  for (auto err : Codes{RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__FAIL,
                        RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION})
    EXPECT_EQ(create_topic_status(err), P2K_FATAL) << error_text(err);
}

TEST(KafkaErrors, TopicState_FromTheMetadataAnswer) {
  EXPECT_EQ(topic_state(RD_KAFKA_RESP_ERR_NO_ERROR), TopicState::kExists);
  EXPECT_EQ(topic_state(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE), TopicState::kExists);
  EXPECT_EQ(topic_state(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART), TopicState::kMissing);
  EXPECT_EQ(topic_state(RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC), TopicState::kMissing);
  EXPECT_EQ(topic_state(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED), TopicState::kUnauthorized);
  EXPECT_EQ(topic_state(RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION), TopicState::kInvalidName);
  for (auto err : Codes{RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                        RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE})
    EXPECT_EQ(topic_state(err), TopicState::kUnanswered) << error_text(err);
}

}  // namespace
