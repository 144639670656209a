/*
 * pg2kafka plugin interface: the one stable boundary between the pg2kafka host and its plugins.
 *
 * A plugin is a shared library that exports exactly one C function, `p2k_plugin_entry_v1`, which
 * returns a static descriptor (`p2k_plugin`): who the plugin is, which options it takes and a table
 * of operations. Everything that crosses this boundary is plain C: status codes, caller-owned
 * error buffers, (pointer, length) slices, memory freed by whoever allocated it. No C++ types and
 * no exceptions cross it, so a plugin built with another compiler or library version still loads.
 *
 * Versioning and how the interface grows
 * --------------------------------------
 * The interface has a version MAJOR.MINOR (P2K_ABI_MAJOR, P2K_ABI_MINOR below).
 *
 *  1. MAJOR changes only when something is removed or changes meaning. A host and a plugin of
 *     different majors never work together: the host refuses the plugin, naming both versions.
 *  2. Everything else is an addition and raises MINOR by one: a field at the end of a struct, an
 *     operation at the end of an operations table, a function at the end of p2k_host, a flag bit,
 *     an enumeration value, or a host behaviour that plugins may rely on. Nothing is ever inserted
 *     in the middle, reordered or resized. The history at the end of this comment lists what each
 *     minor added; every addition in this header is marked "Since 1.N".
 *  3. Every struct that can grow starts with `struct_size`, the size its writer knows. A reader
 *     reads a field only when `struct_size` covers it (P2K_HAS_FIELD below): a newer reader sees
 *     an older, shorter struct and does without the newer fields; an older reader ignores what
 *     lies beyond the fields it knows.
 *  4. The host passes its version to the entry function; the plugin answers with the descriptor of
 *     one minor, in `p2k_plugin.abi_minor`: the newest minor that both know, i.e. the smaller of
 *     the host's minor and the minor the plugin was built against, but never less than the oldest
 *     minor the plugin needs. So a plugin rebuilt against a newer header still loads into an older
 *     host as long as it needs nothing newer; one that does need more answers with the minor it
 *     needs, and the older host refuses it with a message naming both versions. (The C++ SDK does
 *     all of this; a plugin declares the oldest minor it needs, see sdk/plugin.hpp.)
 *  5. The answered minor is a promise both ways. The plugin fills every field and honours every
 *     rule that minors up to the answered one define; it sets no flag bit and returns no
 *     enumeration value that a later minor added (the host refuses a descriptor that does). The
 *     host honours the rules of the answered minor and calls nothing that a later minor added.
 *  6. The host refuses a plugin whose answered minor is newer than its own: the plugin might rely
 *     on something the host lacks. It accepts every older minor: every plugin built since 1.0
 *     keeps loading into every later 1.x host.
 *
 * Minor history:
 *   1.0  The initial interface.
 *   1.1  P2K_OPT_IS_SECRET: any option can be secret (a list, a map of passthrough keys), and
 *        passthrough keys are secret only by declaration; P2K_OPT_SECRET is kept as a type for 1.0
 *        plugins. p2k_host.option_error: a plugin names the option a configuration problem is
 *        about, so the host can point at where the user set it. The host keeps the per-key order
 *        after a RETRY (see p2k_host.report): a sink answering 1.1 only reports outcomes.
 *   1.2  `interrupt` at the end of p2k_source_ops and p2k_sink_ops: the host's bounded stop asks
 *        a blocked operation to return. Host behaviour: descriptors 0, 1 and 2 are always open
 *        (see "Standard descriptors" below).
 *   1.3  `metrics` and `health` at the end of p2k_source_ops and p2k_sink_ops, and `status` at
 *        the end of p2k_source_ops: a plugin exports its own figures on the host's /metrics
 *        endpoint, says whether it is ready for /readyz, and a source describes the state of its
 *        origin for `pg2kafka status` (see "Metrics, health and status" below).
 *   1.4  Parking (see "Permanent failures and parking" below): `park` and `queue` at the end of
 *        p2k_source_ops, and `unusable` at the end of p2k_batch, so that a source reports a
 *        record it cannot make deliverable (a malformed row) instead of failing the poll.
 *   1.5  Null values: a record's `value.data` may be NULL (a null value, which Kafka's log
 *        compaction reads as "delete this key": a tombstone). A source returns one only to a host
 *        of 1.5 or later; the host hands one only to a sink that answered 1.5 or later, and
 *        stops the pipeline on it with an older sink, which may take it for an empty value.
 *
 * Threading
 * ---------
 * The host calls the operations of one plugin instance one at a time, never concurrently, from
 * its pipeline thread (which may differ from the thread that called `create`). The only calls in
 * the other direction that may come from any thread are `p2k_host.report` (a sink's delivery
 * outcome) and `p2k_host.log`: the plugin may call them from threads it created, at any time
 * between the start of `create` and the return of `destroy`.
 *
 * The exceptions are `interrupt` (since 1.2), `metrics` and `health` (since 1.3), which the host
 * calls from other threads while an operation may be running on the pipeline thread: see
 * p2k_source_ops.interrupt and "Metrics, health and status".
 *
 * Stopping
 * --------
 * On SIGTERM, SIGINT or SIGHUP the host stops polling, waits up to its `shutdown_timeout` for the
 * sink to confirm what is in flight, acknowledges what was confirmed and closes both instances.
 * If that has not finished when `shutdown_timeout` runs out (an operation is blocked: a query
 * behind a lock, a write to a full pipe), or on a second signal or SIGQUIT, the stop is forced:
 * the host calls `interrupt` on both instances (when they answered 1.2 and have it), waits a
 * short grace period (about a second) for the blocked operation to return, acknowledges nothing
 * more, and exits with code 4. An operation still blocked after the grace period is abandoned:
 * the process exits without close or destroy being called. Nothing is lost either way, since
 * unacknowledged records stay in the source; but a plugin that must not be cut off in the middle
 * of something should implement `interrupt`.
 *
 * Standard descriptors (since 1.2)
 * --------------------------------
 * The host starts with file descriptors 0, 1 and 2 open, before it loads any plugin: one that
 * was closed when the process started is opened on /dev/null, stdin write-only and stdout and
 * stderr read-only, so that no socket or file a plugin opens takes their numbers, and every read
 * of a closed stdin and every write to a closed stdout or stderr fails (EBADF) instead of going
 * elsewhere. A plugin that writes to stdout or stderr as its destination checks at open that the
 * descriptor is open for writing (fcntl(fd, F_GETFL)) and fails otherwise.
 *
 * Errors
 * ------
 * Operations that can fail take `char *err, size_t err_size`: a buffer owned by the host, never
 * NULL, at least 256 bytes (err_size counts the terminating NUL). When an operation returns
 * anything but P2K_OK, the plugin writes a NUL-terminated, human-readable message into it,
 * truncated to fit; the host reads it only then. A good message names the problem and the fix,
 * and never contains a secret. P2K_INVALID_CONFIG means something only from `create` and `open`:
 * from any other operation the host treats it as P2K_FATAL.
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
#define P2K_ABI_MINOR 5

/* The name of the one symbol a plugin exports. */
#define P2K_PLUGIN_ENTRY_SYMBOL "p2k_plugin_entry_v1"

