// pg2kafka-sink-conformance: the contract tests every sink plugin must pass, ours or a third
// party's. Usage:
//
//   pg2kafka-sink-conformance --plugin PATH.so [--options JSON] [--topic NAME] [gtest flags]
//
// --options holds the plugin's options as a JSON object (as in a pipeline file's "options");
// the destination must be reachable and healthy, and the topic writable.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "config/json_document.hpp"
#include "config/option_values.hpp"
#include "plugin/plugin_instance.hpp"
#include "plugin/plugin_loader.hpp"

using namespace pg2kafka;
using std::chrono::milliseconds;

namespace {

std::string g_plugin_path;
std::string g_options_json = "{}";
std::string g_topic = "pg2kafka.conformance";
constexpr milliseconds kFlushTimeout{60000};

config::ResolvedOptions resolve(const plugin::LoadedPlugin& p, const std::string& json,
                                config::Diagnostics& diagnostics) {
  auto doc = config::JsonDocument::parse(json, "--options");
  return config::resolve_options(p.options(), &doc.root(), {"options"}, &doc,
                                 config::process_environment(), diagnostics);
}

// Records whose memory lives as long as the fixture, with awkward content on purpose.
class RecordFactory {
 public:
  std::vector<p2k_record> make(size_t count, size_t value_size = 64) {
    std::vector<p2k_record> out;
    for (size_t i = 0; i < count; ++i) {
      uint64_t pos = ++next_;
      auto& s = storage_[pos];
      s.key = "key-" + std::to_string(pos % 7);
      s.value = "{\"n\":" + std::to_string(pos) + ",\"text\":\"quote \\\" backslash \\\\ \\u0001\"";
      if (s.value.size() < value_size)
        s.value += ",\"pad\":\"" + std::string(value_size - s.value.size(), 'x') + "\"";
      s.value += "}";
      s.id = "conformance-" + std::to_string(pos);
      s.header_name = "pg2kafka.test";
      s.header_value = "yes";
      s.header = p2k_header{{s.header_name.data(), s.header_name.size()},
                            {s.header_value.data(), s.header_value.size()}};
      p2k_record r{};
      r.struct_size = sizeof(p2k_record);
      r.position = pos;
      r.topic = {g_topic.data(), g_topic.size()};
      // Every fifth record has a null key; every ninth an empty value.
      r.key = pos % 5 == 0 ? p2k_slice{nullptr, 0} : p2k_slice{s.key.data(), s.key.size()};
      r.value =
          pos % 9 == 0 ? p2k_slice{s.value.data(), 0} : p2k_slice{s.value.data(), s.value.size()};
      r.timestamp_ms = 1700000000000 + static_cast<int64_t>(pos);
      r.id = {s.id.data(), s.id.size()};
      r.headers = &s.header;
      r.header_count = 1;
      out.push_back(r);
    }
    return out;
  }

 private:
  struct Stored {
    std::string key, value, id, header_name, header_value;
    p2k_header header;
  };
  uint64_t next_ = 0;
  std::map<uint64_t, Stored> storage_;
};

class SinkConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    plugin_ = plugin::load_plugin_file(g_plugin_path);
    ASSERT_EQ(plugin_->kind(), P2K_KIND_SINK) << g_plugin_path << " is not a sink plugin";
    config::Diagnostics d;
    options_ = resolve(*plugin_, g_options_json, d);
    ASSERT_TRUE(d.empty()) << d.format();
  }

  std::unique_ptr<plugin::SinkInstance> open_sink() {
    auto sink = std::make_unique<plugin::SinkInstance>(plugin_, options_);
    auto r = sink->open();
    EXPECT_TRUE(r.ok()) << "open failed: " << r.message;
    auto t = sink->prepare_topic(g_topic);
    EXPECT_TRUE(t.ok()) << "prepare_topic(" << g_topic << ") failed: " << t.message;
    return sink;
  }

  // Writes, flushes, and returns how often each position was reported, with its statuses.
  std::map<uint64_t, std::vector<p2k_status>> write_and_flush(
      plugin::SinkInstance& sink, const std::vector<p2k_record>& records) {
    auto w = sink.write(records.data(), records.size());
    EXPECT_TRUE(w.ok()) << "write failed: " << w.message;
    auto f = sink.flush(kFlushTimeout);
    EXPECT_TRUE(f.ok()) << "flush did not complete: " << f.message;
    return collect(sink);
  }

  std::map<uint64_t, std::vector<p2k_status>> collect(plugin::SinkInstance& sink) {
    for (const auto& o : sink.outcomes().take()) {
      reports_[o.position].push_back(o.status);
      if (o.status != P2K_OK) messages_.push_back(o.message);
    }
    return reports_;
  }

  plugin::PluginHandle plugin_;
  config::ResolvedOptions options_;
  RecordFactory factory_;
  std::map<uint64_t, std::vector<p2k_status>> reports_;
  std::vector<std::string> messages_;
};

}  // namespace

