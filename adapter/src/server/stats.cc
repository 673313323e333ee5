#include "kpiscale/adapter/stats.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <stdexcept>

namespace kpiscale::adapter {

absl::StatusOr<std::unique_ptr<AdapterMetrics>> AdapterMetrics::Create(
    std::shared_ptr<prometheus::Registry> registry) try {
  std::unique_ptr<AdapterMetrics> m(new AdapterMetrics());
  m->registry_ = std::move(registry);
  auto& r = *m->registry_;
  m->requests_ = &prometheus::BuildCounter()
                      .Name("kpiscale_adapter_requests_total")
                      .Help("Metrics API requests by group, version, verb and HTTP code.")
                      .Register(r);
  m->duration_ = &prometheus::BuildHistogram()
                      .Name("kpiscale_adapter_request_duration_seconds")
                      .Help("Metrics API request latency by group.")
                      .Register(r);
  m->windows_ = &prometheus::BuildCounter()
                     .Name("kpiscale_adapter_ingest_windows_total")
                     .Help("Ingested windows by result (accepted, duplicate, rejected) and reason.")
                     .Register(r);
  m->batches_ = &prometheus::BuildCounter()
                     .Name("kpiscale_adapter_ingest_batches_total")
                     .Help("Ingest requests by HTTP code.")
                     .Register(r);
  m->pods_ = &prometheus::BuildGauge()
                  .Name("kpiscale_adapter_pods_stored")
                  .Help("Pods held by the window store.")
                  .Register(r)
                  .Add({});
  m->series_ = &prometheus::BuildGauge()
                    .Name("kpiscale_adapter_series_stored")
                    .Help("Windows held by the window store.")
                    .Register(r)
                    .Add({});
  m->freshness_ =
      &prometheus::BuildHistogram()
           .Name("kpiscale_adapter_answer_freshness_seconds")
           .Help("Age of answered items: now minus the item timestamp.")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.5, 1, 1.5, 2, 3, 5, 10, 15, 30, 60});
  return m;
} catch (const std::invalid_argument& e) {
  return absl::InternalError(e.what());
}

void AdapterMetrics::RecordRequest(const std::string& group, const std::string& version,
                                   const std::string& verb, int code, double seconds) {
  prometheus::Counter* c = nullptr;
  prometheus::Histogram* h = nullptr;
  {
    std::lock_guard lock(mu_);
    auto key = std::make_tuple(group, version, verb, code);
    auto it = request_children_.find(key);
    if (it == request_children_.end()) {
      it = request_children_
               .emplace(key, &requests_->Add({{"group", group},
                                              {"version", version},
                                              {"verb", verb},
                                              {"code", std::to_string(code)}}))
               .first;
    }
    c = it->second;
    auto hit = duration_children_.find(group);
    if (hit == duration_children_.end()) {
      hit = duration_children_
                .emplace(group, &duration_->Add({{"group", group}},
                                                prometheus::Histogram::BucketBoundaries{
                                                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                    0.1, 0.25, 0.5, 1}))
                .first;
    }
    h = hit->second;
  }
  c->Increment();
  h->Observe(seconds);
}

void AdapterMetrics::RecordWindows(const std::string& result, const std::string& reason, double n) {
  if (n <= 0) return;
  prometheus::Counter* c = nullptr;
  {
    std::lock_guard lock(mu_);
    auto key = std::make_pair(result, reason);
    auto it = window_children_.find(key);
    if (it == window_children_.end()) {
      it = window_children_.emplace(key, &windows_->Add({{"result", result}, {"reason", reason}}))
               .first;
    }
    c = it->second;
  }
  c->Increment(n);
}

void AdapterMetrics::RecordBatch(int code) {
  prometheus::Counter* c = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = batch_children_.find(code);
    if (it == batch_children_.end()) {
      it = batch_children_.emplace(code, &batches_->Add({{"code", std::to_string(code)}})).first;
    }
    c = it->second;
  }
  c->Increment();
}

void AdapterMetrics::RecordFreshness(double seconds) { freshness_->Observe(seconds); }

void AdapterMetrics::SetStored(double pods, double series) {
  pods_->Set(pods);
  series_->Set(series);
}

}  // namespace kpiscale::adapter
