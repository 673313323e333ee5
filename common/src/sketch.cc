#include "kpiscale/common/sketch.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/common/status.h"

namespace kpiscale::common {
namespace internal {

// Per-schema index table (schema 0..8, n = 2^schema buckets per octave). For a normal double
// with 52-bit mantissa m, bucket boundaries inside the octave sit at mantissas bound[j] of
// 2^(j/n), j = 0..n-1 (bound[n] is a sentinel above every mantissa). The octave is cut into 2n
// equal cells by the top schema+1 mantissa bits; boundaries are at least ln2/n apart in the
// mantissa fraction, wider than a cell (1/2n), so each cell holds at most one boundary and
// first[cell] = #{j : bound[j] < cell start} leaves one comparison to finish the search.
struct SketchIndexTable {
  int schema = 0;
  int32_t n = 1;
  int cell_shift = 52;
  std::vector<uint64_t> bound;
  std::vector<uint16_t> first;
  // 2^(j/n) for j = 0..n-1, the exact doubles whose mantissas are in `bound`.
  std::vector<double> pow;
};

}  // namespace internal

namespace {

using internal::SketchIndexTable;

constexpr uint64_t kMantissaMask = (uint64_t{1} << 52) - 1;
constexpr uint64_t kMaxCount = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
// Schema-0 indices of the smallest denormal (2^-1074 lies in bucket -1074) and of DBL_MAX
// (bucket 1024), widened by one for slack.
constexpr int64_t kMinIndexSchema0 = -1075;
constexpr int64_t kMaxIndexSchema0 = 1024;

SketchIndexTable BuildTable(int schema) {
  SketchIndexTable t;
  t.schema = schema;
  t.n = int32_t{1} << schema;
  t.cell_shift = 52 - (schema + 1);
  t.bound.resize(static_cast<std::size_t>(t.n) + 1);
  t.pow.resize(static_cast<std::size_t>(t.n));
  for (int32_t j = 0; j < t.n; ++j) {
    const double p = std::exp2(static_cast<double>(j) / static_cast<double>(t.n));
    t.pow[static_cast<std::size_t>(j)] = p;
    uint64_t bits = 0;
    std::memcpy(&bits, &p, sizeof bits);
    t.bound[static_cast<std::size_t>(j)] = bits & kMantissaMask;
  }
  t.bound[static_cast<std::size_t>(t.n)] = uint64_t{1} << 52;
  const std::size_t cells = std::size_t{2} << schema;
  t.first.resize(cells);
  for (std::size_t c = 0; c < cells; ++c) {
    const uint64_t start = static_cast<uint64_t>(c) << t.cell_shift;
    uint16_t k = 0;
    while (k < t.n && t.bound[k] < start) {
      ++k;
    }
    t.first[c] = k;
  }
  return t;
}

const SketchIndexTable& TableFor(int schema) {
  static const std::array<SketchIndexTable, kMaxSketchSchema + 1> tables = [] {
    std::array<SketchIndexTable, kMaxSketchSchema + 1> all;
    for (int s = 0; s <= kMaxSketchSchema; ++s) {
      all[static_cast<std::size_t>(s)] = BuildTable(s);
    }
    return all;
  }();
  return tables[static_cast<std::size_t>(std::clamp(schema, 0, kMaxSketchSchema))];
}

// Index of v (finite, > 0) at table t's schema (≥ 0).
inline int32_t IndexWithTable(const SketchIndexTable& t, double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  const auto biased = static_cast<int32_t>((bits >> 52) & 0x7ff);
  if (biased == 0) {
    // Denormal: scaling by 2^64 is exact and makes it normal; shift the index back by 64 octaves.
    return IndexWithTable(t, v * 0x1p64) - 64 * t.n;
  }
  const uint64_t m = bits & kMantissaMask;
  const uint32_t k0 = t.first[m >> t.cell_shift];
  const int32_t k = static_cast<int32_t>(k0) + (m > t.bound[k0] ? 1 : 0);
  // frexp exponent is biased - 1022; bucket = (exp - 1) * n + k.
  return (biased - 1023) * t.n + k;
}

// Bucket index at schema - k of bucket i at schema: ((i - 1) >> k) + 1, i.e. ceil(i / 2^k).
inline int64_t DownscaleIndex(int64_t i, int k) { return ((i - 1) >> k) + 1; }

void IndexRange(int schema, int64_t* lo, int64_t* hi) {
  if (schema >= 0) {
    *lo = kMinIndexSchema0 * (int64_t{1} << schema);
    *hi = kMaxIndexSchema0 * (int64_t{1} << schema);
  } else {
    *lo = DownscaleIndex(kMinIndexSchema0, -schema);
    *hi = DownscaleIndex(kMaxIndexSchema0, -schema);
  }
}

double UpperBound(int64_t index, int schema) {
  if (schema <= 0) {
    const int64_t e = index * (int64_t{1} << -schema);
    if (e > 2000) {
      return std::numeric_limits<double>::infinity();
    }
    if (e < -2000) {
      return 0.0;
    }
    return std::ldexp(1.0, static_cast<int>(e));
  }
  const SketchIndexTable& t = TableFor(schema);
  // Floor division so the remainder is in [0, n).
  int64_t q = index / t.n;
  int64_t r = index % t.n;
  if (r < 0) {
    r += t.n;
    --q;
  }
  if (q > 2000) {
    return std::numeric_limits<double>::infinity();
  }
  if (q < -2000) {
    return 0.0;
  }
  return std::ldexp(t.pow[static_cast<std::size_t>(r)], static_cast<int>(q));
}

double LowerBound(int64_t index, int schema) { return UpperBound(index - 1, schema); }

absl::Status Invalid(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("sketch: ", what));
}

}  // namespace

