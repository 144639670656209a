// Opening a plugin file so that nobody but root and the current user can have chosen its code.
//
// The rules are those ssh (StrictModes) and sudo apply: the file and every directory from it up
// to '/' must be owned by root or by the user pg2kafka runs as, and must not be writable by
// group or others; a directory writable by others is accepted only when it is sticky and owned
// by root (like /tmp), since then nobody else can rename or delete the entries of others in it.
//
// The path is walked one component at a time with openat(O_NOFOLLOW), from '/' down: each
// directory is checked through the descriptor that was opened (fstat), symbolic links are
// resolved by hand (each one must lie in a checked directory and be owned by root or the user),
// and the file is finally opened once; what was checked is what is returned, so there is no
// window between checking a name and opening it. Linux only (O_PATH).
#pragma once

#include <sys/stat.h>

#include <string>

namespace pg2kafka::plugin {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

struct TrustedFile {
  UniqueFd fd;           // O_RDONLY | O_CLOEXEC on the checked file
  std::string resolved;  // its absolute path, free of symbolic links, "." and ".."
  struct stat st {};     // the file's status, as checked
};

// Opens `path` (relative paths start at the working directory) after checking the file and
// every directory on the way. Returns an empty string on success, else the reason it may not be
// loaded, worded to follow "cannot use plugin file '<path>': " and naming the fix.
std::string open_trusted_file(const std::string& path, TrustedFile& out);

// "0755": the permission bits of a mode, in octal.
std::string mode_text(mode_t mode);

}  // namespace pg2kafka::plugin
