#include <pg2kafka/sdk/backoff.hpp>

#include <gtest/gtest.h>

using pg2kafka::sdk::Backoff;
using std::chrono::milliseconds;

TEST(Backoff, DoublesUpToTheCap_AndResets) {
  Backoff b(milliseconds(100), milliseconds(1000));
  EXPECT_EQ(b.next(), milliseconds(100));
  EXPECT_EQ(b.next(), milliseconds(200));
  EXPECT_EQ(b.next(), milliseconds(400));
  EXPECT_EQ(b.next(), milliseconds(800));
  EXPECT_EQ(b.next(), milliseconds(1000));
  EXPECT_EQ(b.next(), milliseconds(1000));
  b.reset();
  EXPECT_EQ(b.next(), milliseconds(100));
}

TEST(Backoff, NeverOverflows_AfterManyFailures) {
  Backoff b(milliseconds(3'600'000), milliseconds(3'600'000));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b.next(), milliseconds(3'600'000));
}