int32_t NativeBucketIndex(double v, int schema) {
  KPISCALE_ASSERT(v > 0 && std::isfinite(v));
  KPISCALE_ASSERT(schema >= kMinSketchSchema && schema <= kMaxSketchSchema);
  // Outside the precondition, still answer without UB: the lowest index for v <= 0 or NaN, the
  // DBL_MAX bucket for +inf, and the nearest valid schema.
  if (!(v > 0)) {
    return std::numeric_limits<int32_t>::min();
  }
  v = std::min(v, std::numeric_limits<double>::max());
  schema = std::clamp(schema, kMinSketchSchema, kMaxSketchSchema);
  const int32_t i = IndexWithTable(TableFor(schema), v);
  if (schema >= 0) {
    return i;
  }
  return static_cast<int32_t>(DownscaleIndex(i, -schema));
}

double NativeBucketUpperBound(int32_t index, int schema) {
  KPISCALE_ASSERT(schema >= kMinSketchSchema && schema <= kMaxSketchSchema);
  return UpperBound(index, std::clamp(schema, kMinSketchSchema, kMaxSketchSchema));
}

double SketchRelativeError(int schema) {
  const double gamma = std::exp2(std::ldexp(1.0, -schema));
  return (gamma - 1) / (gamma + 1);
}

LatencySketch::LatencySketch(int schema, std::size_t max_buckets, double zero_threshold)
    : configured_schema_(std::clamp(schema, kMinSketchSchema, kMaxSketchSchema)),
      configured_zero_threshold_(
          std::isnan(zero_threshold) || zero_threshold < 0
              ? 0.0
              : std::min(zero_threshold, std::numeric_limits<double>::max())),
      schema_(configured_schema_),
      max_buckets_(std::max<std::size_t>(max_buckets, 1)),
      zero_threshold_(configured_zero_threshold_) {
  SetSchema(configured_schema_);
}

void LatencySketch::SetSchema(int schema) {
  schema_ = schema;
  table_ = &TableFor(schema);
}

