// Trusting plugin files: the host loads a plugin only when nobody but root and the user it runs
// as can have chosen its code (the file and every directory up to '/'), refuses anything else
// before running any of it, and loads the very file it checked, whatever happens to the path
// meanwhile.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <vector>

#include "plugin/elf_header.hpp"
#include "plugin/plugin_loader.hpp"
#include "plugin/plugin_registry.hpp"
#include "plugin/trusted_file.hpp"
#include "test_support.hpp"

using namespace pg2kafka::plugin;
namespace fs = std::filesystem;

namespace {

std::string stdout_plugin() {
  return p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-sink-stdout.so";
}

bool is_root() {
  return geteuid() == 0;
}

// Creates a directory with exactly `mode`, whatever the umask.
fs::path make_dir(const fs::path& path, mode_t mode = 0755) {
  fs::create_directories(path);
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
  return path;
}

// Copies a plugin file to `to` with exactly `mode`.
std::string install(const std::string& from, const fs::path& to, mode_t mode = 0644) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  EXPECT_EQ(chmod(to.c_str(), mode), 0) << to;
  return to.string();
}

// Overwrites bytes of a file at `offset`.
void patch(const std::string& path, std::streamoff offset, const void* bytes, size_t size) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(offset);
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(size));
  ASSERT_TRUE(f.good()) << path;
}

uint16_t elf_machine_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  f.seekg(18);
  uint16_t machine = 0;
  f.read(reinterpret_cast<char*>(&machine), sizeof machine);  // the file has this host's order
  return machine;
}

// What load_plugin_file refused the file with; a description of anything else that happened.
std::string refusal(const std::string& path, const LoadHooks* hooks = nullptr) {
  try {
    auto p = load_plugin_file(path, hooks);
    return "not refused: loaded '" + p->name() + "'";
  } catch (const PluginRefused& e) {
    return e.what();
  } catch (const PluginError& e) {
    return std::string("not refused before loading: ") + e.what();
  }
}

void expect_in(const std::string& text, const std::string& expected) {
  EXPECT_NE(text.find(expected), std::string::npos) << "expected '" << expected << "' in:\n"
                                                    << text;
}

// A temporary plugin directory (mode 0755) and the evil plugin's constructor marker.
class PluginTrust : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
    dir_ = make_dir(tmp_.path() / "plugins");
    marker_ = (tmp_.path() / "constructor-ran").string();
    setenv("P2K_CONSTRUCTOR_MARKER", marker_.c_str(), 1);
  }
  void TearDown() override { unsetenv("P2K_CONSTRUCTOR_MARKER"); }

  bool evil_code_ran() const { return fs::exists(marker_); }

  p2k_test::TempDir tmp_;
  fs::path dir_;
  std::string marker_;
};

}  // namespace

