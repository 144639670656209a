#include "config/json_document.hpp"

#include <unistd.h>

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

namespace {

// The diagnostics a text's parse throws (none when it parses).
pg2kafka::config::Diagnostics parse_errors(std::string_view text) {
  try {
    JsonDocument::parse(text, "p.json");
  } catch (const ConfigError& e) {
    return e.diagnostics();
  }
  return {};
}

std::string load_error(const std::string& path) {
  try {
    JsonDocument::load(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

struct TempFile {
  std::string path;
  explicit TempFile(std::string_view content) {
    char name[] = "/tmp/p2k_json_document_XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
    path = name;
  }
  ~TempFile() { unlink(path.c_str()); }
};

}  // namespace

// Boost.JSON keeps the last of two equal keys: a second "sink" silently replaced the first.
TEST(JsonDocument, RefusesDuplicateKeys_AtEveryLevel_NamingBothPlaces) {
  auto d = parse_errors(R"({
  "sink": {"plugin": "kafka", "options": {"topic": "a",
                                          "topic": "b"}},
  "source": {"plugin": "x", "options": {"list": [{"k": 1, "k": 2}, {"k": 3}]}},
  "pipeline": {"\u0061": 1, "a": 2},
  "sink": {"plugin": "stdout"}
})");
  auto text = d.format();
  ASSERT_EQ(d.size(), 4u) << text;
  EXPECT_NE(text.find("p.json:3:43: sink.options: duplicate key \"topic\": it is also set at "
                      "p.json:2:43; remove one"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("p.json:4:59: source.options.list[0]: duplicate key \"k\": it is also set "
                      "at p.json:4:51; remove one"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("p.json:5:29: pipeline: duplicate key \"a\": it is also set at p.json:5:16"),
            std::string::npos)
      << "an escaped key is the same key: " << text;
  EXPECT_NE(
      text.find("p.json:6:3: duplicate key \"sink\": it is also set at p.json:2:3; remove one"),
      std::string::npos)
      << text;
}

TEST(JsonDocument, ReportsADuplicatedObjectOnce_NotEachOfItsMembers) {
  auto d = parse_errors(R"({"a": {"x": 1, "y": [1]}, "a": {"x": 2, "y": [2]}})");
  ASSERT_EQ(d.size(), 1u) << d.format();
  EXPECT_NE(d.format().find("duplicate key \"a\""), std::string::npos) << d.format();
  EXPECT_TRUE(parse_errors(R"({"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 1}]})").empty());
}

TEST(JsonDocument, SkipsUtf8ByteOrderMark_AndCountsColumnsInCharacters) {
  auto doc = JsonDocument::parse("\xEF\xBB\xBF{\"a\": 1,\n \"\xC3\xA9\": 2, \"b\": 3}", "f.json");
  EXPECT_EQ(doc.root().as_object().at("a").as_int64(), 1);
  EXPECT_EQ(doc.locate({"a"}).line, 1);
  EXPECT_EQ(doc.locate({"a"}).column, 2) << "the byte order mark is invisible";
  EXPECT_EQ(doc.locate({"b"}).line, 2);
  EXPECT_EQ(doc.locate({"b"}).column, 10) << "é is one column";
}

TEST(JsonDocument, ExplainsFilesThatAreNotUtf8Json) {
  EXPECT_NE(parse_errors("").format().find("p.json: the pipeline file is empty"),
            std::string::npos);
  EXPECT_NE(parse_errors("\xEF\xBB\xBF \n").format().find("empty"), std::string::npos);
  EXPECT_NE(parse_errors("// nothing\n/* here */").format().find("holds only comments"),
            std::string::npos);
  auto nul = parse_errors(std::string_view("{\"a\":\n 1\0}", 10)).format();
  EXPECT_NE(nul.find("p.json:2:3: the pipeline file holds a NUL byte"), std::string::npos) << nul;
  auto latin1 = parse_errors("{\"caf\xE9\": 1}").format();
  EXPECT_NE(latin1.find("p.json:1:6: the pipeline file is not UTF-8 text (byte 0xe9"),
            std::string::npos)
      << latin1;
  EXPECT_NE(parse_errors("\xFF\xFE{\0").format().find("UTF-16"), std::string::npos);
}

TEST(JsonDocument, LimitsNesting_WithAClearMessage) {
  auto deep = std::string(40, '[') + std::string(40, ']');
  auto text = parse_errors(deep).format();
  EXPECT_NE(text.find("nest more than 32 levels deep"), std::string::npos) << text;
  EXPECT_TRUE(parse_errors(std::string(30, '[') + std::string(30, ']')).empty());
}

TEST(JsonDocument, Load_ExplainsDirectoriesMissingEmptyAndHugeFiles) {
  EXPECT_EQ(load_error("/tmp"), "/tmp: is a directory, not a pipeline file");
  EXPECT_NE(load_error("/nonexistent/p.json")
                .find("/nonexistent/p.json: cannot read the pipeline file: No such file"),
            std::string::npos);
  TempFile empty("");
  EXPECT_EQ(load_error(empty.path), empty.path + ": the pipeline file is empty");
  TempFile ok("\xEF\xBB\xBF{\"a\": 1}");
  EXPECT_EQ(load_error(ok.path), "no error");
  // A sparse 17 MiB file: refused by its size, never read.
  TempFile huge("");
  ASSERT_EQ(truncate(huge.path.c_str(), 17 << 20), 0);
  EXPECT_EQ(load_error(huge.path),
            huge.path +
                ": the pipeline file is 17.0 MiB: a pipeline file is at most 16.0 MiB (is this "
                "the right file?)");
  // Not a regular file: read, but never more than the limit.
  EXPECT_EQ(load_error("/dev/zero"),
            "/dev/zero: the pipeline file is larger than 16.0 MiB: a pipeline file is at most "
            "16.0 MiB (is this the right file?)");
}
