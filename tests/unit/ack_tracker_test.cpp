#include "runtime/ack_tracker.hpp"

#include <gtest/gtest.h>

using pg2kafka::runtime::AckTracker;

TEST(AckTracker, AcksOnlyTheUnbrokenPrefix_WhenDeliveredOutOfOrder) {
  AckTracker t;
  for (uint64_t p : {10, 11, 12, 13}) ASSERT_TRUE(t.add(p));
  EXPECT_TRUE(t.delivered(12));
  EXPECT_TRUE(t.delivered(11));
  EXPECT_FALSE(t.take_ackable().has_value());  // 10 still open
  EXPECT_TRUE(t.delivered(10));
  EXPECT_EQ(t.take_ackable(), 12u);
  EXPECT_EQ(t.tracked(), 1u);
  EXPECT_FALSE(t.take_ackable().has_value());
  EXPECT_TRUE(t.delivered(13));
  EXPECT_EQ(t.take_ackable(), 13u);
  EXPECT_EQ(t.tracked(), 0u);
}

TEST(AckTracker, RefusesNonIncreasingPositions) {
  AckTracker t;
  EXPECT_TRUE(t.add(5));
  EXPECT_FALSE(t.add(5));
  EXPECT_FALSE(t.add(4));
  EXPECT_TRUE(t.add(9));  // gaps are fine
}

TEST(AckTracker, RefusesUnknownAndDuplicateDeliveries) {
  AckTracker t;
  t.add(1);
  t.add(3);
  EXPECT_FALSE(t.delivered(2));
  EXPECT_TRUE(t.delivered(3));
  EXPECT_FALSE(t.delivered(3));
  EXPECT_FALSE(t.take_ackable().has_value());
}
