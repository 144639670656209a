/*
 * pg2kafka plugin interface: the one stable boundary between the pg2kafka host and its plugins.
 *
 * A plugin is a shared library that exports exactly one C function, `p2k_plugin_entry_v1`, which
 * returns a static descriptor (`p2k_plugin`): who the plugin is, which options it takes and a table
 * of operations. Everything that crosses this boundary is plain C: status codes, caller-owned
 * error buffers, (pointer, length) slices, memory freed by whoever allocated it. No C++ types and
 * no exceptions cross it, so a plugin built with another compiler or library version still loads.
 *
 * Versioning
 * ----------
 * P2K_ABI_MAJOR changes only when something is removed or changes meaning; the host refuses a
 * plugin of another major. P2K_ABI_MINOR grows when something is appended; the host refuses a
 * plugin built against a newer minor than its own (the plugin might rely on what the host lacks),
 * and accepts older minors. Every struct starts with its own size (`struct_size`) and only grows at
 * its end within a major version: a reader checks `struct_size` before it touches a field that a
 * later minor added.
 *
 * Threading
 * ---------
 * The host calls every operation of one plugin instance from a single thread (the pipeline thread),
 * never concurrently. The only exception is the other direction: `p2k_host.report` (a sink's
 * delivery outcome) and `p2k_host.log` may be called by the plugin from any thread, including
 * threads the plugin created, at any time between `create` and the return of `destroy`.
 *
 * Errors
 * ------
 * Operations that can fail take `char *err, size_t err_size`: a host-owned buffer into which the
 * plugin writes a NUL-terminated, human-readable message (truncated to fit) when it returns
 * anything other than P2K_OK. A good message names the problem and the fix, and never contains a
 * secret.
 *
 * Build plugins with -fvisibility=hidden so that the entry function is their only exported symbol.
 * See docs/plugin-authoring.md for a walk-through and include/pg2kafka/sdk/ for the C++ SDK.
 */
#ifndef PG2KAFKA_PLUGIN_H
#define PG2KAFKA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define P2K_ABI_MAJOR 1
#define P2K_ABI_MINOR 0

/* The name of the one symbol a plugin exports. */
#define P2K_PLUGIN_ENTRY_SYMBOL "p2k_plugin_entry_v1"

#if defined(_WIN32)
#define P2K_EXPORT __declspec(dllexport)
#else
#define P2K_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef enum p2k_status {
  /* Success. For a delivery report: the record is durably stored by the destination. */
  P2K_OK = 0,
  /* A transient failure (network, unavailable service). The host retries with exponential
   * backoff: a failed operation is called again, a record reported RETRY is written again. */
  P2K_RETRY = 1,
  /* A permanent failure. The host stops the pipeline, acknowledges nothing after the failed
   * record and exits with the runtime-failure code (4). */
  P2K_FATAL = 2,
  /* Bad configuration detected by the plugin (`create`, `open`). The host exits with the
   * configuration-error code (2). */
  P2K_INVALID_CONFIG = 3
} p2k_status;

typedef enum p2k_kind { P2K_KIND_SOURCE = 1, P2K_KIND_SINK = 2 } p2k_kind;

typedef enum p2k_log_level {
  P2K_LOG_ERROR = 0,
  P2K_LOG_WARN = 1,
  P2K_LOG_INFO = 2,
  P2K_LOG_DEBUG = 3
} p2k_log_level;

/* A byte range that is not necessarily NUL-terminated. `data == NULL` means "absent" (for a
 * record's key: a null key), which is different from an empty slice (`data != NULL, size == 0`). */
