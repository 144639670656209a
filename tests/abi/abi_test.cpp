// The host refuses every malformed plugin with a message naming the file, the defect and the
// fix, and never crashes.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "config/option_values.hpp"
#include "plugin/plugin_instance.hpp"
#include "plugin/plugin_loader.hpp"
#include "test_support.hpp"

using namespace pg2kafka::plugin;

namespace {

std::string broken(const std::string& name) {
  return std::string(BROKEN_PLUGIN_DIR) + "/pg2kafka-sink-" + name + ".so";
}

std::string load_error(const std::string& path) {
  try {
    load_plugin_file(path);
  } catch (const PluginError& e) {
    return e.what();
  }
  return "loaded without error";
}

void expect_refused(const std::string& name, const std::string& expected) {
  std::string error = load_error(broken(name));
  EXPECT_NE(error.find(broken(name)), std::string::npos) << error;
  EXPECT_NE(error.find(expected), std::string::npos)
      << "expected '" << expected << "' in: " << error;
}

}  // namespace

TEST(Abi, LoadsAWellFormedPlugin) {
  auto p = load_plugin_file(p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so");
  EXPECT_EQ(p->name(), "stdout");
  EXPECT_EQ(p->kind(), P2K_KIND_SINK);
}

TEST(Abi, RefusesMissingFile) {
  expect_refused("does-not-exist", "cannot access it");
}

TEST(Abi, RefusesFileThatIsNotASharedLibrary) {
  p2k_test::TempDir dir;
  auto path = dir.write("pg2kafka-sink-text.so", "this is not an ELF file\n");
  auto error = load_error(path);
  EXPECT_NE(error.find("not a loadable shared library"), std::string::npos) << error;
}

TEST(Abi, RefusesLibraryWithoutEntrySymbol) {
  expect_refused("no-entry", "does not export p2k_plugin_entry_v1, so it is not a pg2kafka plugin");
}

TEST(Abi, RefusesOtherMajorVersion_NamingBothVersions) {
  expect_refused("wrong-major", "built for plugin ABI 2.0, but this pg2kafka speaks ABI 1." +
                                    std::to_string(P2K_ABI_MINOR));
}

TEST(Abi, RefusesNewerMinorVersion) {
  std::string host = "1." + std::to_string(P2K_ABI_MINOR);
  std::string plugin = "1." + std::to_string(P2K_ABI_MINOR + 1);
  expect_refused("newer-minor", "it needs plugin ABI " + plugin +
                                    ", newer than this pg2kafka's ABI " + host +
                                    ": upgrade pg2kafka");
}

TEST(Abi, RefusesShortDescriptor) {
  expect_refused("short-struct", "smaller than the");
}

TEST(Abi, RefusesShortOperationsTable) {
  expect_refused("short-ops", "its sink operations table is 24 bytes");
}

TEST(Abi, RefusesMissingRequiredOperation) {
  expect_refused("missing-write", "lacks a required function");
}

TEST(Abi, RefusesNullDescriptor) {
  expect_refused("null-descriptor", "returned NULL");
}

TEST(Abi, RefusesThrowingEntry) {
  expect_refused("throwing-entry", "entry exploded");
}

TEST(Abi, RefusesInvalidName) {
  expect_refused("bad-name", "not lower-hyphenated");
}

TEST(Abi, RefusesWorldWritableFile) {
  p2k_test::TempDir dir;
  auto copy = dir.path() / "pg2kafka-sink-stdout.so";
  std::filesystem::copy_file(p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so",
                             copy);
  chmod(copy.c_str(), 0666);
  auto error = load_error(copy.string());
  EXPECT_NE(error.find("writable by every user (mode 0666)"), std::string::npos) << error;
  EXPECT_NE(error.find("chmod o-w"), std::string::npos) << error;
}

TEST(Abi, RefusesFileOwnedBySomeoneElse) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give a file away";
  p2k_test::TempDir dir;
  auto copy = dir.path() / "pg2kafka-sink-stdout.so";
  std::filesystem::copy_file(p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so",
                             copy);
  ASSERT_EQ(chown(copy.c_str(), 12345, 12345), 0);
  auto error = load_error(copy.string());
  EXPECT_NE(error.find("owned by uid 12345"), std::string::npos) << error;
}

TEST(Abi, TurnsExceptionFromRawCreateIntoError) {
  auto p = load_plugin_file(broken("throwing-create"));
  pg2kafka::config::ResolvedOptions none;
  try {
    SinkInstance sink(p, none);
    FAIL() << "create did not fail";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("let an exception escape from create: create exploded"),
              std::string::npos)
        << e.what();
  }
}

TEST(Abi, SdkTurnsExceptionFromConstructorIntoStatus) {
  auto p = load_plugin_file(broken("sdk-throwing"));
  pg2kafka::config::ResolvedOptions none;
  try {
    SinkInstance sink(p, none);
    FAIL() << "create did not fail";
  } catch (const PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("could not be created: constructor exploded"),
              std::string::npos)
        << e.what();
  }
}

TEST(Abi, BinaryExitsWithPluginErrorCode_ForBrokenPlugin) {
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": ")" + broken("wrong-major") +
                                        R"("}})");
  auto r = p2k_test::run_pg2kafka(
      {"check", "--config", config, "--plugin-dir", p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("built for plugin ABI 2.0"), std::string::npos) << r.err;
}

TEST(Abi, BinaryExitsWithPluginErrorCode_ForThrowingCreate) {
  p2k_test::TempDir dir;
  auto config = dir.write("p.json", R"({"source": {"plugin": "test-sequence"},
    "sink": {"plugin": ")" + broken("throwing-create") +
                                        R"("}})");
  auto r = p2k_test::run_pg2kafka({"run", "--once", "--config", config, "--plugin-dir",
                                   p2k_test::ctest_env("P2K_TEST_PLUGIN_DIR")});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("create exploded"), std::string::npos) << r.err;
}
