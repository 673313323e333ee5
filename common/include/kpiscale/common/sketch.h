#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/report.pb.h"

namespace kpiscale::common {

/// Index of the Prometheus native-histogram bucket holding v > 0 at the given schema (0..8):
/// bucket i covers (2^((i-1)/2^schema), 2^(i/2^schema)]. Uses frexp and a table, no log().
int32_t NativeBucketIndex(double v, int schema);

/// Upper bound of bucket `index` at `schema`: 2^(index / 2^schema).
double NativeBucketUpperBound(int32_t index, int schema);

/// Limits applied when a sketch arrives from outside the process.
struct SketchLimits {
  int min_schema = 0;
  int max_schema = 8;
  std::size_t max_buckets = 4096;
};

/// A mergeable latency distribution (a DDSketch pinned to native-histogram buckets).
///
/// Values are seconds. Values at or below the zero threshold land in the zero bucket. Count and
/// sum are exact. Quantile() returns a value within a relative error of 2^(2^-schema) - 1 of the
/// true rank's value for any distribution (schema 5: ≤ 1.09%), as long as no downscaling
/// happened; every downscale step doubles the bucket width.
/// When more than max_buckets buckets are in use the sketch downscales (halves its resolution)
/// until it fits.
///
/// Thread-safety: none; one writer, or external locking.
class LatencySketch {
 public:
  static constexpr int kDefaultSchema = 5;
  static constexpr std::size_t kDefaultMaxBuckets = 160;
  static constexpr double kDefaultZeroThreshold = 1e-9;

  explicit LatencySketch(int schema = kDefaultSchema, std::size_t max_buckets = kDefaultMaxBuckets,
                         double zero_threshold = kDefaultZeroThreshold);

  /// Records one value. NaN and negative values are ignored (and counted in rejected()).
  void Add(double seconds) { AddN(seconds, 1); }
  void AddN(double seconds, uint64_t n);

  /// Adds other's buckets; if schemas differ, the finer one is downscaled first.
  void Merge(const LatencySketch& other);

  /// The q-quantile (0 ≤ q ≤ 1), or nullopt when the sketch is empty.
  std::optional<double> Quantile(double q) const;

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }
  uint64_t zero_count() const { return zero_count_; }
  int schema() const { return schema_; }
  double zero_threshold() const { return zero_threshold_; }
  uint64_t rejected() const { return rejected_; }
  /// Number of non-empty positive buckets.
  std::size_t bucket_count() const;
  bool empty() const { return count_ == 0; }
  void Clear();

  /// Non-empty buckets as (index, count), ascending by index.
  std::vector<std::pair<int32_t, uint64_t>> Buckets() const;

  void ToProto(kpiscale::v1::Sketch* out) const;
  /// Validates (schema range, bucket count, consistent counts) and rebuilds a sketch.
  static absl::StatusOr<LatencySketch> FromProto(const kpiscale::v1::Sketch& in,
                                                 const SketchLimits& limits = SketchLimits{});

 private:
  void Downscale(int steps);

  int schema_;
  std::size_t max_buckets_;
  double zero_threshold_;
  uint64_t count_ = 0;
  uint64_t zero_count_ = 0;
  uint64_t rejected_ = 0;
  double sum_ = 0;
  /// Dense counts for indices [offset_, offset_ + counts_.size()).
  int32_t offset_ = 0;
  std::vector<uint64_t> counts_;
};

}  // namespace kpiscale::common
