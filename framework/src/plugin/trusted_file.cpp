#include "plugin/trusted_file.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <utility>
#include <vector>

#include <pg2kafka/sdk/text.hpp>

namespace pg2kafka::plugin {
namespace {

// The kernel's limit for one path resolution.
constexpr int kMaxSymlinks = 40;

const char* const kRule =
    " (pg2kafka checks the plugin file and every directory above it, up to '/': each must be "
    "owned by root or by the user running pg2kafka, and writable by no one else; see \"Plugin "
    "trust\" in the README)";

std::string user_text(uid_t uid) {
  std::string text = "uid " + std::to_string(uid);
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found)
    text += " (" + std::string(found->pw_name) + ")";
  return text;
}

std::string group_text(gid_t gid) {
  std::string text = "gid " + std::to_string(gid);
  struct group gr {};
  struct group* found = nullptr;
  char buf[1024];
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &found) == 0 && found)
    text += " (" + std::string(found->gr_name) + ")";
  return text;
}

bool trusted_owner(uid_t uid) {
  return uid == 0 || uid == geteuid();
}

std::string current_user() {
  return user_text(geteuid());
}

// "o-w", "g-w" or "o-w,g-w": what chmod must take away.
std::string chmod_fix(mode_t mode) {
  std::string fix;
  if (mode & S_IWOTH) fix = "o-w";
  if (mode & S_IWGRP) fix += std::string(fix.empty() ? "" : ",") + "g-w";
  return fix;
}

std::string writers(const struct stat& st) {
  return (st.st_mode & S_IWOTH) ? "every user" : "its group " + group_text(st.st_gid);
}

std::string anyone(const struct stat& st) {
  return (st.st_mode & S_IWOTH) ? "anyone" : "any member of that group";
}

const char* file_type(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a named pipe";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string check_directory(const struct stat& st, const std::string& dir) {
  if (!trusted_owner(st.st_uid))
    return "the directory '" + dir + "' (mode " + mode_text(st.st_mode) + ") is owned by " +
           user_text(st.st_uid) + ", who is neither root nor the user running pg2kafka (" +
           current_user() +
           "), so that user could swap the plugin for other code; fix: chown root '" + dir +
           "', or keep plugins in a directory owned by root" + kRule;
  const bool writable = st.st_mode & (S_IWGRP | S_IWOTH);
  const bool shared_sticky = (st.st_mode & S_ISVTX) && st.st_uid == 0;
  if (writable && !shared_sticky)
    return "the directory '" + dir + "' (mode " + mode_text(st.st_mode) + ", owner " +
           user_text(st.st_uid) + ") is writable by " + writers(st) +
           ((st.st_mode & S_ISVTX) ? " (a sticky bit protects only a directory root owns)" : "") +
           ", so " + anyone(st) + " could swap the plugin for other code; fix: chmod " +
           chmod_fix(st.st_mode) + " '" + dir + "'" + kRule;
  return {};
}

std::string check_file(const struct stat& st, const std::string& it, const std::string& file) {
  if (!S_ISREG(st.st_mode))
    return it + " is not a regular file (it is " + file_type(st.st_mode) + ")";
  if (!trusted_owner(st.st_uid))
    return it + " is owned by " + user_text(st.st_uid) + ", neither the current user (" +
           current_user() +
           ") nor root, so that user could change the code pg2kafka runs; fix: "
           "chown root '" +
           file + "' (or chown it to the user running pg2kafka)";
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return it + " is writable by " + writers(st) + " (mode " + mode_text(st.st_mode) + "), so " +
           anyone(st) + " could replace the code pg2kafka runs; fix: chmod " +
           chmod_fix(st.st_mode) + " '" + file + "'";
  return {};
}

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

// Splits a path into its components, in order (empty components and "." dropped).
std::deque<std::string> components(const std::string& path) {
  std::deque<std::string> out;
  for (std::string& c : sdk::split(path, '/'))
    if (!c.empty() && c != ".") out.push_back(std::move(c));
  return out;
}

