#include "kpiscale/sidecar/app.h"

#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "kpiscale/common/clock.h"
#include "kpiscale/sidecar/net.h"
#include "kpiscale/sidecar/routes.h"
#include "kpiscale/sidecar/stats.h"
#include "kpiscale/sidecar/window_builder.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "spdlog/spdlog.h"

namespace kpiscale::sidecar {
namespace {

// /metrics, /healthz and /readyz on their own port (cpp-httplib, one thread pool of its own).
class MetricsServer {
 public:
  MetricsServer(prometheus::Registry& registry, std::shared_ptr<prometheus::Collectable> process)
      : registry_(registry), process_(std::move(process)) {
    // Scrapes are rare; two threads keep the sidecar's footprint small.
    server_.new_task_queue = [] { return new httplib::ThreadPool(2); };
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      auto families = registry_.Collect();
      auto more = process_->Collect();
      families.insert(families.end(), more.begin(), more.end());
      res.set_content(prometheus::TextSerializer().Serialize(families),
                      "text/plain; version=0.0.4; charset=utf-8");
    });
    server_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    server_.Get("/readyz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
  }
  absl::StatusOr<int> Bind(const std::string& host_port) {
    auto addr = ResolveHostPort(host_port);
    if (!addr.ok()) return addr.status();
    const std::string host = FormatIp(*addr);
    const int want = ntohs(addr->sin_port);
    int port = -1;
    if (want == 0) {
      port = server_.bind_to_any_port(host);
    } else if (server_.bind_to_port(host, want)) {
      port = want;
    }
    if (port <= 0) {
      return absl::UnavailableError(absl::StrCat("--metrics-listen ", host_port, ": cannot bind"));
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    return port;
  }
  ~MetricsServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  prometheus::Registry& registry_;
  std::shared_ptr<prometheus::Collectable> process_;
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace

absl::Status RunSidecar(SidecarConfig config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Few arenas: the proxy threads allocate little, and each arena costs resident memory.
  mallopt(M_ARENA_MAX, 2);

  absl::Status st = config.Validate();
  if (!st.ok()) return st;
  st = ResolveIdentity(&config);
  if (!st.ok()) return st;
  RouteTable routes;
  if (!config.routes_file.empty()) {
    auto loaded = RouteTable::Load(config.routes_file);
    if (!loaded.ok()) return loaded.status();
    routes = std::move(*loaded);
  }
  std::sort(config.slo_thresholds.begin(), config.slo_thresholds.end());
  config.slo_thresholds.erase(
      std::unique(config.slo_thresholds.begin(), config.slo_thresholds.end()),
      config.slo_thresholds.end());
  HttpLayout layout{config.slo_thresholds, ClassicBuckets(config.slo_thresholds), routes.size()};

  auto registry = std::make_shared<prometheus::Registry>();
  auto stats =
      SidecarStats::Create(*registry, layout.slo_thresholds, layout.buckets, routes.names());
  if (!stats.ok()) return stats.status();
  WindowBuilder builder(layout, stats->get(), common::RealClock());

  auto proxy = Proxy::Create(config.proxy, builder, routes);
  if (!proxy.ok()) return proxy.status();
  std::unique_ptr<Pusher> pusher;
  if (!config.push.adapter_url.empty()) {
    auto created = Pusher::Create(config.push, config.pod, stats->get());
    if (!created.ok()) return created.status();
    pusher = std::move(*created);
  }
  auto observers = StartDataObservers(config.data, builder, *registry);
  if (!observers.ok()) return observers.status();
  std::unique_ptr<MetricsServer> metrics;
  int metrics_port = 0;
  if (!config.metrics_listen.empty()) {
    metrics = std::make_unique<MetricsServer>(*registry, MakeProcessCollector());
    auto port = metrics->Bind(config.metrics_listen);
    if (!port.ok()) return port.status();
    metrics_port = *port;
  }
  (*proxy)->Start();
  if (pusher) pusher->Start();
  spdlog::info(
      "msg=started listen={} upstream={} proxy_port={} metrics_port={} adapter={} pod={}/{} "
      "uid={} workload={}/{}",
      config.proxy.listen, config.proxy.upstream, (*proxy)->port(), metrics_port,
      config.push.adapter_url.empty() ? "none" : config.push.adapter_url, config.pod.namespace_(),
      config.pod.pod_name(), config.pod.pod_uid(), config.pod.workload_kind(),
      config.pod.workload_name());
  std::printf("ready proxy_port=%u metrics_port=%d redis_port=%u postgres_port=%u\n",
              static_cast<unsigned>((*proxy)->port()), metrics_port,
              static_cast<unsigned>((*observers)->redis_port()),
              static_cast<unsigned>((*observers)->postgres_port()));
  std::fflush(stdout);

  auto next_close = std::chrono::steady_clock::now() + config.push_interval;
  int signo = 0;
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_close) {
      kpiscale::v1::Window w = builder.CloseWindow();
      if (pusher) pusher->Enqueue(std::move(w));
      // Fixed cadence: a slow iteration does not shift later windows.
      next_close += config.push_interval;
      if (next_close <= now) next_close = now + config.push_interval;
      continue;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(next_close - now);
    timespec ts{static_cast<time_t>(wait.count() / 1'000'000'000),
                static_cast<long>(wait.count() % 1'000'000'000)};
    siginfo_t info{};
    signo = sigtimedwait(&signals, &info, &ts);
    if (signo == SIGTERM || signo == SIGINT) break;
  }
  spdlog::info("msg=shutting_down signal={}", signo);
  (*proxy)->Shutdown(config.shutdown_grace);
  (*observers)->Stop();
  kpiscale::v1::Window last = builder.CloseWindow();
  if (pusher) {
    pusher->Enqueue(std::move(last));
    pusher->Stop(std::chrono::milliseconds(5000));
    if (pusher->pending() > 0) {
      spdlog::warn("msg=exit_with_unpushed_windows count={}", pusher->pending());
    }
  }
  metrics.reset();
  spdlog::info("msg=stopped");
  return absl::OkStatus();
}

}  // namespace kpiscale::sidecar