TEST_F(SinkConformance, RequiredOptionsAreDeclaredAndEnforced) {
  for (const auto& o : plugin_->options()) {
    if (!(o.flags & P2K_OPT_REQUIRED)) continue;
    auto given = boost::json::parse(g_options_json).as_object();
    given.erase(o.name);
    config::Diagnostics d;
    resolve(*plugin_, boost::json::serialize(given), d);
    EXPECT_NE(d.format().find("required option '" + std::string(o.name) + "' is missing"),
              std::string::npos)
        << d.format();
  }
  config::Diagnostics d;
  auto given = boost::json::parse(g_options_json).as_object();
  given["conformance_no_such_option"] = 1;
  resolve(*plugin_, boost::json::serialize(given), d);
  EXPECT_FALSE(d.empty()) << "an unknown option was accepted";
}

TEST_F(SinkConformance, CreatesAndDestroysWithoutOpening) {
  plugin::SinkInstance sink(plugin_, options_);
  SUCCEED();
}

TEST_F(SinkConformance, ReportsEveryRecordExactlyOnce) {
  auto sink = open_sink();
  std::vector<p2k_record> all;
  for (size_t n : {1, 100, 37}) {
    auto batch = factory_.make(n);
    all.insert(all.end(), batch.begin(), batch.end());
    auto w = sink->write(batch.data(), batch.size());
    ASSERT_TRUE(w.ok()) << w.message;
    sink->wait(milliseconds(0));
  }
  auto f = sink->flush(kFlushTimeout);
  ASSERT_TRUE(f.ok()) << f.message;
  auto reports = collect(*sink);
  ASSERT_EQ(reports.size(), all.size()) << "not every record was reported";
  for (const auto& r : all) {
    ASSERT_EQ(reports[r.position].size(), 1u)
        << "position " << r.position << " reported " << reports[r.position].size() << " times";
    EXPECT_EQ(reports[r.position][0], P2K_OK)
        << "position " << r.position << " failed: " << (messages_.empty() ? "" : messages_[0]);
  }
}

TEST_F(SinkConformance, FlushIsABarrier) {
  auto sink = open_sink();
  auto batch = factory_.make(50);
  auto reports = write_and_flush(*sink, batch);
  EXPECT_EQ(reports.size(), batch.size()) << "flush returned before every record was reported";
  // Nothing may arrive after the barrier.
  std::this_thread::sleep_for(milliseconds(200));
  sink->wait(milliseconds(50));
  EXPECT_TRUE(sink->outcomes().take().empty()) << "a report arrived after flush returned";
}

TEST_F(SinkConformance, FlushWithNothingWrittenReturnsAtOnce) {
  auto sink = open_sink();
  auto start = std::chrono::steady_clock::now();
  auto f = sink->flush(milliseconds(5000));
  EXPECT_TRUE(f.ok()) << f.message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(4000));
}

TEST_F(SinkConformance, KeepsWorkingAfterAFlush) {
  auto sink = open_sink();
  auto first = factory_.make(10);
  write_and_flush(*sink, first);
  auto second = factory_.make(10);
  auto reports = write_and_flush(*sink, second);
  EXPECT_EQ(reports.size(), 20u);
}

TEST_F(SinkConformance, ReportsALargeRecordExactlyOnce) {
  auto sink = open_sink();
  auto batch = factory_.make(1, 256 * 1024);
  auto reports = write_and_flush(*sink, batch);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports.begin()->second.size(), 1u);
}

TEST_F(SinkConformance, ClosesCleanlyWithRecordsInFlight) {
  auto sink = open_sink();
  auto batch = factory_.make(20);
  ASSERT_TRUE(sink->write(batch.data(), batch.size()).ok());
  sink.reset();  // close and destroy without a flush: must not crash or hang
  SUCCEED();
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& flag) -> std::optional<std::string> {
      if (a.rfind(flag + "=", 0) == 0) return a.substr(flag.size() + 1);
      if (a == flag && i + 1 < argc) return std::string(argv[++i]);
      return std::nullopt;
    };
    if (auto v = value("--plugin"))
      g_plugin_path = *v;
    else if (auto v = value("--options"))
      g_options_json = *v;
    else if (auto v = value("--topic"))
      g_topic = *v;
    else {
      std::cerr << "unknown argument " << a << "\nusage: " << argv[0]
                << " --plugin PATH.so [--options JSON] [--topic NAME] [gtest flags]\n";
      return 2;
    }
  }
  if (g_plugin_path.empty()) {
    std::cerr << "usage: " << argv[0] << " --plugin PATH.so [--options JSON] [--topic NAME]\n";
    return 2;
  }
  return RUN_ALL_TESTS();
}
