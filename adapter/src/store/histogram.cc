#include "kpiscale/adapter/histogram.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "store/varint.h"

namespace kpiscale::adapter {
namespace {

// Index of bucket i after d downscale steps: buckets 2j-1 and 2j at schema s form bucket j at
// s-1, so the index becomes ceil(i / 2^d) (also for negative i).
int32_t DownscaleIndex(int32_t index, int steps) {
  if (steps <= 0) return index;
  const int64_t div = int64_t{1} << steps;
  const int64_t i = index;
  return static_cast<int32_t>(i >= 0 ? (i + div - 1) / div : -((-i) / div));
}

using store_encoding::GetVarint;
using store_encoding::PutVarint;

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

double UpperBound(int32_t index, int schema) {
  return std::exp2(static_cast<double>(index) / std::exp2(schema));
}

}  // namespace

absl::StatusOr<Histogram> Histogram::FromProto(const kpiscale::v1::Sketch& sketch,
                                               const HistogramLimits& limits) {
  if (sketch.schema() < limits.min_schema || sketch.schema() > limits.max_schema) {
    return absl::InvalidArgumentError(absl::StrCat("sketch schema ", sketch.schema(), " outside [",
                                                   limits.min_schema, ", ", limits.max_schema,
                                                   "]"));
  }
  if (!std::isfinite(sketch.sum()) || sketch.sum() < 0) {
    return absl::InvalidArgumentError("sketch sum is negative or not finite");
  }
  if (!std::isfinite(sketch.zero_threshold()) || sketch.zero_threshold() < 0) {
    return absl::InvalidArgumentError("sketch zero_threshold is negative or not finite");
  }
  Histogram h;
  h.schema_ = sketch.schema();
  h.zero_count_ = sketch.zero_count();
  h.sum_ = sketch.sum();
  if (static_cast<std::size_t>(sketch.positive_spans_size()) > limits.max_buckets) {
    return absl::InvalidArgumentError(absl::StrCat("sketch has ", sketch.positive_spans_size(),
                                                   " spans, limit ", limits.max_buckets));
  }
  std::size_t total_len = 0;
  for (const auto& span : sketch.positive_spans()) total_len += span.length();
  if (total_len != static_cast<std::size_t>(sketch.positive_deltas_size())) {
    return absl::InvalidArgumentError(absl::StrCat("sketch spans cover ", total_len,
                                                   " buckets but carry ",
                                                   sketch.positive_deltas_size(), " deltas"));
  }
  if (total_len > limits.max_buckets) {
    return absl::InvalidArgumentError(
        absl::StrCat("sketch has ", total_len, " buckets, limit ", limits.max_buckets));
  }
  h.buckets_.reserve(total_len);
  // Bucket bounds are kept within [2^-40, 2^40] seconds so that dense merging stays small.
  const int64_t max_index = h.schema_ >= 0 ? int64_t{40} << h.schema_ : int64_t{40} >> -h.schema_;
  int64_t index = 0;
  int64_t running = 0;
  int d = 0;
  uint64_t total = h.zero_count_;
  bool first = true;
  for (const auto& span : sketch.positive_spans()) {
    if (first) {
      index = span.offset();
      first = false;
    } else {
      if (span.offset() < 0) return absl::InvalidArgumentError("sketch span offset negative");
      index += span.offset();
    }
    for (uint32_t k = 0; k < span.length(); ++k, ++index) {
      const int64_t delta = sketch.positive_deltas(d++);
      if ((delta > 0 && running > std::numeric_limits<int64_t>::max() - delta) ||
          (delta < 0 && running < std::numeric_limits<int64_t>::min() - delta)) {
        return absl::InvalidArgumentError("sketch bucket count overflows");
      }
      running += delta;
      if (running < 0) return absl::InvalidArgumentError("sketch bucket count negative");
      if (running == 0) continue;
      if (index < -max_index || index > max_index) {
        return absl::InvalidArgumentError(
            absl::StrCat("sketch bucket index ", index, " outside +-", max_index));
      }
      const auto c = static_cast<uint64_t>(running);
      if (total > std::numeric_limits<uint64_t>::max() - c) {
        return absl::InvalidArgumentError("sketch count overflows");
      }
      total += c;
      h.buckets_.emplace_back(static_cast<int32_t>(index), c);
    }
  }
  if (total != sketch.count()) {
    return absl::InvalidArgumentError(absl::StrCat("sketch count ", sketch.count(),
                                                   " differs from zero_count + buckets = ", total));
  }
  h.count_ = total;
  return h;
}

Histogram Histogram::FromBuckets(int schema, uint64_t zero_count, double sum,
                                 std::vector<std::pair<int32_t, uint64_t>> buckets) {
  Histogram h;
  h.schema_ = schema;
  h.zero_count_ = zero_count;
  h.sum_ = sum;
  std::sort(buckets.begin(), buckets.end());
  h.count_ = zero_count;
  for (const auto& [i, c] : buckets) {
    if (c == 0) continue;
    if (!h.buckets_.empty() && h.buckets_.back().first == i) {
      h.buckets_.back().second += c;
    } else {
      h.buckets_.emplace_back(i, c);
    }
    h.count_ += c;
  }
  return h;
}

void Histogram::AppendEncoded(std::string* out) const {
  PutVarint(ZigZag(schema_), out);
  PutVarint(zero_count_, out);
  uint64_t sum_bits = 0;
  std::memcpy(&sum_bits, &sum_, sizeof(sum_bits));
  PutVarint(sum_bits, out);
  PutVarint(buckets_.size(), out);
  int64_t prev = 0;
  for (const auto& [i, c] : buckets_) {
    PutVarint(ZigZag(int64_t{i} - prev), out);
    PutVarint(c, out);
    prev = i;
  }
}

bool Histogram::DecodeFrom(const std::string& in, std::size_t* pos, Histogram* out) {
  uint64_t schema = 0, zero = 0, sum_bits = 0, n = 0;
  if (!GetVarint(in, pos, &schema) || !GetVarint(in, pos, &zero) ||
      !GetVarint(in, pos, &sum_bits) || !GetVarint(in, pos, &n) || n > in.size()) {
    return false;
  }
  Histogram h;
  h.schema_ = static_cast<int>(UnZigZag(schema));
  h.zero_count_ = zero;
  std::memcpy(&h.sum_, &sum_bits, sizeof(sum_bits));
  h.count_ = zero;
  h.buckets_.reserve(n);
  int64_t prev = 0;
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t d = 0, c = 0;
    if (!GetVarint(in, pos, &d) || !GetVarint(in, pos, &c)) return false;
    prev += UnZigZag(d);
    h.buckets_.emplace_back(static_cast<int32_t>(prev), c);
    h.count_ += c;
  }
  *out = std::move(h);
  return true;
}

