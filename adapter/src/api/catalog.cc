#include "kpiscale/adapter/catalog.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "kpiscale/common/quantity.h"

namespace kpiscale::adapter {
namespace {

std::vector<MetricDef> BuildCatalog() {
  std::vector<MetricDef> c = {
      {"http_requests_per_second", Signal::kHttp, MetricKind::kRate, std::nullopt},
      {"http_requests_in_flight", Signal::kHttp, MetricKind::kInFlight, std::nullopt},
      {"http_errors_ratio", Signal::kHttp, MetricKind::kErrorRatio, std::nullopt},
      {"http_request_duration_seconds", Signal::kHttp, MetricKind::kQuantile, std::nullopt},
      {"http_slo_violations_ratio", Signal::kHttp, MetricKind::kSloRatio, std::nullopt},
      {"cache_hit_ratio", Signal::kCache, MetricKind::kHitRatio, std::nullopt},
      {"cache_requests_per_second", Signal::kCache, MetricKind::kRate, std::nullopt},
      {"cache_command_duration_seconds", Signal::kCache, MetricKind::kQuantile, std::nullopt},
      {"db_queries_per_second", Signal::kDb, MetricKind::kRate, std::nullopt},
      {"db_query_duration_seconds", Signal::kDb, MetricKind::kQuantile, std::nullopt},
      {"db_errors_ratio", Signal::kDb, MetricKind::kErrorRatio, std::nullopt},
  };
  // Aliases with the quantile in the name, for HPAs that cannot set a metric selector.
  const std::pair<const char*, Signal> bases[] = {{"http_request_duration", Signal::kHttp},
                                                  {"cache_command_duration", Signal::kCache},
                                                  {"db_query_duration", Signal::kDb}};
  const std::pair<const char*, double> qs[] = {{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}};
  for (const auto& [base, signal] : bases) {
    for (const auto& [suffix, q] : qs) {
      c.push_back({absl::StrCat(base, "_", suffix, "_seconds"), signal, MetricKind::kQuantile, q});
    }
  }
  return c;
}

const SignalTotals& TotalsOf(const PodView& pod, Signal s) {
  switch (s) {
    case Signal::kHttp:
      return pod.http;
    case Signal::kCache:
      return pod.cache;
    case Signal::kDb:
      return pod.db;
  }
  return pod.http;
}

int64_t WindowSeconds(int64_t observed_ms) {
  return std::max<int64_t>(1, (observed_ms + 500) / 1000);
}

const ThresholdTotal* FindThreshold(const SignalTotals& t, double threshold) {
  for (const auto& s : t.slo) {
    if (std::fabs(s.threshold_seconds - threshold) <= 1e-9 * std::max(1.0, threshold)) return &s;
  }
  return nullptr;
}

MetricValue Ratio(uint64_t num, uint64_t den) {
  MetricValue v;
  v.quantity = common::Quantity::FromRatio(num, den).ToString();
  v.value = static_cast<double>(num) / static_cast<double>(den);
  return v;
}

MetricValue FromDouble(double d) {
  // Sums of float durations carry noise in the last bits (3 x 0.1 = 0.30000000000000004);
  // quantities round up to the next nano, so snap to the nearest nano first.
  if (std::isfinite(d) && std::fabs(d) < 9e6) d = std::round(d * 1e9) / 1e9;
  MetricValue v;
  v.quantity = common::FormatMetricQuantity(d);
  v.value = d;
  return v;
}

std::optional<double> ParseNumber(std::string_view text, bool allow_units) {
  std::string s(text);
  double scale = 1;
  if (allow_units) {
    if (s.size() > 2 && s.compare(s.size() - 2, 2, "ms") == 0) {
      scale = 1e-3;
      s.resize(s.size() - 2);
    } else if (s.size() > 1 && s.back() == 's') {
      s.pop_back();
    }
  }
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v * scale;
}

}  // namespace

const std::vector<MetricDef>& Catalog() {
  static const std::vector<MetricDef>* const catalog = new std::vector<MetricDef>(BuildCatalog());
  return *catalog;
}

const MetricDef* FindMetric(std::string_view name) {
  for (const auto& m : Catalog()) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::string FormatSeriesNumber(double v) {
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return "0";
  return std::string(buf, ptr);
}

absl::StatusOr<std::optional<SeriesChoice>> ChooseSeries(const MetricDef& metric,
                                                         const common::LabelSelector& selector,
                                                         const common::Labels& extra_labels) {
  SeriesChoice choice;
  choice.labels = extra_labels;
  std::string key;
  if (metric.kind == MetricKind::kQuantile && !metric.fixed_quantile) key = "quantile";
  if (metric.kind == MetricKind::kSloRatio) key = "threshold";
  if (metric.fixed_quantile) choice.quantile = *metric.fixed_quantile;
  if (key.empty()) {
    if (!selector.Matches(choice.labels)) return std::optional<SeriesChoice>();
    return std::optional<SeriesChoice>(std::move(choice));
  }
  std::optional<std::string> pinned;
  for (const auto& r : selector.requirements()) {
    if (r.key != key) continue;
    if ((r.op == common::LabelRequirement::Op::kEquals ||
         r.op == common::LabelRequirement::Op::kIn) &&
        r.values.size() == 1) {
      pinned = r.values.front();
    }
  }
  if (pinned) {
    const bool is_threshold = key == "threshold";
    auto v = ParseNumber(*pinned, is_threshold);
    if (!v || *v < 0 || (!is_threshold && *v > 1) || (is_threshold && *v == 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid ", key, " \"", *pinned, "\": ",
          is_threshold ? "want a positive number of seconds" : "want a number between 0 and 1"));
    }
    (is_threshold ? choice.threshold : choice.quantile) = *v;
    choice.labels[key] = *pinned;
    if (!selector.Matches(choice.labels)) return std::optional<SeriesChoice>();
    return std::optional<SeriesChoice>(std::move(choice));
  }
  choice.labels[key] = FormatSeriesNumber(key == "threshold" ? choice.threshold : choice.quantile);
  if (selector.Matches(choice.labels)) return std::optional<SeriesChoice>(std::move(choice));
  if (key == "quantile") {
    for (double q : {0.5, 0.9, 0.95, 0.99, 0.999}) {
      choice.labels[key] = FormatSeriesNumber(q);
      choice.quantile = q;
      if (selector.Matches(choice.labels)) return std::optional<SeriesChoice>(std::move(choice));
    }
  }
  return std::optional<SeriesChoice>();
}

std::optional<MetricValue> EvaluatePod(const MetricDef& metric, const SeriesChoice& series,
                                       const PodView& pod) {
  return EvaluateGroup(metric, series, {&pod});
}

std::optional<MetricValue> EvaluateGroup(const MetricDef& metric, const SeriesChoice& series,
                                         const std::vector<const PodView*>& pods) {
  int64_t timestamp_ms = 0;
  int64_t max_observed_ms = 0;
  int64_t common_observed_ms = -1;
  bool same_observed = true;
  uint64_t events = 0, errors = 0, hits = 0, misses = 0, slow = 0, slo_requests = 0;
  double rate = 0, in_flight = 0;
  bool any = false;
  bool any_threshold = false;
  HistogramMerger merger;
  const Histogram* single = nullptr;  // one pod: read its buckets without copying them
  for (const PodView* pod : pods) {
    const SignalTotals& t = TotalsOf(*pod, metric.signal);
    if (!t.present || t.observed_ms <= 0) continue;
    any = true;
    timestamp_ms = std::max(timestamp_ms, pod->newest_end_ms);
    max_observed_ms = std::max(max_observed_ms, t.observed_ms);
    if (common_observed_ms < 0) common_observed_ms = t.observed_ms;
    if (common_observed_ms != t.observed_ms) same_observed = false;
    const double seconds = static_cast<double>(t.observed_ms) / 1000.0;
    events += t.events;
    errors += t.errors;
    hits += t.hits;
    misses += t.misses;
    rate += static_cast<double>(t.events) / seconds;
    in_flight += t.duration_sum_seconds / seconds;
    switch (metric.kind) {
      case MetricKind::kQuantile:
        if (pods.size() == 1) {
          single = &t.latency;
        } else {
          merger.Add(t.latency);
        }
        break;
      case MetricKind::kSloRatio:
        if (const ThresholdTotal* th = FindThreshold(t, series.threshold)) {
          any_threshold = true;
          slow += th->slow;
          slo_requests += th->requests;
        }
        break;
      default:
        break;
    }
  }
  if (!any) return std::nullopt;
  std::optional<MetricValue> out;
  switch (metric.kind) {
    case MetricKind::kRate:
      if (same_observed && events < (uint64_t{1} << 53)) {
        out = Ratio(events * 1000, static_cast<uint64_t>(common_observed_ms));
      } else {
        out = FromDouble(rate);
      }
      break;
    case MetricKind::kInFlight:
      out = FromDouble(in_flight);
      break;
    case MetricKind::kErrorRatio:
      if (events > 0) out = Ratio(errors, events);
      break;
    case MetricKind::kHitRatio:
      if (hits + misses > 0) out = Ratio(hits, hits + misses);
      break;
    case MetricKind::kSloRatio:
      if (any_threshold && slo_requests > 0) out = Ratio(slow, slo_requests);
      break;
    case MetricKind::kQuantile: {
      std::optional<double> q;
      if (single != nullptr) {
        q = single->Quantile(series.quantile);
      } else if (!merger.empty()) {
        q = merger.Finish().Quantile(series.quantile);
      }
      if (q) out = FromDouble(*q);
      break;
    }
  }
  if (!out) return std::nullopt;
  out->timestamp_ms = timestamp_ms;
  out->window_seconds = WindowSeconds(max_observed_ms);
  return out;
}

}  // namespace kpiscale::adapter
