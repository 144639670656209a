// expand_batch / event_uuid / json_scalar_text: turning one pg2kafka.event_batches row into the
// events its messages carry, without a database (that the SQL view gives the same events is
// tested against PostgreSQL in tests/plugins/pg-outbox/batch_rules_test.cpp).
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "batch.hpp"
#include "json_text.hpp"

using pg2kafka::pg_outbox::BatchEvent;
using pg2kafka::pg_outbox::BatchRow;
using pg2kafka::pg_outbox::event_uuid;
using pg2kafka::pg_outbox::expand_batch;
using pg2kafka::pg_outbox::json_scalar_text;
using pg2kafka::pg_outbox::split_array;

namespace {
constexpr const char* kUuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";

BatchRow row(std::string_view statement, std::optional<std::string_view> key_column,
             std::optional<std::string_view> data, int64_t events) {
  BatchRow r;
  r.uuid = kUuid;
  r.statement = statement;
  r.key_column = key_column;
  r.data = data;
  r.events = events;
  return r;
}
}  // namespace

TEST(EventUuid, IndexZeroIsTheBatchUuid_OthersXorTheLast32Bits_LikeTheSqlFunction) {
  EXPECT_EQ(event_uuid(kUuid, 0), kUuid);
  // SELECT pg2kafka.event_uuid('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 5)
  EXPECT_EQ(event_uuid(kUuid, 5), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14");
  EXPECT_EQ(event_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 1),
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9bd380a10");
  std::set<std::string> ids;
  for (uint32_t i = 0; i < 10000; ++i) ids.insert(event_uuid(kUuid, i));
  EXPECT_EQ(ids.size(), 10000u);
  EXPECT_THROW(event_uuid("not-a-uuid", 1), std::invalid_argument);
}

TEST(JsonScalarText, GivesWhatTheArrowArrowOperatorGives) {
  EXPECT_EQ(json_scalar_text("null"), std::nullopt);
  EXPECT_EQ(json_scalar_text("12.50"), "12.50");
  EXPECT_EQ(json_scalar_text("true"), "true");
  EXPECT_EQ(json_scalar_text(R"("plain")"), "plain");
  EXPECT_EQ(json_scalar_text(R"("q\"b\\s\/n\nt\t")"), "q\"b\\s/n\nt\t");
  EXPECT_EQ(json_scalar_text(R"("\u00e9\u20ac\ud83d\ude00")"),
            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(json_scalar_text(R"({"a": 1})"), R"({"a": 1})");
}

TEST(SplitArray, SplitsTopLevelElementsOnly) {
  std::vector<std::string_view> out;
  ASSERT_TRUE(split_array(R"([{"a":[1,2]}, "x,]", 3, null])", out));
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], R"({"a":[1,2]})");
  EXPECT_EQ(out[1], R"("x,]")");
  EXPECT_EQ(out[3], "null");
  out.clear();
  EXPECT_TRUE(split_array("[]", out));
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(split_array(R"({"a":1})", out));
  EXPECT_FALSE(split_array("[1, 2", out));
}

TEST(ExpandBatch, InsertRowsAreSentWhole_KeyedByTheKeyColumnMember) {
  auto events = expand_batch(row(
      "INSERT", "odd \"key",
      R"([{"id":1,"odd \"key":"k1","n":null}, {"id":2,"odd \"key":null}, {"id":3,"odd \"key":7}])",
      3));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].key, "k1");
  EXPECT_EQ(events[0].data(), R"({"id":1,"odd \"key":"k1","n":null})");
  EXPECT_EQ(events[0].uuid, kUuid);
  EXPECT_EQ(events[1].key, std::nullopt);
  EXPECT_EQ(events[2].key, "7");
  EXPECT_EQ(events[2].uuid, event_uuid(kUuid, 2));
}

TEST(ExpandBatch, DeleteElementsAreKeys_SentAsAnObjectOfTheKeyColumn) {
  auto events = expand_batch(row("DELETE", "sku", R"(["a\"b", 12, null])", 3));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].key, "a\"b");
  EXPECT_EQ(events[0].data(), R"({"sku":"a\"b"})");
  EXPECT_EQ(events[1].key, "12");
  EXPECT_EQ(events[1].data(), R"({"sku":12})");
  EXPECT_EQ(events[2].key, std::nullopt);
  EXPECT_EQ(events[2].data(), R"({"sku":null})");
}

