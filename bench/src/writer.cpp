// p2k-bench-writer: commits rows into a table at a fixed rate, for the live-latency benchmark.
//
//   p2k-bench-writer --url URL --table NAME --rate EVENTS_PER_S --duration SECONDS
//                    [--max-batch ROWS] [--payload-bytes N] [--key-offset N]
//
// The table must have the columns (k text, ts bigint, payload text). Each statement is one
// autocommitted INSERT of one or more rows whose `ts` is clock_timestamp() in microseconds since
// the epoch, taken while the statement runs, i.e. just before its commit; the consumer side
// compares it with the broker's LogAppendTime of the message.
//
// Pacing follows an absolute schedule (event i is due at start + i/rate), so a slow statement is
// caught up by the next ones (at most --max-batch rows per statement) instead of lowering the
// rate silently; the achieved rate is reported. --rate 0 writes flat out: every statement
// carries --max-batch rows. Prints one JSON object on stdout:
//   {"rows":..,"statements":..,"seconds":..,"achieved_rate":..,"stmt_p50_ms":..,"stmt_p99_ms":..,
//    "stmt_max_ms":..}
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string url;
  std::string table;
  double rate = 1000;
  double duration = 30;
  long max_batch = 100;
  long payload_bytes = 80;
  long key_offset = 0;
};

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "p2k-bench-writer: %s\n", message.c_str());
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) die("missing value for " + arg);
    std::string value = argv[++i];
    if (arg == "--url") {
      o.url = value;
    } else if (arg == "--table") {
      o.table = value;
    } else if (arg == "--rate") {
      o.rate = std::stod(value);
    } else if (arg == "--duration") {
      o.duration = std::stod(value);
    } else if (arg == "--max-batch") {
      o.max_batch = std::stol(value);
    } else if (arg == "--payload-bytes") {
      o.payload_bytes = std::stol(value);
    } else if (arg == "--key-offset") {
      o.key_offset = std::stol(value);
    } else {
      die("unknown option " + arg);
    }
  }
  if (o.url.empty() || o.table.empty()) die("--url and --table are required");
  if (o.max_batch < 1) die("--max-batch must be at least 1");
  return o;
}

double percentile(std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  PGconn* conn = PQconnectdb(o.url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) die(PQerrorMessage(conn));

  // The table name comes from the benchmark script, not from users; quote it anyway.
  char* quoted = PQescapeIdentifier(conn, o.table.c_str(), o.table.size());
  const std::string sql = std::string("INSERT INTO ") + quoted +
                          " (k, ts, payload) SELECT 'k' || ($1::bigint + g), "
                          "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint, $2 "
                          "FROM generate_series(1, $3::int) g";
  PQfreemem(quoted);
  PGresult* prepared = PQprepare(conn, "ins", sql.c_str(), 3, nullptr);
  if (PQresultStatus(prepared) != PGRES_COMMAND_OK) die(PQerrorMessage(conn));
  PQclear(prepared);

  const std::string payload(static_cast<size_t>(o.payload_bytes), 'x');
  std::vector<double> latencies_ms;
  latencies_ms.reserve(1 << 20);
  long sent = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration));
  for (;;) {
    const auto now = Clock::now();
    if (now >= end) break;
    long due;
    if (o.rate > 0) {
      due = static_cast<long>(std::chrono::duration<double>(now - start).count() * o.rate);
    } else {
      due = sent + o.max_batch;
    }
    long n = std::min(due - sent, o.max_batch);
    if (n <= 0) {
      const auto next = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>((sent + 1) / o.rate));
      std::this_thread::sleep_until(std::min(next, end));
      continue;
    }
    const std::string offset = std::to_string(o.key_offset + sent);
    const std::string count = std::to_string(n);
    const char* values[3] = {offset.c_str(), payload.c_str(), count.c_str()};
    const auto t0 = Clock::now();
    PGresult* res = PQexecPrepared(conn, "ins", 3, values, nullptr, nullptr, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) die(PQerrorMessage(conn));
    PQclear(res);
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    sent += n;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  PQfinish(conn);

  std::sort(latencies_ms.begin(), latencies_ms.end());
  std::printf(
      "{\"rows\":%ld,\"statements\":%zu,\"seconds\":%.3f,\"achieved_rate\":%.1f,"
      "\"stmt_p50_ms\":%.3f,\"stmt_p99_ms\":%.3f,\"stmt_max_ms\":%.3f}\n",
      sent, latencies_ms.size(), elapsed, sent / elapsed, percentile(latencies_ms, 0.5),
      percentile(latencies_ms, 0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back());
  return 0;
}