void LatencySketch::AddN(double seconds, uint64_t n) {
  if (n == 0) {
    return;
  }
  // NaN fails every comparison, so the range test catches it together with negatives and inf.
  if (!(seconds >= 0 && seconds <= kMaxSketchValue) || n > kMaxCount - count_) {
    rejected_ += n;
    return;
  }
  count_ += n;
  sum_ += seconds * static_cast<double>(n);
  min_ = std::min(min_, seconds);
  max_ = std::max(max_, seconds);
  if (seconds <= zero_threshold_) {
    zero_count_ += n;
    return;
  }
  int32_t index = IndexWithTable(*table_, seconds);
  if (schema_ < 0) {
    index = static_cast<int32_t>(DownscaleIndex(index, -schema_));
  }
  const int64_t rel = static_cast<int64_t>(index) - offset_;
  if (rel >= 0 && static_cast<uint64_t>(rel) < counts_.size()) {
    counts_[static_cast<std::size_t>(rel)] += n;
    return;
  }
  AddToBucket(index, n);
}

void LatencySketch::AddToBucket(int32_t index, uint64_t n) {
  const int k = Reserve(schema_, index, index);
  counts_[static_cast<std::size_t>(DownscaleIndex(index, k) - offset_)] += n;
}

int LatencySketch::Reserve(int src_schema, int64_t src_lo, int64_t src_hi) {
  if (src_schema < schema_) {
    Downscale(schema_ - src_schema);
  }
  int k = src_schema - schema_;
  int64_t lo = DownscaleIndex(src_lo, k);
  int64_t hi = DownscaleIndex(src_hi, k);
  if (!counts_.empty()) {
    lo = std::min<int64_t>(lo, offset_);
    hi = std::max<int64_t>(hi, offset_ + static_cast<int64_t>(counts_.size()) - 1);
  }
  int extra = 0;
  while (hi - lo + 1 > static_cast<int64_t>(max_buckets_) && schema_ - extra > kMinSketchSchema) {
    ++extra;
    lo = DownscaleIndex(lo, 1);
    hi = DownscaleIndex(hi, 1);
  }
  if (extra > 0) {
    Downscale(extra);
  }
  k += extra;
  if (counts_.empty()) {
    offset_ = static_cast<int32_t>(lo);
    counts_.assign(static_cast<std::size_t>(hi - lo + 1), 0);
    return k;
  }
  if (lo < offset_) {
    counts_.insert(counts_.begin(), static_cast<std::size_t>(offset_ - lo), 0);
    offset_ = static_cast<int32_t>(lo);
  }
  if (hi - offset_ >= static_cast<int64_t>(counts_.size())) {
    counts_.resize(static_cast<std::size_t>(hi - offset_) + 1, 0);
  }
  return k;
}

void LatencySketch::TrimEmptyEnds() {
  std::size_t lead = 0;
  while (lead < counts_.size() && counts_[lead] == 0) {
    ++lead;
  }
  if (lead == counts_.size()) {
    counts_.clear();
    return;
  }
  std::size_t size = counts_.size();
  while (counts_[size - 1] == 0) {
    --size;
  }
  counts_.resize(size);
  counts_.erase(counts_.begin(), counts_.begin() + static_cast<std::ptrdiff_t>(lead));
  offset_ += static_cast<int32_t>(lead);
}

void LatencySketch::Downscale(int steps) {
  steps = std::min(steps, schema_ - kMinSketchSchema);
  if (steps <= 0) {
    return;
  }
  if (!counts_.empty()) {
    const int64_t new_offset = DownscaleIndex(offset_, steps);
    const int64_t new_last =
        DownscaleIndex(offset_ + static_cast<int64_t>(counts_.size()) - 1, steps);
    std::vector<uint64_t> merged(static_cast<std::size_t>(new_last - new_offset + 1), 0);
    for (std::size_t j = 0; j < counts_.size(); ++j) {
      const int64_t to = DownscaleIndex(offset_ + static_cast<int64_t>(j), steps) - new_offset;
      merged[static_cast<std::size_t>(to)] += counts_[j];
    }
    counts_ = std::move(merged);
    offset_ = static_cast<int32_t>(new_offset);
  }
  SetSchema(schema_ - steps);
}

