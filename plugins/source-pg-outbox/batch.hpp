// One row of pg2kafka.event_batches (sql/README.md) and the events it stands for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pg2kafka::pg_outbox {

struct BatchRow {
  std::string_view uuid;       // the batch's uuid, canonical text form
  std::string_view statement;  // SNAPSHOT, INSERT, UPDATE, DELETE, TRUNCATE
  std::optional<std::string_view> key_column;
  std::optional<std::string_view> external_id;
  int64_t events = 0;
  std::optional<std::string_view> data;      // json text
  std::optional<std::string_view> old_data;  // json text
};

struct BatchEvent {
  uint32_t index = 0;  // position in the batch
  std::string uuid;
  std::optional<std::string> key;  // the message key (external_id)
  // The message's "data" (JSON text); nullopt gives null. A whole row is a view into the
  // BatchRow's text (valid as long as that is), built data (DELETE, UPDATE) is held here.
  std::optional<std::string_view> data() const {
    if (built_data) return *built_data;
    return row_data;
  }
  std::optional<std::string_view> row_data;
  std::optional<std::string> built_data;
};

// The events of a batch, in order, as the messages carry them (the same rules as the SQL
// function pg2kafka.batch_events):
//  - key_column set: SNAPSHOT/INSERT/UPDATE rows are whole rows and the key is the row's
//    key_column member (as ->> gives it); DELETE elements are key values and the data is
//    {key_column: value}.
//  - key_column NULL (queued before migration 004, or the key column was dropped): elements are
//    the data as it is, the key is `external_id`.
//  - UPDATE with old rows: data is the changed columns; rows with none changed give no event.
//  - data NULL (TRUNCATE): `events` events with null data and key `external_id`.
// Every element of `data` is an event, whatever `events` says: a row that disagrees with itself
// (only a row inserted by hand can: the queue's CHECK constraint cannot count a large array
// cheaply) loses nothing. Then `mismatch`, when given, describes the disagreement; an UPDATE row
// without its old row is sent whole, and old rows without a new row are ignored.
// Throws std::invalid_argument when data or old_data is not a JSON array (the queue's CHECK
// constraint refuses such rows since migration 008).
std::vector<BatchEvent> expand_batch(const BatchRow& batch, std::string* mismatch = nullptr);

// The uuid of the event at `index` of a batch: the batch's uuid with its last 32 bits XORed with
// the index (pg2kafka.event_uuid). Throws std::invalid_argument for a malformed uuid.
std::string event_uuid(std::string_view batch_uuid, uint32_t index);

}  // namespace pg2kafka::pg_outbox
