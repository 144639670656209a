// A source whose operations table has park and queue (ABI 1.4), compiled twice: answering 1.3
// (PARK_AT_1_3: a trap, the host must never call either) and answering 1.4 (PARK_AT_1_4: the
// host uses them).
#include <pg2kafka/plugin.h>

#include <cstdlib>
#include <cstring>

namespace {

p2k_status create(const p2k_host*, const p2k_option_value*, size_t, void** out, char*, size_t) {
  static int instance;
  *out = &instance;
  return P2K_OK;
}
p2k_status open(void*, char*, size_t) {
  return P2K_OK;
}
p2k_status poll(void*, size_t, int, p2k_batch*, char*, size_t) {
  return P2K_OK;
}
p2k_status ack(void*, uint64_t, char*, size_t) {
  return P2K_OK;
}
void release(void*, void*) {}
void close(void*) {}
void destroy(void*) {}
#if defined(PARK_AT_1_3)
p2k_status park(void*, const p2k_record*, const char*, char*, size_t) {
  std::abort();
}
p2k_status queue(void*, const char*, p2k_text_fn, void*, char*, size_t) {
  std::abort();
}
#else
p2k_status park(void*, const p2k_record*, const char*, char*, size_t) {
  return P2K_OK;
}
p2k_status queue(void*, const char*, p2k_text_fn fn, void* ctx, char*, size_t) {
  const char* answer = "{\"answered\":true}";
  fn(ctx, p2k_slice{answer, std::strlen(answer)});
  return P2K_OK;
}
#endif

p2k_source_ops ops = {sizeof(p2k_source_ops),
                      create,
                      open,
                      poll,
                      ack,
                      release,
                      nullptr,
                      close,
                      destroy,
                      nullptr,
                      nullptr,
                      nullptr,
                      nullptr,
                      park,
                      queue};

p2k_plugin descriptor = {sizeof(p2k_plugin),
                         P2K_ABI_MAJOR,
#if defined(PARK_AT_1_3)
                         3,
#else
                         4,
#endif
                         P2K_KIND_SOURCE,
#if defined(PARK_AT_1_3)
                         "park-at-1-3",
#else
                         "park-at-1-4",
#endif
                         "1.0.0",
                         "A source that parks.",
                         nullptr,
                         0,
                         &ops,
                         nullptr};

}  // namespace

extern "C" P2K_EXPORT const p2k_plugin* p2k_plugin_entry_v1(uint32_t, uint32_t) {
  return &descriptor;
}