struct OpenDir {
  UniqueFd fd;
  std::string path;
};

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::string open_trusted_file(const std::string& path, TrustedFile& out) {
  if (path.empty()) return "cannot access it: the path is empty";
  std::string absolute = path;
  if (path[0] != '/') {
    std::error_code ec;
    auto cwd = std::filesystem::current_path(ec);
    if (ec) return "cannot access it: the working directory is unknown (" + ec.message() + ")";
    absolute = cwd.string() + "/" + path;
  }
  auto fail_errno = [](int error, const std::string& where, bool last) {
    std::string why = "cannot access it: " + std::string(std::strerror(error));
    return last ? why : why + " (at '" + where + "')";
  };

  // The directories entered so far, from '/': each one checked when it was opened.
  std::vector<OpenDir> dirs;
  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail_errno(errno, "/", false);
  struct stat st {};
  if (fstat(root.get(), &st) != 0) return fail_errno(errno, "/", false);
  if (std::string why = check_directory(st, "/"); !why.empty()) return why;
  dirs.push_back({std::move(root), "/"});

  std::deque<std::string> todo = components(absolute);
  int links = 0;
  while (!todo.empty()) {
    std::string name = std::move(todo.front());
    todo.pop_front();
    if (name == "..") {
      if (dirs.size() > 1) dirs.pop_back();
      continue;
    }
    const OpenDir& dir = dirs.back();
    const std::string here = join(dir.path, name);
    const bool last = todo.empty();
    // O_PATH | O_NOFOLLOW opens a symbolic link itself, so it can be read and resolved by hand.
    UniqueFd fd(::openat(dir.fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return fail_errno(errno, here, last);
    if (fstat(fd.get(), &st) != 0) return fail_errno(errno, here, last);

    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks)
        return "cannot access it: more than " + std::to_string(kMaxSymlinks) +
               " symbolic links on the way (a loop?)";
      struct stat dst {};
      if (fstat(dir.fd.get(), &dst) != 0) return fail_errno(errno, dir.path, false);
      // In a shared (sticky) directory the owner of a link can replace it (and protected_symlinks
      // lets only its owner's links be followed there).
      if ((dst.st_mode & (S_IWGRP | S_IWOTH)) && !trusted_owner(st.st_uid))
        return "the symbolic link '" + here + "' in the shared directory '" + dir.path +
               "' belongs to " + user_text(st.st_uid) +
               ", who is neither root nor the user running pg2kafka, so that user could point it "
               "at other code; fix: name the plugin by its real path, or keep plugins in a "
               "directory owned by root" +
               kRule;
      // st_size is the target's length, except for the kernel's own links (0).
      std::vector<char> target(std::max<size_t>(static_cast<size_t>(st.st_size), PATH_MAX) + 1);
      ssize_t n = readlinkat(fd.get(), "", target.data(), target.size());
      if (n < 0) return fail_errno(errno, here, false);
      if (static_cast<size_t>(n) >= target.size())
        return "cannot access it: the symbolic link '" + here + "' changed while it was read";
      std::string link(target.data(), static_cast<size_t>(n));
      if (link.empty()) return "cannot access it: the symbolic link '" + here + "' is empty";
      auto parts = components(link);
      todo.insert(todo.begin(), parts.begin(), parts.end());
      if (link[0] == '/') dirs.resize(1);
      continue;
    }

    if (!last) {
      if (!S_ISDIR(st.st_mode)) return fail_errno(ENOTDIR, here, false);
      if (std::string why = check_directory(st, here); !why.empty()) return why;
      dirs.push_back({std::move(fd), here});
      continue;
    }

    // The file itself: checked through the O_PATH descriptor, so a device or a pipe is never
    // opened, then opened for reading and compared with what was checked.
    const std::string it = here == absolute ? "it" : "it ('" + here + "')";
    if (std::string why = check_file(st, it, here); !why.empty()) return why;
    UniqueFd file(::openat(dir.fd.get(), name.c_str(),
                           O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!file) return fail_errno(errno, here, true);
    struct stat opened {};
    if (fstat(file.get(), &opened) != 0) return fail_errno(errno, here, true);
    if (opened.st_dev != st.st_dev || opened.st_ino != st.st_ino)
      return it +
             " was replaced while pg2kafka was checking it; try again, and find out who "
             "changes files in '" +
             dir.path + "'";
    if (std::string why = check_file(opened, it, here); !why.empty()) return why;
    out.fd = std::move(file);
    out.resolved = here;
    out.st = opened;
    return {};
  }
  return "it is not a regular file (it is a directory)";
}

}  // namespace pg2kafka::plugin