void Histogram::DownscaleTo(int schema) {
  if (schema >= schema_) return;
  const int steps = schema_ - schema;
  std::vector<std::pair<int32_t, uint64_t>> merged;
  merged.reserve(buckets_.size());
  for (const auto& [i, c] : buckets_) {
    const int32_t j = DownscaleIndex(i, steps);
    if (!merged.empty() && merged.back().first == j) {
      merged.back().second += c;
    } else {
      merged.emplace_back(j, c);
    }
  }
  buckets_ = std::move(merged);
  schema_ = schema;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0 && other.sum_ == 0) return;
  if (count_ == 0 && buckets_.empty() && zero_count_ == 0) {
    *this = other;
    return;
  }
  if (other.schema_ < schema_) DownscaleTo(other.schema_);
  const int steps = other.schema_ - schema_;
  std::vector<std::pair<int32_t, uint64_t>> out;
  out.reserve(buckets_.size() + other.buckets_.size());
  auto a = buckets_.begin();
  auto b = other.buckets_.begin();
  auto push = [&out](int32_t i, uint64_t c) {
    if (!out.empty() && out.back().first == i) {
      out.back().second += c;
    } else {
      out.emplace_back(i, c);
    }
  };
  while (a != buckets_.end() || b != other.buckets_.end()) {
    if (b == other.buckets_.end() ||
        (a != buckets_.end() && a->first <= DownscaleIndex(b->first, steps))) {
      push(a->first, a->second);
      ++a;
    } else {
      push(DownscaleIndex(b->first, steps), b->second);
      ++b;
    }
  }
  buckets_ = std::move(out);
  zero_count_ += other.zero_count_;
  count_ += other.count_;
  sum_ += other.sum_;
}

