/* A sink plugin built against the frozen ABI 1.0 header, in plain C, as a third party may have
 * written it before ABI 1.1: today's host must load it and honour the 1.0 rules for it (its
 * passthrough keys that look like passwords stay hidden, by the 1.0 word rule). It appends
 * "deliver <position>" lines to output_file and reports each record OK from write. */
#include <pg2kafka/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct abi10_sink {
  const p2k_host* host;
  char path[1024];
} abi10_sink;

static void set_error(char* err, size_t err_size, const char* message) {
  if (err && err_size) {
    strncpy(err, message, err_size - 1);
    err[err_size - 1] = '\0';
  }
}

static p2k_status create(const p2k_host* host, const p2k_option_value* options, size_t count,
                         void** out, char* err, size_t err_size) {
  abi10_sink* s = calloc(1, sizeof *s);
  size_t i;
  if (!s) {
    set_error(err, err_size, "out of memory");
    return P2K_FATAL;
  }
  s->host = host;
  for (i = 0; i < count; ++i)
    if (strcmp(options[i].key, "output_file") == 0)
      strncpy(s->path, options[i].value, sizeof s->path - 1);
  if (!s->path[0]) {
    free(s);
    set_error(err, err_size, "output_file is not set");
    return P2K_INVALID_CONFIG;
  }
  *out = s;
  return P2K_OK;
}

static p2k_status open_sink(void* instance, char* err, size_t err_size) {
  (void)instance;
  (void)err;
  (void)err_size;
  return P2K_OK;
}

static p2k_status write_records(void* instance, const p2k_record* records, size_t count, char* err,
                                size_t err_size) {
  abi10_sink* s = instance;
  size_t i;
  FILE* f = fopen(s->path, "a");
  if (!f) {
    set_error(err, err_size, "cannot open output_file");
    return P2K_RETRY;
  }
  for (i = 0; i < count; ++i) fprintf(f, "deliver %llu\n", (unsigned long long)records[i].position);
  fclose(f);
  for (i = 0; i < count; ++i) s->host->report(s->host->ctx, records[i].position, P2K_OK, NULL);
  return P2K_OK;
}

static p2k_status flush_sink(void* instance, int timeout_ms, char* err, size_t err_size) {
  (void)instance;
  (void)timeout_ms;
  (void)err;
  (void)err_size;
  return P2K_OK;
}

static void close_sink(void* instance) {
  (void)instance;
}
static void destroy(void* instance) {
  free(instance);
}

static const p2k_sink_ops ops = {
    sizeof(p2k_sink_ops), create,     open_sink, NULL, write_records, NULL,
    flush_sink,           close_sink, destroy};

static const p2k_option options[] = {
    {sizeof(p2k_option), "output_file", P2K_OPT_STRING, P2K_OPT_REQUIRED, NULL,
     "File that receives one line per delivery.", NULL, 0, 0},
    {sizeof(p2k_option), "api_token", P2K_OPT_SECRET, 0, NULL, "A secret of the 1.0 kind.", NULL, 0,
     0},
    {sizeof(p2k_option), "extra.", P2K_OPT_PREFIX, 0, NULL,
     "Passthrough keys; secret by the 1.0 word rule when they look like passwords.", NULL, 0, 0},
};

static const p2k_plugin descriptor = {sizeof(p2k_plugin),
                                      P2K_ABI_MAJOR,
                                      P2K_ABI_MINOR,
                                      P2K_KIND_SINK,
                                      "abi10",
                                      "1.0.0",
                                      "A sink built against ABI 1.0.",
                                      options,
                                      3,
                                      NULL,
                                      &ops};

P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t host_major, uint32_t host_minor) {
  (void)host_major;
  (void)host_minor;
  return &descriptor;
}
