// The host's delivery window: in-order acknowledgement, and the per-key ordering rule after a
// RETRY, which sinks no longer implement themselves.
#include "runtime/delivery_window.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

using pg2kafka::runtime::DeliveryWindow;

namespace {

// Records with stable memory: position -> (topic, key).
class Records {
 public:
  p2k_record make(uint64_t position, std::optional<std::string> key, std::string topic = "t") {
    auto& s = storage_.emplace_back(Stored{std::move(topic), std::move(key), "v"});
    p2k_record r{};
    r.struct_size = sizeof r;
    r.position = position;
    r.topic = {s.topic.data(), s.topic.size()};
    r.key = s.key ? p2k_slice{s.key->data(), s.key->size()} : p2k_slice{nullptr, 0};
    r.value = {s.value.data(), s.value.size()};
    return r;
  }

 private:
  struct Stored {
    std::string topic;
    std::optional<std::string> key;
    std::string value;
  };
  std::deque<Stored> storage_;
};

std::vector<uint64_t> positions(const std::vector<p2k_record>& records) {
  std::vector<uint64_t> out;
  for (const auto& r : records) out.push_back(r.position);
  return out;
}

}  // namespace

TEST(DeliveryWindow, AcksOnlyTheUnbrokenPrefix_WhenDeliveredOutOfOrder) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p : {10, 11, 12, 13}) ASSERT_TRUE(w.add(rec.make(p, "k" + std::to_string(p)), {}));
  EXPECT_TRUE(w.delivered(12));
  EXPECT_TRUE(w.delivered(11));
  EXPECT_FALSE(w.take_ackable().has_value());  // 10 still open
  EXPECT_EQ(w.unconfirmed(), 2u);
  EXPECT_TRUE(w.delivered(10));
  size_t count = 0;
  EXPECT_EQ(w.take_ackable(&count), 12u);
  EXPECT_EQ(count, 3u);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_FALSE(w.take_ackable().has_value());
  EXPECT_TRUE(w.delivered(13));
  EXPECT_EQ(w.take_ackable(), 13u);
  EXPECT_TRUE(w.empty());
}

TEST(DeliveryWindow, RefusesNonIncreasingPositions) {
  Records rec;
  DeliveryWindow w;
  EXPECT_TRUE(w.add(rec.make(5, "a"), {}));
  EXPECT_FALSE(w.add(rec.make(5, "a"), {}));
  EXPECT_FALSE(w.add(rec.make(4, "a"), {}));
  EXPECT_TRUE(w.add(rec.make(9, "a"), {}));  // gaps are fine
  EXPECT_EQ(w.last_added(), 9u);
}

TEST(DeliveryWindow, RefusesUnknownAndDuplicateOutcomes) {
  Records rec;
  DeliveryWindow w;
  w.add(rec.make(1, "a"), {});
  w.add(rec.make(3, "a"), {});
  EXPECT_FALSE(w.delivered(2));
  EXPECT_TRUE(w.delivered(3));
  EXPECT_FALSE(w.delivered(3));
  EXPECT_FALSE(w.failed(3));
  EXPECT_TRUE(w.failed(1));
  EXPECT_FALSE(w.failed(1));
  EXPECT_EQ(w.awaiting(1), nullptr);
  EXPECT_FALSE(w.take_ackable().has_value());
}

TEST(DeliveryWindow, CountsUnconfirmedRecordsAndBytes) {
  Records rec;
  DeliveryWindow w;
  w.add(rec.make(1, "ab"), {});          // 2 + 1 bytes
  w.add(rec.make(2, std::nullopt), {});  // 0 + 1
  EXPECT_EQ(w.unconfirmed(), 2u);
  EXPECT_EQ(w.unconfirmed_bytes(), 4u);
  w.failed(1);
  EXPECT_EQ(w.unconfirmed(), 2u) << "awaiting a retry is still unconfirmed";
  EXPECT_EQ(w.awaiting_outcome(), 1u);
  EXPECT_EQ(w.awaiting_retry(), 1u);
  w.delivered(2);
  EXPECT_EQ(w.unconfirmed(), 1u);
  EXPECT_EQ(w.unconfirmed_bytes(), 3u);
}

TEST(DeliveryWindow, RetriesOnlyOnceNothingWrittenBeforeAwaitsAnOutcome) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 3; ++p) w.add(rec.make(p, "k" + std::to_string(p)), {});
  w.failed(1);
  EXPECT_TRUE(w.take_rewrites().empty()) << "2 and 3 were written before the rewrite";
  w.delivered(2);
  EXPECT_TRUE(w.take_rewrites().empty());
  w.delivered(3);
  EXPECT_EQ(positions(w.take_rewrites()), (std::vector<uint64_t>{1}))
      << "other keys delivered meanwhile are not written again";
  EXPECT_EQ(w.awaiting_outcome(), 1u);
  EXPECT_EQ(w.awaiting_retry(), 0u);
}

