#include "plugin/plugin_loader.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <regex>
#include <set>

#include "plugin/elf_header.hpp"
#include "plugin/plugin_library.hpp"
#include "plugin/trusted_file.hpp"

namespace pg2kafka::plugin {
namespace {

// The sizes of the structs as ABI 1.0 defined them: a plugin may not send anything shorter.
constexpr size_t kPluginV1Size = P2K_PLUGIN_SIZE_1_0;
constexpr size_t kSourceOpsV1Size = P2K_SOURCE_OPS_SIZE_1_0;
constexpr size_t kSinkOpsV1Size = P2K_SINK_OPS_SIZE_1_0;
constexpr size_t kOptionV1Size = P2K_OPTION_SIZE_1_0;

// The option flags each minor defines (index: minor).
constexpr uint32_t kOptionFlags[] = {P2K_OPT_REQUIRED,
                                     P2K_OPT_REQUIRED | P2K_OPT_IS_SECRET,
                                     P2K_OPT_REQUIRED | P2K_OPT_IS_SECRET,
                                     P2K_OPT_REQUIRED | P2K_OPT_IS_SECRET,
                                     P2K_OPT_REQUIRED | P2K_OPT_IS_SECRET,
                                     P2K_OPT_REQUIRED | P2K_OPT_IS_SECRET};
static_assert(std::size(kOptionFlags) == P2K_ABI_MINOR + 1, "a flag table entry per minor");

std::string version_text(uint32_t major, uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

const std::string kHostAbi = version_text(P2K_ABI_MAJOR, P2K_ABI_MINOR);

bool valid_name(const char* name) {
  static const std::regex re("^[a-z0-9]+(-[a-z0-9]+)*$");
  return name && std::strlen(name) <= 64 && std::regex_match(name, re);
}

std::string check_options(const p2k_plugin* d) {
  if (d->option_count > 0 && !d->options) return "its option table pointer is NULL";
  static const std::regex key_re("^[a-z0-9_]+(\\.[a-z0-9_]+)*\\.?$");
  const uint32_t known_flags = kOptionFlags[std::min<uint32_t>(d->abi_minor, P2K_ABI_MINOR)];
  std::set<std::string> names;
  for (size_t i = 0; i < d->option_count; ++i) {
    const p2k_option& o = d->options[i];
    std::string where = "option #" + std::to_string(i + 1);
    if (o.struct_size < kOptionV1Size)
      return where + " is " + std::to_string(o.struct_size) + " bytes, smaller than the " +
             std::to_string(kOptionV1Size) + " bytes of ABI 1.0";
    if (!o.name || !std::regex_match(o.name, key_re))
      return where + " has an invalid name (expected dotted lower_snake, e.g. \"poll_interval\")";
    where = "option '" + std::string(o.name) + "'";
    if (!names.insert(o.name).second) return where + " is declared twice";
    if (o.type < P2K_OPT_STRING || o.type > P2K_OPT_PREFIX)
      return where + " has an unknown type " + std::to_string(static_cast<int>(o.type));
    if (o.type == P2K_OPT_PREFIX && o.name[std::strlen(o.name) - 1] != '.')
      return where + " is a prefix option, so its name must end with '.'";
    if (o.type == P2K_OPT_ENUM && (!o.choices || !o.choices[0]))
      return where + " is an enum without choices";
    if (uint32_t unknown = o.flags & ~known_flags) {
      char hex[16];
      std::snprintf(hex, sizeof hex, "0x%x", unknown);
      return where + " sets flag " + hex + ", which plugin ABI " +
             version_text(d->abi_major, d->abi_minor) +
             " (the version it answered with) does not define: it must answer with the minor "
             "that added the flag (see plugin.h, \"Versioning\")";
    }
    if ((o.flags & P2K_OPT_REQUIRED) && o.default_value)
      return where + " is required and has a default; it can only be one of the two";
    if (!o.description || !*o.description) return where + " has no description";
  }
  return {};
}

}  // namespace

const char* kind_name(p2k_kind kind) {
  switch (kind) {
    case P2K_KIND_SOURCE:
      return "source";
    case P2K_KIND_SINK:
      return "sink";
  }
  return "unknown";
}

LoadedPlugin::LoadedPlugin(std::shared_ptr<PluginLibrary> library, const p2k_plugin* descriptor,
                           std::string path)
    : library_(std::move(library)), descriptor_(descriptor), path_(std::move(path)) {}

LoadedPlugin::~LoadedPlugin() = default;

std::string validate_descriptor(const p2k_plugin* d) {
  if (!d) return "its entry function returned NULL (the plugin refused host ABI " + kHostAbi + ")";
  if (d->struct_size < kPluginV1Size)
    return "its descriptor is " + std::to_string(d->struct_size) + " bytes, smaller than the " +
           std::to_string(kPluginV1Size) +
           " bytes of ABI 1.0: the plugin is corrupt or was not built against pg2kafka/plugin.h";
  std::string plugin_abi = version_text(d->abi_major, d->abi_minor);
  if (d->abi_major != P2K_ABI_MAJOR)
    return "it was built for plugin ABI " + plugin_abi + ", but this pg2kafka speaks ABI " +
           kHostAbi + " and major versions must match: rebuild the plugin against pg2kafka " +
           std::to_string(P2K_ABI_MAJOR) + ".x's plugin.h, or use a pg2kafka for ABI " +
           std::to_string(d->abi_major) + ".x";
  if (d->abi_minor > P2K_ABI_MINOR)
    return "it needs plugin ABI " + plugin_abi + ", newer than this pg2kafka's ABI " + kHostAbi +
           ": upgrade pg2kafka (a plugin that needs nothing newer answers an older host with "
           "its older version, see plugin.h \"Versioning\")";
  if (!valid_name(d->name))
    return "its name is missing or not lower-hyphenated (e.g. \"pg-outbox\")";
  if (!d->version || !*d->version) return "it has no version";
  if (!d->summary || !*d->summary) return "it has no summary";
  if (d->kind == P2K_KIND_SOURCE) {
    const p2k_source_ops* o = d->source;
    if (!o) return "it is a source without source operations";
    if (o->struct_size < kSourceOpsV1Size)
      return "its source operations table is " + std::to_string(o->struct_size) +
             " bytes, smaller than the " + std::to_string(kSourceOpsV1Size) + " bytes of ABI 1.0";
    if (!o->create || !o->open || !o->poll || !o->ack || !o->release || !o->close || !o->destroy)
      return "its source operations table lacks a required function (create, open, poll, ack, "
             "release, close and destroy are required)";
  } else if (d->kind == P2K_KIND_SINK) {
    const p2k_sink_ops* o = d->sink;
    if (!o) return "it is a sink without sink operations";
    if (o->struct_size < kSinkOpsV1Size)
      return "its sink operations table is " + std::to_string(o->struct_size) +
             " bytes, smaller than the " + std::to_string(kSinkOpsV1Size) + " bytes of ABI 1.0";
    if (!o->create || !o->open || !o->write || !o->flush || !o->close || !o->destroy)
      return "its sink operations table lacks a required function (create, open, write, flush, "
             "close and destroy are required)";
  } else {
    return "its kind " + std::to_string(static_cast<int>(d->kind)) + " is neither source nor sink";
  }
  return check_options(d);
}

PluginHandle load_plugin_file(const std::string& path, const LoadHooks* hooks) {
  auto fail = [&](const std::string& why) -> PluginError {
    return PluginError("cannot use plugin file '" + path + "': " + why);
  };
  auto refuse = [&](const std::string& why) -> PluginRefused {
    return PluginRefused("cannot use plugin file '" + path + "': " + why);
  };
  // Opened once; every check below and the load itself use that one open file.
  TrustedFile file;
  if (std::string why = open_trusted_file(path, file); !why.empty()) throw refuse(why);
  if (std::string why = check_elf_header(file.fd.get()); !why.empty()) throw refuse(why);
  if (hooks && hooks->after_checks) hooks->after_checks();

  static const LoadHooks kDefaults;
  // rtld_local: two plugins may bundle different versions of the same library.
  auto loaded =
      PluginLibrary::load(std::move(file), path, (hooks ? hooks : &kDefaults)->fd_directory);
  if (!loaded.library) throw loaded.refused ? refuse(loaded.error) : fail(loaded.error);
  void* symbol = loaded.library->symbol(P2K_PLUGIN_ENTRY_SYMBOL);
  if (!symbol)
    throw fail(std::string("it does not export ") + P2K_PLUGIN_ENTRY_SYMBOL +
               ", so it is not a pg2kafka plugin (plugins define it with P2K_SINK_PLUGIN / "
               "P2K_SOURCE_PLUGIN, or export it with P2K_EXPORT)");
  auto entry = reinterpret_cast<p2k_plugin_entry_fn>(symbol);
  const p2k_plugin* descriptor = nullptr;
  try {
    descriptor = entry(P2K_ABI_MAJOR, P2K_ABI_MINOR);
  } catch (const std::exception& e) {
    throw fail(std::string("its entry function threw an exception: ") + e.what());
  } catch (...) {
    throw fail("its entry function threw an exception");
  }
  if (std::string why = validate_descriptor(descriptor); !why.empty()) throw fail(why);
  return std::make_shared<LoadedPlugin>(std::move(loaded.library), descriptor, path);
}

}  // namespace pg2kafka::plugin
