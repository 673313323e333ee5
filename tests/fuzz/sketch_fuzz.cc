// Fuzzes LatencySketch. The first byte picks the mode:
//   even: the rest is a serialized kpiscale.v1.Sketch, fed to FromProto (hostile wire input);
//   odd:  the rest is a stream of operations on two in-process sketches (Add, AddN, Merge,
//         Clear) with a small bucket cap, so downscaling and zero-threshold merges are hit.
// Every accepted or built sketch is checked against its invariants; a violation aborts.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "kpiscale/common/sketch.h"
#include "proto/report.pb.h"

namespace {

using kpiscale::common::LatencySketch;

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "sketch invariant violated: %s\n", what);
    std::abort();
  }
}

void Dump(const char* name, const LatencySketch& s) {
  std::fprintf(stderr, "%s: schema %d cap %zu zt %g count %llu zero %llu buckets", name, s.schema(),
               s.max_buckets(), s.zero_threshold(), static_cast<unsigned long long>(s.count()),
               static_cast<unsigned long long>(s.zero_count()));
  for (const auto& [i, c] : s.Buckets()) {
    std::fprintf(stderr, " %d:%llu", i, static_cast<unsigned long long>(c));
  }
  std::fprintf(stderr, "\n");
}

void CheckInvariants(const LatencySketch& s) {
  uint64_t total = s.zero_count();
  int32_t prev_index = std::numeric_limits<int32_t>::min();
  for (const auto& [index, count] : s.Buckets()) {
    Check(count > 0, "Buckets() lists an empty bucket");
    Check(index > prev_index, "Buckets() not ascending");
    prev_index = index;
    total += count;
  }
  Check(total == s.count(), "count != zero_count + bucket counts");
  Check(s.schema() >= kpiscale::common::kMinSketchSchema &&
            s.schema() <= kpiscale::common::kMaxSketchSchema,
        "schema out of range");
  if (s.schema() > kpiscale::common::kMinSketchSchema && !s.Buckets().empty()) {
    const auto buckets = s.Buckets();
    const int64_t width = static_cast<int64_t>(buckets.back().first) - buckets.front().first + 1;
    Check(width <= static_cast<int64_t>(s.max_buckets()), "bucket range exceeds the cap");
  }
  if (s.empty()) {
    Check(!s.Quantile(0.5).has_value(), "empty sketch has a quantile");
    return;
  }
  double prev = -1;
  for (double q : {0.0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0}) {
    const std::optional<double> v = s.Quantile(q);
    Check(v.has_value(), "non-empty sketch without a quantile");
    Check(!std::isnan(*v) && *v >= 0, "quantile NaN or negative");
    Check(*v >= prev, "quantiles not monotone in q");
    Check(*v >= *s.min() && *v <= *s.max(), "quantile outside [min, max]");
    prev = *v;
  }
  kpiscale::v1::Sketch wire;
  s.ToProto(&wire);
  kpiscale::common::SketchLimits limits;
  // Wide enough that the rebuilt sketch never downscales (at schema -4 the range may exceed the
  // cap, but never ~140 buckets).
  limits.max_buckets = std::max<std::size_t>(s.max_buckets(), 4096);
  const absl::StatusOr<LatencySketch> back = LatencySketch::FromProto(wire, limits);
  if (!back.ok()) {
    std::fprintf(stderr, "%s\n%s\n", back.status().ToString().c_str(), wire.DebugString().c_str());
  }
  Check(back.ok(), "own ToProto output rejected by FromProto");
  Check(back->Buckets() == s.Buckets(), "round trip changed buckets");
  Check(back->count() == s.count() && back->zero_count() == s.zero_count(),
        "round trip changed counts");
  Check(back->schema() == s.schema(), "round trip changed schema");
}