TEST(ExpandBatch, UpdatesSendChangedColumns_AndSkipRowsThatDidNotChange_KeepingIndexes) {
  auto r = row("UPDATE", "k", R"([{"k":"a","v":2}, {"k":"b","v":5}, {"k":"c","v":9}])", 3);
  r.old_data = R"([{"k":"a","v":1}, {"k":"b","v":5}, {"k":"x","v":9}])";
  auto events = expand_batch(r);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data(), R"({"v": 2})");
  EXPECT_EQ(events[1].key, "c");
  EXPECT_EQ(events[1].data(), R"({"k": "c"})");
  EXPECT_EQ(events[1].index, 2u);
  EXPECT_EQ(events[1].uuid, event_uuid(kUuid, 2));
}

TEST(ExpandBatch, RowsQueuedBeforeMigration4_AreSentAsQueued_WithTheirExternalId) {
  auto r = row("DELETE", std::nullopt, R"([{"sku": "CM01-B"}])", 1);
  r.external_id = "CM01-B";
  auto events = expand_batch(r);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, "CM01-B");
  EXPECT_EQ(events[0].data(), R"({"sku": "CM01-B"})");
  EXPECT_EQ(events[0].uuid, kUuid);
  // A reduced UPDATE of migration 002 has no old row.
  auto u = row("UPDATE", std::nullopt, R"([{"name": "x"}])", 1);
  EXPECT_EQ(expand_batch(u)[0].data(), R"({"name": "x"})");
}

TEST(ExpandBatch, TruncateHasNoData) {
  auto events = expand_batch(row("TRUNCATE", std::nullopt, std::nullopt, 1));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data(), std::nullopt);
  EXPECT_EQ(events[0].key, std::nullopt);
}

TEST(ExpandBatch, RefusesDataThatIsNoArray) {
  EXPECT_THROW(expand_batch(row("INSERT", "k", R"({"k":1})", 1)), std::invalid_argument);
  auto r = row("UPDATE", "k", R"([{"k":1}])", 1);
  r.old_data = R"({"k":1})";
  EXPECT_THROW(expand_batch(r), std::invalid_argument);
}

TEST(ExpandBatch, SendsEveryElement_WhenARowDisagreesWithItself_AndSaysHow) {
  std::string mismatch;
  auto events = expand_batch(row("INSERT", "k", R"([{"k":1},{"k":2}])", 1), &mismatch);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].key, "2");
  EXPECT_EQ(mismatch, "it counts 1 events but its data holds 2");

  // An UPDATE row without its old row is sent whole; an old row without a new one is ignored.
  mismatch.clear();
  auto r = row("UPDATE", "k", R"([{"k":1,"v":1}, {"k":2,"v":2}])", 2);
  r.old_data = R"([{"k":1,"v":0}])";
  events = expand_batch(r, &mismatch);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data(), R"({"v": 1})");
  EXPECT_EQ(events[1].data(), R"({"k":2,"v":2})");
  EXPECT_EQ(mismatch, "its data holds 2 rows but its old_data 1");
  r.old_data = R"([{"k":1,"v":0}, {"k":2,"v":2}, {"k":3}])";
  mismatch.clear();
  events = expand_batch(r, &mismatch);
  ASSERT_EQ(events.size(), 1u);  // row 2 did not change
  EXPECT_EQ(mismatch, "its data holds 2 rows but its old_data 3");
}

// Capture options (sql/README.md, "Capture options"): the shapes the drainer gives a batch of a
// table with options.
namespace {
using pg2kafka::pg_outbox::BatchOptions;
using pg2kafka::pg_outbox::key_change_uuid;
using pg2kafka::pg_outbox::parse_batch_options;
using pg2kafka::pg_outbox::tombstone_uuid;

std::string data_of(const BatchEvent& e) {
  return std::string(e.data().value_or("<null>"));
}
}  // namespace

