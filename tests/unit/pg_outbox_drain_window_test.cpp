// The drain's window cursor without a database: which range each page reads, and where a new
// window's scan starts (the horizon rule, outbox_source.hpp "How draining works").
#include <gtest/gtest.h>

#include "drain_window.hpp"

using pg2kafka::pg_outbox::DrainWindow;

TEST(DrainWindow, AFirstWindowScansFromTheHead_ThenPagesFollowTheLastIdRead) {
  DrainWindow w;
  EXPECT_FALSE(w.reading());
  w.start("100:105:", 100, 42);
  EXPECT_TRUE(w.reading());
  EXPECT_FALSE(w.previous().has_value()) << "no previous snapshot: every visible event is new";
  EXPECT_EQ(*w.current(), "100:105:");
  EXPECT_EQ(w.after_id(), 0);
  EXPECT_EQ(w.max_id(), 42);
  w.read(7);
  w.read(9);
  EXPECT_EQ(w.after_id(), 9) << "the next page starts after the last row read";
  w.finish();
  EXPECT_FALSE(w.reading());
  EXPECT_EQ(*w.previous(), "100:105:") << "the done window's snapshot becomes the previous";
}

TEST(DrainWindow, ANewWindowStartsAtTheFloorOfTheLatestHorizonBelowThePreviousXmin) {
  DrainWindow w;
  auto t = DrainWindow::Clock::now();
  ASSERT_TRUE(w.horizon_due(t));
  w.add_horizon(/*xid=*/50, /*floor=*/10);
  EXPECT_FALSE(w.horizon_due(t)) << "at most one horizon per interval";
  ASSERT_TRUE(w.horizon_due(t + DrainWindow::kHorizonInterval));
  w.add_horizon(80, 20);
  ASSERT_TRUE(w.horizon_due(t + 2 * DrainWindow::kHorizonInterval));
  w.add_horizon(120, 30);

  w.start("100:100:", 100, 40);
  w.finish();  // previous xmin 100
  w.start("130:130:", 130, 60);
  EXPECT_EQ(w.after_id(), 20) << "horizon 80 < xmin 100 is the latest such: its floor bounds";
  w.finish();  // previous xmin 130
  w.start("140:140:", 140, 70);
  EXPECT_EQ(w.after_id(), 30) << "horizon 120 < 130 now";
}

TEST(DrainWindow, WithoutAHorizonBelowThePreviousXmin_TheScanStartsAtTheHead) {
  DrainWindow w;
  ASSERT_TRUE(w.horizon_due(DrainWindow::Clock::now()));
  w.add_horizon(500, 99);
  w.start("100:100:", 100, 40);
  w.finish();
  w.start("110:110:", 110, 50);
  EXPECT_EQ(w.after_id(), 0) << "a transaction between 100 and 500 may hold ids below 99";
}

TEST(DrainWindow, AHorizonsFloorIsAtLeastWhatThisInstanceRead) {
  DrainWindow w;
  w.start("100:100:", 100, 40);
  w.read(77);  // read though the committed maximum said less (a later window's row)
  w.finish();
  ASSERT_TRUE(w.horizon_due(DrainWindow::Clock::now()));
  w.add_horizon(90, /*floor=*/5);
  w.start("120:120:", 120, 80);
  w.finish();
  w.start("130:130:", 130, 90);
  EXPECT_EQ(w.after_id(), 77);
}

TEST(DrainWindow, ResetForgetsTheCursor_SoTheNextWindowScansTheWholeQueue) {
  DrainWindow w;
  ASSERT_TRUE(w.horizon_due(DrainWindow::Clock::now()));
  w.add_horizon(50, 10);
  w.start("100:100:", 100, 40);
  w.read(12);
  w.reset();
  EXPECT_FALSE(w.reading());
  EXPECT_FALSE(w.previous().has_value());
  w.start("130:130:", 130, 60);
  EXPECT_EQ(w.after_id(), 0);
}