typedef struct p2k_slice {
  const char* data;
  size_t size;
} p2k_slice;

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/*
 * Option types. The host parses and validates the user's value, applies the default, and hands
 * the plugin a normalised text form (see p2k_option_value):
 *   STRING    any text, passed as is.
 *   INT       a whole number (JSON number or text); normalised to decimal, e.g. "1000".
 *   BOOL      true/false (also "true", "false", "1", "0", "yes", "no", "on", "off");
 *             normalised to "true" or "false".
 *   DURATION  a number with a unit: "250ms", "5s", "2m", "1h", "1d"; a bare number means
 *             milliseconds. Normalised to whole milliseconds, e.g. "5000".
 *   SIZE      a number with an optional unit: "512", "64KiB", "1MiB", "1GiB", "1kB", "1MB", "1GB".
 *             Normalised to whole bytes, e.g. "1048576".
 *   ENUM      one of `choices`; passed as is.
 *   LIST      a JSON array of strings, or one comma-separated string. Normalised to the elements
 *             joined with ","; an element may not contain a comma.
 *   SECRET    like STRING, but never printed: the host shows "***" in logs, `check` and `describe`.
 *   PREFIX    not one option but a family: `name` ends with "." (e.g. "rdkafka.") and every key
 *             that starts with it is accepted and passed through with its full key and its value
 *             as text. The plugin validates these itself. A passthrough key whose name contains
 *             "password", "secret", "token" or "key" (as in "ssl.key.password") is treated as a
 *             secret.
 */
typedef enum p2k_option_type {
  P2K_OPT_STRING = 1,
  P2K_OPT_INT = 2,
  P2K_OPT_BOOL = 3,
  P2K_OPT_DURATION = 4,
  P2K_OPT_SIZE = 5,
  P2K_OPT_ENUM = 6,
  P2K_OPT_LIST = 7,
  P2K_OPT_SECRET = 8,
  P2K_OPT_PREFIX = 9
} p2k_option_type;

/* Option flags (bit set). */
#define P2K_OPT_REQUIRED 0x1u /* the user must give a value; `default_value` must be NULL */

typedef struct p2k_option {
  size_t struct_size; /* sizeof(p2k_option) */
  /* Dotted lower_snake key, e.g. "poll_interval" or "connection.application_name". */
  const char* name;
  p2k_option_type type;
  uint32_t flags; /* P2K_OPT_* flags */
  /* Default in the user-facing text form ("1s", "1000", "true"), or NULL for none. An optional
   * option without a default is simply absent from the values passed to `create`. */
  const char* default_value;
  /* User documentation: full sentences, with units and consequences. Shown by
   * `pg2kafka plugins describe` and used to generate the plugin's README. */
  const char* description;
  /* ENUM only: NULL-terminated list of accepted values. NULL otherwise. */
  const char* const* choices;
  /* INT, DURATION (milliseconds) and SIZE (bytes): inclusive bounds, enforced only when
   * min_value < max_value. */
  int64_t min_value;
  int64_t max_value;
} p2k_option;

/* One validated, normalised option value passed to `create`. Options the user did not set and
 * that have no default are absent. Strings are NUL-terminated and owned by the host; they stay
 * valid only for the duration of the `create` call, so copy what you keep. */
typedef struct p2k_option_value {
  const char* key;
  const char* value;
} p2k_option_value;

/* ------------------------------------------------------------------------------------------ */
/* Records                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct p2k_header {
  p2k_slice name;
  p2k_slice value;
} p2k_header;

/*
 * One event on its way from a source to a sink. Sources allocate records (and everything they
 * point to) and keep them valid until the host releases the batch that contains them (see
 * p2k_source_ops.release); a sink may therefore read a record until it has reported its outcome,
 * but must copy anything it needs afterwards.
 */
typedef struct p2k_record {
  size_t struct_size; /* sizeof(p2k_record) */
  /* Position assigned by the source: strictly increasing in the order poll returns records,
   * unique for the life of the source instance. The host acknowledges by position. */
  uint64_t position;
  p2k_slice topic;      /* destination topic (or stream, file...): never absent */
  p2k_slice key;        /* partitioning key; data == NULL for a null key */
  p2k_slice value;      /* the message body */
  int64_t timestamp_ms; /* event time in milliseconds since the Unix epoch; 0 when unknown */
  /* A stable id for this event (for pg-outbox: the queue row's uuid), the same every time the
   * event is delivered again: consumers de-duplicate on it. Used in logs and error messages. */
  p2k_slice id;
  const p2k_header* headers; /* extra metadata, may be NULL when header_count == 0 */
  size_t header_count;
} p2k_record;