// The control for every "no code ran" assertion below: loading the evil plugin does leave the
// mark.
TEST_F(PluginTrust, TheEvilPluginLeavesAMark_WhenItsCodeRuns) {
  auto p = load_plugin_file(install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil.so"));
  EXPECT_EQ(p->name(), "evil");
  EXPECT_TRUE(evil_code_ran());
}

// The race the loader used to lose: the checked path is renamed over between the checks and
// dlopen. The loader loads the file it checked, through its open descriptor.
TEST_F(PluginTrust, LoadsTheCheckedFile_WhenAnotherIsRenamedOverItAfterTheChecks) {
  auto path = install(stdout_plugin(), dir_ / "pg2kafka-sink-stdout.so");
  auto evil = install(EVIL_PLUGIN, dir_ / "evil.so");
  LoadHooks hooks;
  bool swapped = false;
  hooks.after_checks = [&] {
    fs::rename(evil, path);
    swapped = true;
  };
  auto p = load_plugin_file(path, &hooks);
  EXPECT_TRUE(swapped);
  EXPECT_EQ(p->name(), "stdout");
  EXPECT_EQ(p->path(), path);
  EXPECT_FALSE(evil_code_ran());
  EXPECT_FALSE(fs::exists(evil)) << "the evil plugin now sits at the path";
}

// The same race with a symbolic link flipped after the checks.
TEST_F(PluginTrust, LoadsTheCheckedFile_WhenASymlinkIsFlippedAfterTheChecks) {
  auto good = install(stdout_plugin(), dir_ / "real-stdout.so");
  auto evil = install(EVIL_PLUGIN, dir_ / "real-evil.so");
  auto link = dir_ / "pg2kafka-sink-stdout.so";
  fs::create_symlink(good, link);
  LoadHooks hooks;
  hooks.after_checks = [&] {
    fs::create_symlink(evil, dir_ / "flip");
    fs::rename(dir_ / "flip", link);
  };
  auto p = load_plugin_file(link.string(), &hooks);
  EXPECT_EQ(p->name(), "stdout");
  EXPECT_EQ(fs::read_symlink(link), evil) << "the link was flipped";
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, FollowsASymlinkToATrustedFile_AndKeepsThePathGiven) {
  auto good = install(stdout_plugin(), dir_ / "real-stdout.so");
  auto link = dir_ / "pg2kafka-sink-stdout.so";
  fs::create_symlink("real-stdout.so", link);
  auto p = load_plugin_file(link.string());
  EXPECT_EQ(p->name(), "stdout");
  EXPECT_EQ(p->path(), link.string());
}

TEST_F(PluginTrust, RefusesAWorldWritableDirectory_BeforeRunningAnyCode) {
  auto open = make_dir(dir_ / "open", 0777);
  auto path = install(EVIL_PLUGIN, open / "pg2kafka-sink-evil.so");
  auto error = refusal(path);
  expect_in(error, "cannot use plugin file '" + path + "'");
  expect_in(error, "the directory '" + open.string() + "' (mode 0777, owner uid " +
                       std::to_string(geteuid()));
  expect_in(error, "is writable by every user, so anyone could swap the plugin");
  expect_in(error, "fix: chmod o-w,g-w '" + open.string() + "'");
  expect_in(error, "every directory above it, up to '/'");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesAWritableDirectoryHigherUp) {
  auto open = make_dir(dir_ / "open", 0777);
  auto plugins = make_dir(open / "plugins");
  auto path = install(EVIL_PLUGIN, plugins / "pg2kafka-sink-evil.so");
  auto error = refusal(path);
  expect_in(error, "the directory '" + open.string() + "' (mode 0777");
  EXPECT_FALSE(evil_code_ran());
}

// A root-owned sticky directory (like /tmp): nobody else can rename or remove what is in it.
TEST_F(PluginTrust, AcceptsARootOwnedStickyDirectory) {
  if (!is_root()) GTEST_SKIP() << "needs root to own the shared directory";
  auto shared = make_dir(dir_ / "shared", 01777);
  auto p = load_plugin_file(install(stdout_plugin(), shared / "pg2kafka-sink-stdout.so"));
  EXPECT_EQ(p->name(), "stdout");
}

TEST_F(PluginTrust, RefusesAStickyDirectoryNotOwnedByRoot) {
  if (!is_root()) GTEST_SKIP() << "needs root to give the directory away";
  auto shared = make_dir(dir_ / "shared", 01777);
  auto path = install(EVIL_PLUGIN, shared / "pg2kafka-sink-evil.so");
  ASSERT_EQ(chown(shared.c_str(), 12345, 12345), 0);
  ASSERT_EQ(chmod(shared.c_str(), 01777), 0);
  auto error = refusal(path);
  expect_in(error, "the directory '" + shared.string() + "' (mode 1777) is owned by uid 12345");
  expect_in(error, "fix: chown root '" + shared.string() + "'");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesAGroupWritableDirectory) {
  auto group = make_dir(dir_ / "group", 0775);
  auto path = install(EVIL_PLUGIN, group / "pg2kafka-sink-evil.so");
  auto error = refusal(path);
  expect_in(error, "the directory '" + group.string() + "' (mode 0775");
  expect_in(error, "is writable by its group gid " + std::to_string(getegid()));
  expect_in(error, "so any member of that group could swap the plugin");
  expect_in(error, "fix: chmod g-w '" + group.string() + "'");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesADirectoryOwnedBySomeoneElse) {
  if (!is_root()) GTEST_SKIP() << "needs root to give a directory away";
  auto theirs = make_dir(dir_ / "theirs");
  auto path = install(EVIL_PLUGIN, theirs / "pg2kafka-sink-evil.so");
  ASSERT_EQ(chown(theirs.c_str(), 12345, 12345), 0);
  auto error = refusal(path);
  expect_in(error, "the directory '" + theirs.string() + "' (mode 0755) is owned by uid 12345");
  expect_in(error, "who is neither root nor the user running pg2kafka");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesAGroupWritableFile) {
  auto path = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil.so", 0664);
  auto error = refusal(path);
  expect_in(error, "cannot use plugin file '" + path + "': it is writable by its group gid " +
                       std::to_string(getegid()));
  expect_in(error, "(mode 0664), so any member of that group could replace the code");
  expect_in(error, "fix: chmod g-w '" + path + "'");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesAFileOwnedBySomeoneElse_BeforeRunningAnyCode) {
  if (!is_root()) GTEST_SKIP() << "needs root to give a file away";
  auto path = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil.so");
  ASSERT_EQ(chown(path.c_str(), 12345, 12345), 0);
  auto error = refusal(path);
  expect_in(error, "it is owned by uid 12345, neither the current user (uid 0");
  expect_in(error, "fix: chown root '" + path + "'");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesASymlinkInAWritableDirectory) {
  auto good = install(stdout_plugin(), dir_ / "real-stdout.so");
  auto open = make_dir(dir_ / "open", 0777);
  auto link = open / "pg2kafka-sink-stdout.so";
  fs::create_symlink(good, link);
  auto error = refusal(link.string());
  expect_in(error, "cannot use plugin file '" + link.string() + "': the directory '" +
                       open.string() + "' (mode 0777");
}

// In a shared sticky directory, the owner of a link can replace it.
TEST_F(PluginTrust, RefusesASymlinkOfAnotherUserInAStickyDirectory) {
  if (!is_root()) GTEST_SKIP() << "needs root to own the shared directory";
  auto good = install(stdout_plugin(), dir_ / "real-stdout.so");
  auto shared = make_dir(dir_ / "shared", 01777);
  auto link = shared / "pg2kafka-sink-stdout.so";
  fs::create_symlink(good, link);
  ASSERT_EQ(lchown(link.c_str(), 12345, 12345), 0);
  auto error = refusal(link.string());
  expect_in(error, "the symbolic link '" + link.string() + "' in the shared directory '" +
                       shared.string() + "' belongs to uid 12345");
}

TEST_F(PluginTrust, RefusesANamedPipe_WithoutOpeningIt) {
  auto path = (dir_ / "pg2kafka-sink-pipe.so").string();
  ASSERT_EQ(mkfifo(path.c_str(), 0644), 0);
  expect_in(refusal(path), "it is not a regular file (it is a named pipe)");
}

TEST_F(PluginTrust, RefusesADirectory) {
  auto path = make_dir(dir_ / "pg2kafka-sink-dir.so").string();
  expect_in(refusal(path), "it is not a regular file (it is a directory)");
}

TEST_F(PluginTrust, RefusesAPluginBuiltForAnotherMachine) {
  auto path = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil.so");
  const uint16_t host = elf_machine_of(stdout_plugin());
  const uint16_t other = host == 183 ? 62 : 183;  // AArch64, or x86-64 on an AArch64 host
  patch(path, 18, &other, sizeof other);
  auto error = refusal(path);
  expect_in(error, "cannot use plugin file '" + path + "': it is built for " + machine_name(other) +
                       " (ELF machine " + std::to_string(other) + "), but this pg2kafka runs on " +
                       machine_name(host));
#if defined(__x86_64__)
  expect_in(error, "it is built for AArch64 (ELF machine 183), but this pg2kafka runs on x86-64");
#endif
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesAPluginOfTheOtherWordSize) {
  auto path = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil.so");
  const unsigned char other_class = sizeof(void*) == 8 ? 1 : 2;  // ELFCLASS32 / ELFCLASS64
  patch(path, 4, &other_class, 1);
  const uint16_t host = elf_machine_of(stdout_plugin());
  const std::string theirs = sizeof(void*) == 8 ? "32-bit" : "64-bit";
  const std::string ours = sizeof(void*) == 8 ? "64-bit" : "32-bit";
  expect_in(refusal(path), "it is built for " + machine_name(host) + " (ELF machine " +
                               std::to_string(host) + ", " + theirs +
                               "), but this pg2kafka runs on " + machine_name(host) + " (" + ours +
                               ")");
  EXPECT_FALSE(evil_code_ran());
}

TEST_F(PluginTrust, RefusesAnObjectFile) {
  auto path = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil.so");
  const uint16_t et_rel = 1;
  patch(path, 16, &et_rel, sizeof et_rel);
  expect_in(refusal(path),
            "it is not a loadable shared library: it is an object file (ELF type ET_REL)");
}

TEST_F(PluginTrust, RefusesATruncatedFile) {
  auto file = dir_ / "pg2kafka-sink-short.so";
  std::ofstream(file, std::ios::binary)
      .write(
          "\x7f"
          "ELF\x02\x01",
          6);
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  expect_in(refusal(file.string()), "it is cut short (6 bytes, too few for an ELF header)");
}

// Without /proc the checked file is loaded by its path, after making sure the path still names
// it (only root or the current user could change it in between: the directories passed).
TEST_F(PluginTrust, WithoutProc_LoadsTheCheckedFileByItsPath) {
  auto path = install(stdout_plugin(), dir_ / "pg2kafka-sink-stdout.so");
  LoadHooks hooks;
  hooks.fd_directory = (tmp_.path() / "no-proc").string();
  auto p = load_plugin_file(path, &hooks);
  EXPECT_EQ(p->name(), "stdout");
}

TEST_F(PluginTrust, WithoutProc_RefusesAFileSwappedAfterTheChecks) {
  auto path = install(stdout_plugin(), dir_ / "pg2kafka-sink-stdout.so");
  auto evil = install(EVIL_PLUGIN, dir_ / "evil.so");
  LoadHooks hooks;
  hooks.fd_directory = (tmp_.path() / "no-proc").string();
  hooks.after_checks = [&] { fs::rename(evil, path); };
  auto error = refusal(path, &hooks);
  expect_in(error, "cannot use plugin file '" + path +
                       "': it was replaced between the checks and loading");
  EXPECT_FALSE(evil_code_ran());
}

// The dynamic linker expands $ORIGIN from the name a library was opened by: such a plugin is
// loaded by its checked path, so it finds the library next to it.
TEST_F(PluginTrust, LoadsAPluginThatFindsItsLibraryThroughOrigin) {
  auto path = install(ORIGIN_PLUGIN, dir_ / "pg2kafka-sink-origin.so");
  install(ORIGIN_DEP, dir_ / fs::path(ORIGIN_DEP).filename());
  {
    TrustedFile file;
    ASSERT_EQ(open_trusted_file(path, file), "");
    EXPECT_TRUE(uses_origin(file.fd.get()));
    TrustedFile other;
    ASSERT_EQ(open_trusted_file(stdout_plugin(), other), "");
    EXPECT_FALSE(uses_origin(other.fd.get()));
  }
  auto p = load_plugin_file(path);
  EXPECT_EQ(p->name(), "origin");
  EXPECT_STREQ(p->descriptor().version, "4.2.0");
}

// Plugins are loaded through /proc/self/fd/<n>, a name the dynamic linker remembers: a later
// plugin opened on the same descriptor number must not be taken for an earlier one.
TEST_F(PluginTrust, LoadsTheRightPlugin_WhenDescriptorNumbersComeAgain) {
  auto a = install(stdout_plugin(), dir_ / "pg2kafka-sink-stdout.so");
  auto b = install(std::string(ABI10_PLUGIN_DIR) + "/pg2kafka-sink-abi10.so",
                   dir_ / "pg2kafka-sink-abi10.so");
  auto c = install(std::string(BROKEN_PLUGIN_DIR) + "/pg2kafka-sink-throwing-create.so",
                   dir_ / "pg2kafka-sink-throwing-create.so");
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(load_plugin_file(a)->name(), "stdout");
    EXPECT_EQ(load_plugin_file(b)->name(), "abi10");
    EXPECT_EQ(load_plugin_file(c)->name(), "broken");
    auto held = load_plugin_file(b);
    EXPECT_EQ(load_plugin_file(a)->name(), "stdout");
    EXPECT_EQ(load_plugin_file(b)->name(), "abi10");
    EXPECT_EQ(held->name(), "abi10");
  }
}

