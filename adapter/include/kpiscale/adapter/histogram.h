#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/report.pb.h"

namespace kpiscale::adapter {

/// Limits applied to a sketch that arrives in a report.
struct HistogramLimits {
  int min_schema = -4;
  int max_schema = 8;
  std::size_t max_buckets = 4096;
};

/// Exact bucket counts in the Prometheus native-histogram layout (bucket i at schema s covers
/// (2^((i-1)/2^s), 2^(i/2^s)] seconds), as the adapter keeps them: sparse and sorted per window and
/// per pod, dense while merging many pods. Counts are exact integers, so merging is adding and the
/// only error is the bucket width (2^(2^-s) - 1, 1.09% at schema 5).
/// Thread-safety: none; values are copied into immutable snapshots before readers see them.
class Histogram {
 public:
  Histogram() = default;

  /// Decodes and validates a report sketch (schema range, span/delta consistency, bucket count,
  /// count = zero_count + sum of buckets, finite non-negative sum).
  static absl::StatusOr<Histogram> FromProto(const kpiscale::v1::Sketch& sketch,
                                             const HistogramLimits& limits = {});

  /// Compact byte form (varints), used to keep a window's buckets in a few dozen bytes.
  void AppendEncoded(std::string* out) const;
  /// Reads what AppendEncoded wrote at *pos and advances *pos. False on malformed input.
  static bool DecodeFrom(const std::string& in, std::size_t* pos, Histogram* out);

  /// Adds other's counts. When schemas differ the result takes the coarser one (buckets of the
  /// finer side are merged exactly: index i maps to ceil(i / 2^d)).
  void Merge(const Histogram& other);

  /// The q-quantile with common::LatencySketch's rank rule (0-based rank floor(q * (count - 1))):
  /// the value inside the bucket holding that rank that minimises the relative error
  /// (2lu / (l + u)); 0 when the rank is in the zero bucket; nullopt when empty or q outside
  /// [0, 1].
  std::optional<double> Quantile(double q) const;

  uint64_t count() const { return count_; }
  uint64_t zero_count() const { return zero_count_; }
  double sum() const { return sum_; }
  int schema() const { return schema_; }
  bool empty() const { return count_ == 0; }
  /// Non-empty buckets, ascending by index.
  const std::vector<std::pair<int32_t, uint64_t>>& buckets() const { return buckets_; }

  /// Builds from explicit buckets (tests, benchmarks and the write path).
  static Histogram FromBuckets(int schema, uint64_t zero_count, double sum,
                               std::vector<std::pair<int32_t, uint64_t>> buckets);

  /// Approximate heap bytes held.
  std::size_t HeapBytes() const { return buckets_.capacity() * sizeof(buckets_[0]); }

 private:
  void DownscaleTo(int schema);

  int schema_ = 0;
  uint64_t zero_count_ = 0;
  uint64_t count_ = 0;
  double sum_ = 0;
  std::vector<std::pair<int32_t, uint64_t>> buckets_;
};

/// Merges many histograms in one pass through a dense array (used for workload answers).
/// Thread-safety: none.
class HistogramMerger {
 public:
  void Add(const Histogram& h);
  /// The merged result (sparse).
  Histogram Finish() const;
  bool empty() const { return count_ == 0; }

 private:
  bool started_ = false;
  int schema_ = 0;
  uint64_t zero_count_ = 0;
  uint64_t count_ = 0;
  double sum_ = 0;
  int32_t offset_ = 0;
  std::vector<uint64_t> dense_;
};

}  // namespace kpiscale::adapter
