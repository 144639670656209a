/* A host of plugin ABI 1.0, built against the frozen 1.0 header (tests/abi/abi-1.0): the load
 * checks of pg2kafka 0.1.0's loader (framework/src/plugin/plugin_loader.cpp at ABI 1.0), and a
 * short run of the plugin through its 1.0 operations with a 1.0 p2k_host (no option_error).
 * The ABI tests load plugins built against today's header and SDK with it: one that needs
 * nothing newer must work; one that does must be refused with a message naming both versions.
 *
 * Usage: old_host PLUGIN.so [key=value]...
 * Exit: 0 worked; 2 create refused the options (the error text is printed); 3 the plugin was
 * refused (as pg2kafka 0.1.0 refuses it); 4 an operation failed. */
#include <pg2kafka/plugin.h>

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#if P2K_ABI_MAJOR != 1 || P2K_ABI_MINOR != 0
#error "old_host must be built against the frozen ABI 1.0 header"
#endif

static int reports_ok, reports_other;

static void host_log(void* ctx, p2k_log_level level, const char* message) {
  (void)ctx;
  fprintf(stderr, "log %d: %s\n", (int)level, message);
}

static void host_report(void* ctx, uint64_t position, p2k_status status, const char* message) {
  (void)ctx;
  if (status == P2K_OK)
    ++reports_ok;
  else
    ++reports_other;
  printf("report %llu %d %s\n", (unsigned long long)position, (int)status, message ? message : "");
}

/* pg2kafka 0.1.0's validate_descriptor, the parts about versions and sizes. */
static int refuse(const p2k_plugin* d) {
  const size_t plugin_v1 = offsetof(p2k_plugin, sink) + sizeof(void*);
  const size_t source_v1 = offsetof(p2k_source_ops, destroy) + sizeof(void*);
  const size_t sink_v1 = offsetof(p2k_sink_ops, destroy) + sizeof(void*);
  if (!d) {
    printf("refused: its entry function returned NULL (the plugin refused host ABI 1.0)\n");
    return 1;
  }
  if (d->struct_size < plugin_v1) {
    printf("refused: its descriptor is %zu bytes, smaller than the %zu bytes of ABI 1.0\n",
           d->struct_size, plugin_v1);
    return 1;
  }
  if (d->abi_major != P2K_ABI_MAJOR) {
    printf("refused: it was built for plugin ABI %u.%u, but this pg2kafka speaks ABI 1.0\n",
           d->abi_major, d->abi_minor);
    return 1;
  }
  if (d->abi_minor > P2K_ABI_MINOR) {
    printf("refused: it was built for plugin ABI %u.%u, newer than this pg2kafka's ABI 1.0\n",
           d->abi_major, d->abi_minor);
    return 1;
  }
  if (d->kind == P2K_KIND_SOURCE) {
    const p2k_source_ops* o = d->source;
    if (!o || o->struct_size < source_v1 || !o->create || !o->open || !o->poll || !o->ack ||
        !o->release || !o->close || !o->destroy) {
      printf("refused: bad source operations table\n");
      return 1;
    }
  } else if (d->kind == P2K_KIND_SINK) {
    const p2k_sink_ops* o = d->sink;
    if (!o || o->struct_size < sink_v1 || !o->create || !o->open || !o->write || !o->flush ||
        !o->close || !o->destroy) {
      printf("refused: bad sink operations table\n");
      return 1;
    }
  } else {
    printf("refused: unknown kind\n");
    return 1;
  }
  return 0;
}

