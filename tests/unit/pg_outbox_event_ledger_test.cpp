// The source's bookkeeping without a database: positions, batches held, and which batches an
// acknowledgement completes.
#include <gtest/gtest.h>

#include <pg2kafka/sdk/json.hpp>

#include "event_ledger.hpp"

using pg2kafka::pg_outbox::EventLedger;
using pg2kafka::pg_outbox::TableNames;

namespace {

std::vector<EventLedger::Event> events(int n, const std::string& tag) {
  std::vector<EventLedger::Event> out;
  for (int i = 0; i < n; ++i)
    out.push_back({tag + std::to_string(i), "{\"v\":" + std::to_string(i) + "}", 1000 + i,
                   tag + "-uuid-" + std::to_string(i), nullptr, false, nullptr});
  return out;
}

}  // namespace

TEST(EventLedger, NumbersEventsInOrder_AndHandsThemOutWithTheirHeaders) {
  TableNames names{"pg2kafka.db.t", "public.t", "public", "t"};
  std::string update = "UPDATE";
  EventLedger ledger;
  ledger.add_batch(7, names, update, events(3, "a"));
  ledger.add_batch(9, names, update, events(2, "b"));
  EXPECT_TRUE(ledger.holds(7));
  EXPECT_TRUE(ledger.holds(9));
  EXPECT_FALSE(ledger.holds(8));
  auto first = ledger.take(4);
  ASSERT_EQ(first->size(), 4u);
  const p2k_record* r = first->records();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(r[i].position, i + 1);
  EXPECT_EQ(pg2kafka::sdk::view(r[0].topic), "pg2kafka.db.t");
  EXPECT_EQ(pg2kafka::sdk::view(r[3].id), "b-uuid-0");
  ASSERT_EQ(r[0].header_count, 2u);
  EXPECT_EQ(pg2kafka::sdk::view(r[0].headers[0].value), "UPDATE");
  EXPECT_EQ(pg2kafka::sdk::view(r[0].headers[1].value), "public.t");
  EXPECT_TRUE(ledger.has_pending());
  EXPECT_EQ(ledger.take(10)->size(), 1u);
  EXPECT_FALSE(ledger.has_pending());
}

TEST(EventLedger, ABatchIsCompleteOnlyOnceItsLastEventIsAcknowledged) {
  TableNames names{"t", "public.t", "public", "t"};
  std::string insert = "INSERT";
  EventLedger ledger;
  ledger.add_batch(7, names, insert, events(3, "a"));  // positions 1..3
  ledger.add_batch(9, names, insert, events(2, "b"));  // positions 4..5
  ledger.take(5);
  EXPECT_TRUE(ledger.completed_through(2).empty()) << "batch 7 ends at position 3";
  EXPECT_EQ(ledger.completed_through(4), std::vector<int64_t>{7});
  EXPECT_EQ(ledger.completed_through(5), (std::vector<int64_t>{7, 9}));
  ledger.forget_through(4);
  EXPECT_FALSE(ledger.holds(7)) << "removed from the queue: it may be read no more";
  EXPECT_TRUE(ledger.holds(9)) << "still in flight: never read twice";
  EXPECT_EQ(ledger.completed_through(5), std::vector<int64_t>{9});
  ledger.forget_through(5);
  EXPECT_FALSE(ledger.holds(9));
}

TEST(EventLedger, CompletedThroughChangesNothing_SoAFailedRemovalIsRetried) {
  TableNames names{"t", "public.t", "public", "t"};
  std::string del = "DELETE";
  EventLedger ledger;
  ledger.add_batch(3, names, del, events(1, "a"));
  ledger.take(1);
  EXPECT_EQ(ledger.completed_through(1), std::vector<int64_t>{3});
  EXPECT_EQ(ledger.completed_through(1), std::vector<int64_t>{3}) << "asked again after a failure";
  EXPECT_TRUE(ledger.holds(3));
}

TEST(EventLedger, AnUnusableEventGoesToTheHostMarked_AndCompletesItsBatch) {
  TableNames names{"t", "public.t", "public", "t"};
  std::string insert = "INSERT";
  EventLedger ledger;
  ledger.add_batch(1, names, insert, events(1, "a"));
  ledger.add_unusable(2, names, insert, events(1, "bad").front(), "row 2 is malformed");
  ledger.add_batch(3, names, insert, events(1, "c"));
  auto batch = ledger.take(10);
  ASSERT_EQ(batch->size(), 3u);
  const char* const* unusable = batch->unusable();
  ASSERT_NE(unusable, nullptr);
  EXPECT_EQ(unusable[0], nullptr);
  EXPECT_STREQ(unusable[1], "row 2 is malformed");
  EXPECT_EQ(unusable[2], nullptr);
  ASSERT_NE(ledger.in_flight(2), nullptr);
  EXPECT_TRUE(ledger.in_flight(2)->malformed);
  EXPECT_FALSE(ledger.in_flight(1)->malformed);
  EXPECT_EQ(ledger.completed_through(2), (std::vector<int64_t>{1, 2}))
      << "once parked and acknowledged, the malformed row leaves the queue";
}

TEST(EventLedger, RetriedParkedEvents_AreRemovedOnlyWhenDeliveredNotWhenParkedAgain) {
  TableNames names{"t", "public.t", "public", "t"};
  std::string update = "UPDATE";
  EventLedger ledger;
  auto e = events(3, "p");
  ledger.add_parked(40, names, update, e[0]);
  ledger.add_parked(41, names, update, e[1]);
  ledger.add_batch(9, names, update, events(1, "q"));
  EXPECT_EQ(ledger.parked_outstanding(), 2u);
  auto batch = ledger.take(10);
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ(batch->unusable(), nullptr);
  EXPECT_EQ(std::string(batch->records()[0].id.data, batch->records()[0].id.size), "p-uuid-0");
  ledger.in_flight(2)->parked = true;  // failed again: parked again, stays in parked_events
  EXPECT_EQ(ledger.parked_delivered_through(3), std::vector<int64_t>{40});
  EXPECT_EQ(ledger.completed_through(3), std::vector<int64_t>{9})
      << "retried events belong to no queue batch";
  ledger.forget_through(3);
  EXPECT_EQ(ledger.parked_outstanding(), 0u);
  EXPECT_EQ(ledger.in_flight(1), nullptr);
}
