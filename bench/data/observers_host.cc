// Runs the data observers (RESP and PostgreSQL relays) until SIGINT/SIGTERM.
// Usage: kpiscale_data_observers_bench REDIS_LISTEN REDIS_UPSTREAM PG_LISTEN PG_UPSTREAM
//            [THREADS [immediate|spin]]
//   THREADS: relay event loops (default 1); "immediate": forward each read at once (the relay
//   before deferred writes); "spin": poll once more without blocking before sleeping.
// Prints "ready redis=<port> postgres=<port>" once listening, and the counts at exit.
#include <prometheus/registry.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kpiscale/sidecar/observe/data_observers.h"

namespace {

class CountingSink final : public kpiscale::sidecar::SignalSink {
 public:
  void RecordCacheCommand(double, const kpiscale::sidecar::CacheCommandResult&) override {
    cache_.fetch_add(1, std::memory_order_relaxed);
  }
  void RecordCacheServerWide(uint64_t, uint64_t) override {}
  void RecordDbQuery(double, bool) override { db_.fetch_add(1, std::memory_order_relaxed); }
  std::atomic<uint64_t> cache_{0};
  std::atomic<uint64_t> db_{0};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5 || argc > 7) {
    std::fprintf(stderr,
                 "usage: %s REDIS_LISTEN REDIS_UPSTREAM PG_LISTEN PG_UPSTREAM "
                 "[THREADS [immediate|spin]]\n",
                 argv[0]);
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  kpiscale::sidecar::DataObserverOptions options;
  options.redis_listen = argv[1];
  options.redis_upstream = argv[2];
  options.postgres_listen = argv[3];
  options.postgres_upstream = argv[4];
  if (argc >= 6) options.relay_threads = std::atoi(argv[5]);
  if (argc == 7) {
    const std::string mode = argv[6];
    options.relay_defer_writes = mode != "immediate";
    options.relay_poll_before_sleep = mode == "spin";
  }
  CountingSink sink;
  prometheus::Registry registry;
  auto observers = kpiscale::sidecar::StartDataObservers(options, sink, registry);
  if (!observers.ok()) {
    std::fprintf(stderr, "%s\n", observers.status().ToString().c_str());
    return 1;
  }
  std::printf("ready redis=%u postgres=%u\n", (*observers)->redis_port(),
              (*observers)->postgres_port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  (*observers)->Stop();
  std::printf("cache_commands=%llu db_queries=%llu\n",
              static_cast<unsigned long long>(sink.cache_.load()),
              static_cast<unsigned long long>(sink.db_.load()));
  return 0;
}
