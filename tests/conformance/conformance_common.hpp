// Shared by the conformance suites (pg2kafka-sink-conformance, pg2kafka-source-conformance): the
// command line, loading the plugin under test and resolving its options as the host does, and the
// CPU time of the calling thread.
#pragma once

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/json_document.hpp"
#include "config/option_values.hpp"
#include "plugin/plugin_loader.hpp"

namespace p2k_conformance {

// The suite's own flags: name → (value, help). Filled by main().
struct Flag {
  std::string value;
  std::string help;
  bool required = false;
};
using Flags = std::map<std::string, Flag>;

// Parses the suite's flags out of argv (removing them) before GoogleTest sees the rest. Prints
// the usage and returns 0 for --help, 2 for a bad command line, -1 to go on.
inline int parse_command_line(int& argc, char** argv, const std::string& summary, Flags& flags) {
  auto usage = [&](std::ostream& out) {
    out << "usage: " << argv[0];
    for (const auto& [name, f] : flags)
      out << (f.required ? " " : " [") << "--" << name << " VALUE" << (f.required ? "" : "]");
    out << " [gtest flags]\n\n" << summary << "\n\n";
    for (const auto& [name, f] : flags) out << "  --" << name << "\n      " << f.help << "\n";
    out << "\nGoogleTest's flags also work, e.g. --gtest_filter=NAME (--gtest_list_tests lists "
           "the checks).\nExit code: 0 when every check passed, 1 when one failed, 2 for a bad "
           "command line.\n";
  };
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(std::cout);
      return 0;
    }
    if (a.rfind("--gtest_", 0) == 0) {
      rest.push_back(argv[i]);
      continue;
    }
    bool known = false;
    for (auto& [name, f] : flags) {
      std::string flag = "--" + name;
      if (a.rfind(flag + "=", 0) == 0) {
        f.value = a.substr(flag.size() + 1);
        known = true;
      } else if (a == flag && i + 1 < argc) {
        f.value = argv[++i];
        known = true;
      }
      if (known) break;
    }
    if (!known) {
      std::cerr << argv[0] << ": unknown argument '" << a << "'\n";
      usage(std::cerr);
      return 2;
    }
  }
  for (const auto& [name, f] : flags) {
    if (f.required && f.value.empty()) {
      std::cerr << argv[0] << ": --" << name << " is required\n";
      usage(std::cerr);
      return 2;
    }
  }
  argc = static_cast<int>(rest.size());
  for (int i = 0; i < argc; ++i) argv[i] = rest[i];
  return -1;
}

// The plugin's options from a JSON object, resolved exactly as the host resolves a pipeline
// file's (defaults, normalisation, ${VAR} from the environment).
inline pg2kafka::config::ResolvedOptions resolve(const pg2kafka::plugin::LoadedPlugin& p,
                                                 const std::string& json,
                                                 pg2kafka::config::Diagnostics& diagnostics) {
  auto doc = pg2kafka::config::JsonDocument::parse(json, "--options");
  return pg2kafka::config::resolve_options(p.options(), &doc.root(), {"options"}, &doc,
                                           pg2kafka::config::process_environment(), diagnostics,
                                           p.abi_minor());
}

// CPU time (user + system) used by the calling thread so far, in seconds.
inline double thread_cpu_seconds() {
  struct rusage usage {};
  getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

inline std::string status_name(p2k_status s) {
  switch (s) {
    case P2K_OK:
      return "OK";
    case P2K_RETRY:
      return "RETRY";
    case P2K_FATAL:
      return "FATAL";
    case P2K_INVALID_CONFIG:
      return "INVALID_CONFIG";
  }
  return "unknown status " + std::to_string(static_cast<int>(s));
}

}  // namespace p2k_conformance
