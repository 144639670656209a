// Finding plugins: the search path and the "pg2kafka-<kind>-<name>.so" naming rule.
#pragma once

#include <string>
#include <vector>

#include "plugin/plugin_loader.hpp"

namespace pg2kafka::plugin {

class PluginRegistry {
 public:
  // The search path, first match wins: each --plugin-dir, then each directory of
  // PG2KAFKA_PLUGIN_PATH (colon-separated), then the directory next to the binary
  // (<bin>/../lib/pg2kafka/plugins: the build tree and a relocated install), then the install
  // prefix's plugin directory.
  static std::vector<std::string> default_search_path(const std::vector<std::string>& plugin_dirs);

  explicit PluginRegistry(std::vector<std::string> search_path);
  const std::vector<std::string>& search_path() const { return search_path_; }

  // Loads a plugin by name, or by path when `name_or_path` contains a '/'. Throws PluginError;
  // for an unknown name the message lists the plugins of that kind that are available and the
  // directories searched.
  PluginHandle load(p2k_kind kind, const std::string& name_or_path) const;

  struct Entry {
    p2k_kind kind;
    std::string name;
    std::string path;
    PluginHandle plugin;   // null when loading failed
    std::string error;     // why loading failed
    bool refused = false;  // the checks before loading refused it: none of its code ran
  };
  // Every plugin file in the search path, loaded to read its descriptor when it passes the
  // checks that come before loading (see load_plugin_file). A name found in two directories is
  // listed once, from the first.
  std::vector<Entry> list() const;

 private:
  std::vector<std::string> search_path_;
};

}  // namespace pg2kafka::plugin
