#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/report.pb.h"

namespace kpiscale::common {
namespace internal {
struct SketchIndexTable;
}  // namespace internal

/// Smallest and largest schema a LatencySketch or a wire sketch may use (Prometheus' range).
inline constexpr int kMinSketchSchema = -4;
inline constexpr int kMaxSketchSchema = 8;

/// Largest value a LatencySketch accepts (seconds, ~31 million years). Bounding values keeps the
/// sum finite: count ≤ INT64_MAX, so sum ≤ 9.3e33 after any number of adds and merges.
inline constexpr double kMaxSketchValue = 1e15;

/// Index of the Prometheus native-histogram bucket holding v > 0 at the given schema (-4..8):
/// bucket i covers (2^((i-1)/2^schema), 2^(i/2^schema)]. No log(): the exponent and the top
/// mantissa bits (what frexp splits; frexp itself only for denormals) index a per-schema table,
/// then one comparison settles the bucket. Boundaries are exp2(k/2^schema) from libm.
/// Values within an ULP of a boundary may index one bucket off from Prometheus' own tables.
/// Precondition: v finite and > 0, schema in range (checked in debug builds). Thread-safe.
int32_t NativeBucketIndex(double v, int schema);

/// Upper bound of bucket `index` at `schema`: 2^(index / 2^schema) (+inf past the double range,
/// 0 below it). Consistent with NativeBucketIndex: NativeBucketIndex(NativeBucketUpperBound(i))
/// == i for every finite, normal bound. Thread-safe.
double NativeBucketUpperBound(int32_t index, int schema);

/// Worst relative error |estimate - true| / true of a LatencySketch quantile at `schema`:
/// (γ - 1) / (γ + 1) with γ = 2^(2^-schema). Schema 5: 1.083%; schema 6: 0.542%; schema 3: 4.33%.
double SketchRelativeError(int schema);

/// Limits applied when a sketch arrives from outside the process.
struct SketchLimits {
  int min_schema = kMinSketchSchema;
  int max_schema = kMaxSketchSchema;
  /// Most buckets (sum of span lengths) accepted on the wire; also the bucket cap of the
  /// rebuilt sketch.
  std::size_t max_buckets = 4096;
};

/// A mergeable latency distribution (a DDSketch pinned to native-histogram buckets).
///
/// Values are seconds. Values at or below the zero threshold land in the zero bucket; all other
/// values land in bucket NativeBucketIndex(v, schema). Count is exact and sum is the plain
/// double sum of the values (neither is estimated from buckets). Quantile(q) estimates the sample
/// of 0-based rank floor(q * (count - 1)) in sorted order: it finds the bucket (γ^(i-1), γ^i]
/// holding that rank and returns 2γ^i / (γ + 1), clamped to the observed min and max (q = 0 and q =
/// 1 return them exactly when they were observed by Add rather than derived from wire buckets). The
/// relative error against the true sample is therefore at most SketchRelativeError(schema) = (γ -
/// 1) / (γ + 1) for ANY distribution — at the default schema 5 (γ = 2^(1/32)) that is ≤ 1.083%.
/// Ranks in the zero bucket return max(0, min) (absolute error ≤ zero threshold).
///
/// Bucket cap: the sketch keeps its buckets as one dense run from the lowest to the highest
/// non-empty index. When that run would exceed max_buckets, the sketch downscales (schema - k,
/// bucket i → ((i - 1) >> k) + 1) until it fits, so bucket_count() ≤ max_buckets; each
/// step doubles γ and hence roughly doubles the error bound (schema() reports the current one).
/// At the default cap of 512, schema 5 covers 16 octaves (e.g. 1 ms – 65 s), so request
/// latencies keep the 1.1% bound; wider data is held at a lower schema. The cap cannot be enforced
/// below schema -4 (at most ~140 buckets cover every double there).
///
/// Merge adds counts; when schemas differ, the finer sketch's buckets are downscaled to the
/// coarser schema first. For sketches with equal caps and zero thresholds, merging is exactly
/// associative and commutative for bucket counts, count, zero count, schema, min and max (the
/// double sum up to rounding), also when the cap forces downscaling on the way.
///
/// Thread-safety: none; one writer, or external locking. Copyable and movable.
class LatencySketch {
 public:
  static constexpr int kDefaultSchema = 5;
  static constexpr std::size_t kDefaultMaxBuckets = 512;
  static constexpr double kDefaultZeroThreshold = 1e-9;