#if defined(_WIN32)
#define P2K_EXPORT __declspec(dllexport)
#else
#define P2K_EXPORT __attribute__((visibility("default")))
#endif

/* The size of `type` up to and including `field`: what a writer that knows `field` puts in
 * struct_size at least. */
#define P2K_SIZE_THROUGH(type, field) (offsetof(type, field) + sizeof(((type*)0)->field))
/* Whether the struct `*ptr` of type `type` is long enough to hold `field` (rule 3 above), e.g.
 * P2K_HAS_FIELD(host, p2k_host, option_error) before calling host->option_error. */
#define P2K_HAS_FIELD(ptr, type, field) \
  ((ptr) != NULL && (ptr)->struct_size >= P2K_SIZE_THROUGH(type, field))

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
   * record and exits with the runtime-failure code (4); for a record's delivery report, since
   * 1.4, it does so unless the pipeline parks such records (see "Permanent failures and
   * parking"). */
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
 * record's key: a null key), which is different from an empty slice (`data != NULL, size == 0`).
 * An absent slice always has size 0. */
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
 *   SECRET    The 1.0 way to declare a secret string; the same as STRING with P2K_OPT_IS_SECRET.
 *   PREFIX    not one option but a map: `name` ends with "." (e.g. "rdkafka.") and every key that
 *             starts with it is accepted and passed through with its full key and its value as
 *             text ({"rdkafka": {"linger.ms": 5}} is the key "rdkafka.linger.ms"). The plugin
 *             validates these itself. An option of the table whose exact name starts with the
 *             prefix (say "rdkafka.sasl.password") takes precedence over the prefix for that key:
 *             that is how one passthrough key is declared secret (P2K_OPT_IS_SECRET), or typed.
 *             With P2K_OPT_IS_SECRET on the PREFIX option itself, every key under it is secret.
 *             For plugins that answer ABI 1.0 only, the host also treats a passthrough key as
 *             secret when its name contains "password", "secret", "token", "key", "credential"
 *             or "jaas" (the 1.0 rule); from 1.1 on, secrets are declared, never guessed.
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

/* Option flags (bit set). The host refuses a flag bit that the plugin's answered minor does not
 * define. */
/* The user must give a value; `default_value` must be NULL. */
#define P2K_OPT_REQUIRED 0x1u
/* Since 1.1. The value is a secret: the host never prints it (it shows "***" in logs, errors,
 * `check` and `describe`). Allowed on every type: a secret list, a secret map (PREFIX). */
#define P2K_OPT_IS_SECRET 0x2u

typedef struct p2k_option {
  size_t struct_size; /* sizeof(p2k_option) */
  /* Dotted lower_snake key, e.g. "poll_interval" or "connection.application_name". */
  const char* name;
  p2k_option_type type;
  uint32_t flags; /* P2K_OPT_* flags */
  /* Default in the user-facing text form ("1s", "1000", "true"), or NULL for none. An optional
   * option without a default is simply absent from the values passed to `create`. The host
   * validates it like a user's value: this table is the one place where defaults live, so a
   * plugin reads every option that has a default without a fallback of its own. */
  const char* default_value;
  /* User documentation: full sentences, with units and consequences. Shown by
   * `pg2kafka plugins describe` and used to generate the plugin's README. */
  const char* description;
  /* ENUM only: NULL-terminated list of accepted values. NULL otherwise. */
  const char* const* choices;
  /* INT, DURATION (milliseconds) and SIZE (bytes): inclusive bounds, enforced by the host only
   * when min_value < max_value (a plugin need not check them again). */
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
 * p2k_source_ops.release); a sink may read a record from `write` until it has reported its
 * outcome, and must copy anything it needs afterwards.
 */
typedef struct p2k_record {
  size_t struct_size; /* sizeof(p2k_record) */
  /* Position assigned by the source: strictly increasing in the order poll returns records,
   * unique for the life of the source instance. The host acknowledges by position. */
  uint64_t position;
  p2k_slice topic; /* destination topic (or stream, file...): never absent */
  p2k_slice key;   /* partitioning key; data == NULL for a null key */
  /* The message body; may be empty. Since 1.5 it may be absent (data == NULL): a null value,
   * a tombstone for Kafka's log compaction. A sink of 1.5 or later writes it as a null value
   * (or says why it cannot, as a permanent failure of that record); before 1.5 it was never
   * absent, and the host never hands such a record to an older sink. */
  p2k_slice value;
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
 * Passed to `create`; valid until `destroy` returns. One per plugin instance. The host fills
 * every field its own minor defines; a plugin checks P2K_HAS_FIELD (or abi_minor) before it uses
 * a field that a later minor than 1.0 added.
 */
typedef struct p2k_host {
  size_t struct_size; /* sizeof(p2k_host) as the host knows it */
  uint32_t abi_major; /* the host's ABI version */
  uint32_t abi_minor;
  void* ctx; /* pass back as the first argument of the functions below */
  /* Write a log line (no trailing newline needed; the host copies it). Thread-safe. Never log
   * secrets. */
  void (*log)(void* ctx, p2k_log_level level, const char* message);
  /*
   * Sinks only (NULL for sources): report the outcome of one written record, exactly once per
   * write of that record. Thread-safe; may be called from inside `write`, `poll` or `flush`, or
   * from a thread of the sink's own. `position` is the record's position; `status` is P2K_OK only
   * once the destination has durably accepted the record (never on mere enqueueing), P2K_RETRY
   * for a transient failure (the host writes the record again later) or P2K_FATAL (the pipeline
   * stops). `message` explains a failure and should name the record (its id); NULL is allowed for
   * P2K_OK. The host copies it.
   *
   * Ordering. The host writes records in source order and keeps the per-key order after a
   * failure itself (since 1.1): it writes a record reported RETRY again only once every other
   * record written before has been reported, and writes again with it, in order, every later
   * record of the same topic and key that was reported OK meanwhile (a RETRY turns later
   * successes written before the rewrite into RETRY). A sink therefore only reports each
   * record's outcome as it happened, in any order; it must accept a position written again
   * after it reported it (RETRY or OK). A sink that answers ABI 1.0 promised to apply that rule
   * itself, which stays harmless.
   */
  void (*report)(void* ctx, uint64_t position, p2k_status status, const char* message);
  /*
   * Since 1.1. During `create` and `open` only (on the thread calling them): report one problem
   * with the configuration. `key` is the option it is about, as the plugin received it ("acks",
   * "rdkafka.linger.ms") or as its table names it, or NULL for a problem of no single option;
   * `message` says what is wrong and how to fix it, without the option's name (the host adds it)
   * and without a secret value. The host copies both. Call it once per problem, then return
   * P2K_INVALID_CONFIG: the host then shows every problem reported this way as a configuration
   * error at the place where the user set that option (file:line:column) and ignores `err`.
   * Problems reported by an operation that then returns anything else are discarded.
   */
  void (*option_error)(void* ctx, const char* key, const char* message);
} p2k_host;

/* ------------------------------------------------------------------------------------------ */
/* Metrics, health and status (since 1.3)                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * The host serves Prometheus metrics, a liveness and a readiness check over HTTP when the
 * pipeline file enables it (the "http.listen" setting). Plugins add their own figures and their
 * own readiness through two optional operations of their operations table, `metrics` and
 * `health`; the C++ SDK implements both from a few overridable members (sdk/metrics.hpp).
 *
 * Both are called from the host's HTTP thread, concurrently with any other operation of the
 * instance (like interrupt), between the return of create and the call of destroy (never with
 * or after destroy); the host never calls them concurrently with themselves. They must not
 * block for long: the host waits for them while a scraper waits for its answer, so return what
 * is known now (a figure a few seconds old is fine) and refresh expensive figures elsewhere.
 * They may be called before open, while open is retried, and after close.
 *
 * Metric names. A plugin names its metrics without a prefix, in lower_snake_case following
 * Prometheus conventions: base units (`_seconds`, `_bytes`), counters ending in `_total`. The
 * host exposes them as `pg2kafka_<plugin>_<name>`, the plugin's name with '-' turned into '_'
 * (the kafka sink's `broker_rtt_seconds` becomes `pg2kafka_kafka_broker_rtt_seconds`), so the
 * metrics of two plugins never collide with each other nor with the host's own.
 *
 * The host checks every sample and drops one that breaks a rule, logging a warning once per
 * metric name: name and label names match [a-z][a-z0-9_]* (at most 100 characters; a label may
 * not be named "le", which histograms use), at most 8 labels, label values of at most 256 bytes
 * of UTF-8 (the host escapes them), a counter's name ends in `_total` and its value is finite and
 * not negative, a histogram's bounds are finite and strictly increasing and its counts
 * cumulative and not decreasing. Samples of one name must all have its first sample's type; the
 * first help text is the one shown. At most 10,000 samples per plugin per scrape.
 */
typedef enum p2k_metric_type {
  P2K_METRIC_COUNTER = 1,  /* a total that only grows (it restarts at 0 with the process) */
  P2K_METRIC_GAUGE = 2,    /* a value that goes up and down */
  P2K_METRIC_HISTOGRAM = 3 /* a distribution of observations in buckets */
} p2k_metric_type;

/* A label of a sample, e.g. {"topic", "pg2kafka.shop.orders"}. NUL-terminated strings. */
typedef struct p2k_label {
  const char* name;
  const char* value;
} p2k_label;

/* One sample (one series: a name and a set of label values) as a plugin reports it. Everything
 * it points to needs to live only during the call of p2k_metric_fn that receives it. */
typedef struct p2k_metric {
  size_t struct_size; /* sizeof(p2k_metric) */
  const char* name;   /* without the pg2kafka_<plugin>_ prefix, see above */
  const char* help;   /* one sentence: what it counts, in which unit; may be NULL */
  p2k_metric_type type;
  const p2k_label* labels; /* may be NULL when label_count == 0 */
  size_t label_count;
  /* COUNTER and GAUGE: the value. HISTOGRAM: the sum of all observations. */
  double value;
  /* HISTOGRAM only (else NULL, NULL, 0, 0): the upper bounds of the buckets, finite and strictly
   * increasing (the +Inf bucket is implied); for each bound, how many observations were <= it
   * (cumulative, as Prometheus counts); and the number of all observations. */
  const double* bucket_bounds;
  const uint64_t* bucket_counts;
  size_t bucket_count;
  uint64_t count;
} p2k_metric;

/* Called by a plugin's `metrics` operation once per sample. */
typedef void (*p2k_metric_fn)(void* ctx, const p2k_metric* metric);

/* Called by a source's `status` operation with consecutive pieces of one JSON text. */
typedef void (*p2k_text_fn)(void* ctx, p2k_slice text);

/* ------------------------------------------------------------------------------------------ */
/* Permanent failures and parking (since 1.4)                                                  */
/* ------------------------------------------------------------------------------------------ */

/*
 * A record the sink reports P2K_FATAL, or that a source marks unusable (p2k_batch.unusable), is
 * handled by the host as the pipeline file's `on_permanent_failure` says:
 *   stop  (the default) the pipeline stops with exit code 4 and acknowledges nothing from that
 *         record on: it stays at the origin, and so does everything after it.
 *   park  the host calls the source's `park` (the pipeline refuses to start with a source
 *         that has none), then parks the later unacknowledged records of the same topic and
 *         key behind it, writes the record to the pipeline's dead-letter topic when one is set,
 *         and goes on: once parked (and dead-lettered), the record counts as done and its
 *         position is acknowledged with the others. Other keys and topics keep flowing. (No
 *         dead letter for the records held behind it: they did not fail.)
 * The dead-letter record goes through the same sink, to the topic named by `dead_letter.topic`,
 * with the original key, value and headers, plus headers naming what happened:
 *   pg2kafka.original_topic  the topic the record was for
 *   pg2kafka.event_id        its id (p2k_record.id)
 *   pg2kafka.error           the failure (at most 4 KiB)
 *   pg2kafka.reason          "failed" (the sink refused it) or "unusable" (the source did)
 *   pg2kafka.value_omitted   "true" when the value was left out (see below), with
 *   pg2kafka.value_size      the size in bytes of the value left out
 * When the sink fails the dead-letter record permanently too (a value too large for any topic),
 * the host writes it once more without its value; when that fails too, the pipeline stops (the
 * record is parked at the origin either way). A sink needs nothing new for any of this.
 */

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
  /*
   * Since 1.4, set by the source only when `struct_size` covers it (the host then set it to
   * NULL): NULL when every record is deliverable, or `count` pointers parallel to `records`,
   * each NULL for a record to deliver or a NUL-terminated message saying why that record cannot
   * be delivered at all and what to do about it (e.g. "queue row 12 is malformed: its data is
   * not a JSON array"). Owned by the source like the records (valid until release). The host
   * writes no such record: it handles it as a record the sink failed permanently (see
   * "Permanent failures and parking"), so such a record needs a position, an id and as much of
   * topic, key and value as the source could read (the value may be the raw origin row). A
   * source talking to an older host, whose struct_size does not cover this field, fails the
   * poll with P2K_FATAL instead, as before 1.4.
   */
  const char* const* unusable;
} p2k_batch;

/* Called by a source for each topic it will produce to (see list_topics). */
typedef void (*p2k_topic_fn)(void* ctx, p2k_slice topic);

/*
 * Source lifecycle: create → open → (poll | ack | release)* → close → destroy.
 * `open` may be called again after it returned P2K_RETRY; `close` is called only after an `open`
 * that returned P2K_OK; `destroy` is called once for every successful `create`, also when `open`
 * failed. `create` and `destroy` may run without anything in between (`pg2kafka check`).
 */
typedef struct p2k_source_ops {
  size_t struct_size; /* sizeof(p2k_source_ops) */
  /*
   * Build an instance from validated options (`options[0..option_count)`, valid during the call
   * only). Do no I/O here and start no threads: `pg2kafka check` calls create without open.
   * On P2K_OK store a non-NULL instance in *out; on failure leave *out alone and free what was
   * allocated. P2K_INVALID_CONFIG: the options do not work together (see p2k_host.option_error);
   * P2K_FATAL: anything else. The host never calls create again for the same instance.
   */
  p2k_status (*create)(const p2k_host* host, const p2k_option_value* options, size_t option_count,
                       void** out, char* err, size_t err_size);
  /* Connect and prepare. P2K_RETRY: the host calls open again after a backoff (bounded by its
   * open_timeout). P2K_INVALID_CONFIG: wrong credentials, a missing database: exit code 2.
   * P2K_FATAL: exit code 4. After a failed open the host calls destroy, never close. */
  p2k_status (*open)(void* instance, char* err, size_t err_size);
  /*
   * Return up to `max_records` records that were not returned before and not acknowledged.
   *   max_records  always >= 1 (a source given 0 returns an empty batch).
   *   timeout_ms   0: return at once with what is ready; > 0: wait at most this long for the
   *                first record (returning earlier, also empty, is allowed). Never negative (a
   *                source given a negative value treats it as 0).
   * The host sets *out to {sizeof(p2k_batch), NULL, 0, NULL} before the call.
   *   P2K_OK       fill out->records, out->count (<= max_records) and out->handle. count == 0
   *                means "nothing pending right now" (the host's --once mode stops on it); the
   *                host then ignores records and handle and never releases them.
   *   P2K_RETRY    the host ignores *out (so leave nothing in it that needs releasing) and polls
   *                again after a backoff; nothing is lost: unreturned records stay pending.
   *   P2K_FATAL    the pipeline stops (exit code 4); *out is ignored.
   * Records returned but never acked (the process died, or close came first) must be returned
   * again by a future instance: that is the at-least-once guarantee.
   */
  p2k_status (*poll)(void* instance, size_t max_records, int timeout_ms, p2k_batch* out, char* err,
                     size_t err_size);
  /* Every record with position <= `through` was delivered: forget it for good (delete, mark).
   * `through` is a position poll returned; calls come with strictly increasing values. P2K_RETRY:
   * the host calls again with the same or a larger value after a backoff. P2K_FATAL: the
   * pipeline stops. A source may acknowledge lazily, but what it acknowledged must never come
   * back. */
  p2k_status (*ack)(void* instance, uint64_t through, char* err, size_t err_size);
  /* The host no longer reads the records of this batch. Called exactly once per non-empty
   * batch, in any order relative to `ack` (a batch may be released before or after its records
   * are acknowledged), and always before `close`. Cannot fail. */
  void (*release)(void* instance, void* handle);
  /* Optional (NULL allowed): report every topic the source currently produces to, so that a
   * sink can check them at start. Called once after a successful open, before the first poll;
   * `fn` is called synchronously, and its `topic` slice needs to live only during that call. */
  p2k_status (*list_topics)(void* instance, p2k_topic_fn fn, void* fn_ctx, char* err,
                            size_t err_size);
  /* Disconnect. Called once, after a successful open, after every batch was released. Records
   * returned but not acked stay pending at the origin, to be returned by a future instance.
   * Should not block for long. Cannot fail. */
  void (*close)(void* instance);
  /* Free the instance. Called once for every successful create, last. Cannot fail. */
  void (*destroy)(void* instance);
  /*
   * Since 1.2. Optional (NULL allowed): make the operation that is blocked now return soon. The
   * one operation called from another thread than the pipeline thread, concurrently with any
   * other operation of the instance (or with none); never before create returned, never
   * concurrently with or after destroy. It must not block, must be safe to call more than once,
   * and cannot fail. The host calls it when a stop may not wait any longer (see "Stopping").
   * The interrupted operation returns as soon as it can: P2K_RETRY (a source's poll or ack, an
   * open), or its normal result when it was about to finish anyway. From then on the host calls
   * only release, close and destroy; a source should make every other operation fail at once
   * with P2K_RETRY. Example: the pg-outbox source sends PostgreSQL a cancel request for the
   * running query and wakes its waits.
   */
  void (*interrupt)(void* instance);
  /*
   * Since 1.3. Optional (NULL allowed): report every metric sample of the instance now, each
   * through `fn(fn_ctx, &sample)`, synchronously. Called from the host's HTTP thread on every
   * scrape of /metrics; see "Metrics, health and status" for the threading and naming rules.
   * Cannot fail: a figure that cannot be had now is left out (or reported as it was last known).
   */
  void (*metrics)(void* instance, p2k_metric_fn fn, void* fn_ctx);
  /*
   * Since 1.3. Optional (NULL allowed): whether the instance can do its work now, for the host's
   * /readyz. P2K_OK: ready; P2K_RETRY: not ready now (the origin or destination is unreachable,
   * a credential was refused); nothing else. Either way, write into `message` (as `err` of the
   * other operations, never NULL, at least 256 bytes) one line saying what the instance is doing
   * or what is wrong, e.g. "standby: another instance holds the drain lock" (ready) or "no
   * broker reachable for 12 s: localhost:9092: Connection refused" (not ready); an empty message
   * is allowed. Same threading as `metrics`. The host also counts an instance as not ready while
   * it is not open and while its operations fail transiently, whatever `health` says.
   */
  p2k_status (*health)(void* instance, char* message, size_t message_size);
  /*
   * Since 1.3. Optional (NULL allowed): describe the state of the source's origin for
   * `pg2kafka status`, as one JSON object written through `fn` in pieces (the host joins them).
   * Called on the thread that created the instance, after create, on an instance that is never
   * opened: connect for the call, read, disconnect. May take seconds; the host prints the object
   * as is for `--format json`, and as text laid out from its members: scalars as "name: value"
   * lines, objects as indented sections, arrays of objects as tables, arrays of strings as
   * lists. So choose member names a reader understands (snake_case), give times as ISO 8601 UTC
   * text and durations in seconds, and put what needs the operator's attention in a top-level
   * array of sentences named "problems". P2K_RETRY: the origin is unreachable now; P2K_FATAL or
   * P2K_INVALID_CONFIG: anything else; `err` says why.
   */
  p2k_status (*status)(void* instance, p2k_text_fn fn, void* fn_ctx, char* err, size_t err_size);
  /*
   * Since 1.4. Optional (NULL allowed; needed for the host's on_permanent_failure=park): set
   * aside, at the origin, a record that poll returned and that can never be delivered: the sink
   * failed it permanently (`error` is the sink's message) or the source marked it unusable
   * (`error` is its own). `record` is the record as poll returned it (its batch is not released
   * yet), or as the host last wrote it. Called on the pipeline thread, before the host
   * acknowledges the record's position; return P2K_OK only once the record is durably kept
   * (the acknowledgement that follows must not lose it). From then on the source holds back
   * every later record of the same scope (pg-outbox: the same table and key) in the same place,
   * instead of returning it from poll, until an operator retries or skips the parked records
   * (see `queue`), so that the scope's order is kept: parked records, once retried, come back
   * from poll before any later record of their scope. The host parks, right after the failed
   * record and in order, every later record of the same topic and key that poll returned and
   * that is not acknowledged yet (`error` then says it is held behind the failed one): the source
   * keeps them as held behind it too. Some of those may have reached the destination already;
   * they reach it once more, in order, after the retry (consumers keep the last copy of an id).
   * Parking a record that was parked before and came back by a retry updates it (its error, its
   * count of attempts). P2K_RETRY: the host calls again after a backoff; P2K_FATAL: the pipeline
   * stops.
   */
  p2k_status (*park)(void* instance, const p2k_record* record, const char* error, char* err,
                     size_t err_size);
  /*
   * Since 1.4. Optional (NULL allowed): administer the origin's queue for `pg2kafka queue`.
   * `request` is one JSON object (NUL-terminated), `{"command": C, ...}`:
   *   {"command": "list", "table": T or null, "parked": bool, "limit": N}
   *        events waiting at the origin (queued and parked), oldest first, at most N of each;
   *   {"command": "show", "event": ID}      one event, queued or parked, with its content;
   *   {"command": "retry", "event": ID} | {"command": "retry", "table": T} |
   *   {"command": "retry", "all": true}     deliver parked records again, each scope in its
   *                                         order, before the scope's later records;
   *   {"command": "skip", "event": ID}      remove one event for good, recording who and when.
   * The answer is one JSON object written through `fn` in pieces, laid out like `status`'s
   * (scalars, sections, tables; a top-level "problems" array of sentences). Called as `status`
   * is: on the thread that created the instance, which is never opened. P2K_INVALID_CONFIG: the
   * request cannot be done as asked (an unknown event id, a table that has none, a skip that the
   * running drain makes unsafe): `err` says why and what to do. P2K_RETRY: the origin is
   * unreachable now. P2K_FATAL: anything else, or a command the source does not know.
   */
  p2k_status (*queue)(void* instance, const char* request, p2k_text_fn fn, void* fn_ctx, char* err,
                      size_t err_size);
} p2k_source_ops;

/*
 * Sink lifecycle: create → open → (prepare_topic | write | poll | flush)* → close → destroy.
 * `open` may be called again after it returned P2K_RETRY; `close` is called only after an `open`
 * that returned P2K_OK; `destroy` is called once for every successful `create`, also when `open`
 * failed.
 */
typedef struct p2k_sink_ops {
  size_t struct_size; /* sizeof(p2k_sink_ops) */
  /* As for sources: validate, allocate, no I/O, no threads. `host->report` is set. */
  p2k_status (*create)(const p2k_host* host, const p2k_option_value* options, size_t option_count,
                       void** out, char* err, size_t err_size);
  /* As for sources. Threads that deliver and report may be started here. */
  p2k_status (*open)(void* instance, char* err, size_t err_size);
  /* Optional (NULL allowed): make sure a topic can be written (exists, or create it). Called for
   * each topic the source lists at start and before the first write to any other topic.
   * P2K_RETRY: the host tries again later, writing nothing to that topic meanwhile. P2K_FATAL or
   * P2K_INVALID_CONFIG stop the pipeline before anything is written to it. */
  p2k_status (*prepare_topic)(void* instance, p2k_slice topic, char* err, size_t err_size);
  /*
   * Start delivering `count` (>= 1) records, given in strictly increasing position order (not
   * necessarily consecutive). Every record passed in must later be reported exactly once through
   * p2k_host.report (possibly before write returns). The records stay readable until reported. A
   * position may come again in a later write, after it was reported (see p2k_host.report).
   * A non-OK return means the whole call failed and nothing was accepted: the host then treats
   * every record of the call as failed with that status (RETRY: written again later; FATAL: the
   * pipeline stops), so the sink must never report any of them itself.
   */
  p2k_status (*write)(void* instance, const p2k_record* records, size_t count, char* err,
                      size_t err_size);
  /*
   * Optional (NULL allowed): give the sink the pipeline thread for up to `timeout_ms` (>= 0) to
   * serve delivery reports, for sinks whose client library reports only when called (librdkafka's
   * rd_kafka_poll). The host calls it whenever it waits for outcomes. It must block until it has
   * served a report or the timeout ran out: a poll that returns at once with nothing to do makes
   * the host spin. A sink that reports from threads of its own (or from inside write) leaves poll
   * NULL: the host then waits for reports without using the CPU. Either way, a sink must report
   * without flush being called: the host calls flush only when it shuts down.
   */
  void (*poll)(void* instance, int timeout_ms);
  /* Barrier: return P2K_OK only when every record written so far has been reported (reports may
   * be made from inside flush); nothing more is reported until the next write. `timeout_ms` >= 0;
   * 0 checks without waiting. P2K_RETRY: the time ran out first (reports may still come later).
   * P2K_FATAL: the sink can no longer deliver. */
  p2k_status (*flush)(void* instance, int timeout_ms, char* err, size_t err_size);
  /*
   * Stop delivering. Called once, after a successful open, when the host shuts down (after it
   * flushed what it could). Records not reported yet are undelivered as far as the host is
   * concerned, whatever happens to them: they are not acknowledged, and a later run delivers
   * them again. The sink may still report them (any status) until destroy returns, or drop them
   * silently; it must not keep delivering them in the background after destroy. Should not
   * block for long. Cannot fail.
   */
  void (*close)(void* instance);
  /* Free the instance; stop and join every thread the sink started. Called once for every
   * successful create, last; no host function may be called after it returned. */
  void (*destroy)(void* instance);
  /* Since 1.2. Optional (NULL allowed): as p2k_source_ops.interrupt. The interrupted write,
   * flush, poll or prepare_topic returns as soon as it can; records it did not report are
   * undelivered (as after close). */
  void (*interrupt)(void* instance);
  /* Since 1.3. Optional (NULL allowed): as p2k_source_ops.metrics. */
  void (*metrics)(void* instance, p2k_metric_fn fn, void* fn_ctx);
  /* Since 1.3. Optional (NULL allowed): as p2k_source_ops.health. A sink is not ready while its
   * destination cannot take records (no broker reachable, a refused credential). The host calls
   * no other sink operation while nothing is in flight: a sink whose client learns of connection
   * trouble only when polled serves it from a thread of its own, so that health stays current
   * while the pipeline is idle. */
  p2k_status (*health)(void* instance, char* message, size_t message_size);
} p2k_sink_ops;

/* ------------------------------------------------------------------------------------------ */
/* The descriptor                                                                              */
/* ------------------------------------------------------------------------------------------ */

typedef struct p2k_plugin {
  size_t struct_size; /* sizeof(p2k_plugin) */
  uint32_t abi_major; /* P2K_ABI_MAJOR the plugin was built against */
  /* The minor this descriptor answers with (see "Versioning" above): at most the host's minor
   * for the host to accept it, at least the oldest minor the plugin needs. A plugin that ignores
   * the host's version answers the P2K_ABI_MINOR it was built against. */
  uint32_t abi_minor;
  p2k_kind kind;
  const char* name;          /* lower-hyphenated, e.g. "pg-outbox"; must match the file name */
  const char* version;       /* the plugin's own version, e.g. "1.2.0" */
  const char* summary;       /* one line */
  const p2k_option* options; /* may be NULL when option_count == 0 */
  size_t option_count;
  const p2k_source_ops* source; /* kind == P2K_KIND_SOURCE, else NULL */
  const p2k_sink_ops* sink;     /* kind == P2K_KIND_SINK, else NULL */
} p2k_plugin;

/*
 * The entry point. The host calls it after loading the library, passing its own ABI version; the
 * plugin returns a descriptor that stays valid while the library is loaded, answering with the
 * minor chosen as "Versioning" rule 4 says. For a host of another major, return the descriptor
 * anyway (the host then refuses it, naming both versions) or NULL (the host refuses it too, less
 * precisely). Must not do I/O or start threads; may be called more than once, and then returns
 * the same answer for the same arguments.
 */
typedef const p2k_plugin* (*p2k_plugin_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor);

/*
 * The smallest struct sizes of each minor (what a writer of that minor puts in struct_size at
 * least): the host refuses a shorter struct. A struct not listed under a minor did not grow.
 */
#define P2K_PLUGIN_SIZE_1_0 P2K_SIZE_THROUGH(p2k_plugin, sink)
#define P2K_OPTION_SIZE_1_0 P2K_SIZE_THROUGH(p2k_option, max_value)
#define P2K_SOURCE_OPS_SIZE_1_0 P2K_SIZE_THROUGH(p2k_source_ops, destroy)
#define P2K_SINK_OPS_SIZE_1_0 P2K_SIZE_THROUGH(p2k_sink_ops, destroy)
#define P2K_HOST_SIZE_1_0 P2K_SIZE_THROUGH(p2k_host, report)
#define P2K_HOST_SIZE_1_1 P2K_SIZE_THROUGH(p2k_host, option_error)
#define P2K_SOURCE_OPS_SIZE_1_2 P2K_SIZE_THROUGH(p2k_source_ops, interrupt)
#define P2K_SINK_OPS_SIZE_1_2 P2K_SIZE_THROUGH(p2k_sink_ops, interrupt)
#define P2K_SOURCE_OPS_SIZE_1_3 P2K_SIZE_THROUGH(p2k_source_ops, status)
#define P2K_SINK_OPS_SIZE_1_3 P2K_SIZE_THROUGH(p2k_sink_ops, health)
#define P2K_METRIC_SIZE_1_3 P2K_SIZE_THROUGH(p2k_metric, count)
#define P2K_SOURCE_OPS_SIZE_1_4 P2K_SIZE_THROUGH(p2k_source_ops, queue)
#define P2K_BATCH_SIZE_1_4 P2K_SIZE_THROUGH(p2k_batch, unusable)

/*
 * Plugin files are named "pg2kafka-<kind>-<name>.so", e.g. "pg2kafka-sink-stdout.so", and found
 * in the host's plugin search path (see `pg2kafka plugins list`).
 */

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* PG2KAFKA_PLUGIN_H */
