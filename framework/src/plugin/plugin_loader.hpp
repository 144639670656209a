// Loading one plugin file: trust checks (trusted_file.hpp), the ELF header check, dlopen of the
// checked file (plugin_library.hpp), the entry call and every ABI check.
#pragma once

#include <pg2kafka/plugin.h>

#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

namespace pg2kafka::plugin {

class PluginLibrary;

// A plugin that cannot be found, loaded or trusted (exit code 3).
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A plugin file refused by the checks made before loading it (who may change it, its ELF
// header): none of its code ran.
class PluginRefused : public PluginError {
 public:
  using PluginError::PluginError;
};

const char* kind_name(p2k_kind kind);

class LoadedPlugin {
 public:
  LoadedPlugin(std::shared_ptr<PluginLibrary> library, const p2k_plugin* descriptor,
               std::string path);
  ~LoadedPlugin();
  const p2k_plugin& descriptor() const { return *descriptor_; }
  const std::string& path() const { return path_; }
  std::string name() const { return descriptor_->name; }
  p2k_kind kind() const { return descriptor_->kind; }
  // The ABI minor the plugin answered with: the rules of that minor apply to it.
  uint32_t abi_minor() const { return descriptor_->abi_minor; }
  std::span<const p2k_option> options() const {
    return {descriptor_->options, descriptor_->option_count};
  }

 private:
  // Instances hold a shared_ptr to the LoadedPlugin, so the code stays mapped while any of them
  // (or a callback into them) lives.
  std::shared_ptr<PluginLibrary> library_;
  const p2k_plugin* descriptor_;
  std::string path_;
};

using PluginHandle = std::shared_ptr<const LoadedPlugin>;

// For tests only (never reachable from the command line, the environment or a config).
struct LoadHooks {
  // Runs after the file passed every check and before it is loaded: a test swaps files here to
  // show that the file checked is the file loaded.
  std::function<void()> after_checks;
  // Where this process's open files appear; a test names a missing directory to load as
  // without /proc.
  std::string fd_directory = "/proc/self/fd";
};

// Loads and checks a plugin file. Throws PluginRefused, before any of the file's code runs, when
// the file is missing, not a regular file, or could have been changed by a user other than root
// and the current user (the file or any directory up to '/', see trusted_file.hpp), or is not an
// ELF shared object for this machine; throws PluginError when it does not load, exports no
// entry symbol, its entry refuses the host or its descriptor fails validate_descriptor(). Every
// message names `path` as given, the problem and the fix.
PluginHandle load_plugin_file(const std::string& path, const LoadHooks* hooks = nullptr);

// Checks a descriptor against this host's ABI; returns an empty string when it is usable, else
// the reason. Never reads beyond what struct_size says is there.
std::string validate_descriptor(const p2k_plugin* d);

}  // namespace pg2kafka::plugin
