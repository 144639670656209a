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

namespace {

using Members = std::vector<std::pair<std::string_view, std::string_view>>;

std::optional<std::string_view> member(const Members& members, std::string_view quoted_name) {
  for (const auto& [name, value] : members)
    if (name == quoted_name) return value;
  return std::nullopt;
}

// A composite key: a JSON array of the values as ->> gives them, null as null.
std::string encode_key(const std::vector<std::optional<std::string_view>>& values) {
  std::string out = "[";
  for (const auto& v : values) {
    if (out.size() > 1) out += ',';
    std::optional<std::string> text = v ? json_scalar_text(*v) : std::nullopt;
    if (text)
      sdk::append_json_string(out, *text);
    else
      out += "null";
  }
  out += ']';
  return out;
}

[[noreturn]] void bad_option(std::string_view what) {
  throw std::invalid_argument("its options " + std::string(what));
}

}  // namespace

// Event indexes stay below 2^21: these never meet an event's own index.
std::string key_change_uuid(std::string_view batch_uuid, uint32_t index) {
  return event_uuid(batch_uuid, index | 0x80000000u);
}

std::string tombstone_uuid(std::string_view batch_uuid, uint32_t index, bool of_key_change) {
  return event_uuid(batch_uuid, index | (of_key_change ? 0xC0000000u : 0x40000000u));
}

BatchOptions parse_batch_options(std::string_view json) {
  BatchOptions o;
  Members members;
  if (!split_members(json, members)) bad_option("are not a JSON object");
  for (const auto& [name, value] : members) {
    auto text = json_scalar_text(value);
    auto is = [&](std::string_view v) { return value.front() == '"' && text && *text == v; };
    if (name == "\"update\"") {
      if (is("full"))
        o.full_update = true;
      else if (!is("changed"))
        bad_option("say update " + std::string(value));
    } else if (name == "\"before\"") {
      if (is("changed"))
        o.before = BatchOptions::Before::kChanged;
      else if (is("full"))
        o.before = BatchOptions::Before::kFull;
      else if (!is("none"))
        bad_option("say before " + std::string(value));
    } else if (name == "\"delete\"") {
      if (is("row"))
        o.delete_rows = true;
      else if (!is("key"))
        bad_option("say delete " + std::string(value));
    } else if (name == "\"key_changes\"") {
      if (is("delete"))
        o.key_change_delete = true;
      else if (!is("update"))
        bad_option("say key_changes " + std::string(value));
    } else if (name == "\"tombstones\"") {
      if (value != "true" && value != "false") bad_option("say tombstones " + std::string(value));
      o.tombstones = value == "true";
    } else if (name == "\"key\"") {
      std::vector<std::string_view> columns;
      if (!split_array(value, columns) || columns.size() < 2)
        bad_option("give a key that is not an array of at least two names");
      for (auto c : columns) {
        // null: a column of the key was dropped (the batch then has no key_column either).
        if (c != "null" && (c.empty() || c.front() != '"'))
          bad_option("give a key column that is not a name");
        o.key.emplace_back(c);  // quoted, as split_members gives member names
      }
    } else if (name != "\"mask\"") {
      bad_option("hold an unknown member " + std::string(name));
    }
  }
  return o;
}