/* ------------------------------------------------------------------------------------------ */
/* The host, as seen by a plugin instance                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Passed to `create`; valid until `destroy` returns. One per plugin instance.
 */
typedef struct p2k_host {
  size_t struct_size; /* sizeof(p2k_host) as the host knows it */
  uint32_t abi_major; /* the host's ABI version */
  uint32_t abi_minor;
  void* ctx; /* pass back as the first argument of the functions below */
  /* Write a log line (no trailing newline needed). Thread-safe. Never log secrets. */
  void (*log)(void* ctx, p2k_log_level level, const char* message);
  /*
   * Sinks only (NULL for sources): report the outcome of one written record, exactly once per
   * write of that record. Thread-safe; may be called from inside `write`, `poll`, `flush` or from a
   * thread of the sink's own. `position` is the record's position; `status` is P2K_OK only once
   * the destination has durably accepted the record (never on mere enqueueing), P2K_RETRY for a
   * transient failure (the host writes the record again later) or P2K_FATAL (the pipeline
   * stops). `message` explains a failure (NULL allowed for P2K_OK); the host copies it.
   *
   * Ordering: the host writes records in source order and writes failed records again in that
   * same order. A sink that reports RETRY for a record must not report OK for a later record with
   * the same key that was written before that retry, or the per-key order would break.
   */
  void (*report)(void* ctx, uint64_t position, p2k_status status, const char* message);
} p2k_host;

/* ------------------------------------------------------------------------------------------ */
/* Operations                                                                                  */
/* ------------------------------------------------------------------------------------------ */

/* A batch of records returned by a source's poll. `handle` is the source's own token for the
 * memory behind `records`; the host passes it to `release`. */
typedef struct p2k_batch {
  size_t struct_size; /* set by the host: sizeof(p2k_batch) */
  const p2k_record* records;
  size_t count;
  void* handle;
} p2k_batch;

/* Called by a source for each topic it will produce to (see list_topics). */
typedef void (*p2k_topic_fn)(void* ctx, p2k_slice topic);

/*
 * Source lifecycle: create → open → (poll | ack | release)* → close → destroy.
 * `destroy` is called for every successful `create`, even when `open` failed.
 */
typedef struct p2k_source_ops {
  size_t struct_size; /* sizeof(p2k_source_ops) */
  /* Build an instance from validated options. Do no I/O here (`pg2kafka check` calls create
   * without open). On success store the instance in *out and return P2K_OK. */
  p2k_status (*create)(const p2k_host* host, const p2k_option_value* options, size_t option_count,
                       void** out, char* err, size_t err_size);
  /* Connect and prepare. P2K_RETRY: the host calls open again after a backoff. */
  p2k_status (*open)(void* instance, char* err, size_t err_size);
  /*
   * Return up to `max_records` records that were not returned before and not acknowledged,
   * waiting at most `timeout_ms` for the first one. An empty batch (count == 0) means "nothing
   * pending right now"; the host's --once mode stops on it. Records returned but never acked
   * (the process died) must be returned again by a future instance: that is the at-least-once
   * guarantee. Fill `out->records`, `out->count` and `out->handle`.
   */
  p2k_status (*poll)(void* instance, size_t max_records, int timeout_ms, p2k_batch* out, char* err,
                     size_t err_size);
  /* Every record with position <= `through` was delivered: forget it for good (delete, mark).
   * Called in order, with strictly increasing `through`. P2K_RETRY: the host calls again with
   * the same or a larger value after a backoff. */
  p2k_status (*ack)(void* instance, uint64_t through, char* err, size_t err_size);
  /* The host no longer reads the records of this batch. Called once per non-empty batch. */
  void (*release)(void* instance, void* handle);
  /* Optional (NULL allowed): report every topic the source currently produces to, so that a
   * sink can check them at start. Called after open. */
  p2k_status (*list_topics)(void* instance, p2k_topic_fn fn, void* fn_ctx, char* err,
                            size_t err_size);
  /* Disconnect. Records returned but not acked stay pending at the origin. */
  void (*close)(void* instance);
  void (*destroy)(void* instance);
} p2k_source_ops;

