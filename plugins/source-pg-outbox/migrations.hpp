// The SQL migrations of sql/ (NNN_name.sql), embedded at build time by embed_sql.cmake so that
// the plugin is self-contained.
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

}  // namespace pg2kafka::pg_outbox
