// pg2kafka.teardown: tracking stops, events already queued are still delivered.
#include <gtest/gtest.h>

#include "pg_test_support.hpp"

using namespace p2k_pg_test;

TEST(Teardown, StopsTracking_AndKeepsQueuedEvents) {
  TestDatabase db;
  seed_products(db.sql());
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("INSERT INTO products (sku, name) VALUES ('A', 'before teardown')");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.teardown('products')"), "t");
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.teardown('products')"), "f");
  db.sql().exec("INSERT INTO products (sku, name) VALUES ('B', 'after teardown')");
  db.sql().exec("UPDATE products SET name = 'changed'");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'products'::regclass"),
            "0");
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.tracked_tables"), "0");
  auto source = make_source(db.url());
  source->open();
  auto events = drain(*source);
  ASSERT_EQ(events.size(), 3u);  // two snapshots and the insert before teardown
  EXPECT_EQ(events[2].key, "A");
  // Tracking again snapshots again.
  EXPECT_EQ(db.sql().value("SELECT pg2kafka.setup('products', 'sku')"), "t");
  EXPECT_EQ(drain(*source).size(), 4u);
}
