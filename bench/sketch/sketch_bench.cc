// LatencySketch insert / merge / quantile against Prometheus classic-histogram inserts.
// Values: log-uniform between 1 ms and 60 s (fixed seed), the spread named in issue 2.
#include <benchmark/benchmark.h>
#include <prometheus/histogram.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "kpiscale/common/sketch.h"
#include "proto/report.pb.h"

namespace {

using kpiscale::common::LatencySketch;

constexpr std::size_t kValueCount = std::size_t{1} << 16;  // power of two for cheap wrap-around
// Cap large enough that schema 5 holds the whole 1 ms – 60 s spread (~508 buckets).
constexpr std::size_t kUncapped = 1024;

const std::vector<double>& Values() {
  static const std::vector<double> values = [] {
    std::mt19937_64 rng(2026);
    std::uniform_real_distribution<double> exponent(std::log2(0.001), std::log2(60.0));
    std::vector<double> v(kValueCount);
    for (double& x : v) {
      x = std::exp2(exponent(rng));
    }
    return v;
  }();
  return values;
}

LatencySketch Filled(std::size_t cap, uint64_t seed, std::size_t n) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(std::log2(0.001), std::log2(60.0));
  LatencySketch s(LatencySketch::kDefaultSchema, cap);
  for (std::size_t i = 0; i < n; ++i) {
    s.Add(std::exp2(exponent(rng)));
  }
  return s;
}

// Insert with the default cap (160 buckets: the spread settles at schema 3) and uncapped
// (schema 5 throughout).
void BM_SketchInsert(benchmark::State& state) {
  const std::vector<double>& values = Values();
  LatencySketch s(LatencySketch::kDefaultSchema, static_cast<std::size_t>(state.range(0)));
  for (double v : values) {
    s.Add(v);  // warm: range and schema settled
  }
  std::size_t i = 0;
  for (auto _ : state) {
    s.Add(values[i++ & (kValueCount - 1)]);
  }
  benchmark::DoNotOptimize(s.count());
  state.counters["schema"] = s.schema();
  state.counters["buckets"] = static_cast<double>(s.bucket_count());
}
BENCHMARK(BM_SketchInsert)->Arg(LatencySketch::kDefaultMaxBuckets)->Arg(kUncapped);

void BM_NativeBucketIndex(benchmark::State& state) {
  const std::vector<double>& values = Values();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        kpiscale::common::NativeBucketIndex(values[i++ & (kValueCount - 1)], 5));
  }
}
BENCHMARK(BM_NativeBucketIndex);

// The log() formulation the table replaces: ceil(log2(v) * 2^schema).
void BM_IndexWithLog(benchmark::State& state) {
  const std::vector<double>& values = Values();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        static_cast<int32_t>(std::ceil(std::log2(values[i++ & (kValueCount - 1)]) * 32)));
  }
}
BENCHMARK(BM_IndexWithLog);

// Merging one pod's full-spread sketch into a workload accumulator.
void BM_SketchMerge(benchmark::State& state) {
  const auto cap = static_cast<std::size_t>(state.range(0));
  const LatencySketch pod = Filled(cap, 7, 100000);
  LatencySketch acc = Filled(cap, 8, 100000);
  for (auto _ : state) {
    acc.Merge(pod);
  }
  benchmark::DoNotOptimize(acc.count());
  state.counters["buckets"] = static_cast<double>(pod.bucket_count());
}
BENCHMARK(BM_SketchMerge)->Arg(LatencySketch::kDefaultMaxBuckets)->Arg(kUncapped);

void BM_SketchQuantile(benchmark::State& state) {
  const LatencySketch s = Filled(static_cast<std::size_t>(state.range(0)), 9, 100000);
  const double q = static_cast<double>(state.range(1)) / 1000.0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.Quantile(q));
  }
  state.counters["buckets"] = static_cast<double>(s.bucket_count());
}
BENCHMARK(BM_SketchQuantile)
    ->Args({LatencySketch::kDefaultMaxBuckets, 500})
    ->Args({LatencySketch::kDefaultMaxBuckets, 990})
    ->Args({kUncapped, 500})
    ->Args({kUncapped, 990});

void BM_SketchToProto(benchmark::State& state) {
  const LatencySketch s = Filled(LatencySketch::kDefaultMaxBuckets, 10, 100000);
  kpiscale::v1::Sketch wire;
  for (auto _ : state) {
    s.ToProto(&wire);
    benchmark::DoNotOptimize(wire.positive_deltas_size());
  }
}
BENCHMARK(BM_SketchToProto);

void BM_SketchFromProto(benchmark::State& state) {
  const LatencySketch s = Filled(LatencySketch::kDefaultMaxBuckets, 11, 100000);
  kpiscale::v1::Sketch wire;
  s.ToProto(&wire);
  for (auto _ : state) {
    auto back = LatencySketch::FromProto(wire);
    benchmark::DoNotOptimize(back.ok());
  }
}
BENCHMARK(BM_SketchFromProto);

// --- Peer: Prometheus classic histogram with the default 11 `le` bounds (client_golang's
// DefBuckets). A plain counts array plus sum, bucket found by linear or binary search; `le` is
// inclusive, so the bucket is the first bound >= v (the last slot is +Inf).
constexpr std::array<double, 11> kDefaultBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5,   1,    2.5,   5,    10};

struct ClassicHistogram {
  std::array<uint64_t, kDefaultBounds.size() + 1> counts{};
  double sum = 0;
  uint64_t count = 0;
};

void BM_ClassicInsertLinear(benchmark::State& state) {
  const std::vector<double>& values = Values();
  ClassicHistogram h;
  std::size_t i = 0;
  for (auto _ : state) {
    const double v = values[i++ & (kValueCount - 1)];
    std::size_t b = 0;
    while (b < kDefaultBounds.size() && v > kDefaultBounds[b]) {
      ++b;
    }
    ++h.counts[b];
    h.sum += v;
    ++h.count;
  }
  benchmark::DoNotOptimize(h.count);
}
BENCHMARK(BM_ClassicInsertLinear);

void BM_ClassicInsertBinary(benchmark::State& state) {
  const std::vector<double>& values = Values();
  ClassicHistogram h;
  std::size_t i = 0;
  for (auto _ : state) {
    const double v = values[i++ & (kValueCount - 1)];
    const auto b = static_cast<std::size_t>(
        std::lower_bound(kDefaultBounds.begin(), kDefaultBounds.end(), v) - kDefaultBounds.begin());
    ++h.counts[b];
    h.sum += v;
    ++h.count;
  }
  benchmark::DoNotOptimize(h.count);
}
BENCHMARK(BM_ClassicInsertBinary);

// prometheus-cpp 1.0.1's Histogram::Observe (thread-safe: atomic counters and a CAS on the sum).
void BM_PrometheusCppObserve(benchmark::State& state) {
  const std::vector<double>& values = Values();
  prometheus::Histogram h(
      prometheus::Histogram::BucketBoundaries(kDefaultBounds.begin(), kDefaultBounds.end()));
  std::size_t i = 0;
  for (auto _ : state) {
    h.Observe(values[i++ & (kValueCount - 1)]);
  }
}
BENCHMARK(BM_PrometheusCppObserve);

}  // namespace

BENCHMARK_MAIN();