void LatencySketch::RaiseZeroThreshold(double threshold) {
  if (!(threshold > zero_threshold_)) {
    return;
  }
  // Buckets entirely at or below the new threshold join the zero bucket. A bucket straddling it
  // stays: its values are still inside its bounds, and the rule keeps Merge commutative.
  std::size_t j = 0;
  while (j < counts_.size() &&
         UpperBound(offset_ + static_cast<int64_t>(j), schema_) <= threshold) {
    zero_count_ += counts_[j];
    ++j;
  }
  counts_.erase(counts_.begin(), counts_.begin() + static_cast<std::ptrdiff_t>(j));
  offset_ += static_cast<int32_t>(j);
  TrimEmptyEnds();
  zero_threshold_ = threshold;
}

void LatencySketch::Merge(const LatencySketch& other) {
  if (other.count_ == 0) {
    return;
  }
  if (other.count_ > kMaxCount - count_) {
    rejected_ += other.count_;
    return;
  }
  if (count_ == 0) {
    // An empty sketch is the identity of Merge: it takes on other's resolution and threshold.
    counts_.clear();
    SetSchema(other.schema_);
    zero_threshold_ = other.zero_threshold_;
  }
  if (other.schema_ < schema_) {
    Downscale(schema_ - other.schema_);
  }
  RaiseZeroThreshold(other.zero_threshold_);
  extremes_exact_ = count_ == 0 ? other.extremes_exact_ : extremes_exact_ && other.extremes_exact_;
  count_ += other.count_;
  zero_count_ += other.zero_count_;
  sum_ += other.sum_;
  rejected_ += other.rejected_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  if (other.counts_.empty()) {
    return;
  }
  const int64_t src_lo = other.offset_;
  const int k =
      Reserve(other.schema_, src_lo, src_lo + static_cast<int64_t>(other.counts_.size()) - 1);
  // Only leading buckets can lie inside the zero bucket (indices ascend), so test until one
  // does not.
  std::size_t j = 0;
  for (; j < other.counts_.size(); ++j) {
    const uint64_t c = other.counts_[j];
    if (c == 0) {
      continue;
    }
    const int64_t index = DownscaleIndex(src_lo + static_cast<int64_t>(j), k);
    if (UpperBound(index, schema_) > zero_threshold_) {
      break;
    }
    zero_count_ += c;
  }
  if (k == 0) {
    // Same schema: a straight element-wise add the compiler can vectorize.
    uint64_t* dst = counts_.data() + (src_lo - offset_);
    for (; j < other.counts_.size(); ++j) {
      dst[j] += other.counts_[j];
    }
  } else {
    for (; j < other.counts_.size(); ++j) {
      const int64_t index = DownscaleIndex(src_lo + static_cast<int64_t>(j), k);
      counts_[static_cast<std::size_t>(index - offset_)] += other.counts_[j];
    }
  }
  TrimEmptyEnds();
}

std::optional<double> LatencySketch::Quantile(double q) const {
  if (count_ == 0 || std::isnan(q)) {
    return std::nullopt;
  }
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1));
  rank = std::min(rank, count_ - 1);
  if (extremes_exact_ && rank == 0) {
    return min_;
  }
  if (extremes_exact_ && rank == count_ - 1) {
    return max_;
  }
  double estimate = 0;
  if (rank >= zero_count_) {
    // Walk from the nearer end: high quantiles (the common p99) scan only the tail.
    std::size_t j = 0;
    if (rank - zero_count_ < (count_ - zero_count_) / 2) {
      uint64_t seen = zero_count_;
      for (; j + 1 < counts_.size(); ++j) {
        seen += counts_[j];
        if (seen > rank) {
          break;
        }
      }
    } else {
      const uint64_t above = count_ - 1 - rank;  // samples ranked after the target
      uint64_t seen = 0;
      j = counts_.size() - 1;
      for (; j > 0; --j) {
        seen += counts_[j];
        if (seen > above) {
          break;
        }
      }
    }
    const double upper = UpperBound(offset_ + static_cast<int64_t>(j), schema_);
    const double gamma = std::exp2(std::ldexp(1.0, -schema_));
    estimate = 2 * (upper / (gamma + 1));
  }
  return std::clamp(estimate, std::max(min_, 0.0), max_);
}

std::optional<double> LatencySketch::min() const {
  if (count_ == 0) {
    return std::nullopt;
  }
  return min_;
}

