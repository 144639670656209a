// The log's JSON format: one object per line, parsable whatever bytes a message carries.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/log.hpp"

namespace {

using namespace pg2kafka;

// What log::write puts on stderr while `f` runs.
template <class F>
std::string captured_stderr(F&& f) {
  char path[] = "/tmp/p2k-log-test-XXXXXX";
  int fd = mkstemp(path);
  std::fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  f();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  unlink(path);
  return text.str();
}

TEST(Log, JsonLinesParse_WithControlCharactersAndInvalidUtf8InMessagesAndFields) {
  log::set_format(log::Format::kJson);
  std::string out = captured_stderr([] {
    log::write(P2K_LOG_WARN, "plu\"gin", "line one\nline \"two\" \xff\xfe bad, caf\xc3\xa9 good",
               {log::field("event", "id\x01\xc0\xaf"), log::field("count", uint64_t{42})});
  });
  log::set_format(log::Format::kText);
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  auto v = boost::json::parse(out).as_object();
  EXPECT_EQ(v.at("level").as_string(), "warn");
  EXPECT_EQ(v.at("component").as_string(), "plu\"gin");
  EXPECT_EQ(v.at("message").as_string(),
            "line one\nline \"two\" \xEF\xBF\xBD\xEF\xBF\xBD bad, caf\xc3\xa9 good");
  EXPECT_EQ(v.at("fields").at("event").as_string(), "id\x01\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(v.at("fields").at("count").as_int64(), 42);
}

TEST(Log, TextLinesShowFieldsAfterTheMessage) {
  log::set_format(log::Format::kText);
  std::string out = captured_stderr(
      [] { log::write(P2K_LOG_INFO, "host", "done", {log::field("delivered", uint64_t{7})}); });
  EXPECT_NE(out.find(" INFO  [host] done delivered=7\n"), std::string::npos) << out;
}

}  // namespace
