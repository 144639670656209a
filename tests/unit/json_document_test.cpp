#include "config/json_document.hpp"

#include <gtest/gtest.h>

using pg2kafka::config::ConfigError;
using pg2kafka::config::JsonDocument;

TEST(JsonDocument, AcceptsCommentsAndTrailingCommas) {
  auto doc = JsonDocument::parse(R"({
    // a comment
    "a": 1, /* another */
    "b": [1, 2,],
  })",
                                 "f.json");
  EXPECT_EQ(doc.root().as_object().at("a").as_int64(), 1);
  EXPECT_EQ(doc.root().as_object().at("b").as_array().size(), 2u);
}

TEST(JsonDocument, ReportsLineAndColumn_OnSyntaxError) {
  try {
    JsonDocument::parse("{\n  \"a\": 1\n  \"b\": 2\n}", "bad.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.diagnostics().size(), 1u);
    const auto& d = e.diagnostics().items()[0];
    EXPECT_EQ(d.file, "bad.json");
    EXPECT_EQ(d.location.line, 3);
    EXPECT_EQ(d.location.column, 3);
    EXPECT_NE(d.message.find("invalid JSON"), std::string::npos);
  }
}

TEST(JsonDocument, ReportsEndOfFile_WhenTruncated) {
  try {
    JsonDocument::parse("{\"a\": [1, 2", "t.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected end of file"), std::string::npos) << e.what();
  }
}

TEST(JsonDocument, LocatesKeysAndArrayElements) {
  auto doc = JsonDocument::parse(
      "{\n  \"source\": {\n    \"options\": {\"x\": 1, \"list\": [\"a\",\n \"b\"]}\n  },\n"
      "  \"sink\": {\"plugin\": \"k\"} // \"fake\": {\n}",
      "f.json");
  auto x = doc.locate({"source", "options", "x"});
  EXPECT_EQ(x.line, 3);
  EXPECT_EQ(x.column, 17);
  auto b = doc.locate({"source", "options", "list", "[1]"});
  EXPECT_EQ(b.line, 4);
  EXPECT_EQ(b.column, 2);
  auto plugin = doc.locate({"sink", "plugin"});
  EXPECT_EQ(plugin.line, 6);
  EXPECT_EQ(plugin.column, 12);
  EXPECT_EQ(doc.locate({"fake"}).line, 0);
}

TEST(JsonDocument, LocatesKeysWithEscapedQuotes) {
  auto doc = JsonDocument::parse("{\"a\\\"b\": {\"c\": 1}}", "f.json");
  EXPECT_EQ(doc.locate({"a\"b", "c"}).column, 11);
}
