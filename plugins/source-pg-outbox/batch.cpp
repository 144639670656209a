#include "batch.hpp"

#include <pg2kafka/sdk/plugin.hpp>

#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "json_text.hpp"

namespace pg2kafka::pg_outbox {

std::string event_uuid(std::string_view batch_uuid, uint32_t index) {
  // 8-4-4-4-12: the last 32 bits are the last 8 hex digits.
  if (batch_uuid.size() != 36 || batch_uuid[8] != '-' || batch_uuid[23] != '-')
    throw std::invalid_argument("malformed uuid '" + std::string(batch_uuid) + "'");
  std::string out(batch_uuid);
  if (index == 0) return out;
  uint32_t low = 0;
  const char* last8 = out.data() + 28;
  auto [end, ec] = std::from_chars(last8, last8 + 8, low, 16);
  if (ec != std::errc() || end != last8 + 8)
    throw std::invalid_argument("malformed uuid '" + std::string(batch_uuid) + "'");
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", low ^ index);
  out.replace(28, 8, hex, 8);
  return out;
}

std::vector<BatchEvent> expand_batch(const BatchRow& batch, std::string* mismatch) {
  std::vector<BatchEvent> out;
  auto external_id = [&]() -> std::optional<std::string> {
    if (batch.external_id) return std::string(*batch.external_id);
    return std::nullopt;
  };
  if (!batch.data) {
    for (int64_t i = 0; i < batch.events; ++i) {
      auto index = static_cast<uint32_t>(i);
      out.push_back(
          {index, event_uuid(batch.uuid, index), external_id(), std::nullopt, std::nullopt});
    }
    return out;
  }

  std::vector<std::string_view> rows, old_rows;
  if (!split_array(*batch.data, rows)) throw std::invalid_argument("its data is not a JSON array");
  if (batch.old_data && !split_array(*batch.old_data, old_rows))
    throw std::invalid_argument("its old_data is not a JSON array");
  if (mismatch) {
    if (static_cast<int64_t>(rows.size()) != batch.events)
      *mismatch = "it counts " + std::to_string(batch.events) + " events but its data holds " +
                  std::to_string(rows.size());
    else if (batch.old_data && old_rows.size() != rows.size())
      *mismatch = "its data holds " + std::to_string(rows.size()) + " rows but its old_data " +
                  std::to_string(old_rows.size());
  }

  const bool is_delete = batch.statement == "DELETE";
  std::string quoted_key;
  if (batch.key_column) sdk::append_json_string(quoted_key, *batch.key_column);
  std::vector<std::pair<std::string_view, std::string_view>> members;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    BatchEvent e;
    e.index = static_cast<uint32_t>(i);
    std::string_view row = rows[i];
    if (!batch.key_column) {
      e.key = external_id();
    } else if (is_delete) {
      e.key = json_scalar_text(row);
      e.built_data = "{" + quoted_key + ":" + std::string(row) + "}";
    } else {
      members.clear();
      if (split_members(row, members)) {
        for (const auto& [name, value] : members) {
          if (name == quoted_key) {
            e.key = json_scalar_text(value);
            break;
          }
        }
      }
    }
    if (!e.built_data) {
      if (i < old_rows.size() && old_rows[i] != "null") {
        e.built_data = changed_columns(row, old_rows[i]);
        if (*e.built_data == "{}") continue;  // nothing changed: no message
      } else if (row != "null") {
        e.row_data = row;
      }
    }
    e.uuid = event_uuid(batch.uuid, e.index);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace pg2kafka::pg_outbox