// The ordering rule: a RETRY turns later successes of the same key, written before the rewrite,
// into RETRY. The sink reported 4 and 5 OK after 3 failed: they reached the destination before 3,
// so they go out again behind it.
TEST(DeliveryWindow, WritesLaterSuccessesOfTheSameKeyAgain_BehindTheRetriedRecord) {
  Records rec;
  DeliveryWindow w;
  w.add(rec.make(1, "a"), {});
  w.add(rec.make(2, "a"), {});
  w.add(rec.make(3, "a"), {});
  w.add(rec.make(4, "a"), {});
  w.add(rec.make(5, "b"), {});
  w.add(rec.make(6, "a", "other-topic"), {});
  for (uint64_t p : {1, 2, 4, 5, 6}) w.delivered(p);
  w.failed(3);
  EXPECT_EQ(w.take_ackable(), 2u);
  auto again = w.take_rewrites();
  EXPECT_EQ(positions(again), (std::vector<uint64_t>{3, 4}))
      << "4 (same topic and key) follows 3; 5 (another key) and 6 (another topic) stay delivered";
  EXPECT_EQ(w.awaiting_outcome(), 2u);
  EXPECT_EQ(w.unconfirmed_bytes(), 4u);
  // 4 counts as undelivered until its second write is confirmed, so nothing is acknowledged past
  // 3 on the strength of its first copy.
  w.delivered(3);
  EXPECT_EQ(w.take_ackable(), 3u);
  EXPECT_FALSE(w.take_ackable().has_value());
  w.delivered(4);
  EXPECT_EQ(w.take_ackable(), 6u);
}

// Out-of-order reports: the later record's OK arrives before the earlier one's RETRY.
TEST(DeliveryWindow, AppliesTheRule_WhenTheSuccessWasReportedBeforeTheFailure) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 4; ++p) w.add(rec.make(p, std::nullopt), {});
  w.delivered(4);
  w.delivered(2);
  w.delivered(1);
  w.failed(3);
  EXPECT_EQ(w.take_ackable(), 2u);
  EXPECT_EQ(positions(w.take_rewrites()), (std::vector<uint64_t>{3, 4}))
      << "null keys keep their order too";
}

TEST(DeliveryWindow, AppliesTheRuleAgain_WhenTheRewriteFailsToo) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 3; ++p) w.add(rec.make(p, "a"), {});
  w.failed(1);
  w.delivered(2);
  w.delivered(3);
  ASSERT_EQ(positions(w.take_rewrites()), (std::vector<uint64_t>{1, 2, 3}));
  w.delivered(2);
  w.failed(1);
  w.delivered(3);
  EXPECT_EQ(positions(w.take_rewrites()), (std::vector<uint64_t>{1, 2, 3}));
}

TEST(DeliveryWindow, WholeWriteFailures_AreRewrittenInOrder) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 3; ++p) w.add(rec.make(p, "k" + std::to_string(p)), {});
  for (uint64_t p = 1; p <= 3; ++p) w.failed(p);
  EXPECT_EQ(positions(w.take_rewrites()), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(w.take_rewrites().empty());
}

TEST(DeliveryWindow, KeepsTheRecordsMemoryUntilAcknowledged) {
  Records rec;
  DeliveryWindow w;
  auto holder = std::make_shared<int>(7);
  std::weak_ptr<int> watch = holder;
  w.add(rec.make(1, "a"), holder);
  w.add(rec.make(2, "a"), holder);
  holder.reset();
  w.delivered(2);
  EXPECT_FALSE(w.take_ackable().has_value());
  EXPECT_FALSE(watch.expired()) << "a delivered record may still have to be written again";
  w.delivered(1);
  EXPECT_EQ(w.take_ackable(), 2u);
  EXPECT_TRUE(watch.expired());
}

