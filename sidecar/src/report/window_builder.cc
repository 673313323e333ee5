#include "kpiscale/sidecar/window_builder.h"

#include <algorithm>
#include <utility>

namespace kpiscale::sidecar {
namespace {

std::size_t StatusClass(int status) {
  const int c = status / 100;
  return c >= 1 && c <= 5 ? static_cast<std::size_t>(c - 1) : 4;
}

// Index of the classic bucket holding v: the first bound >= v (le is inclusive), or the +Inf
// bucket (bounds.size()).
std::size_t BucketIndex(const std::vector<double>& bounds, double v) {
  return static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) -
                                  bounds.begin());
}

std::size_t DataBucketIndex(double v) {
  return static_cast<std::size_t>(std::lower_bound(kDataBuckets.begin(), kDataBuckets.end(), v) -
                                  kDataBuckets.begin());
}

}  // namespace

std::vector<double> ClassicBuckets(const std::vector<double>& slo_thresholds) {
  std::vector<double> b = {0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5, 10};
  b.insert(b.end(), slo_thresholds.begin(), slo_thresholds.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

HttpAccumulator::HttpAccumulator(const HttpLayout& l)
    : slow(l.slo_thresholds.size()),
      route_status(l.routes),
      route_buckets(l.routes, std::vector<uint64_t>(l.buckets.size() + 1)),
      route_sum(l.routes),
      ttfb_buckets(l.buckets.size() + 1),
      layout(&l) {}

void HttpAccumulator::Clear() {
  requests = errors = upgrades = bytes_received = bytes_sent = client_aborts = rejected = 0;
  status_class.fill(0);
  upstream_failures.fill(0);
  duration_sum = ttfb_sum = 0;
  std::fill(slow.begin(), slow.end(), 0);
  latency.Clear();
  ttfb.Clear();
  for (auto& r : route_status) r.fill(0);
  for (auto& r : route_buckets) std::fill(r.begin(), r.end(), 0);
  std::fill(route_sum.begin(), route_sum.end(), 0);
  std::fill(ttfb_buckets.begin(), ttfb_buckets.end(), 0);
}

void HttpAccumulator::MergeFrom(const HttpAccumulator& o) {
  requests += o.requests;
  errors += o.errors;
  upgrades += o.upgrades;
  bytes_received += o.bytes_received;
  bytes_sent += o.bytes_sent;
  client_aborts += o.client_aborts;
  rejected += o.rejected;
  for (std::size_t i = 0; i < status_class.size(); ++i) status_class[i] += o.status_class[i];
  for (std::size_t i = 0; i < upstream_failures.size(); ++i) {
    upstream_failures[i] += o.upstream_failures[i];
  }
  duration_sum += o.duration_sum;
  ttfb_sum += o.ttfb_sum;
  for (std::size_t i = 0; i < slow.size(); ++i) slow[i] += o.slow[i];
  latency.Merge(o.latency);
  ttfb.Merge(o.ttfb);
  for (std::size_t r = 0; r < route_status.size(); ++r) {
    for (std::size_t c = 0; c < 5; ++c) route_status[r][c] += o.route_status[r][c];
    for (std::size_t b = 0; b < route_buckets[r].size(); ++b) {
      route_buckets[r][b] += o.route_buckets[r][b];
    }
    route_sum[r] += o.route_sum[r];
  }
  for (std::size_t b = 0; b < ttfb_buckets.size(); ++b) ttfb_buckets[b] += o.ttfb_buckets[b];
  in_flight += o.in_flight;
}

void HttpSlot::RecordRequest(int status, double seconds, double ttfb_seconds, std::size_t route) {
  const std::size_t cls = StatusClass(status);
  std::lock_guard<std::mutex> lock(mu_);
  HttpAccumulator& a = acc_;
  route = std::min(route, a.route_status.size() - 1);
  ++a.requests;
  ++a.status_class[cls];
  if (cls == 4) ++a.errors;
  a.duration_sum += seconds;
  const auto& thresholds = a.layout->slo_thresholds;
  for (std::size_t i = 0; i < thresholds.size(); ++i) {
    if (seconds > thresholds[i]) ++a.slow[i];
  }
  a.latency.Add(seconds);
  a.ttfb.Add(ttfb_seconds);
  ++a.route_status[route][cls];
  ++a.route_buckets[route][BucketIndex(a.layout->buckets, seconds)];
  a.route_sum[route] += seconds;
  ++a.ttfb_buckets[BucketIndex(a.layout->buckets, ttfb_seconds)];
  a.ttfb_sum += ttfb_seconds;
}

void HttpSlot::RecordUpgrade() {
  std::lock_guard<std::mutex> lock(mu_);
  ++acc_.upgrades;
}

void HttpSlot::RecordUpstreamFailure(UpstreamFailure reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++acc_.upstream_failures[static_cast<std::size_t>(reason)];
}

void HttpSlot::RecordClientAbort() {
  std::lock_guard<std::mutex> lock(mu_);
  ++acc_.client_aborts;
}

void HttpSlot::RecordRejected() {
  std::lock_guard<std::mutex> lock(mu_);
  ++acc_.rejected;
}

void HttpSlot::AddBytes(uint64_t received, uint64_t sent) {
  std::lock_guard<std::mutex> lock(mu_);
  acc_.bytes_received += received;
  acc_.bytes_sent += sent;
}

void HttpSlot::AddInFlight(int64_t delta) {
  std::lock_guard<std::mutex> lock(mu_);
  acc_.in_flight += delta;
}

void HttpSlot::DrainInto(HttpAccumulator* out) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t level = acc_.in_flight;
  out->MergeFrom(acc_);
  acc_.Clear();
  acc_.in_flight = level;
}

WindowBuilder::WindowBuilder(HttpLayout layout, SidecarStats* stats, const common::Clock& clock)
    : layout_(std::move(layout)),
      stats_(stats),
      clock_(clock),
      sequence_(static_cast<uint64_t>(std::max<int64_t>(clock.NowUnixMillis(), 0))),
      window_start_ms_(clock.NowUnixMillis()),
      http_scratch_(layout_) {}

HttpSlot* WindowBuilder::AddHttpSlot() {
  std::lock_guard<std::mutex> lock(slots_mu_);
  slots_.push_back(std::make_unique<HttpSlot>(layout_));
  return slots_.back().get();
}

void WindowBuilder::RecordCacheCommand(double seconds, const CacheCommandResult& result) {
  std::lock_guard<std::mutex> lock(data_mu_);
  cache_.observed = true;
  ++cache_.commands;
  cache_.hits += result.hits;
  cache_.misses += result.misses;
  if (result.error) ++cache_.errors;
  if (seconds >= 0) {
    cache_.duration_sum += seconds;
    cache_.latency.Add(seconds);
    ++cache_.buckets[DataBucketIndex(seconds)];
  }
}

void WindowBuilder::RecordCacheServerWide(uint64_t hits, uint64_t misses) {
  std::lock_guard<std::mutex> lock(data_mu_);
  cache_.observed = true;
  cache_.server_wide = true;
  cache_.hits += hits;
  cache_.misses += misses;
}

void WindowBuilder::RecordDbQuery(double seconds, bool error) {
  std::lock_guard<std::mutex> lock(data_mu_);
  db_.observed = true;
  ++db_.queries;
  if (error) ++db_.errors;
  if (seconds >= 0) {
    db_.duration_sum += seconds;
    db_.latency.Add(seconds);
    ++db_.buckets[DataBucketIndex(seconds)];
  }
}

void FillHttpSignal(const HttpAccumulator& a, kpiscale::v1::HttpSignal* h) {
  h->set_requests(a.requests);
  h->set_errors(a.errors);
  h->set_status_1xx(a.status_class[0]);
  h->set_status_2xx(a.status_class[1]);
  h->set_status_3xx(a.status_class[2]);
  h->set_status_4xx(a.status_class[3]);
  h->set_status_5xx(a.status_class[4]);
  h->set_upgrades(a.upgrades);
  h->set_duration_sum_seconds(a.duration_sum);
  for (std::size_t i = 0; i < a.slow.size(); ++i) {
    auto* t = h->add_slo();
    t->set_threshold_seconds(a.layout->slo_thresholds[i]);
    t->set_slow(a.slow[i]);
  }
  a.latency.ToProto(h->mutable_latency());
  a.ttfb.ToProto(h->mutable_ttfb());
  h->set_bytes_received(a.bytes_received);
  h->set_bytes_sent(a.bytes_sent);
}

kpiscale::v1::Window WindowBuilder::CloseWindow() {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  HttpAccumulator& http = http_scratch_;
  http.Clear();
  http.in_flight = 0;
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (auto& slot : slots_) slot->DrainInto(&http);
  }
  CacheAcc cache;
  DbAcc db;
  {
    std::lock_guard<std::mutex> lock(data_mu_);
    std::swap(cache, cache_);
    std::swap(db, db_);
  }
  const int64_t now_ms = std::max(clock_.NowUnixMillis(), window_start_ms_ + 1);
  kpiscale::v1::Window w;
  w.set_sequence(++sequence_);
  w.set_start_unix_ms(window_start_ms_);
  w.set_end_unix_ms(now_ms);
  window_start_ms_ = now_ms;
  FillHttpSignal(http, w.mutable_http());
  if (cache.observed) {
    auto* c = w.mutable_cache();
    c->set_commands(cache.commands);
    c->set_hits(cache.hits);
    c->set_misses(cache.misses);
    c->set_errors(cache.errors);
    c->set_duration_sum_seconds(cache.duration_sum);
    cache.latency.ToProto(c->mutable_latency());
    c->set_server_wide(cache.server_wide);
  }
  if (db.observed) {
    auto* d = w.mutable_db();
    d->set_queries(db.queries);
    d->set_errors(db.errors);
    d->set_duration_sum_seconds(db.duration_sum);
    db.latency.ToProto(d->mutable_latency());
  }
  if (stats_ != nullptr) ApplyToStats(http, cache, db);
  return w;
}

