// The host's delivery guarantees, through the real binary with scriptable test plugins.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "e2e_helpers.hpp"

using p2k_e2e::FaultyPipeline;
using p2k_e2e::range;

TEST(Pipeline, DeliversEverythingInOrderAndAcksTheLast_WhenRunOnce) {
  FaultyPipeline p(R"("count": 25)", "", R"({"batch_size": 4})");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 25));
  ASSERT_FALSE(p.acks().empty());
  EXPECT_EQ(p.acks().back(), 25u);
  p.expect_acks_follow_deliveries();
  EXPECT_NE(r.err.find("25 records delivered, acknowledged through position 25"), std::string::npos)
      << r.err;
}

TEST(Pipeline, AcksOnlyTheDeliveredPrefix_WhenOutcomesArriveOutOfOrder) {
  FaultyPipeline p(R"("count": 30)", R"("reverse": true)", R"({"batch_size": 7})");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto d = p.delivered();
  std::sort(d.begin(), d.end());
  EXPECT_EQ(d, range(1, 30));
  EXPECT_EQ(p.acks().back(), 30u);
  p.expect_acks_follow_deliveries();
}

TEST(Pipeline, RetriesTransientRecordFailures_WithoutLossDuplicatesOrReordering) {
  FaultyPipeline p(R"("count": 20)", R"("retry_positions": [3, 11, 12])", R"({"batch_size": 5,
      "retry.initial_backoff": "10ms", "retry.max_backoff": "20ms"})");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 20));  // each exactly once, in order
  EXPECT_EQ(p.acks().back(), 20u);
  p.expect_acks_follow_deliveries();
  EXPECT_NE(r.err.find("simulated transient failure"), std::string::npos) << r.err;
}

TEST(Pipeline, RetriesWholeWriteFailures) {
  FaultyPipeline p(R"("count": 6)", R"("write_retries": 3)");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 6));
  EXPECT_NE(r.err.find("simulated transient write failure"), std::string::npos) << r.err;
}

TEST(Pipeline, StopsWithExitCode4AndAcksNothingFromTheFailedRecordOn_WhenSinkFailsPermanently) {
  FaultyPipeline p(R"("count": 12)", R"("fatal_position": 5)", R"({"batch_size": 3})");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("failed permanently on event evt-5 (position 5)"), std::string::npos)
      << r.err;
  auto acks = p.acks();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back(), 4u);
  p.expect_acks_follow_deliveries();
}

TEST(Pipeline, RedeliversUnacknowledgedRecords_OnTheNextRun) {
  p2k_test::TempDir state;
  std::string state_file = (state.path() / "acked").string();
  {
    FaultyPipeline p(R"("count": 10, "state_file": ")" + state_file + "\"",
                     R"("fatal_position": 5)", R"({"batch_size": 3})");
    EXPECT_EQ(p.run().exit_code, 4);
  }
  EXPECT_EQ(p2k_test::read_file(state_file), "4\n");
  FaultyPipeline again(R"("count": 10, "state_file": ")" + state_file + "\"", "");
  auto r = again.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(again.delivered(), range(5, 10));
  EXPECT_EQ(p2k_test::read_file(state_file), "10\n");
}

TEST(Pipeline, RetriesSourcePollAndAckFailures) {
  FaultyPipeline p(R"("count": 9, "poll_retries": 3, "ack_retries": 2)", "");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 9));
  EXPECT_EQ(p.acks().back(), 9u);
  EXPECT_NE(r.err.find("simulated transient poll failure"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("simulated transient ack failure"), std::string::npos) << r.err;
}

TEST(Pipeline, RetriesOpen_WhenTransient) {
  FaultyPipeline p(R"("count": 3, "open_error": "retry_once")", "");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 3));
  EXPECT_NE(r.err.find("cannot open source 'test-sequence' yet"), std::string::npos) << r.err;
}

TEST(Pipeline, GivesUpOpeningAfterOpenTimeout_WhenTheSourceStaysUnreachable) {
  FaultyPipeline p(R"("count": 3, "open_error": "retry_always")", "",
                   R"({"open_timeout": "300ms", "retry.initial_backoff": "20ms"})");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("cannot open source 'test-sequence' within open_timeout (300 ms)"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(p.delivered().empty());
}

TEST(Pipeline, ExitsWith4_WhenOpenFailsPermanently) {
  FaultyPipeline p(R"("open_error": "fatal")", "");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("simulated fatal open failure"), std::string::npos) << r.err;
  EXPECT_TRUE(p.delivered().empty());
}

TEST(Pipeline, ExitsWith2_WhenPluginRejectsItsConfigurationOnOpen) {
  FaultyPipeline p(R"("open_error": "config")", "");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("simulated bad option"), std::string::npos) << r.err;
}

