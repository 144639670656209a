// The built plugin file, loaded the way a host loads it: dlopen, the one exported entry point,
// the descriptor and the C operations.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <thread>

#include "pg_test_support.hpp"
#include "test_support.hpp"

using namespace p2k_pg_test;

TEST(PluginSo, DescriptorAndLifecycleThroughTheCEntryPoint) {
  std::string path = p2k_test::ctest_env("P2K_PLUGIN_DIR") + "/pg2kafka-source-pg-outbox.so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto entry = reinterpret_cast<p2k_plugin_entry_fn>(dlsym(lib, P2K_PLUGIN_ENTRY_SYMBOL));
  ASSERT_NE(entry, nullptr);
  const p2k_plugin* plugin = entry(P2K_ABI_MAJOR, P2K_ABI_MINOR);
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->struct_size, sizeof(p2k_plugin));
  EXPECT_EQ(plugin->abi_major, static_cast<uint32_t>(P2K_ABI_MAJOR));
  EXPECT_EQ(plugin->kind, P2K_KIND_SOURCE);
  EXPECT_STREQ(plugin->name, "pg-outbox");
  ASSERT_NE(plugin->source, nullptr);
  EXPECT_EQ(plugin->sink, nullptr);

  std::map<std::string, const p2k_option*> options;
  for (size_t i = 0; i < plugin->option_count; ++i)
    options[plugin->options[i].name] = &plugin->options[i];
  const std::map<std::string, std::pair<p2k_option_type, const char*>> expected{
      {"connection", {P2K_OPT_SECRET, nullptr}},
      {"perform_migrations", {P2K_OPT_BOOL, "false"}},
      {"topic_namespace", {P2K_OPT_STRING, ""}},
      {"batch_size", {P2K_OPT_INT, "1000"}},
      {"batch_bytes", {P2K_OPT_SIZE, "4MiB"}},
      {"poll_interval", {P2K_OPT_DURATION, "1s"}},
      {"notify", {P2K_OPT_BOOL, "true"}},
      {"acknowledged", {P2K_OPT_ENUM, "delete"}},
      {"retention", {P2K_OPT_DURATION, "7d"}},
      {"application_name", {P2K_OPT_STRING, "pg2kafka"}},
      {"lock_timeout", {P2K_OPT_DURATION, "5s"}},
      {"statement_timeout", {P2K_OPT_DURATION, "60s"}}};
  for (const auto& [name, want] : expected) {
    ASSERT_TRUE(options.count(name)) << name;
    EXPECT_EQ(options[name]->type, want.first) << name;
    if (want.second)
      EXPECT_STREQ(options[name]->default_value, want.second) << name;
    else
      EXPECT_EQ(options[name]->default_value, nullptr) << name;
    EXPECT_GT(std::string(options[name]->description).size(), 40u) << name;
  }
  EXPECT_TRUE(options["connection"]->flags & P2K_OPT_REQUIRED);
  // Bounds the host enforces at `check`: a retention that cannot overflow a timestamp (36500
  // days), timeouts from 0 (none) to a day.
  EXPECT_EQ(options["retention"]->min_value, 1000);
  EXPECT_EQ(options["retention"]->max_value, INT64_C(36500) * 24 * 3600 * 1000);
  for (const char* name : {"lock_timeout", "statement_timeout"}) {
    EXPECT_EQ(options[name]->min_value, 0) << name;
    EXPECT_EQ(options[name]->max_value, 24 * 3600 * 1000) << name;
  }

  TestDatabase db;
  db.sql().exec("CREATE TABLE products (sku text, name text)");
  db.sql().exec("INSERT INTO products VALUES ('CM01-R', 'Red Coffee Mug')");
  db.sql().exec("SELECT pg2kafka.setup('products', 'sku')");
  db.sql().exec("UPDATE products SET name = 'Big Red Coffee Mug'");

  const p2k_source_ops* ops = plugin->source;
  std::string url = db.url();
  p2k_option_value values[] = {
      {"connection", url.c_str()}, {"perform_migrations", "true"}, {"poll_interval", "100"}};
  LogSink logs;
  void* instance = nullptr;
  char err[512] = "";
  ASSERT_EQ(ops->create(&logs.host, values, 3, &instance, err, sizeof err), P2K_OK) << err;
  ASSERT_EQ(ops->open(instance, err, sizeof err), P2K_OK) << err;

  std::set<std::string> topics;
  ASSERT_EQ(ops->list_topics(
                instance,
                [](void* ctx, p2k_slice t) {
                  static_cast<std::set<std::string>*>(ctx)->insert(std::string(t.data, t.size));
                },
                &topics, err, sizeof err),
            P2K_OK);
  EXPECT_EQ(topics, std::set<std::string>{"pg2kafka." + db.name() + ".products"});

  p2k_batch batch{};
  batch.struct_size = sizeof batch;
  ASSERT_EQ(ops->poll(instance, 10, 1000, &batch, err, sizeof err), P2K_OK) << err;
  ASSERT_EQ(batch.count, 2u);
  std::string snapshot(batch.records[0].value.data, batch.records[0].value.size);
  std::string update(batch.records[1].value.data, batch.records[1].value.size);
  EXPECT_NE(snapshot.find("\"statement\":\"SNAPSHOT\""), std::string::npos) << snapshot;
  EXPECT_NE(update.find("\"data\":{\"name\": \"Big Red Coffee Mug\"}"), std::string::npos)
      << update;
  EXPECT_EQ(std::string(batch.records[1].key.data, batch.records[1].key.size), "CM01-R");
  uint64_t last = batch.records[1].position;
  ops->release(instance, batch.handle);
  ASSERT_EQ(ops->ack(instance, last, err, sizeof err), P2K_OK) << err;
  EXPECT_EQ(db.sql().value("SELECT count(*) FROM pg2kafka.outbound_event_queue"), "0");

  p2k_batch empty{};
  empty.struct_size = sizeof empty;
  ASSERT_EQ(ops->poll(instance, 10, 0, &empty, err, sizeof err), P2K_OK) << err;
  EXPECT_EQ(empty.count, 0u);
  ops->close(instance);
  ops->destroy(instance);

  // A bad option value is reported by create as a configuration error.
  p2k_option_value bad[] = {{"connection", "host=x password=Secr3tPassw0rd bogus"}};
  instance = nullptr;
  EXPECT_EQ(ops->create(&logs.host, bad, 1, &instance, err, sizeof err), P2K_INVALID_CONFIG);
  EXPECT_EQ(std::string(err).find("Secr3tPassw0rd"), std::string::npos) << err;
  dlclose(lib);
}