namespace {

// The elements of a batch's data and old_data, and how the batch disagrees with itself, if it
// does (see expand_batch).
void split_rows(const BatchRow& batch, std::vector<std::string_view>& rows,
                std::vector<std::string_view>& old_rows, std::string* mismatch) {
  if (!split_array(*batch.data, rows)) throw std::invalid_argument("its data is not a JSON array");
  if (batch.old_data && !split_array(*batch.old_data, old_rows))
    throw std::invalid_argument("its old_data is not a JSON array");
  if (!mismatch) return;
  if (static_cast<int64_t>(rows.size()) != batch.events)
    *mismatch = "it counts " + std::to_string(batch.events) + " events but its data holds " +
                std::to_string(rows.size());
  else if (batch.old_data && old_rows.size() != rows.size())
    *mismatch = "its data holds " + std::to_string(rows.size()) + " rows but its old_data " +
                std::to_string(old_rows.size());
}

// expand_batch for a batch with capture options and data.
std::vector<BatchEvent> expand_with_options(const BatchRow& batch, std::string* mismatch) {
  const BatchOptions& o = *batch.options;
  std::vector<std::string_view> rows, old_rows;
  split_rows(batch, rows, old_rows, mismatch);

  // Without a key column (it was dropped: DELETE elements are then whole rows), every event has
  // the batch's external_id as its key, as without options, and the key cannot change.
  const bool keyed = batch.key_column.has_value();
  std::vector<std::string> key_names;  // quoted
  if (!keyed) {
  } else if (o.key.empty()) {
    key_names.emplace_back();
    sdk::append_json_string(key_names.back(), *batch.key_column);
  } else {
    key_names = o.key;
  }
  const bool composite = keyed && !o.key.empty();
  std::optional<std::string> unkeyed;
  if (batch.external_id) unkeyed = std::string(*batch.external_id);
  // The key of a row, and its key columns as a DELETE's data ({"a":1,"b":2}).
  auto row_key = [&](const Members& members, std::string* key_data) -> std::optional<std::string> {
    if (!keyed) {
      if (key_data) *key_data = "null";
      return unkeyed;
    }
    std::vector<std::optional<std::string_view>> values;
    for (const auto& name : key_names) values.push_back(member(members, name));
    if (key_data) {
      *key_data = "{";
      for (size_t k = 0; k < key_names.size(); ++k) {
        if (k) *key_data += ',';
        key_data->append(key_names[k]).append(":").append(values[k].value_or("null"));
      }
      *key_data += '}';
    }
    if (composite) return encode_key(values);
    return values[0] ? json_scalar_text(*values[0]) : std::nullopt;
  };
  const bool is_delete = batch.statement == "DELETE";
  std::vector<BatchEvent> out;
  out.reserve(rows.size());
  Members members, old_members;
  auto tombstone = [&](const BatchEvent& of, bool of_key_change) {
    BatchEvent t;
    t.index = of.index;
    t.key = of.key;
    t.statement = "DELETE";
    t.tombstone = true;
    t.uuid = tombstone_uuid(batch.uuid, of.index, of_key_change);
    out.push_back(std::move(t));
  };
  for (size_t i = 0; i < rows.size(); ++i) {
    BatchEvent e;
    e.index = static_cast<uint32_t>(i);
    std::string_view row = rows[i];
    if (is_delete && !o.delete_rows && keyed) {
      std::string data;
      if (composite) {
        std::vector<std::string_view> values;
        if (!split_array(row, values) || values.size() != key_names.size())
          throw std::invalid_argument("a DELETE element is not an array of the key's " +
                                      std::to_string(key_names.size()) + " values");
        std::vector<std::optional<std::string_view>> present(values.begin(), values.end());
        e.key = encode_key(present);
        data = "{";
        for (size_t k = 0; k < key_names.size(); ++k) {
          if (k) data += ',';
          data.append(key_names[k]).append(":").append(values[k]);
        }
        data += '}';
      } else {
        e.key = json_scalar_text(row);
        data = "{" + key_names[0] + ":" + std::string(row) + "}";
      }
      e.built_data = std::move(data);
    } else {
      members.clear();
      split_members(row, members);
      e.key = row_key(members, nullptr);
      const bool update = i < old_rows.size() && old_rows[i] != "null";
      if (update) {
        std::string changed = changed_columns(row, old_rows[i]);
        if (changed == "{}") continue;  // nothing sent changed
        old_members.clear();
        split_members(old_rows[i], old_members);
        std::string old_key_data;
        std::optional<std::string> old_key = row_key(old_members, &old_key_data);
        if (o.key_change_delete && keyed && old_key != e.key) {
          BatchEvent d;
          d.index = e.index;
          d.key = std::move(old_key);
          d.statement = "DELETE";
          d.uuid = key_change_uuid(batch.uuid, e.index);
          if (o.delete_rows)
            d.row_data = old_rows[i];
          else
            d.built_data = std::move(old_key_data);
          out.push_back(std::move(d));
          if (o.tombstones) tombstone(out.back(), true);
        }
        if (o.full_update)
          e.row_data = row;
        else
          e.built_data = std::move(changed);
        if (o.before == BatchOptions::Before::kChanged)
          e.before = changed_columns(old_rows[i], row);
        else if (o.before == BatchOptions::Before::kFull)
          e.before = std::string(old_rows[i]);
      } else if (row != "null") {
        e.row_data = row;
      }
    }
    e.uuid = event_uuid(batch.uuid, e.index);
    out.push_back(std::move(e));
    if (is_delete && o.tombstones && keyed) tombstone(out.back(), false);
  }
  return out;
}

}  // namespace

std::vector<BatchEvent> expand_batch(const BatchRow& batch, std::string* mismatch) {
  if (batch.options && batch.data) return expand_with_options(batch, mismatch);
  std::vector<BatchEvent> out;
  auto external_id = [&]() -> std::optional<std::string> {
    if (batch.external_id) return std::string(*batch.external_id);
    return std::nullopt;
  };
  if (!batch.data) {
    for (int64_t i = 0; i < batch.events; ++i) {
      auto index = static_cast<uint32_t>(i);
      BatchEvent e;
      e.index = index;
      e.uuid = event_uuid(batch.uuid, index);
      e.key = external_id();
      out.push_back(std::move(e));
    }
    return out;
  }

  std::vector<std::string_view> rows, old_rows;
  split_rows(batch, rows, old_rows, mismatch);

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