// Parking (on_permanent_failure=park): a record set aside holds back the later records of its
// key, whatever their state, and stays unacknowledged until it is settled or its dead letter is
// delivered.
TEST(DeliveryWindowParking, ASetAsideRecordHoldsItsKey_AndAcknowledgementWaitsForIt) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 6; ++p)
    ASSERT_TRUE(w.add(rec.make(p, p % 2 ? "odd" : "even"), nullptr));
  ASSERT_TRUE(w.delivered(1));
  ASSERT_TRUE(w.delivered(5));  // odd, later than 3: arrived before 3 failed
  ASSERT_TRUE(w.failed(4));     // even: unaffected
  ASSERT_TRUE(w.set_aside(3));
  EXPECT_EQ(w.hold_later_of_key(3), std::vector<uint64_t>{5});
  EXPECT_EQ(w.set_aside_count(), 2u);
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(1));
  EXPECT_EQ(w.take_ackable(), std::nullopt) << "2 is awaiting its outcome";
  ASSERT_TRUE(w.delivered(2));
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(2)) << "3 is being parked";
  EXPECT_FALSE(w.take_stray_outcome(5)) << "5 was delivered: no outcome is owed";
  ASSERT_TRUE(w.settle(3));
  ASSERT_TRUE(w.settle(5));
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(3)) << "4 awaits its retry";
  ASSERT_TRUE(w.delivered(6));
  EXPECT_EQ(positions(w.take_rewrites()), (std::vector<uint64_t>{4, 6}))
      << "the retry rule for the other key as ever; the parked 5 is not written again";
}

TEST(DeliveryWindowParking, ParkedRecordsAreNeverWrittenAgain_AndWaitForEarlierOnesOfTheirKey) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 3; ++p) ASSERT_TRUE(w.add(rec.make(p, "k"), nullptr));
  ASSERT_TRUE(w.failed(1));  // awaiting a retry
  ASSERT_TRUE(w.set_aside(2));
  EXPECT_TRUE(w.earlier_of_key_unresolved(2)) << "1 may still fail: 2 is parked after it";
  EXPECT_EQ(w.hold_later_of_key(2), std::vector<uint64_t>{3});
  ASSERT_TRUE(w.settle(2));
  ASSERT_TRUE(w.take_stray_outcome(3));
  ASSERT_TRUE(w.settle(3));
  EXPECT_EQ(positions(w.take_rewrites()), std::vector<uint64_t>{1})
      << "the ordering rule never writes a parked record again";
  ASSERT_TRUE(w.delivered(1));
  EXPECT_FALSE(w.earlier_of_key_unresolved(2));
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(3));
}

TEST(DeliveryWindowParking, AnOutcomeOfAHeldRecordInFlightIsIgnoredOnce) {
  Records rec;
  DeliveryWindow w;
  for (uint64_t p = 1; p <= 3; ++p) ASSERT_TRUE(w.add(rec.make(p, "k"), nullptr));
  ASSERT_TRUE(w.set_aside(1));
  EXPECT_EQ(w.hold_later_of_key(1), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(w.awaiting_outcome(), 0u);
  EXPECT_EQ(w.awaiting(2), nullptr);
  EXPECT_EQ(w.unconfirmed(), 3u);
  for (uint64_t p = 1; p <= 3; ++p) ASSERT_TRUE(w.settle(p));
  EXPECT_EQ(w.unconfirmed(), 0u);
  EXPECT_EQ(w.unconfirmed_bytes(), 0u);
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(1))
      << "2 and 3 stay until the sink's reports of them came (they must find them here)";
  EXPECT_TRUE(w.take_stray_outcome(2));
  EXPECT_FALSE(w.take_stray_outcome(2)) << "once";
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(2));
  EXPECT_TRUE(w.take_stray_outcome(3));
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(3));
}

TEST(DeliveryWindowParking, ADeadLetterTakesTheRecordsPlace_AndIsConfirmedByItsOutcome) {
  Records rec;
  DeliveryWindow w;
  ASSERT_TRUE(w.add(rec.make(1, "k"), nullptr));
  ASSERT_TRUE(w.add_set_aside(rec.make(2, "k"), nullptr)) << "an unusable record, never written";
  EXPECT_EQ(w.set_aside_record(2)->position, 2u);
  auto letter = rec.make(99, "k", "dead");
  ASSERT_TRUE(w.replace(2, letter, nullptr, DeliveryWindow::Letter::kWithValue));
  EXPECT_EQ(w.letter(2), DeliveryWindow::Letter::kWithValue);
  ASSERT_NE(w.awaiting(2), nullptr);
  EXPECT_EQ(w.awaiting(2)->position, 2u) << "the letter keeps the record's position";
  EXPECT_EQ(std::string(w.awaiting(2)->topic.data, w.awaiting(2)->topic.size), "dead");
  ASSERT_TRUE(w.delivered(1));
  ASSERT_TRUE(w.delivered(2));
  EXPECT_EQ(w.take_ackable(), std::optional<uint64_t>(2));
}
