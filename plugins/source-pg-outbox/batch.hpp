// One row of pg2kafka.event_batches (sql/README.md) and the events it stands for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pg2kafka::pg_outbox {

// The drain-side capture options of a batch: pg2kafka.event_batches.options (migration 013),
// which the capture functions of a table with options write from its trigger arguments
// (sql/README.md, "Capture options"). Defaults are the original's behaviour.
struct BatchOptions {
  bool full_update = false;  // "update": "full": an UPDATE sends the whole new row
  enum class Before { kNone, kChanged, kFull };
  Before before = Before::kNone;  // "before": the old values in the envelope's "before" member
  bool delete_rows = false;       // "delete": "row": DELETE elements are whole old rows
  // "key": the columns of a composite key (at least two); empty for a single key_column.
  std::vector<std::string> key;
  bool key_change_delete = false;  // "key_changes": "delete"
  bool tombstones = false;         // a null-value message after each DELETE
};
// Parses event_batches.options (jsonb text). Throws std::invalid_argument for anything but an
// object of the members above with their documented values ("mask", which only the queue's
// mask trigger reads, is ignored).
BatchOptions parse_batch_options(std::string_view json);

struct BatchRow {
  std::string_view uuid;       // the batch's uuid, canonical text form
  std::string_view statement;  // SNAPSHOT, INSERT, UPDATE, DELETE, TRUNCATE
  std::optional<std::string_view> key_column;
  std::optional<std::string_view> external_id;
  int64_t events = 0;
  std::optional<std::string_view> data;      // json text
  std::optional<std::string_view> old_data;  // json text
  const BatchOptions* options = nullptr;     // nullptr: none (the original's behaviour)
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
  // Capture options only. The event's statement when it is not the batch's ("DELETE" for the
  // old key of an UPDATE that changed its key, with key_changes "delete").
  std::string_view statement;
  bool tombstone = false;             // a null value for `key` (tombstones)
  std::optional<std::string> before;  // the envelope's "before" member (UPDATE, "before")
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
// With capture options (BatchRow::options; sql/README.md, "Capture options"):
//  - a composite key is a JSON array of the key columns' values as ->> gives them, compact, in
//    the key's order (["acme","42"]; null stays null); composite DELETE elements are arrays of
//    the key values, and the data is {column: value, ...};
//  - "delete": "row": DELETE elements are whole old rows, sent as they are;
//  - "update": "full" sends the whole new row; "before" adds the old values of the changed
//    columns ("changed") or the whole old row ("full"); rows whose JSON did not change still give
//    no event;
//  - "key_changes": "delete": an UPDATE whose key changed gives a DELETE of the old key first
//    (uuid: key_change_uuid), with its data as a DELETE of that table has it;
//  - "tombstones": each DELETE is followed by a null value for its key (uuid: tombstone_uuid).
// The events that an UPDATE or DELETE row gives share its index.
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
// The uuids of the extra events that capture options add to the event at `index`: the DELETE of
// an UPDATE's old key, and the tombstones after a DELETE (of the event itself, or of that
// DELETE). Event indexes stay below 2^21, so these (bit 31, bit 30, both) never meet an event's.
std::string key_change_uuid(std::string_view batch_uuid, uint32_t index);
std::string tombstone_uuid(std::string_view batch_uuid, uint32_t index, bool of_key_change);

}  // namespace pg2kafka::pg_outbox
