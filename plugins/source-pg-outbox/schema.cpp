#include "schema.hpp"

#include "embedded_sql.hpp"

namespace pg2kafka::pg_outbox {

namespace {

// pg_advisory_xact_lock(1882352481, 1) serialises installers ('p2ka', 1 = migrations); every
// file of sql/ takes it too, so installing by hand and by the plugin at once is safe.
constexpr const char* kInstallLock = "SELECT pg_advisory_xact_lock(1882352481, 1)";

std::string describe(const SchemaVersion& v) {
  return "migration " + std::to_string(v.migrations) + ", function set " +
         std::to_string(v.functions);
}

bool newer(const SchemaVersion& a, const SchemaVersion& b) {
  return a.migrations > b.migrations || a.functions > b.functions;
}

std::string too_new_message(const SchemaVersion& installed, const std::string& database) {
  return "the pg2kafka schema of database \"" + database +
         "\" is newer than this pg2kafka: it is at " + describe(installed) +
         ", this build knows up to " + describe(shipped_schema()) +
         ". A newer pg2kafka installed it: run that release (or a newer one) here too; this one "
         "could misread the queue, and never puts older SQL back";
}

}  // namespace

SchemaVersion shipped_schema() {
  SchemaVersion v;
  if (!migrations().empty()) v.migrations = migrations().back().version;
  v.functions = function_set().version;
  return v;
}

SchemaVersion installed_schema(PgConnection& conn) {
  auto r = conn.exec(
      "SELECT to_regclass('pg2kafka.schema_migrations') IS NOT NULL, "
      "to_regclass('pg2kafka.schema_functions') IS NOT NULL");
  SchemaVersion v;
  if (r.boolean(0, 0))
    v.migrations =
        conn.exec("SELECT coalesce(max(version), 0) FROM pg2kafka.schema_migrations").int64(0, 0);
  if (r.boolean(0, 1))
    v.functions =
        conn.exec("SELECT coalesce(max(version), 0) FROM pg2kafka.schema_functions").int64(0, 0);
  return v;
}

std::vector<std::string> install_schema(PgConnection& conn) {
  std::vector<std::string> applied;
  conn.exec("BEGIN");
  try {
    conn.exec(kInstallLock);
    SchemaVersion installed = installed_schema(conn);
    if (newer(installed, shipped_schema())) {
      auto db = conn.exec("SELECT current_database()");
      throw sdk::ConfigError(too_new_message(installed, std::string(db.text(0, 0))));
    }
    for (const Migration& m : migrations()) {
      if (m.version <= installed.migrations) continue;
      try {
        conn.exec(m.sql);
      } catch (const PgError& e) {
        throw PgError(std::string("migration ") + m.name + " failed: " + e.what(), e.sqlstate(),
                      e.connection_lost());
      }
      applied.push_back(std::string("migration ") + m.name);
    }
    const FunctionSet& set = function_set();
    if (installed.functions < set.version) {
      for (const SqlFile& f : set.files) {
        try {
          conn.exec(f.sql);
        } catch (const PgError& e) {
          throw PgError("function set " + std::to_string(set.version) + " (sql/functions/" +
                            f.name + ".sql) failed: " + e.what(),
                        e.sqlstate(), e.connection_lost());
        }
      }
      applied.push_back("function set " + std::to_string(set.version));
    }
    conn.exec("COMMIT");
  } catch (...) {
    if (!conn.broken()) {
      try {
        conn.exec("ROLLBACK");
      } catch (...) {
      }
    }
    throw;
  }
  return applied;
}

std::string check_schema(const SchemaVersion& installed, const std::string& database,
                         const std::string& target) {
  const std::string fix =
      "set the option perform_migrations=true, or run psql --single-transaction -v "
      "ON_ERROR_STOP=1 -f sql/install.sql as the schema's owner";
  if (installed.migrations == 0)
    throw sdk::ConfigError("database \"" + database + "\" at " + target +
                           " has no pg2kafka schema: " + fix);
  if (installed.migrations < kOldestDrainableMigration)
    throw sdk::ConfigError(
        "the pg2kafka schema of database \"" + database + "\" is at " + describe(installed) +
        "; this plugin needs migration " + std::to_string(kOldestDrainableMigration) +
        " (event batches) or later: " + fix + " (stop older pg2kafka instances first)");
  if (newer(installed, shipped_schema()))
    throw sdk::ConfigError(too_new_message(installed, database));
  if (newer(shipped_schema(), installed))
    return "the pg2kafka schema of database \"" + database + "\" is at " + describe(installed) +
           ", this plugin ships " + describe(shipped_schema()) +
           ": upgrade it as the schema's owner (perform_migrations=true, or psql "
           "--single-transaction -v ON_ERROR_STOP=1 -f sql/install.sql; see sql/README.md)";
  return "";
}

}  // namespace pg2kafka::pg_outbox