double ReadDouble(const uint8_t*& p, const uint8_t* end) {
  uint8_t buf[8] = {};
  const std::size_t n = std::min<std::size_t>(8, static_cast<std::size_t>(end - p));
  std::memcpy(buf, p, n);
  p += n;
  double v = 0;
  std::memcpy(&v, buf, sizeof v);
  return v;
}

void FuzzWire(const uint8_t* data, std::size_t size) {
  kpiscale::v1::Sketch wire;
  if (!wire.ParseFromArray(data, static_cast<int>(size))) {
    return;
  }
  const absl::StatusOr<LatencySketch> s = LatencySketch::FromProto(wire);
  if (!s.ok()) {
    Check(s.status().code() == absl::StatusCode::kInvalidArgument, "unexpected error code");
    return;
  }
  CheckInvariants(*s);
  LatencySketch merged(5, 160);
  merged.Add(0.01);
  merged.Merge(*s);
  Check(merged.count() == s->count() + 1 || merged.rejected() > 0, "merge lost counts");
  CheckInvariants(merged);
}

void FuzzOps(const uint8_t* data, std::size_t size) {
  if (size < 2) {
    return;
  }
  const int schema_a = static_cast<int>(data[0] % 13) - 4;
  const int schema_b = static_cast<int>(data[1] % 13) - 4;
  const std::size_t cap_a = 1 + data[0] % 40;
  // Equal caps and zero thresholds half the time, so bucket-exact commutativity is checked.
  const std::size_t cap_b = (data[1] & 2) != 0 ? cap_a : 1 + data[1] % 200;
  const double zt_b = (data[1] & 1) != 0 ? 1e-9 : ((data[1] & 4) != 0 ? 1e-3 : 0.0);
  LatencySketch a(schema_a, cap_a, 1e-9);
  LatencySketch b(schema_b, cap_b, zt_b);
  const uint8_t* p = data + 2;
  const uint8_t* end = data + size;
  while (p < end) {
    const uint8_t op = *p++;
    LatencySketch& target = op & 0x80 ? b : a;
    switch (op & 0x7) {
      case 0:
      case 1:
      case 2:
        target.Add(ReadDouble(p, end));
        break;
      case 3: {
        const double v = ReadDouble(p, end);
        target.AddN(v, p < end ? *p++ : 0);
        break;
      }
      case 4:
        // A small exponent range keeps values in realistic latencies more often.
        target.Add(std::ldexp(1.0 + (p < end ? *p++ : 0) / 256.0, (op >> 3) % 16 - 12));
        break;
      case 5:
        a.Merge(b);
        break;
      case 6:
        b.Merge(a);
        break;
      default:
        if ((op & 0x78) == 0x78) {
          target.Clear();
        }
        break;
    }
  }
  CheckInvariants(a);
  CheckInvariants(b);
  LatencySketch ab = a;
  ab.Merge(b);
  LatencySketch ba = b;
  ba.Merge(a);
  CheckInvariants(ab);
  CheckInvariants(ba);
  Check(ab.count() == ba.count(), "merge not commutative in count");
  // Merging an empty sketch is a no-op, so the zero threshold only has to agree otherwise.
  Check(a.empty() || b.empty() || ab.zero_threshold() == ba.zero_threshold(),
        "merge not commutative in zero threshold");
  // Bucket-exact commutativity holds for equal caps and zero thresholds (with different
  // thresholds, which buckets join the zero bucket depends on when downscaling happened).
  const bool comparable = ab.max_buckets() == ba.max_buckets() &&
                          (a.zero_threshold() == b.zero_threshold() || a.empty() || b.empty());
  if (comparable && ab.Buckets() != ba.Buckets()) {
    Dump("a", a);
    Dump("b", b);
    Dump("ab", ab);
    Dump("ba", ba);
  }
  if (comparable) {
    Check(ab.Buckets() == ba.Buckets(), "merge with equal caps not commutative in buckets");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  if (data[0] % 2 == 0) {
    FuzzWire(data + 1, size - 1);
  } else {
    FuzzOps(data + 1, size - 1);
  }
  return 0;
}
