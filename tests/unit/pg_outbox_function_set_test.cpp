// The function set compiled into the pg-outbox plugin: a new version whenever its SQL changes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "embedded_sql.hpp"

TEST(FunctionSet, ChangingAFunctionRaisesTheVersion) {
  // Databases and binaries in the field compare function sets by version only, so two different
  // sets must never share one. The checksum (FNV-1a, 64 bits, over each file's name and text) of
  // every released version is recorded here: when sql/functions/ changes, raise this_version in
  // sql/functions/00_version.sql and add the new version's checksum below.
  const std::map<int, std::string> released = {
      {1, "f8a6364a2e81ac32"}, {2, "e47039416f701788"}, {3, "6f2e08f8ae53550b"},
      {4, "23666e1eaf07cdac"}, {5, "67c392ef3c1eaee1"}, {6, "6012175848d712c4"},
      {7, "b5487bc9bf5ffe59"}, {8, "d53b06a39ef4b72e"},
  };
  uint64_t hash = 1469598103934665603ull;
  auto add = [&](std::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  for (const auto& f : pg2kafka::pg_outbox::function_set().files) {
    add(f.name);
    add(f.sql);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  int version = pg2kafka::pg_outbox::function_set().version;
  auto it = released.find(version);
  ASSERT_NE(it, released.end()) << "function set " << version << " has no checksum here: add {"
                                << version << ", \"" << hex << "\"}";
  EXPECT_EQ(it->second, hex) << "sql/functions/ changed but function set " << version
                             << " did not: raise this_version in sql/functions/00_version.sql "
                                "and add its checksum here";
}
