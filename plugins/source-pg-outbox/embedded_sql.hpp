// The SQL of sql/, compiled into the plugin at build time by embed_sql.cmake so that the .so is
// self-contained: the migrations (sql/migrations/NNN_name.sql) and the function set
// (sql/functions/*.sql). See sql/README.md for what each holds.
#pragma once

#include <span>

namespace pg2kafka::pg_outbox {

struct Migration {
  int version;       // NNN
  const char* name;  // e.g. "001_outbox"
  const char* sql;   // the file's text; records itself in pg2kafka.schema_migrations
};

// All migrations, in version order.
std::span<const Migration> migrations();

struct SqlFile {
  const char* name;  // e.g. "30_capture"
  const char* sql;
};

// The function set: its version (this_version in sql/functions/00_version.sql, which records it
// in pg2kafka.schema_functions) and its files, in the order they are applied (by name).
struct FunctionSet {
  int version;
  std::span<const SqlFile> files;
};
const FunctionSet& function_set();

}  // namespace pg2kafka::pg_outbox