void WindowBuilder::ApplyToStats(const HttpAccumulator& http, const CacheAcc& cache,
                                 const DbAcc& db) {
  SidecarStats& s = *stats_;
  std::vector<double> increments;
  for (std::size_t r = 0; r < http.route_status.size() && r < s.requests.size(); ++r) {
    for (std::size_t c = 0; c < 5; ++c) {
      if (http.route_status[r][c] > 0) {
        s.requests[r][c]->Increment(static_cast<double>(http.route_status[r][c]));
      }
    }
    const auto& b = http.route_buckets[r];
    if (std::any_of(b.begin(), b.end(), [](uint64_t v) { return v > 0; })) {
      increments.assign(b.begin(), b.end());
      s.duration[r]->ObserveMultiple(increments, http.route_sum[r]);
    }
  }
  if (http.requests > 0) {
    increments.assign(http.ttfb_buckets.begin(), http.ttfb_buckets.end());
    s.ttfb->ObserveMultiple(increments, http.ttfb_sum);
  }
  auto add = [](prometheus::Counter* c, uint64_t v) {
    if (v > 0) c->Increment(static_cast<double>(v));
  };
  add(s.errors, http.errors);
  for (std::size_t i = 0; i < http.slow.size() && i < s.slow.size(); ++i)
    add(s.slow[i], http.slow[i]);
  s.in_flight->Set(static_cast<double>(std::max<int64_t>(http.in_flight, 0)));
  add(s.upgrades, http.upgrades);
  for (std::size_t i = 0; i < 3; ++i) add(s.upstream_failures[i], http.upstream_failures[i]);
  add(s.received_bytes, http.bytes_received);
  add(s.sent_bytes, http.bytes_sent);
  add(s.client_aborts, http.client_aborts);
  add(s.rejected, http.rejected);
  if (cache.observed) {
    add(s.cache_commands, cache.commands);
    add(s.cache_hits, cache.hits);
    add(s.cache_misses, cache.misses);
    add(s.cache_errors, cache.errors);
    if (cache.commands > 0) {
      increments.assign(cache.buckets.begin(), cache.buckets.end());
      s.cache_duration->ObserveMultiple(increments, cache.duration_sum);
    }
  }
  if (db.observed) {
    add(s.db_queries, db.queries);
    add(s.db_errors, db.errors);
    if (db.queries > 0) {
      increments.assign(db.buckets.begin(), db.buckets.end());
      s.db_duration->ObserveMultiple(increments, db.duration_sum);
    }
  }
}

}  // namespace kpiscale::sidecar
