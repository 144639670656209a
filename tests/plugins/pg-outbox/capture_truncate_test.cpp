// A captured TRUNCATE: one event without key or data, on the table's topic.
#include <gtest/gtest.h>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;

TEST(Capture, TruncateIsCapturedAsTruncateEvent) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("TRUNCATE products");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].statement(), "TRUNCATE");
  EXPECT_EQ(events[2].key, std::nullopt);
  EXPECT_TRUE(events[2].data().is_null());
  EXPECT_EQ(events[2].topic, "pg2kafka." + db.name() + ".products");
}