/*
 * Sink lifecycle: create → open → (prepare_topic | write | poll | flush)* → close → destroy.
 * `destroy` is called for every successful `create`, even when `open` failed.
 */
typedef struct p2k_sink_ops {
  size_t struct_size; /* sizeof(p2k_sink_ops) */
  /* As for sources: validate, allocate, no I/O. */
  p2k_status (*create)(const p2k_host* host, const p2k_option_value* options, size_t option_count,
                       void** out, char* err, size_t err_size);
  p2k_status (*open)(void* instance, char* err, size_t err_size);
  /* Optional (NULL allowed): make sure a topic can be written (exists, or create it). Called for
   * each topic the source lists at start. P2K_FATAL or P2K_INVALID_CONFIG stop the pipeline
   * before anything is written. */
  p2k_status (*prepare_topic)(void* instance, p2k_slice topic, char* err, size_t err_size);
  /*
   * Start delivering `count` records. Every record passed in must later be reported exactly once
   * through p2k_host.report (possibly before write returns). The records stay readable until
   * reported. A non-OK return means the whole call failed and nothing was accepted: the host then
   * treats every record of the call as failed with that status, so the sink must not report any
   * of them itself.
   */
  p2k_status (*write)(void* instance, const p2k_record* records, size_t count, char* err,
                      size_t err_size);
  /* Optional (NULL allowed): give the sink the pipeline thread for up to `timeout_ms` to serve
   * delivery reports. The host calls it whenever it waits for outcomes. */
  void (*poll)(void* instance, int timeout_ms);
  /* Barrier: return P2K_OK only when every record written so far has been reported. P2K_RETRY
   * when `timeout_ms` ran out first. */
  p2k_status (*flush)(void* instance, int timeout_ms, char* err, size_t err_size);
  void (*close)(void* instance);
  void (*destroy)(void* instance);
} p2k_sink_ops;

/* ------------------------------------------------------------------------------------------ */
/* The descriptor                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct p2k_plugin {
  size_t struct_size; /* sizeof(p2k_plugin) */
  uint32_t abi_major; /* P2K_ABI_MAJOR the plugin was built against */
  uint32_t abi_minor; /* P2K_ABI_MINOR the plugin was built against */
  p2k_kind kind;
  const char* name;    /* lower-hyphenated, e.g. "pg-outbox"; must match the file name */
  const char* version; /* the plugin's own version, e.g. "1.2.0" */
  const char* summary; /* one line */
  const p2k_option* options;
  size_t option_count;
  const p2k_source_ops* source; /* kind == P2K_KIND_SOURCE, else NULL */
  const p2k_sink_ops* sink;     /* kind == P2K_KIND_SINK, else NULL */
} p2k_plugin;

/*
 * The entry point. The host calls it once after loading the library, passing its own ABI
 * version; the plugin returns its static descriptor (which must outlive the library's load), or
 * NULL if it cannot work with that host. Must not do I/O or start threads.
 */
typedef const p2k_plugin* (*p2k_plugin_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor);

/*
 * Plugin files are named "pg2kafka-<kind>-<name>.so", e.g. "pg2kafka-sink-stdout.so", and found
 * in the host's plugin search path (see `pg2kafka plugins list`).
 */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PG2KAFKA_PLUGIN_H */
