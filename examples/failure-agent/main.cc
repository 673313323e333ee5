#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <thread>

#include "failure_agent.h"

int main(int argc, char** argv) {
  kpiscale::examples::AppOptions options;
  options.db.dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
  options.cache.address = "127.0.0.1:6379";
  int64_t ttl_seconds = 3600;
  int64_t statement_timeout_ms = 5000;
  bool seed_only = false;

  CLI::App cli{
      "failure-agent: the kpiscale reference workload (failure logs over PostgreSQL "
      "and a Redis cache)"};
  cli.set_version_flag("--version", KPISCALE_VERSION);
  cli.add_option("--listen", options.listen, "HTTP listen address host:port (port 0: any)")
      ->capture_default_str();
  cli.add_option("--database-dsn", options.db.dsn, "libpq connection string")
      ->capture_default_str();
  cli.add_option("--redis", options.cache.address, "Redis host:port; empty disables the cache")
      ->capture_default_str();
  cli.add_option("--cache-ttl", ttl_seconds, "cache TTL in seconds")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{86400 * 30}));
  cli.add_option("--pool-min", options.db.pool_min, "connections opened at start")
      ->capture_default_str();
  cli.add_option("--pool-max", options.db.pool_max, "connection pool limit")->capture_default_str();
  cli.add_option("--statement-timeout-ms", statement_timeout_ms, "PostgreSQL statement_timeout")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{600000}));
  cli.add_option("--seed", options.seed_rows, "insert this many generated rows at start")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{10000000}));
  cli.add_flag("--seed-only", seed_only, "migrate, seed and exit");
  CLI11_PARSE(cli, argc, argv);
  options.cache.ttl = std::chrono::seconds(ttl_seconds);
  options.db.statement_timeout = std::chrono::milliseconds(statement_timeout_ms);
  if (seed_only) {
    options.db.pool_min = std::min<std::size_t>(options.db.pool_min, 1);
  }

  // SIGINT/SIGTERM end the server from a dedicated thread (no work in a signal handler).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto app = kpiscale::examples::App::Create(options);
  if (!app.ok()) {
    spdlog::error("msg=start_failed err=\"{}\"", app.status().ToString());
    return 1;
  }
  if (seed_only) return 0;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("msg=stopping signal={}", sig);
    (*app)->Stop();
  });
  waiter.detach();
  (*app)->Run();
  return 0;
}