TEST_F(PluginTrust, RegistryListMarksRefusedFiles_AndRunsNoneOfTheirCode) {
  install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil-writable.so", 0664);
  install(std::string(BROKEN_PLUGIN_DIR) + "/pg2kafka-sink-no-entry.so",
          dir_ / "pg2kafka-sink-no-entry.so");
  install(stdout_plugin(), dir_ / "pg2kafka-sink-stdout.so");
  PluginRegistry registry({dir_.string()});
  std::map<std::string, PluginRegistry::Entry> by_name;
  for (auto& e : registry.list()) by_name[e.name] = e;
  ASSERT_EQ(by_name.size(), 3u);
  EXPECT_TRUE(by_name["evil-writable"].refused);
  expect_in(by_name["evil-writable"].error, "writable by its group");
  EXPECT_FALSE(by_name["no-entry"].refused) << "loaded, then found not to be a plugin";
  expect_in(by_name["no-entry"].error, "does not export");
  ASSERT_TRUE(by_name["stdout"].plugin);
  EXPECT_FALSE(by_name["stdout"].refused);
  EXPECT_FALSE(evil_code_ran());
}

// `plugins list` loads every candidate to read its descriptor: those that fail the checks are
// listed with the reason, and their code never runs.
TEST_F(PluginTrust, PluginsList_RunsNoCodeOfFilesThatFailTheChecks) {
  install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil-writable.so", 0664);
  auto arm = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil-machine.so");
  const uint16_t other = elf_machine_of(stdout_plugin()) == 183 ? 62 : 183;
  patch(arm, 18, &other, sizeof other);
  auto open = make_dir(tmp_.path() / "open", 0777);
  fs::create_symlink(install(EVIL_PLUGIN, open / "evil.so"), dir_ / "pg2kafka-sink-evil-open.so");
  if (is_root()) {
    auto theirs = install(EVIL_PLUGIN, dir_ / "pg2kafka-sink-evil-theirs.so");
    ASSERT_EQ(chown(theirs.c_str(), 12345, 12345), 0);
  }
  std::map<std::string, std::string> env{{"P2K_CONSTRUCTOR_MARKER", marker_}};
  auto r = p2k_test::run_pg2kafka({"plugins", "list", "--plugin-dir", dir_.string()}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_in(r.out, "sink\tevil-writable\tREFUSED\t");
  expect_in(r.out, "(mode 0664), so any member of that group could replace the code");
  expect_in(r.out, "sink\tevil-machine\tREFUSED\t");
  expect_in(r.out, "it is built for " + machine_name(other));
  expect_in(r.out, "sink\tevil-open\tREFUSED\t");
  expect_in(r.out, "the directory '" + open.string() + "' (mode 0777");
  if (is_root()) expect_in(r.out, "it is owned by uid 12345");
  expect_in(r.out, "sink\tstdout\t");  // the real plugin directory is still listed
  EXPECT_FALSE(evil_code_ran()) << r.out;

  // The control: the same binary, given a trusted copy of the evil plugin, runs its code.
  auto trusted = make_dir(tmp_.path() / "trusted");
  install(EVIL_PLUGIN, trusted / "pg2kafka-sink-evil.so");
  auto control = p2k_test::run_pg2kafka({"plugins", "list", "--plugin-dir", trusted.string()}, env);
  ASSERT_EQ(control.exit_code, 0) << control.err;
  expect_in(control.out, "sink\tevil\t6.6.6");
  EXPECT_TRUE(evil_code_ran());
}

// The build tree the tests run from passes the checks (a CI checkout that is group-writable
// fails here first, with the directory and the fix named).
TEST(PluginTrustBuildTree, TheBuiltPluginsPassTheChecks) {
  for (const auto& path : {stdout_plugin(), std::string(EVIL_PLUGIN)}) {
    TrustedFile file;
    EXPECT_EQ(open_trusted_file(path, file), "") << path;
  }
}