TEST(BatchOptions, ParsesTheDocumentedMembersAndRefusesAnythingElse) {
  auto o = parse_batch_options(
      R"({"key": ["tenant", "id"], "mask": true, "before": "full", "delete": "row", "update": "full", "tombstones": true, "key_changes": "delete"})");
  EXPECT_EQ(o.key, (std::vector<std::string>{"\"tenant\"", "\"id\""}));
  EXPECT_TRUE(o.full_update);
  EXPECT_EQ(o.before, BatchOptions::Before::kFull);
  EXPECT_TRUE(o.delete_rows);
  EXPECT_TRUE(o.tombstones);
  EXPECT_TRUE(o.key_change_delete);
  auto d = parse_batch_options("{}");
  EXPECT_FALSE(d.full_update || d.delete_rows || d.tombstones || d.key_change_delete);
  EXPECT_TRUE(d.key.empty());
  for (const char* bad :
       {"[]", R"({"update": "most"})", R"({"tombstones": "yes"})", R"({"key": ["one"]})",
        R"({"key": [1, 2]})", R"({"topic": "x"})", R"({"before": true})"})
    EXPECT_THROW(parse_batch_options(bad), std::invalid_argument) << bad;
}

TEST(BatchOptions, CompositeKeyIsAJsonArrayOfTheValuesAsText) {
  auto o = parse_batch_options(R"({"key": ["tenant", "id"]})");
  BatchRow r = row("INSERT", "tenant", R"([{"tenant": "acme", "id": 42, "v": "x"},
    {"tenant": "a\"b", "id": null, "v": "y"}])",
                   2);
  r.options = &o;
  auto events = expand_batch(r);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].key, R"(["acme","42"])");
  EXPECT_EQ(data_of(events[0]), R"({"tenant": "acme", "id": 42, "v": "x"})");
  EXPECT_EQ(events[1].key, R"(["a\"b",null])");
  // DELETE with the key only: elements are arrays of the key values, data names them.
  BatchRow del = row("DELETE", "tenant", R"([["acme", 42], ["b", 7]])", 2);
  del.options = &o;
  events = expand_batch(del);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].key, R"(["acme","42"])");
  EXPECT_EQ(data_of(events[0]), R"({"tenant":"acme","id":42})");
  EXPECT_EQ(events[1].uuid, event_uuid(kUuid, 1));
  BatchRow wrong = row("DELETE", "tenant", R"([["acme"]])", 1);
  wrong.options = &o;
  EXPECT_THROW(expand_batch(wrong), std::invalid_argument);
}

TEST(BatchOptions, UpdateImages) {
  const char* news = R"([{"id": 1, "a": "x2", "b": "same"}, {"id": 2, "a": "y", "b": "z"}])";
  const char* olds = R"([{"id": 1, "a": "x1", "b": "same"}, {"id": 2, "a": "y", "b": "z"}])";
  auto check = [&](const char* options, const char* data, std::optional<std::string> before) {
    auto o = parse_batch_options(options);
    BatchRow r = row("UPDATE", "id", news, 2);
    r.old_data = olds;
    r.options = &o;
    auto events = expand_batch(r);
    ASSERT_EQ(events.size(), 1u) << options;  // the unchanged row gives nothing, whatever asked
    EXPECT_EQ(events[0].key, "1");
    EXPECT_EQ(data_of(events[0]), data) << options;
    EXPECT_EQ(events[0].before, before) << options;
    EXPECT_EQ(events[0].uuid, kUuid);
  };
  check(R"({"update": "changed"})", R"({"a": "x2"})", std::nullopt);
  check(R"({"update": "full"})", R"({"id": 1, "a": "x2", "b": "same"})", std::nullopt);
  check(R"({"before": "changed"})", R"({"a": "x2"})", R"({"a": "x1"})");
  check(R"({"update": "full", "before": "full"})", R"({"id": 1, "a": "x2", "b": "same"})",
        R"({"id": 1, "a": "x1", "b": "same"})");
}

