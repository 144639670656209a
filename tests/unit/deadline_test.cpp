#include "runtime/deadline.hpp"

#include <gtest/gtest.h>

using pg2kafka::runtime::millis_until;
using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(Deadline, WaitsAreRoundedUp_SoThatASubMillisecondRemainderNeverBecomesZero) {
  auto now = std::chrono::steady_clock::now();
  EXPECT_EQ(millis_until(now + microseconds(300), now), milliseconds(1));
  EXPECT_EQ(millis_until(now + microseconds(1), now), milliseconds(1));
  EXPECT_EQ(millis_until(now + microseconds(2001), now), milliseconds(3));
  EXPECT_EQ(millis_until(now + milliseconds(2), now), milliseconds(2));
  EXPECT_EQ(millis_until(now, now), milliseconds(0));
  EXPECT_EQ(millis_until(now - milliseconds(5), now), milliseconds(0));
}
