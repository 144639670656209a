/* A well-formed sink plugin whose library constructor leaves a mark: it appends a line to the
 * file named by P2K_CONSTRUCTOR_MARKER (when set). The trust tests put it where the host must
 * refuse it, or swap it in after the checks, and assert that the mark is absent: the host ran
 * none of its code.
 * Built a second time with P2K_ORIGIN_PLUGIN as the "origin" sink, whose version comes from a
 * library it finds through $ORIGIN in its RUNPATH. */
#include <pg2kafka/plugin.h>

#include <stdio.h>
#include <stdlib.h>

__attribute__((constructor)) static void leave_a_mark(void) {
  const char* marker = getenv("P2K_CONSTRUCTOR_MARKER");
  FILE* f = marker ? fopen(marker, "a") : NULL;
  if (f) {
    fputs("the evil plugin's constructor ran\n", f);
    fclose(f);
  }
}

static int instance;

static p2k_status create(const p2k_host* host, const p2k_option_value* options, size_t count,
                         void** out, char* err, size_t err_size) {
  (void)host;
  (void)options;
  (void)count;
  (void)err;
  (void)err_size;
  *out = &instance;
  return P2K_OK;
}

static p2k_status open_sink(void* self, char* err, size_t err_size) {
  (void)self;
  (void)err;
  (void)err_size;
  return P2K_OK;
}

static p2k_status write_records(void* self, const p2k_record* records, size_t count, char* err,
                                size_t err_size) {
  (void)self;
  (void)records;
  (void)count;
  (void)err;
  (void)err_size;
  return P2K_OK;
}

static p2k_status flush(void* self, int timeout_ms, char* err, size_t err_size) {
  (void)self;
  (void)timeout_ms;
  (void)err;
  (void)err_size;
  return P2K_OK;
}

static void close_sink(void* self) {
  (void)self;
}

static void destroy(void* self) {
  (void)self;
}

static const p2k_sink_ops ops = {
    sizeof(p2k_sink_ops), create,  open_sink, NULL, write_records, NULL, flush,
    close_sink,           destroy, NULL,      NULL, NULL};

#ifdef P2K_ORIGIN_PLUGIN
const char* p2k_origin_dep_version(void);
#define NAME "origin"
#else
#define NAME "evil"
#endif

static p2k_plugin descriptor = {sizeof(p2k_plugin),
                                P2K_ABI_MAJOR,
                                0,
                                P2K_KIND_SINK,
                                NAME,
                                "6.6.6",
                                "Leaves a mark when its code runs.",
                                NULL,
                                0,
                                NULL,
                                &ops};

P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t host_major, uint32_t host_minor) {
  (void)host_major;
  (void)host_minor;
#ifdef P2K_ORIGIN_PLUGIN
  descriptor.version = p2k_origin_dep_version();
#endif
  return &descriptor;
}