std::optional<double> LatencySketch::max() const {
  if (count_ == 0) {
    return std::nullopt;
  }
  return max_;
}

std::size_t LatencySketch::bucket_count() const {
  return static_cast<std::size_t>(
      std::count_if(counts_.begin(), counts_.end(), [](uint64_t c) { return c != 0; }));
}

void LatencySketch::Clear() {
  count_ = 0;
  zero_count_ = 0;
  rejected_ = 0;
  sum_ = 0;
  min_ = std::numeric_limits<double>::infinity();
  max_ = -std::numeric_limits<double>::infinity();
  extremes_exact_ = true;
  counts_.clear();
  offset_ = 0;
  zero_threshold_ = configured_zero_threshold_;
  SetSchema(configured_schema_);
}

std::vector<std::pair<int32_t, uint64_t>> LatencySketch::Buckets() const {
  std::vector<std::pair<int32_t, uint64_t>> out;
  for (std::size_t j = 0; j < counts_.size(); ++j) {
    if (counts_[j] != 0) {
      out.emplace_back(offset_ + static_cast<int32_t>(j), counts_[j]);
    }
  }
  return out;
}

void LatencySketch::ToProto(kpiscale::v1::Sketch* out) const {
  out->Clear();
  out->set_schema(schema_);
  out->set_zero_threshold(zero_threshold_);
  out->set_zero_count(zero_count_);
  out->set_count(count_);
  out->set_sum(sum_);
  // Gaps of up to two empty buckets cost less inline (one zero delta each) than a new span.
  constexpr std::size_t kMaxInlineGap = 2;
  int64_t prev_count = 0;
  int64_t next_index = 0;  // index just past the previous span
  bool first_span = true;
  std::size_t j = 0;
  while (j < counts_.size()) {
    if (counts_[j] == 0) {
      ++j;
      continue;
    }
    // A span starts at j; extend it across short gaps.
    std::size_t end = j + 1;
    while (end < counts_.size()) {
      if (counts_[end] != 0) {
        ++end;
        continue;
      }
      std::size_t gap_end = end;
      while (gap_end < counts_.size() && counts_[gap_end] == 0) {
        ++gap_end;
      }
      if (gap_end == counts_.size() || gap_end - end > kMaxInlineGap) {
        break;
      }
      end = gap_end;
    }
    const int64_t start_index = offset_ + static_cast<int64_t>(j);
    auto* span = out->add_positive_spans();
    span->set_offset(static_cast<int32_t>(first_span ? start_index : start_index - next_index));
    span->set_length(static_cast<uint32_t>(end - j));
    for (std::size_t b = j; b < end; ++b) {
      const auto c = static_cast<int64_t>(counts_[b]);
      out->add_positive_deltas(c - prev_count);
      prev_count = c;
    }
    next_index = offset_ + static_cast<int64_t>(end);
    first_span = false;
    j = end;
  }
}

