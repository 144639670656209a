#include "plugin/plugin_registry.hpp"

#include "config/diagnostics.hpp"

#include <pg2kafka/sdk/text.hpp>

#include <boost/dll/runtime_symbol_info.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace pg2kafka::plugin {
namespace fs = std::filesystem;
namespace {

std::string file_name(p2k_kind kind, const std::string& name) {
  return std::string("pg2kafka-") + kind_name(kind) + "-" + name + ".so";
}

// "pg2kafka-sink-stdout.so" → (sink, "stdout").
bool parse_file_name(const std::string& file, p2k_kind& kind, std::string& name) {
  const std::string prefix = "pg2kafka-", suffix = ".so";
  if (file.size() <= prefix.size() + suffix.size() || file.rfind(prefix, 0) != 0 ||
      file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  std::string rest = file.substr(prefix.size(), file.size() - prefix.size() - suffix.size());
  for (p2k_kind k : {P2K_KIND_SOURCE, P2K_KIND_SINK}) {
    std::string kp = std::string(kind_name(k)) + "-";
    if (rest.rfind(kp, 0) == 0 && rest.size() > kp.size()) {
      kind = k;
      name = rest.substr(kp.size());
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<std::string> PluginRegistry::default_search_path(
    const std::vector<std::string>& plugin_dirs) {
  std::vector<std::string> dirs = plugin_dirs;
  if (const char* env = std::getenv("PG2KAFKA_PLUGIN_PATH")) {
    for (const std::string& d : sdk::split(env, ':'))
      if (!d.empty()) dirs.push_back(d);
  }
  boost::dll::fs::error_code ec;
  auto exe = boost::dll::program_location(ec);
  if (!ec)
    dirs.push_back(fs::weakly_canonical(exe.parent_path() / PG2KAFKA_PLUGIN_DIR_FROM_BIN).string());
  dirs.push_back(PG2KAFKA_INSTALLED_PLUGIN_DIR);
  std::vector<std::string> unique;
  for (const auto& d : dirs)
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(d);
  return unique;
}

PluginRegistry::PluginRegistry(std::vector<std::string> search_path)
    : search_path_(std::move(search_path)) {}

PluginHandle PluginRegistry::load(p2k_kind kind, const std::string& name_or_path) const {
  PluginHandle plugin;
  if (name_or_path.find('/') != std::string::npos) {
    plugin = load_plugin_file(name_or_path);
  } else {
    std::string file = file_name(kind, name_or_path);
    for (const auto& dir : search_path_) {
      fs::path candidate = fs::path(dir) / file;
      std::error_code ec;
      if (fs::exists(candidate, ec)) {
        plugin = load_plugin_file(candidate.string());
        break;
      }
    }
    if (!plugin) {
      std::string available;
      std::vector<std::string> names;
      for (const auto& e : list()) {
        if (e.kind != kind) continue;
        available += (available.empty() ? "" : ", ") + e.name;
        names.push_back(e.name);
      }
      std::string near = config::nearest(name_or_path, names);
      std::string dirs;
      for (const auto& d : search_path_) dirs += "\n  " + d;
      throw PluginError(
          std::string("unknown ") + kind_name(kind) + " plugin " + config::quoted(name_or_path) +
          (near.empty() ? "" : " (did you mean '" + near + "'?)") + ": available " +
          kind_name(kind) + " plugins: " + (available.empty() ? "none" : available) +
          ". Searched (add directories with --plugin-dir or PG2KAFKA_PLUGIN_PATH):" + dirs);
    }
  }
  if (plugin->kind() != kind)
    throw PluginError("plugin '" + plugin->name() + "' (" + plugin->path() + ") is a " +
                      kind_name(plugin->kind()) + ", but the " + kind_name(kind) +
                      " section needs a " + kind_name(kind));
  if (name_or_path.find('/') == std::string::npos && plugin->name() != name_or_path)
    throw PluginError("plugin file '" + plugin->path() + "' calls itself '" + plugin->name() +
                      "': a plugin's file name must match its name (" +
                      file_name(plugin->kind(), plugin->name()) + ")");
  return plugin;
}

std::vector<PluginRegistry::Entry> PluginRegistry::list() const {
  std::vector<Entry> out;
  std::set<std::pair<int, std::string>> seen;
  for (const auto& dir : search_path_) {
    std::error_code ec;
    std::vector<fs::path> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      files.push_back(it->path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      Entry e;
      if (!parse_file_name(f.filename().string(), e.kind, e.name)) continue;
      if (!seen.insert({e.kind, e.name}).second) continue;
      e.path = f.string();
      try {
        e.plugin = load_plugin_file(e.path);
      } catch (const PluginRefused& error) {
        e.error = error.what();
        e.refused = true;
      } catch (const PluginError& error) {
        e.error = error.what();
      }
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace pg2kafka::plugin
