// Reading the JSON that PostgreSQL prints (json and jsonb output) as text slices, without
// building a document: values are compared and copied exactly as written (no number is ever
// re-parsed into a double), and only what a message needs is looked at.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pg2kafka::pg_outbox {

// The members of a JSON object: (key with its quotes, value) slices in order. Returns false when
// `text` is not an object.
bool split_members(std::string_view text,
                   std::vector<std::pair<std::string_view, std::string_view>>& out);

// The elements of a JSON array, in order. Returns false when `text` is not an array.
bool split_array(std::string_view text, std::vector<std::string_view>& out);

// A JSON value as PostgreSQL's ->> gives it: nullopt for null, the unescaped contents of a
// string, the text of anything else as written.
std::optional<std::string> json_scalar_text(std::string_view value);

// The members of `new_row` whose value differs from the same member of `old_row`, in
// `new_row`'s order, values copied exactly as written ("{}" when none differs; `new_row` itself
// when either is not an object). Used for UPDATE events, whose batches hold both rows so that
// the trigger need not compare columns.
std::string changed_columns(std::string_view new_row, std::string_view old_row);

}  // namespace pg2kafka::pg_outbox
