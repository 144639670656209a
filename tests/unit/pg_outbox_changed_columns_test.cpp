// changed_columns: reduces an UPDATE event's new row to the members that differ from the old row,
// copying values exactly as PostgreSQL printed them.
#include <gtest/gtest.h>

#include "json_text.hpp"

using pg2kafka::pg_outbox::changed_columns;

TEST(ChangedColumns, KeepsOnlyMembersWhoseValueChanged) {
  EXPECT_EQ(changed_columns(R"({"id": 1, "sku": "CM01-R", "name": "Big Red Coffee Mug"})",
                            R"({"id": 1, "sku": "CM01-R", "name": "Red Coffee Mug"})"),
            R"({"name": "Big Red Coffee Mug"})");
}

TEST(ChangedColumns, HandlesNestedValuesAndAwkwardStrings) {
  const char* before =
      R"({"a": {"x": [1, 2, {"y": "}"}]}, "b": "quote \" comma, brace }", "c": [1, 2], "d": null})";
  const char* after =
      R"({"a": {"x": [1, 2, {"y": "}"}]}, "b": "quote \" comma, brace ]", "c": [1, 2, 3], "d": null})";
  EXPECT_EQ(changed_columns(after, before), R"({"b": "quote \" comma, brace ]", "c": [1, 2, 3]})");
}

TEST(ChangedColumns, NeverRoundsNumbers) {
  EXPECT_EQ(changed_columns(R"({"n": 12345678901234567890.12345678901234567891})",
                            R"({"n": 12345678901234567890.12345678901234567890})"),
            R"({"n": 12345678901234567890.12345678901234567891})");
}

TEST(ChangedColumns, ReportsNewAndNullMembers) {
  EXPECT_EQ(changed_columns(R"({"a": 1, "b": null})", R"({"a": 1, "b": 2})"), R"({"b": null})");
  EXPECT_EQ(changed_columns(R"({"a": 1, "b": 2})", R"({"a": 1})"), R"({"b": 2})");
  EXPECT_EQ(changed_columns(R"({"a": 1})", R"({"a": 1})"), "{}");
  EXPECT_EQ(changed_columns("{}", "{}"), "{}");
}

TEST(ChangedColumns, ReturnsTheNewRowWhole_WhenItCannotBeSplit) {
  EXPECT_EQ(changed_columns("[1, 2]", R"({"a": 1})"), "[1, 2]");
  EXPECT_EQ(changed_columns(R"({"a": 1)", R"({"a": 1})"), R"({"a": 1)");
}
