// The stdout sink: line format, escaping, and a closed pipe.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "e2e_helpers.hpp"

namespace {

p2k_test::CommandResult run_stdout(const std::string& source_options,
                                   const std::string& sink_options) {
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence", "options": {)" +
                                        source_options + R"(}},
      "sink": {"plugin": "stdout", "options": {)" +
                                        sink_options + "}}}");
  return p2k_test::run_pg2kafka({"run", "--once", "--config", config, "--plugin-dir",
                                 p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
}

}  // namespace

TEST(StdoutSink, PrintsOneJsonObjectPerRecord) {
  auto r = run_stdout(R"("count": 3, "topic": "weird \"topic\"\\\n")", "");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto lines = p2k_test::lines(r.out);
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    auto v = boost::json::parse(lines[i]).as_object();
    EXPECT_EQ(v.at("topic").as_string(), "weird \"topic\"\\\n");
    EXPECT_EQ(v.at("value").as_object().at("seq").as_int64(), static_cast<int64_t>(i + 1));
    EXPECT_TRUE(v.at("key").is_string());
  }
}

TEST(StdoutSink, PrintsTheValueAlone_WhenFormatIsValue) {
  auto r = run_stdout(R"("count": 2)", R"("format": "value")");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p2k_test::lines(r.out),
            (std::vector<std::string>{R"({"seq":1,"key":"key-1"})", R"({"seq":2,"key":"key-2"})"}));
}

TEST(StdoutSink, ReportsAClosedPipeAsAFatalError) {
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence",
      "options": {"count": 0, "value_size": 1000}}, "sink": {"plugin": "stdout"}})");
  int out[2], err[2];
  ASSERT_EQ(pipe(out), 0);
  ASSERT_EQ(pipe(err), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    std::string bin = p2k_test::ctest_env("P2K_BINARY");
    std::string plugins = p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR");
    execl(bin.c_str(), bin.c_str(), "run", "--config", config.c_str(), "--plugin-dir",
          plugins.c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  char buf[4096];
  ASSERT_GT(read(out[0], buf, sizeof buf), 0);  // it is writing; now the reader goes away
  close(out[0]);
  std::string errors;
  ssize_t n;
  while ((n = read(err[0], buf, sizeof buf)) > 0) errors.append(buf, static_cast<size_t>(n));
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 4) << errors;
  EXPECT_NE(errors.find("stdout is closed (broken pipe)"), std::string::npos) << errors;
}