absl::StatusOr<LatencySketch> LatencySketch::FromProto(const kpiscale::v1::Sketch& in,
                                                       const SketchLimits& limits) {
  const int schema = in.schema();
  if (schema < std::max(limits.min_schema, kMinSketchSchema) ||
      schema > std::min(limits.max_schema, kMaxSketchSchema)) {
    return Invalid(absl::StrCat("schema ", schema, " outside [",
                                std::max(limits.min_schema, kMinSketchSchema), ", ",
                                std::min(limits.max_schema, kMaxSketchSchema), "]"));
  }
  if (!std::isfinite(in.zero_threshold()) || in.zero_threshold() < 0) {
    return Invalid(absl::StrCat("zero_threshold ", in.zero_threshold(),
                                " is not a finite non-negative number"));
  }
  if (in.count() > kMaxCount) {
    return Invalid(absl::StrCat("count ", in.count(), " exceeds ", kMaxCount));
  }
  // Every value is ≤ kMaxSketchValue; the factor 2 leaves room for summation rounding.
  const double max_sum = 2 * kMaxSketchValue * static_cast<double>(in.count());
  if (!(in.sum() >= 0 && in.sum() <= max_sum)) {
    return Invalid(
        absl::StrCat("sum ", in.sum(), " outside [0, ", max_sum, "] for count ", in.count()));
  }
  // Every useful span holds at least one bucket; more spans than buckets is padding.
  if (static_cast<uint64_t>(in.positive_spans_size()) > limits.max_buckets) {
    return Invalid(absl::StrCat(in.positive_spans_size(), " spans exceed the limit of ",
                                limits.max_buckets, " buckets"));
  }
  uint64_t total_length = 0;
  for (const auto& span : in.positive_spans()) {
    total_length += span.length();  // ≤ 2^32 per span; spans are bounded by the message size
    if (total_length > limits.max_buckets) {
      return Invalid(absl::StrCat("more than ", limits.max_buckets, " buckets in spans"));
    }
  }
  if (total_length != static_cast<uint64_t>(in.positive_deltas_size())) {
    return Invalid(absl::StrCat("spans cover ", total_length, " buckets but ",
                                in.positive_deltas_size(), " deltas were sent"));
  }
  int64_t lo_index = 0;
  int64_t hi_index = 0;
  IndexRange(schema, &lo_index, &hi_index);

  std::vector<std::pair<int32_t, uint64_t>> buckets;
  buckets.reserve(static_cast<std::size_t>(total_length));
  int64_t index = 0;
  int64_t running = 0;
  uint64_t bucket_total = 0;
  int delta_pos = 0;
  for (int s = 0; s < in.positive_spans_size(); ++s) {
    const auto& span = in.positive_spans(s);
    if (s > 0 && span.offset() < 0) {
      return Invalid(absl::StrCat("span ", s, " has negative offset ", span.offset()));
    }
    index = (s == 0 ? 0 : index) + span.offset();
    for (uint32_t b = 0; b < span.length(); ++b, ++index, ++delta_pos) {
      if (index < lo_index || index > hi_index) {
        return Invalid(absl::StrCat("bucket index ", index, " outside [", lo_index, ", ", hi_index,
                                    "] for schema ", schema));
      }
      const int64_t delta = in.positive_deltas(delta_pos);
      if (__builtin_add_overflow(running, delta, &running) || running < 0) {
        return Invalid(absl::StrCat("bucket ", index, " count goes negative or overflows (delta ",
                                    delta, ")"));
      }
      if (running == 0) {
        continue;
      }
      // Indices ascend, so only buckets before the first one above the threshold can be inside.
      if (buckets.empty() && UpperBound(index, schema) <= in.zero_threshold()) {
        return Invalid(absl::StrCat("bucket ", index, " lies inside the zero bucket (threshold ",
                                    in.zero_threshold(), ")"));
      }
      if (__builtin_add_overflow(bucket_total, static_cast<uint64_t>(running), &bucket_total)) {
        return Invalid("bucket counts overflow");
      }
      buckets.emplace_back(static_cast<int32_t>(index), static_cast<uint64_t>(running));
    }
  }
  uint64_t total = 0;
  if (__builtin_add_overflow(bucket_total, in.zero_count(), &total) || total != in.count()) {
    return Invalid(absl::StrCat("count ", in.count(), " != zero_count ", in.zero_count(),
                                " + bucket counts ", bucket_total));
  }

  LatencySketch out(schema, limits.max_buckets, in.zero_threshold());
  out.count_ = in.count();
  out.zero_count_ = in.zero_count();
  out.sum_ = in.sum();
  out.extremes_exact_ = out.count_ == 0;
  if (out.count_ > 0) {
    // The wire carries no min/max; bucket bounds are safe clamps (the true values lie inside).
    out.min_ = in.zero_count() > 0 ? 0.0 : LowerBound(buckets.front().first, schema);
    out.max_ = buckets.empty() ? in.zero_threshold() : UpperBound(buckets.back().first, schema);
  }
  if (!buckets.empty()) {
    const int k = out.Reserve(schema, buckets.front().first, buckets.back().first);
    for (const auto& [i, c] : buckets) {
      out.counts_[static_cast<std::size_t>(DownscaleIndex(i, k) - out.offset_)] += c;
    }
  }
  return out;
}

}  // namespace kpiscale::common
