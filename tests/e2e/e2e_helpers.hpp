// Shared by the end-to-end tests: pipeline files for the test plugins and their output logs.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace p2k_e2e {

inline const char* const kDefaultPipeline =
    R"({"retry.initial_backoff": "10ms", "retry.max_backoff": "50ms"})";

// A pipeline from test-sequence to test-faulty (or test-faulty-async); both log into one file
// ("deliver N key value" and "ack N" lines, in the order they happened).
struct FaultyPipeline {
  p2k_test::TempDir dir;
  std::string log = (dir.path() / "events.log").string();
  std::string config;

  FaultyPipeline(const std::string& source_options, const std::string& sink_options,
                 const std::string& pipeline = kDefaultPipeline,
                 const std::string& sink_plugin = "test-faulty") {
    config = dir.write("pipeline.json", R"({
      "source": {"plugin": "test-sequence", "options": {"ack_log": ")" +
                                            log + "\"" +
                                            (source_options.empty() ? "" : ", " + source_options) +
                                            R"(}},
      "sink": {"plugin": ")" + sink_plugin + R"(", "options": {"output_file": ")" +
                                            log + "\"" +
                                            (sink_options.empty() ? "" : ", " + sink_options) +
                                            R"(}},
      "pipeline": )" + pipeline + "}");
  }

  p2k_test::CommandResult run(std::vector<std::string> extra = {"--once"}) const {
    std::vector<std::string> args{"run", "--config", config, "--plugin-dir",
                                  p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")};
    args.insert(args.end(), extra.begin(), extra.end());
    return p2k_test::run_pg2kafka(args);
  }

  std::vector<std::string> lines() const { return p2k_test::lines(p2k_test::read_file(log)); }

  // Positions delivered, in delivery order.
  std::vector<uint64_t> delivered() const {
    std::vector<uint64_t> out;
    for (const auto& l : lines())
      if (l.rfind("deliver ", 0) == 0) out.push_back(std::stoull(l.substr(8)));
    return out;
  }

  // Per key, the positions delivered, in delivery order.
  std::map<std::string, std::vector<uint64_t>> delivered_by_key() const {
    std::map<std::string, std::vector<uint64_t>> out;
    for (const auto& l : lines()) {
      if (l.rfind("deliver ", 0) != 0) continue;
      size_t space = l.find(' ', 8);
      size_t end = l.find(' ', space + 1);
      out[l.substr(space + 1, end - space - 1)].push_back(std::stoull(l.substr(8)));
    }
    return out;
  }

  // Every position of [1, count] delivered, and per key the last delivery of each record in
  // position order: the order a consumer keeps after dropping duplicates (by event id, keeping
  // the last copy), as the per-key ordering rule promises.
  void expect_complete_and_ordered_per_key(uint64_t count) const {
    std::set<uint64_t> all;
    for (const auto& [key, positions] : delivered_by_key()) {
      std::vector<uint64_t> last;
      std::set<uint64_t> seen;
      for (auto it = positions.rbegin(); it != positions.rend(); ++it)
        if (seen.insert(*it).second) last.insert(last.begin(), *it);
      EXPECT_TRUE(std::is_sorted(last.begin(), last.end())) << "key " << key << " out of order";
      all.insert(seen.begin(), seen.end());
    }
    EXPECT_EQ(all.size(), count);
    EXPECT_EQ(all.empty() ? 0 : *all.rbegin(), count);
  }

  std::vector<uint64_t> acks() const {
    std::vector<uint64_t> out;
    for (const auto& l : lines())
      if (l.rfind("ack ", 0) == 0) out.push_back(std::stoull(l.substr(4)));
    return out;
  }

  // Every ack covers only positions delivered before it, and acks strictly increase.
  void expect_acks_follow_deliveries() const {
    std::set<uint64_t> delivered_so_far;
    uint64_t last_ack = 0;
    for (const auto& l : lines()) {
      if (l.rfind("deliver ", 0) == 0) delivered_so_far.insert(std::stoull(l.substr(8)));
      if (l.rfind("ack ", 0) != 0) continue;
      uint64_t through = std::stoull(l.substr(4));
      EXPECT_GT(through, last_ack) << "acks must increase";
      for (uint64_t p = last_ack + 1; p <= through; ++p)
        EXPECT_TRUE(delivered_so_far.count(p))
            << "ack " << through << " before " << p << " was delivered";
      last_ack = through;
    }
  }
};

inline std::vector<uint64_t> range(uint64_t from, uint64_t to) {
  std::vector<uint64_t> out;
  for (uint64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

}  // namespace p2k_e2e
