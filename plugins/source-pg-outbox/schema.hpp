// The pg2kafka schema of a database: which migrations and function set it holds, installing
// what it lacks, and which of its versions this plugin drains (sql/README.md, "Layout and
// versions", has the policy and the table of combinations that work).
#pragma once

#include <pg2kafka/sdk/plugin.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "pg_connection.hpp"

namespace pg2kafka::pg_outbox {

struct SchemaVersion {
  int64_t migrations = 0;  // the largest version in pg2kafka.schema_migrations
  int64_t functions = 0;   // the largest version in pg2kafka.schema_functions (0: before 007)
};

// The oldest migration whose queue this plugin reads (004: pg2kafka.event_batches).
constexpr int64_t kOldestDrainableMigration = 4;

// What this build ships (the embedded sql/).
SchemaVersion shipped_schema();

// What the database holds: 0 and 0 without a pg2kafka schema.
SchemaVersion installed_schema(PgConnection& conn);

// Brings the database's schema up to shipped_schema() in one transaction, under the installers'
// advisory lock: the migrations it lacks, in order, then the function set when the installed one
// is older (an equal one is left alone). Returns what was applied, for the log. Throws
// sdk::ConfigError when the database holds a newer schema than this build (nothing changes: a
// newer pg2kafka installed it, and older SQL is never put back) and PgError when a statement
// fails (everything is rolled back).
std::vector<std::string> install_schema(PgConnection& conn);

// Checks that this build may drain a database whose schema is `installed`: throws
// sdk::ConfigError naming both versions and the fix when it may not (no schema, older than
// kOldestDrainableMigration, or newer than this build); returns a warning to log when the schema
// is older than this build but still drainable, else "".
std::string check_schema(const SchemaVersion& installed, const std::string& database,
                         const std::string& target);

}  // namespace pg2kafka::pg_outbox
