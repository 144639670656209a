// topic_name, the rule that turns a table's names into its topic, and rfc3339_utc, the events'
// created_at format: pure functions of the pg-outbox source.
#include <gtest/gtest.h>

#include "outbox_source.hpp"

using pg2kafka::pg_outbox::topic_name;

TEST(Topics, NameRule) {
  EXPECT_EQ(topic_name("", "shop", "public", "products"), "pg2kafka.shop.products");
  EXPECT_EQ(topic_name("ns", "shop", "public", "products"), "pg2kafka.ns.shop.products");
  EXPECT_EQ(topic_name("", "shop", "sales", "orders"), "pg2kafka.shop.sales.orders");
  EXPECT_EQ(topic_name("", "my db", "a.b", "My Table!"), "pg2kafka.my_db.a_b.My_Table_");
  EXPECT_EQ(pg2kafka::pg_outbox::rfc3339_utc(1509639313940770), "2017-11-02T16:15:13.94077Z");
  EXPECT_EQ(pg2kafka::pg_outbox::rfc3339_utc(1509639313000000), "2017-11-02T16:15:13Z");
  EXPECT_EQ(pg2kafka::pg_outbox::rfc3339_utc(-1), "1969-12-31T23:59:59.999999Z");
}
