// Loading one plugin file: file checks, dlopen (Boost.DLL), the entry call and every ABI check.
#pragma once

#include <pg2kafka/plugin.h>

#include <memory>
#include <span>
#include <stdexcept>
#include <string>

namespace boost::dll {
class shared_library;
}

namespace pg2kafka::plugin {

// A plugin that cannot be found, loaded or trusted (exit code 3).
class PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

const char* kind_name(p2k_kind kind);

class LoadedPlugin {
 public:
  LoadedPlugin(std::shared_ptr<boost::dll::shared_library> library, const p2k_plugin* descriptor,
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
  std::shared_ptr<boost::dll::shared_library> library_;
  const p2k_plugin* descriptor_;
  std::string path_;
};

using PluginHandle = std::shared_ptr<const LoadedPlugin>;

// Loads and checks a plugin file. Throws PluginError naming the file, the problem and the fix:
// missing, not a regular file, writable by others, owned by someone other than the user or
// root, not a shared library, no entry symbol, entry refusing the host, or a descriptor that
// fails validate_descriptor().
PluginHandle load_plugin_file(const std::string& path);

// Checks a descriptor against this host's ABI; returns an empty string when it is usable, else
// the reason. Never reads beyond what struct_size says is there.
std::string validate_descriptor(const p2k_plugin* d);

// Checks that the file may be loaded (exists, regular, not writable by others, owned by the
// user or root); returns the reason when not.
std::string check_file_trust(const std::string& path);

}  // namespace pg2kafka::plugin