  /// Out-of-range arguments are clamped: schema to [-4, 8], max_buckets to ≥ 1, a negative or
  /// NaN zero_threshold to 0 (an infinite one to the largest double).
  explicit LatencySketch(int schema = kDefaultSchema, std::size_t max_buckets = kDefaultMaxBuckets,
                         double zero_threshold = kDefaultZeroThreshold);

  /// Records one value. NaN, negative and values above kMaxSketchValue (including +inf) are
  /// ignored and counted in rejected(), as are additions that would take count() past INT64_MAX.
  void Add(double seconds) { AddN(seconds, 1); }
  void AddN(double seconds, uint64_t n);

  /// Adds other's buckets; if schemas differ, the finer one is downscaled first. The zero
  /// threshold becomes the larger of the two; buckets entirely at or below it join the zero
  /// bucket (a bucket straddling it stays a bucket). An empty sketch is the identity: merging
  /// into one copies other's schema and zero threshold (the cap stays this sketch's). A merge that
  /// would take count() past INT64_MAX is refused and counted in rejected().
  void Merge(const LatencySketch& other);

  /// The q-quantile (q clamped to [0, 1]), or nullopt when the sketch is empty or q is NaN.
  std::optional<double> Quantile(double q) const;

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  uint64_t zero_count() const { return zero_count_; }
  int schema() const { return schema_; }
  std::size_t max_buckets() const { return max_buckets_; }
  double zero_threshold() const { return zero_threshold_; }
  uint64_t rejected() const { return rejected_; }
  /// Smallest / largest recorded value (exact for Add; for sketches from the wire, the bounds of
  /// the lowest / highest non-empty bucket). nullopt when empty.
  std::optional<double> min() const;
  std::optional<double> max() const;
  /// Number of non-empty positive buckets.
  std::size_t bucket_count() const;
  bool empty() const { return count_ == 0; }
  /// Forgets all values; keeps the configured schema, cap and zero threshold.
  void Clear();

  /// Non-empty buckets as (index, count), ascending by index.
  std::vector<std::pair<int32_t, uint64_t>> Buckets() const;

  /// Writes the native-histogram layout: spans over non-empty buckets (gaps of up to two empty
  /// buckets are written inline as zero counts), deltas relative to the previous bucket.
  void ToProto(kpiscale::v1::Sketch* out) const;
  /// Validates hostile input (schema range, finite non-negative zero threshold, a sum in
  /// [0, 2 * count * kMaxSketchValue], span
  /// offsets and lengths, bucket indices inside the double range, cumulative counts never
  /// negative, count == zero_count + Σ buckets without overflow, at most limits.max_buckets
  /// buckets) and rebuilds a sketch with cap limits.max_buckets. Errors are InvalidArgument
  /// naming the offending field.
  static absl::StatusOr<LatencySketch> FromProto(const kpiscale::v1::Sketch& in,
                                                 const SketchLimits& limits = SketchLimits{});

 private:
  void AddToBucket(int32_t index, uint64_t n);
  /// Makes counts_ cover source indices [src_lo, src_hi] at src_schema, downscaling this sketch
  /// first if the source is coarser or the union would exceed the cap. Returns k such that
  /// source index i maps to ((i - 1) >> k) + 1 here.
  int Reserve(int src_schema, int64_t src_lo, int64_t src_hi);
  /// Drops empty buckets at both ends so offset_ and the run length stay tight.
  void TrimEmptyEnds();
  void Downscale(int steps);
  /// Moves every bucket whose upper bound is ≤ `threshold` into the zero bucket.
  void RaiseZeroThreshold(double threshold);
  void SetSchema(int schema);

  int configured_schema_;
  double configured_zero_threshold_;

  int schema_;
  std::size_t max_buckets_;
  double zero_threshold_;
  uint64_t count_ = 0;
  uint64_t zero_count_ = 0;
  uint64_t rejected_ = 0;
  double sum_ = 0;
  double min_ = std::numeric_limits<double>::infinity();
  double max_ = -std::numeric_limits<double>::infinity();
  /// False once data from the wire (bucket bounds, not observed values) entered min_/max_.
  bool extremes_exact_ = true;
  /// Index table of max(schema, 0), owned by a function-local static.
  const internal::SketchIndexTable* table_ = nullptr;
  /// Dense counts for indices [offset_, offset_ + counts_.size()).
  int32_t offset_ = 0;
  std::vector<uint64_t> counts_;
};

}  // namespace kpiscale::common
