// What the source makes of a queued event: its topic and its record value (the seed's JSON
// envelope). Pure functions, tested without a database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pg2kafka::pg_outbox {

// The topic of a table: pg2kafka.[<namespace>.]<database>.[<schema>.]<table>, the schema part
// only for tables outside `public`. Every name is kept as is except that characters Kafka does
// not allow in topic names (anything but ASCII letters, digits, '_' and '-', and also '.' inside
// a name, which would be ambiguous) become '_'.
std::string topic_name(std::string_view topic_namespace, std::string_view database,
                       std::string_view schema, std::string_view table);

// The record value: {"uuid","external_id","statement","data","created_at"}, and "before" after
// "data" when `before_json` is given (the capture option "before"). `data_json` is JSON
// text as PostgreSQL printed it (inserted verbatim; nullopt gives null); `created_at` is
// rfc3339_utc of the statement's time (formatted once per batch, shared by its events).
std::string envelope_json(std::string_view uuid, const std::optional<std::string>& external_id,
                          std::string_view statement, std::optional<std::string_view> data_json,
                          std::string_view created_at,
                          std::optional<std::string_view> before_json = std::nullopt);
// RFC 3339 UTC with trailing zeros of the fraction removed, e.g. 2017-11-02T16:15:13.94077Z.
std::string rfc3339_utc(int64_t epoch_us);

}  // namespace pg2kafka::pg_outbox
