// Stopping the binary: stop signals, the bounded shutdown, forced stops that interrupt a blocked
// plugin call, closed standard descriptors, and what the host logs about silent or failing
// plugins. Each test runs the real binary as a child process.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "e2e_helpers.hpp"
#include "runtime/standard_descriptors.hpp"

namespace {

using namespace p2k_e2e;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A pg2kafka child whose stdout and stderr go to files (or stay closed).
struct Child {
  pid_t pid = -1;
  std::string out, err;

  Child(const FaultyPipeline& p, std::vector<std::string> extra, bool close_stdout = false,
        bool close_stderr = false)
      : out((p.dir.path() / "stdout").string()), err((p.dir.path() / "stderr").string()) {
    std::string bin = p2k_test::ctest_env("P2K_BINARY");
    std::vector<std::string> args{
        bin,      "run",          "--config",
        p.config, "--plugin-dir", p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")};
    args.insert(args.end(), extra.begin(), extra.end());
    pid = fork();
    if (pid == 0) {
      int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      close(o);
      close(e);
      if (close_stdout) close(1);
      if (close_stderr) close(2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  // The exit code, or -signal; -1000 when it did not end within `timeout`.
  int wait(milliseconds timeout = milliseconds(20'000)) {
    auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return -1000;
  }
  std::string stderr_text() const { return p2k_test::read_file(err); }
};

bool wait_for(const std::function<bool()>& done, milliseconds timeout = milliseconds(10'000)) {
  auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return done();
}

bool exists(const std::string& path) {
  return access(path.c_str(), F_OK) == 0;
}

std::string pipeline_with_shutdown(const std::string& timeout) {
  return R"({"retry.initial_backoff": "10ms", "retry.max_backoff": "50ms", "shutdown_timeout": ")" +
         timeout + "\"}";
}

// Runs until the source blocks (test-sequence's block_poll_at), with everything before delivered.
struct BlockedPipeline {
  FaultyPipeline p;
  std::string blocked;
  explicit BlockedPipeline(bool honour_interrupt, const std::string& shutdown = "1s")
      : p(R"("count": 0, "block_poll_at": 21, "honour_interrupt": )" +
              std::string(honour_interrupt ? "true" : "false") + R"(, "blocked_file": ")" +
              "BLOCKED\"",
          "", pipeline_with_shutdown(shutdown), "test-faulty-async") {
    blocked = (p.dir.path() / "blocked").string();
    // The placeholder keeps the constructor's argument simple.
    std::string text = p2k_test::read_file(p.config);
    text.replace(text.find("BLOCKED"), 7, blocked);
    p.dir.write("pipeline.json", text);
  }
};

TEST(Stop, SighupStopsGracefully_LikeSigterm) {
  FaultyPipeline p(R"("count": 0)", "", R"({"batch_size": 50})", "test-faulty-async");
  Child c(p, {});
  ASSERT_TRUE(wait_for([&] { return p.acks().size() >= 3; })) << c.stderr_text();
  kill(c.pid, SIGHUP);
  EXPECT_EQ(c.wait(), 0) << c.stderr_text();
  auto delivered = p.delivered();
  ASSERT_FALSE(delivered.empty());
  EXPECT_EQ(p.acks().back(), *std::max_element(delivered.begin(), delivered.end()));
  EXPECT_NE(c.stderr_text().find("received SIGHUP: stopping"), std::string::npos)
      << c.stderr_text();
}

TEST(Stop, InterruptsABlockedSourceCall_WhenShutdownTimeoutRunsOut_AndExits4WithoutAcking) {
  BlockedPipeline b(/*honour_interrupt=*/true, "1s");
  Child c(b.p, {});
  ASSERT_TRUE(wait_for([&] { return exists(b.blocked); })) << c.stderr_text();
  ASSERT_TRUE(wait_for([&] { return !b.p.acks().empty() && b.p.acks().back() == 20; }))
      << "everything before the blocked poll is acknowledged first";
  auto acks_before = b.p.acks().size();
  auto start = Clock::now();
  kill(c.pid, SIGTERM);
  int code = c.wait();
  auto took = Clock::now() - start;
  EXPECT_EQ(code, 4) << c.stderr_text();
  EXPECT_LT(took, milliseconds(1000 + 1000)) << "shutdown_timeout + 1 s";
  EXPECT_GE(took, milliseconds(1000)) << "the host waits shutdown_timeout before forcing";
  EXPECT_EQ(b.p.acks().size(), acks_before) << "nothing acknowledged after the interrupt";
  auto err = c.stderr_text();
  EXPECT_NE(err.find("did not finish within shutdown_timeout (1000 ms)"), std::string::npos) << err;
  EXPECT_NE(err.find("interrupted source 'test-sequence' (blocked in poll for"), std::string::npos)
      << err;
  EXPECT_NE(err.find("stop was forced"), std::string::npos) << err;
}

TEST(Stop, ExitsWithinTheBound_WhenABlockedCallIgnoresTheInterrupt) {
  BlockedPipeline b(/*honour_interrupt=*/false, "1s");
  Child c(b.p, {});
  ASSERT_TRUE(wait_for([&] { return exists(b.blocked); })) << c.stderr_text();
  auto start = Clock::now();
  kill(c.pid, SIGTERM);
  int code = c.wait();
  auto took = Clock::now() - start;
  EXPECT_EQ(code, 4) << c.stderr_text();
  // shutdown_timeout, the force margin (0.2 s), the grace (0.7 s), and slack for a busy machine.
  EXPECT_LT(took, milliseconds(1000 + 2000));
  EXPECT_NE(c.stderr_text().find("did not return within 700 ms of being interrupted"),
            std::string::npos)
      << c.stderr_text();
}

TEST(Stop, ASecondSignalForcesTheStopAtOnce) {
  BlockedPipeline b(/*honour_interrupt=*/true, "60s");
  Child c(b.p, {});
  ASSERT_TRUE(wait_for([&] { return exists(b.blocked); })) << c.stderr_text();
  kill(c.pid, SIGTERM);
  std::this_thread::sleep_for(milliseconds(200));
  auto start = Clock::now();
  kill(c.pid, SIGINT);
  EXPECT_EQ(c.wait(), 4) << c.stderr_text();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  EXPECT_NE(c.stderr_text().find("received SIGINT: forcing the stop"), std::string::npos)
      << c.stderr_text();
}

TEST(Stop, SigquitForcesTheStopAtOnce) {
  BlockedPipeline b(/*honour_interrupt=*/true, "60s");
  Child c(b.p, {});
  ASSERT_TRUE(wait_for([&] { return exists(b.blocked); })) << c.stderr_text();
  auto start = Clock::now();
  kill(c.pid, SIGQUIT);
  EXPECT_EQ(c.wait(), 4) << c.stderr_text();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  EXPECT_NE(c.stderr_text().find("received SIGQUIT: forcing the stop"), std::string::npos)
      << c.stderr_text();
}

TEST(Stop, WarnsWhenTheSinkDoesNotReport_NamingTheOldestRecord) {
  FaultyPipeline p(R"("count": 10)", R"("silent_from": 4)", pipeline_with_shutdown("1s"),
                   "test-faulty-async");
  Child c(p, {"--once"});
  ASSERT_TRUE(wait_for(
      [&] { return c.stderr_text().find("has reported no outcome for") != std::string::npos; },
      milliseconds(5000)))
      << c.stderr_text();
  auto err = c.stderr_text();
  EXPECT_NE(err.find("sink 'test-faulty-async' has reported no outcome for "), std::string::npos)
      << err;
  EXPECT_NE(err.find(" s while 7 records await one; the oldest is event evt-4 (position 4)"),
            std::string::npos)
      << err;
  ASSERT_FALSE(p.acks().empty());
  EXPECT_EQ(p.acks().back(), 3u) << "acknowledged up to the silent record only";
  kill(c.pid, SIGTERM);
  EXPECT_EQ(c.wait(), 4) << "records were left unconfirmed";
}

TEST(Stop, LogsAnExceptionThrownFromAPluginsClose) {
  FaultyPipeline p(R"("count": 3, "throw_in_close": true)", "");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("exception in close (the host goes on): test-sequence was told to throw "
                       "in close"),
            std::string::npos)
      << r.err;
}

TEST(Stop, AClosedStdoutFailsTheStdoutSinkAtOpen_AndNothingIsAcknowledged) {
  FaultyPipeline p(R"("count": 5)", "");
  Child c(p, {"--once", "--dry-run"}, /*close_stdout=*/true);
  EXPECT_EQ(c.wait(), 4) << c.stderr_text();
  EXPECT_TRUE(p.acks().empty());
  EXPECT_NE(c.stderr_text().find("stdout is not open for writing (it was closed when pg2kafka "
                                 "started"),
            std::string::npos)
      << c.stderr_text();
  // The same run without --dry-run but with the stdout sink configured acknowledges nothing
  // either (the dry run never acknowledges anyway): covered by the sink's own open check.
}

TEST(Stop, RunsNormallyWithStderrClosed) {
  FaultyPipeline p(R"("count": 5)", "");
  Child c(p, {"--once"}, /*close_stdout=*/false, /*close_stderr=*/true);
  EXPECT_EQ(c.wait(), 0);
  EXPECT_EQ(p.acks().back(), 5u);
  EXPECT_EQ(p.delivered(), range(1, 5));
  for (const auto& line : p.lines())
    EXPECT_TRUE(line.rfind("deliver ", 0) == 0 || line.rfind("ack ", 0) == 0 ||
                line.rfind("topic ", 0) == 0)
        << "a log line went into a plugin's file: " << line;
}

// In a child process: with 1 and 2 closed, the next file opened must not take their numbers,
// and writing to them must fail rather than go anywhere.
TEST(Stop, ClosedStandardDescriptorsAreHeldOpenOnDevNull) {
  pid_t pid = fork();
  if (pid == 0) {
    close(1);
    close(2);
    pg2kafka::runtime::keep_standard_descriptors_open();
    int f = open("/dev/null", O_WRONLY);
    bool ok = f > 2 && write(1, "x", 1) == -1 && errno == EBADF && write(2, "x", 1) == -1 &&
              fcntl(0, F_GETFD) != -1;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