std::optional<double> Histogram::Quantile(double q) const {
  if (count_ == 0 || !(q >= 0) || q > 1) return std::nullopt;
  // The rank rule of common::LatencySketch (0-based floor(q * (n - 1))), so that the adapter
  // and the sidecar's own sketches agree on the same samples.
  const uint64_t rank =
      std::min(static_cast<uint64_t>(q * static_cast<double>(count_ - 1)), count_ - 1);
  if (rank < zero_count_) return 0.0;
  uint64_t seen = zero_count_;
  for (const auto& [i, c] : buckets_) {
    seen += c;
    if (seen > rank) {
      const double u = UpperBound(i, schema_);
      const double l = UpperBound(i - 1, schema_);
      return 2 * l * u / (l + u);
    }
  }
  return UpperBound(buckets_.back().first, schema_);
}

void HistogramMerger::Add(const Histogram& h) {
  if (h.count() == 0) return;
  if (!started_) {
    started_ = true;
    schema_ = h.schema();
  } else if (h.schema() < schema_) {
    // Re-bucket what is already merged at the coarser schema.
    const int steps = schema_ - h.schema();
    std::vector<uint64_t> dense;
    int32_t new_offset = 0;
    if (!dense_.empty()) {
      new_offset = DownscaleIndex(offset_, steps);
      const int32_t last = DownscaleIndex(offset_ + static_cast<int32_t>(dense_.size()) - 1, steps);
      dense.assign(static_cast<std::size_t>(last - new_offset + 1), 0);
      for (std::size_t k = 0; k < dense_.size(); ++k) {
        const int32_t j = DownscaleIndex(offset_ + static_cast<int32_t>(k), steps);
        dense[static_cast<std::size_t>(j - new_offset)] += dense_[k];
      }
    }
    dense_ = std::move(dense);
    offset_ = new_offset;
    schema_ = h.schema();
  }
  const int steps = h.schema() - schema_;
  zero_count_ += h.zero_count();
  count_ += h.count();
  sum_ += h.sum();
  const auto& b = h.buckets();
  if (b.empty()) return;
  const int32_t lo = DownscaleIndex(b.front().first, steps);
  const int32_t hi = DownscaleIndex(b.back().first, steps);
  if (dense_.empty()) {
    offset_ = lo;
    dense_.assign(static_cast<std::size_t>(hi - lo + 1), 0);
  } else {
    if (lo < offset_) {
      dense_.insert(dense_.begin(), static_cast<std::size_t>(offset_ - lo), 0);
      offset_ = lo;
    }
    const int32_t end = offset_ + static_cast<int32_t>(dense_.size());
    if (hi >= end) dense_.resize(dense_.size() + static_cast<std::size_t>(hi - end + 1), 0);
  }
  for (const auto& [i, c] : b) {
    dense_[static_cast<std::size_t>(DownscaleIndex(i, steps) - offset_)] += c;
  }
}

Histogram HistogramMerger::Finish() const {
  std::vector<std::pair<int32_t, uint64_t>> buckets;
  for (std::size_t k = 0; k < dense_.size(); ++k) {
    if (dense_[k] != 0) buckets.emplace_back(offset_ + static_cast<int32_t>(k), dense_[k]);
  }
  return Histogram::FromBuckets(schema_, zero_count_, sum_, std::move(buckets));
}

}  // namespace kpiscale::adapter
