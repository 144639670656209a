// The pg-outbox monitor's pacing (monitor.hpp): a reading that takes long is repeated less often.
#include <gtest/gtest.h>

#include "monitor.hpp"

using pg2kafka::pg_outbox::Monitor;
using namespace std::chrono_literals;

TEST(MonitorPacing, ReadingsOfUnderASecondKeepTheInterval_LongerOnesTakeATwentiethOfTheTime) {
  EXPECT_EQ(Monitor::reading_period(10s, 50ms), std::chrono::steady_clock::duration(10s));
  EXPECT_EQ(Monitor::reading_period(10s, 999ms), std::chrono::steady_clock::duration(10s));
  EXPECT_EQ(Monitor::reading_period(10s, 2s), std::chrono::steady_clock::duration(40s));
  EXPECT_EQ(Monitor::reading_period(60s, 2s), std::chrono::steady_clock::duration(60s));
  EXPECT_EQ(Monitor::reading_period(1s, 1500ms), std::chrono::steady_clock::duration(30s));
}
