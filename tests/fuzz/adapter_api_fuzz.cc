// Fuzzes kpiscale::adapter::ApiHandler::Handle (the request target is the input; the first byte
// picks the method) and IngestHandler::Handle (the input as a report body). Invariants: never
// crashes, always a status in 200..599, and every JSON answer is an object.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "kpiscale/adapter/api.h"
#include "kpiscale/adapter/ingest.h"
#include "kpiscale/common/report_builder.h"

namespace {

using namespace kpiscale;  // NOLINT

constexpr int64_t kNow = 1'700'000'000'000;

struct World {
  common::FakeClock clock{kNow};
  std::unique_ptr<adapter::WindowStore> store =
      std::move(adapter::CreateMemoryWindowStore(adapter::StoreOptions{})).value();
  adapter::WrittenMetrics written;
  adapter::HealthChecks health;
  std::unique_ptr<adapter::ApiHandler> api;
  std::unique_ptr<adapter::IngestHandler> ingest;
  World() {
    health.Add("ping", adapter::HealthChecks::kAll, [] { return absl::OkStatus(); });
    adapter::ApiOptions o;
    o.enable_write_metrics = true;
    api = std::make_unique<adapter::ApiHandler>(*store, written, health, clock, o);
    ingest =
        std::make_unique<adapter::IngestHandler>(*store, clock, adapter::IngestOptions{}, nullptr);
    for (int i = 0; i < 3; ++i) {
      common::ReportBatchBuilder b("default", "web-" + std::to_string(i),
                                   "uid-" + std::to_string(i));
      b.Workload("Deployment", "web").NodeName("n").ServiceName("web").Label("app", "web");
      common::WindowBuilder w({0.2});
      for (int r = 0; r < 10; ++r) w.RecordHttpRequest(r == 0 ? 500 : 200, 0.01 * (r + 1), 0.001);
      b.AddWindow(w.Finish(1, kNow - 1000, kNow));
      ingest->Handle("application/x-protobuf", b.SerializeAsString());
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  if (size == 0) return 0;
  static const char* kMethods[] = {"GET", "POST", "PUT", "HEAD"};
  adapter::ApiRequest r;
  r.method = kMethods[data[0] % 4];
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto nl = rest.find('\n');
  r.target = rest.substr(0, nl);
  if (nl != std::string::npos) r.body = rest.substr(nl + 1);
  r.accept = (data[0] & 8) ? "application/json;as=Table" : "*/*";
  const adapter::ApiResponse resp = world->api->Handle(r);
  if (resp.status < 200 || resp.status > 599) std::abort();
  if (resp.content_type == "application/json") {
    auto j = nlohmann::json::parse(resp.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) std::abort();
  }
  const auto ing = world->ingest->Handle("application/x-protobuf",
                                         std::string(reinterpret_cast<const char*>(data), size));
  if (ing.status < 200 || ing.status > 599) std::abort();
  return 0;
}
