// Deliberately broken plugins for the ABI tests. One source file, compiled once per defect with
// BROKEN_<DEFECT> defined; each must be refused by the host with a precise message.
#include <pg2kafka/plugin.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace {

p2k_status create(const p2k_host*, const p2k_option_value*, size_t, void** out, char*, size_t) {
#if defined(BROKEN_THROWING_CREATE)
  (void)out;
  throw std::runtime_error("create exploded");
#else
  static int instance;
  *out = &instance;
  return P2K_OK;
#endif
}
p2k_status open(void*, char*, size_t) {
  return P2K_OK;
}
p2k_status write(void*, const p2k_record*, size_t, char*, size_t) {
  return P2K_OK;
}
#if defined(BROKEN_INTERRUPT_AT_1_1)
// Not broken, but a trap: interrupt came with 1.2, so a host must never call it on a plugin that
// answered 1.1, even though the operations table has it.
void interrupt(void*) {
  std::abort();
}
#elif defined(BROKEN_INTERRUPT_AT_1_2)
void interrupt(void*) {}
#elif defined(BROKEN_METRICS_AT_1_2)
// A trap like BROKEN_INTERRUPT_AT_1_1: metrics and health came with 1.3.
void metrics(void*, p2k_metric_fn, void*) {
  std::abort();
}
p2k_status health(void*, char*, size_t) {
  std::abort();
}
#elif defined(BROKEN_BAD_METRICS)
// Answers 1.3 and reports samples that break each rule of plugin.h, between two valid ones: the
// host drops the bad ones and keeps the valid ones.
void metrics(void*, p2k_metric_fn fn, void* ctx) {
  auto sample = [&](const char* name, p2k_metric_type type, double value,
                    const p2k_label* labels = nullptr, size_t label_count = 0) {
    p2k_metric m{
        sizeof(p2k_metric), name, "help", type, labels, label_count, value, nullptr, nullptr, 0, 0};
    fn(ctx, &m);
  };
  sample("good_total", P2K_METRIC_COUNTER, 3);
  sample("Bad_Name", P2K_METRIC_GAUGE, 1);
  sample("counter_without_suffix", P2K_METRIC_COUNTER, 1);
  sample("gauge_total", P2K_METRIC_GAUGE, 1);
  sample("negative_total", P2K_METRIC_COUNTER, -1);
  sample(nullptr, P2K_METRIC_GAUGE, 1);
  sample("unknown_type", static_cast<p2k_metric_type>(9), 1);
  p2k_label le[] = {{"le", "1"}};
  sample("label_le", P2K_METRIC_GAUGE, 1, le, 1);
  p2k_label dup[] = {{"a", "1"}, {"a", "2"}};
  sample("label_twice", P2K_METRIC_GAUGE, 1, dup, 2);
  p2k_label bad_utf8[] = {{"a", "\xff\xfe"}};
  sample("label_not_utf8", P2K_METRIC_GAUGE, 1, bad_utf8, 1);
  double bounds[] = {1, 0.5};
  uint64_t counts[] = {1, 2};
  p2k_metric h{sizeof(p2k_metric),
               "bad_histogram",
               "help",
               P2K_METRIC_HISTOGRAM,
               nullptr,
               0,
               1,
               bounds,
               counts,
               2,
               2};
  fn(ctx, &h);
  p2k_label quoted[] = {{"path", "a\"b\\c\nd"}};
  sample("good_gauge", P2K_METRIC_GAUGE, 2.5, quoted, 1);
  sample("good_gauge", P2K_METRIC_COUNTER, 1);  // another type for the same name
}
p2k_status health(void*, char* message, size_t size) {
  std::snprintf(message, size, "%s", "not today: the destination is down");
  return P2K_RETRY;
}
#endif
p2k_status flush(void*, int, char*, size_t) {
  return P2K_OK;
}
void close(void*) {}
void destroy(void*) {}

p2k_sink_ops ops = {sizeof(p2k_sink_ops),
                    create,
                    open,
                    nullptr,
                    write,
                    nullptr,
                    flush,
                    close,
                    destroy,
                    nullptr,
                    nullptr,
                    nullptr};

const p2k_option secret_option[] = {{sizeof(p2k_option), "token", P2K_OPT_STRING, P2K_OPT_IS_SECRET,
                                     nullptr, "A token.", nullptr, 0, 0}};

// A plain C plugin that uses nothing newer than ABI 1.0 answers 1.0 to every host.
p2k_plugin descriptor = {sizeof(p2k_plugin), P2K_ABI_MAJOR, 0, P2K_KIND_SINK, "broken", "1.0.0",
                         "A broken plugin.", nullptr,       0, nullptr,       &ops};

}  // namespace

extern "C" P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t, uint32_t) {
#if defined(BROKEN_WRONG_MAJOR)
  descriptor.abi_major = P2K_ABI_MAJOR + 1;
#elif defined(BROKEN_NEWER_MINOR)
  descriptor.abi_minor = P2K_ABI_MINOR + 1;
#elif defined(BROKEN_SHORT_STRUCT)
  descriptor.struct_size = sizeof(size_t) + 2 * sizeof(uint32_t);
#elif defined(BROKEN_SHORT_OPS)
  ops.struct_size = 3 * sizeof(void*);
#elif defined(BROKEN_MISSING_WRITE)
  ops.write = nullptr;
#elif defined(BROKEN_NULL_DESCRIPTOR)
  return nullptr;
#elif defined(BROKEN_THROWING_ENTRY)
  throw std::runtime_error("entry exploded");
#elif defined(BROKEN_BAD_NAME)
  descriptor.name = "Bad Name";
#elif defined(BROKEN_SECRET_FLAG_AT_1_0)
  // P2K_OPT_IS_SECRET came with 1.1: a descriptor answering 1.0 may not use it (a 1.0 host would
  // ignore the flag and print the secret).
  descriptor.options = secret_option;
  descriptor.option_count = 1;
#elif defined(BROKEN_INTERRUPT_AT_1_1)
  ops.interrupt = interrupt;
  descriptor.abi_minor = 1;
#elif defined(BROKEN_INTERRUPT_AT_1_2)
  ops.interrupt = interrupt;
  descriptor.abi_minor = 2;
#elif defined(BROKEN_METRICS_AT_1_2)
  ops.metrics = metrics;
  ops.health = health;
  descriptor.abi_minor = 2;
#elif defined(BROKEN_BAD_METRICS)
  ops.metrics = metrics;
  ops.health = health;
  descriptor.abi_minor = 3;
#endif
  return &descriptor;
}