static int run_sink(const p2k_sink_ops* ops, void* instance, char* err, size_t err_size) {
  static const char topic[] = "old.host", key[] = "k", value[] = "{\"old\":true}", id[] = "id";
  p2k_record records[3];
  size_t i;
  if (ops->open(instance, err, err_size) != P2K_OK) return printf("open failed: %s\n", err), 4;
  if (ops->prepare_topic &&
      ops->prepare_topic(instance, (p2k_slice){topic, sizeof topic - 1}, err, err_size) != P2K_OK)
    return printf("prepare_topic failed: %s\n", err), 4;
  memset(records, 0, sizeof records);
  for (i = 0; i < 3; ++i) {
    records[i].struct_size = sizeof(p2k_record);
    records[i].position = i + 1;
    records[i].topic = (p2k_slice){topic, sizeof topic - 1};
    records[i].key = (p2k_slice){key, sizeof key - 1};
    records[i].value = (p2k_slice){value, sizeof value - 1};
    records[i].id = (p2k_slice){id, sizeof id - 1};
  }
  if (ops->write(instance, records, 3, err, err_size) != P2K_OK)
    return printf("write failed: %s\n", err), 4;
  if (ops->flush(instance, 30000, err, err_size) != P2K_OK)
    return printf("flush failed: %s\n", err), 4;
  ops->close(instance);
  printf("sink reported %d OK, %d other\n", reports_ok, reports_other);
  return reports_ok == 3 && reports_other == 0 ? 0 : 4;
}

static int run_source(const p2k_source_ops* ops, void* instance, char* err, size_t err_size) {
  p2k_batch batch;
  if (ops->open(instance, err, err_size) != P2K_OK) return printf("open failed: %s\n", err), 4;
  memset(&batch, 0, sizeof batch);
  batch.struct_size = sizeof batch;
  if (ops->poll(instance, 5, 100, &batch, err, err_size) != P2K_OK)
    return printf("poll failed: %s\n", err), 4;
  printf("source returned %zu records\n", batch.count);
  if (batch.count == 0) return 4;
  if (ops->ack(instance, batch.records[batch.count - 1].position, err, err_size) != P2K_OK)
    return printf("ack failed: %s\n", err), 4;
  ops->release(instance, batch.handle);
  ops->close(instance);
  return 0;
}

int main(int argc, char** argv) {
  p2k_option_value values[32];
  char keys[32][256];
  size_t count = 0;
  char err[1024] = "";
  void* instance = NULL;
  p2k_host host;
  p2k_status status;
  void* lib;
  p2k_plugin_entry_fn entry;
  const p2k_plugin* d;
  int i, rc;
  if (argc < 2) {
    fprintf(stderr, "usage: %s PLUGIN.so [key=value]...\n", argv[0]);
    return 64;
  }
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) return printf("refused: %s\n", dlerror()), 3;
  entry = (p2k_plugin_entry_fn)dlsym(lib, P2K_PLUGIN_ENTRY_SYMBOL);
  if (!entry) return printf("refused: no entry symbol\n"), 3;
  d = entry(P2K_ABI_MAJOR, P2K_ABI_MINOR);
  if (refuse(d)) return 3;
  printf("loaded %s, answering ABI %u.%u\n", d->name, d->abi_major, d->abi_minor);

  for (i = 2; i < argc && count < 32; ++i) {
    char* eq = strchr(argv[i], '=');
    if (!eq || (size_t)(eq - argv[i]) >= sizeof keys[0]) continue;
    memcpy(keys[count], argv[i], (size_t)(eq - argv[i]));
    keys[count][eq - argv[i]] = '\0';
    values[count].key = keys[count];
    values[count].value = eq + 1;
    ++count;
  }
  memset(&host, 0, sizeof host);
  host.struct_size = sizeof host; /* the 1.0 size: no option_error */
  host.abi_major = P2K_ABI_MAJOR;
  host.abi_minor = P2K_ABI_MINOR;
  host.log = host_log;
  host.report = d->kind == P2K_KIND_SINK ? host_report : NULL;

  if (d->kind == P2K_KIND_SINK)
    status = d->sink->create(&host, values, count, &instance, err, sizeof err);
  else
    status = d->source->create(&host, values, count, &instance, err, sizeof err);
  if (status == P2K_INVALID_CONFIG) return printf("create refused the options: %s\n", err), 2;
  if (status != P2K_OK || !instance) return printf("create failed: %s\n", err), 4;
  if (d->kind == P2K_KIND_SINK) {
    rc = run_sink(d->sink, instance, err, sizeof err);
    d->sink->destroy(instance);
  } else {
    rc = run_source(d->source, instance, err, sizeof err);
    d->source->destroy(instance);
  }
  dlclose(lib);
  return rc;
}
