#include "plugin/plugin_library.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <optional>

#include "plugin/elf_header.hpp"

namespace pg2kafka::plugin {
namespace {

// The dynamic linker remembers every name a library was opened by: dlopen("/proc/self/fd/7")
// gives the library (or the same file loaded before under another name) the name
// "/proc/self/fd/7" for as long as it stays resident, and a later dlopen() of that name returns it
// without opening anything. So descriptor 7 must stay open (its number unused by any other file)
// while that library is resident. The descriptors are kept here, one per file (device, inode):
// loading a file that is kept already reuses its name, so no name is added twice.
struct Kept {
  int fd;
  std::string name;
  size_t users;  // PluginLibrary objects; 0 when released but still resident
};

std::mutex& table_mutex() {
  static auto* m = new std::mutex();  // never destroyed: plugins may be released during exit
  return *m;
}

std::map<PluginLibrary::FileId, Kept>& kept_files() {
  static auto* table = new std::map<PluginLibrary::FileId, Kept>();  // never destroyed, as above
  return *table;
}

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

}  // namespace

PluginLibrary::Loaded PluginLibrary::load(TrustedFile file, const std::string& shown_path,
                                          const std::string& fd_dir) {
  Loaded out;
  const std::string fd_name = fd_dir + "/" + std::to_string(file.fd.get());
  std::string by_path_because;
  struct stat seen {};
  if (uses_origin(file.fd.get()))
    by_path_because = "it uses $ORIGIN, so pg2kafka loads it by its path";
  else if (stat(fd_name.c_str(), &seen) != 0 || !same_file(seen, file.st))
    by_path_because = fd_dir +
                      " does not show open files (is /proc mounted?), so pg2kafka loads "
                      "plugins by their path";
  const bool by_fd = by_path_because.empty();
  if (!by_fd) {
    struct stat now {};
    if (lstat(file.resolved.c_str(), &now) != 0 || !S_ISREG(now.st_mode) ||
        !same_file(now, file.st)) {
      out.error = "it was replaced between the checks and loading (" + by_path_because +
                  "); try again, and find out who changes '" + file.resolved + "'";
      out.refused = true;
      return out;
    }
  }
  std::lock_guard lock(table_mutex());
  auto& table = kept_files();
  const FileId id{file.st.st_dev, file.st.st_ino};
  auto kept = by_fd ? table.find(id) : table.end();
  // A kept descriptor is open on this very file (it holds the inode), so its name loads it.
  const std::string name = !by_fd                ? file.resolved
                           : kept != table.end() ? kept->second.name
                                                 : fd_name;
  dlerror();
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = dlerror();
    std::string detail = e ? e : "dlopen failed without a reason";
    replace_all(detail, name, shown_path);
    out.error = "it is not a loadable shared library (" + detail + ")";
    return out;
  }
  std::optional<FileId> uses;
  if (by_fd) {
    if (kept == table.end()) kept = table.emplace(id, Kept{file.fd.release(), fd_name, 0}).first;
    ++kept->second.users;
    uses = id;
  }
  out.library.reset(new PluginLibrary(handle, uses));
  return out;
}

PluginLibrary::~PluginLibrary() {
  std::lock_guard lock(table_mutex());
  dlclose(handle_);
  if (!kept_) return;
  auto& table = kept_files();
  auto it = table.find(*kept_);
  if (it == table.end() || --it->second.users > 0) return;
  // Still resident (C++ code with unique symbols is never unloaded, and the file may be loaded
  // elsewhere in the process)? Then the name still names it: the descriptor stays open.
  if (void* again = dlopen(it->second.name.c_str(), RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD)) {
    dlclose(again);
    return;
  }
  ::close(it->second.fd);
  table.erase(it);
}

void* PluginLibrary::symbol(const char* name) const {
  return dlsym(handle_, name);
}

}  // namespace pg2kafka::plugin