TEST(Pipeline, ExitsWith4_WhenSourceFailsPermanently) {
  FaultyPipeline p(R"("count": 10, "fatal_poll_at": 4)", "", R"({"batch_size": 3})");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("simulated fatal poll failure"), std::string::npos) << r.err;
  EXPECT_EQ(p.acks().back(), 3u);
}

TEST(Pipeline, AcceptsReportsFromTheSinksOwnThread) {
  FaultyPipeline p(R"("count": 200)", R"("async": true)", R"({"batch_size": 16})");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 200));
  EXPECT_EQ(p.acks().back(), 200u);
  p.expect_acks_follow_deliveries();
}

TEST(Pipeline, FailsClearly_WhenSinkReportsARecordTwice) {
  FaultyPipeline p(R"("count": 5)", R"("report_twice_position": 2)");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("reported twice, or never written"), std::string::npos) << r.err;
}

TEST(Pipeline, KeepsAtMostMaxInFlightRecordsOutstanding) {
  FaultyPipeline p(R"("count": 12)", R"("async": true)", R"({"max_in_flight": 1})");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 12));
  // With one record in flight, every record is acknowledged on its own.
  EXPECT_EQ(p.acks(), range(1, 12));
}

TEST(Pipeline, KeepsAtMostMaxInFlightBytesOutstanding_ButAlwaysLetsOneRecordThrough) {
  // Records of 1000 bytes against a budget of 1 byte: each passes (nothing else is in flight
  // then), and none is polled while another is unconfirmed.
  FaultyPipeline p(R"("count": 12, "value_size": 1000)", R"("async": true)",
                   R"({"batch_size": 1, "max_in_flight_bytes": 1})");
  auto r = p.run();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p.delivered(), range(1, 12));
  // With one record in flight at a time, every record is acknowledged on its own.
  EXPECT_EQ(p.acks(), range(1, 12));
}

TEST(Pipeline, StopsBeforeWriting_WhenSinkCannotPrepareATopic) {
  FaultyPipeline p(R"("count": 5, "topic": "orders")", R"("topic_error": "fatal")");
  auto r = p.run();
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("cannot write to topic 'orders': topic orders is missing"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(p.delivered().empty());
}

TEST(Pipeline, PreparesEachTopicBeforeWriting) {
  FaultyPipeline p(R"("count": 3, "topic": "orders")", "");
  ASSERT_EQ(p.run().exit_code, 0);
  auto lines = p.lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.front(), "topic orders");
}

TEST(Pipeline, DryRunPrintsEverythingOnceAndAcknowledgesNothing) {
  FaultyPipeline p(R"("count": 4)", "");
  auto r = p.run({"--once", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = p2k_test::lines(r.out);
  ASSERT_EQ(out.size(), 4u) << r.out;
  EXPECT_EQ(out[0], R"({"topic":"test.topic","key":"key-1","value":{"seq":1,"key":"key-1"}})");
  EXPECT_TRUE(p.acks().empty());
  EXPECT_TRUE(p.delivered().empty());  // the configured sink was not used
}

TEST(Pipeline, DryRunFromTheConfigNeedsNoSinkSettings) {
  p2k_test::TempDir dir;
  auto config =
      dir.write("p.json", R"({"source": {"plugin": "test-sequence", "options": {"count": 2}},
    "sink": {"plugin": "kafka", "options": {"bootstrap_servers": "${UNSET_BROKER}"}},
    "pipeline": {"dry_run": "${DRY_RUN:-false}"}})");
  auto r = p2k_test::run_pg2kafka({"run", "--once", "--config", config, "--plugin-dir",
                                   p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")},
                                  {{"DRY_RUN", "true"}, {"-UNSET_BROKER", ""}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(p2k_test::lines(r.out).size(), 2u);
}

TEST(Pipeline, ShutsDownCleanlyOnSigterm_AckingEverythingDelivered) {
  FaultyPipeline p(R"("count": 0)", R"("async": true)", R"({"batch_size": 50})");
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::string bin = p2k_test::ctest_env("P2K_BINARY");
    std::string dir = p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR");
    execl(bin.c_str(), bin.c_str(), "run", "--config", p.config.c_str(), "--plugin-dir",
          dir.c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200 && p.acks().size() < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(p.acks().size(), 5u) << "the pipeline did not start delivering";
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto delivered = p.delivered();
  ASSERT_FALSE(delivered.empty());
  EXPECT_EQ(p.acks().back(), *std::max_element(delivered.begin(), delivered.end()))
      << "every delivered record is acknowledged at shutdown";
  EXPECT_EQ(delivered, range(1, delivered.size()));
}
