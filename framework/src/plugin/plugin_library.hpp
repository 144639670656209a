// Loading a checked plugin file into the process: the very file that open_trusted_file() opened
// and checked, not whatever its path names a moment later.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "plugin/trusted_file.hpp"

namespace pg2kafka::plugin {

class PluginLibrary {
 public:
  // dlopen()s (RTLD_NOW | RTLD_LOCAL) the file open on `file.fd` through "<fd_dir>/<fd>"
  // (normally /proc/self/fd), so the code mapped is the code that was checked even if the path
  // is swapped after the checks.
  //
  // The file is loaded by its checked path `file.resolved` instead when
  //  - <fd_dir> does not show the file (/proc is not mounted): refusing would make pg2kafka
  //    unusable in a chroot or container without /proc, and loading by path is still safe from
  //    other users, because the checks made sure only root and the current user can change the
  //    file or any directory above it; the path is checked to still name the same file (device
  //    and inode) just before dlopen, which leaves a window only root or that user could use;
  //  - the library names $ORIGIN in its RPATH, RUNPATH or NEEDED entries: the dynamic linker
  //    expands $ORIGIN from the name dlopen was given, which would be /proc/self/fd.
  struct Loaded;
  // On failure `error` says why (for "cannot use plugin file '<shown_path>': "); `refused` tells
  // that the file changed after the checks, so nothing was loaded.
  static Loaded load(TrustedFile file, const std::string& shown_path, const std::string& fd_dir);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  // The address of an exported symbol, or null.
  void* symbol(const char* name) const;

  using FileId = std::pair<dev_t, ino_t>;

 private:
  PluginLibrary(void* handle, std::optional<FileId> kept) : handle_(handle), kept_(kept) {}
  void* handle_;
  std::optional<FileId> kept_;  // the file whose descriptor was kept open to load it, if any
};

struct PluginLibrary::Loaded {
  std::shared_ptr<PluginLibrary> library;  // null on failure
  std::string error;
  bool refused = false;
};

}  // namespace pg2kafka::plugin