TEST(BatchOptions, KeyChangesGiveADeleteOfTheOldKeyFirst_WithATombstoneWhenAskedFor) {
  const char* news = R"([{"id": 2, "a": "x"}, {"id": 5, "a": "new"}])";
  const char* olds = R"([{"id": 1, "a": "x"}, {"id": 5, "a": "old"}])";
  auto o = parse_batch_options(R"({"key_changes": "delete", "tombstones": true})");
  BatchRow r = row("UPDATE", "id", news, 2);
  r.old_data = olds;
  r.options = &o;
  auto events = expand_batch(r);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].statement, "DELETE");
  EXPECT_EQ(events[0].key, "1");
  EXPECT_EQ(data_of(events[0]), R"({"id":1})");
  EXPECT_EQ(events[0].uuid, key_change_uuid(kUuid, 0));
  EXPECT_TRUE(events[1].tombstone);
  EXPECT_EQ(events[1].key, "1");
  EXPECT_EQ(events[1].uuid, tombstone_uuid(kUuid, 0, true));
  EXPECT_EQ(events[2].statement, "");  // the batch's UPDATE, under the new key
  EXPECT_EQ(events[2].key, "2");
  EXPECT_EQ(data_of(events[2]), R"({"id": 2})");
  EXPECT_EQ(events[3].key, "5");
  EXPECT_FALSE(events[3].tombstone);
  // The original behaviour: one UPDATE under the new key.
  auto plain = parse_batch_options(R"({"tombstones": true})");
  r.options = &plain;
  events = expand_batch(r);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].key, "2");
  // With whole rows for deletes, the old key's DELETE carries the old row.
  auto rows = parse_batch_options(R"({"key_changes": "delete", "delete": "row"})");
  r.options = &rows;
  events = expand_batch(r);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(data_of(events[0]), R"({"id": 1, "a": "x"})");
}

TEST(BatchOptions, DeletesWithWholeRowsAndTombstones) {
  auto o = parse_batch_options(R"({"delete": "row", "tombstones": true})");
  BatchRow r = row("DELETE", "id", R"([{"id": 7, "big": "v"}, {"id": 8, "big": "w"}])", 2);
  r.options = &o;
  auto events = expand_batch(r);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(data_of(events[0]), R"({"id": 7, "big": "v"})");
  EXPECT_EQ(events[0].key, "7");
  EXPECT_TRUE(events[1].tombstone);
  EXPECT_EQ(events[1].key, "7");
  EXPECT_EQ(events[1].index, 0u);
  EXPECT_EQ(events[1].uuid, tombstone_uuid(kUuid, 0, false));
  EXPECT_EQ(events[3].uuid, tombstone_uuid(kUuid, 1, false));
  std::set<std::string> ids;
  for (uint32_t i = 0; i < 2000; ++i) {
    ids.insert(event_uuid(kUuid, i));
    ids.insert(key_change_uuid(kUuid, i));
    ids.insert(tombstone_uuid(kUuid, i, false));
    ids.insert(tombstone_uuid(kUuid, i, true));
  }
  EXPECT_EQ(ids.size(), 8000u);
  // Key-only deletes of a single key, with tombstones.
  auto t = parse_batch_options(R"({"tombstones": true})");
  BatchRow k = row("DELETE", "id", "[3]", 1);
  k.options = &t;
  events = expand_batch(k);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(data_of(events[0]), R"({"id":3})");
  EXPECT_TRUE(events[1].tombstone);
}

TEST(BatchOptions, WithoutAKeyColumnTheOptionsStillShapeTheEvents) {
  // A column of the composite key was dropped: the capture writes null in its place, and no
  // key_column; events are keyed by external_id (null), as without options.
  auto o = parse_batch_options(
      R"({"key": ["t", null], "update": "full", "before": "changed", "tombstones": true})");
  BatchRow r = row("UPDATE", std::nullopt, R"([{"t": "a", "v": 2}])", 1);
  r.old_data = R"([{"t": "a", "v": 1}])";
  r.options = &o;
  auto events = expand_batch(r);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, std::nullopt);
  EXPECT_EQ(data_of(events[0]), R"({"t": "a", "v": 2})");
  EXPECT_EQ(events[0].before, R"({"v": 1})");
  BatchRow d = row("DELETE", std::nullopt, R"([{"t": "a", "v": 2}])", 1);
  d.options = &o;
  events = expand_batch(d);
  ASSERT_EQ(events.size(), 1u) << "no tombstone for a null key";
  EXPECT_EQ(data_of(events[0]), R"({"t": "a", "v": 2})");
}
