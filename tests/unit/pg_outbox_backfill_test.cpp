// The pure parts of backfills (plugins/source-pg-outbox/backfill.hpp): which rows of an UPDATE
// changed the key a backfill's chunks follow, and the progress line.
#include <gtest/gtest.h>

#include "backfill.hpp"

using pg2kafka::pg_outbox::Backfill;
using pg2kafka::pg_outbox::backfill_progress;
using pg2kafka::pg_outbox::rows_with_changed_members;

TEST(BackfillRules, RowsWhoseOrderKeyChanged_AreFoundByTheirMembersExactText) {
  const std::string now = R"([{"id":1,"v":2},{"id":20,"v":3},{"id":3,"v":"x"},{"id":4}])";
  const std::string before = R"([{"id":1,"v":1},{"id":2,"v":3},{"id":3,"v":"y"},{"id":4.0}])";
  EXPECT_EQ(rows_with_changed_members(now, before, {R"("id")"}), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(rows_with_changed_members(now, before, {R"("v")"}), (std::vector<size_t>{0, 2}));
  // A composite key: any of its columns.
  EXPECT_EQ(rows_with_changed_members(now, before, {R"("nope")", R"("id")"}),
            (std::vector<size_t>{1, 3}));
  EXPECT_TRUE(rows_with_changed_members(now, before, {}).empty());
  EXPECT_TRUE(rows_with_changed_members("null", before, {R"("id")"}).empty());
  // A member that appears (a column added meanwhile) counts as changed.
  EXPECT_EQ(rows_with_changed_members(R"([{"id":1,"k":1}])", R"([{"id":1}])", {R"("k")"}),
            (std::vector<size_t>{0}));
}

TEST(BackfillRules, ProgressSaysRowsShareRateAndTimeLeft) {
  Backfill b;
  b.id = 7;
  b.schema = "shop";
  b.table = "orders";
  b.rows_done = 250000;
  b.rows_estimated = 1000000;
  EXPECT_EQ(backfill_progress(b, 100000, 5.0),
            "backfill 7 of shop.orders: 250000 rows sent (25% of about 1000000), 20000 rows/s, "
            "about 38 s left");
  b.rows_estimated.reset();
  EXPECT_EQ(backfill_progress(b, 0, 5.0), "backfill 7 of shop.orders: 250000 rows sent, 0 rows/s");
  b.rows_estimated = 1000;  // estimates can be short
  EXPECT_EQ(backfill_progress(b, 10, 1.0),
            "backfill 7 of shop.orders: 250000 rows sent (100% of about 1000), 10 rows/s");
}
