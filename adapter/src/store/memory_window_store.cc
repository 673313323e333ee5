#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "kpiscale/adapter/window_store.h"
#include "kpiscale/common/status.h"
#include "store/varint.h"

namespace kpiscale::adapter {
namespace {

constexpr uint8_t kHttpBit = 1;
constexpr uint8_t kCacheBit = 2;
constexpr uint8_t kDbBit = 4;

using store_encoding::GetVarint;
using store_encoding::PutVarint;

uint64_t DoubleBits(double d) {
  uint64_t u = 0;
  std::memcpy(&u, &d, sizeof(u));
  return u;
}
double BitsDouble(uint64_t u) {
  double d = 0;
  std::memcpy(&d, &u, sizeof(d));
  return d;
}

// A window as the ring keeps it: the counts and buckets of its signals in one varint blob
// (~50-150 bytes), so that a pod's ring stays a few KB.
struct StoredWindow {
  uint64_t sequence = 0;
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  uint8_t present = 0;
  std::string blob;
};

void EncodeSignal(const WindowSignal& s, std::string* out) {
  PutVarint(s.events, out);
  PutVarint(s.errors, out);
  PutVarint(s.hits, out);
  PutVarint(s.misses, out);
  PutVarint(DoubleBits(s.duration_sum_seconds), out);
  PutVarint(s.slo.size(), out);
  for (const auto& [threshold, slow] : s.slo) {
    PutVarint(DoubleBits(threshold), out);
    PutVarint(slow, out);
  }
  s.latency.AppendEncoded(out);
}

StoredWindow Encode(const DecodedWindow& w) {
  StoredWindow s;
  s.sequence = w.sequence;
  s.start_ms = w.start_ms;
  s.end_ms = w.end_ms;
  if (w.http) {
    s.present |= kHttpBit;
    EncodeSignal(*w.http, &s.blob);
  }
  if (w.cache) {
    s.present |= kCacheBit;
    EncodeSignal(*w.cache, &s.blob);
  }
  if (w.db) {
    s.present |= kDbBit;
    EncodeSignal(*w.db, &s.blob);
  }
  s.blob.shrink_to_fit();
  return s;
}

// Accumulates one signal of many windows.
struct SignalBuilder {
  SignalTotals totals;
  HistogramMerger merger;

  bool AddEncoded(const std::string& in, std::size_t* pos) {
    uint64_t events = 0, errors = 0, hits = 0, misses = 0, dur = 0, nslo = 0;
    if (!GetVarint(in, pos, &events) || !GetVarint(in, pos, &errors) ||
        !GetVarint(in, pos, &hits) || !GetVarint(in, pos, &misses) || !GetVarint(in, pos, &dur) ||
        !GetVarint(in, pos, &nslo)) {
      return false;
    }
    totals.present = true;
    totals.events += events;
    totals.errors += errors;
    totals.hits += hits;
    totals.misses += misses;
    totals.duration_sum_seconds += BitsDouble(dur);
    for (uint64_t k = 0; k < nslo; ++k) {
      uint64_t tbits = 0, slow = 0;
      if (!GetVarint(in, pos, &tbits) || !GetVarint(in, pos, &slow)) return false;
      const double threshold = BitsDouble(tbits);
      auto it = std::find_if(totals.slo.begin(), totals.slo.end(), [threshold](const auto& t) {
        return t.threshold_seconds == threshold;
      });
      if (it == totals.slo.end()) {
        totals.slo.push_back(ThresholdTotal{threshold, 0, 0});
        it = totals.slo.end() - 1;
      }
      it->slow += slow;
      it->requests += events;
    }
    Histogram h;
    if (!Histogram::DecodeFrom(in, pos, &h)) return false;
    merger.Add(h);
    return true;
  }

  // A window without the signal is a reported window in which none of its events happened
  // (WindowBuilder leaves idle signals absent), so rates divide by every window in range.
  SignalTotals Finish(int64_t reported_ms) {
    if (totals.present) totals.observed_ms = reported_ms;
    if (!merger.empty()) totals.latency = merger.Finish();
    return std::move(totals);
  }
};

struct PodSlot {
  std::mutex mu;  // serialises writers of this pod; readers only touch `view`
  std::string ns;
  std::vector<StoredWindow> ring;  // circular, capacity fixed at creation
  std::size_t head = 0;            // index of the oldest window
  std::size_t size = 0;
  std::shared_ptr<const PodIdentity> identity;
  std::shared_ptr<const PodView> view;  // read and replaced with std::atomic_load/store
  std::atomic<int64_t> newest_end_ms{0};
  bool removed = false;  // set by Sweep under mu; an ingest that finds it set looks up again

  const StoredWindow& At(std::size_t k) const { return ring[(head + k) % ring.size()]; }
  const StoredWindow* Newest() const { return size == 0 ? nullptr : &At(size - 1); }

  void Push(StoredWindow w) {
    if (size < ring.size()) {
      ring[(head + size) % ring.size()] = std::move(w);
      ++size;
    } else {
      ring[head] = std::move(w);
      head = (head + 1) % ring.size();
    }
  }
};

class MemoryWindowStore final : public WindowStore {
 public:
  explicit MemoryWindowStore(const StoreOptions& options) : options_(options) {
    if (options_.ring_capacity == 0) {
      options_.ring_capacity = static_cast<std::size_t>(options_.window_ms / 1000) + 2;
    }
  }

  absl::StatusOr<IngestResult> Ingest(const DecodedBatch& batch) override {
    for (;;) {
      KPISCALE_ASSIGN_OR_RETURN(std::shared_ptr<PodSlot> slot, FindOrAdd(batch.pod));
      std::lock_guard guard(slot->mu);
      if (slot->removed) continue;
      return IngestLocked(*slot, batch);
    }
  }

 private:
  absl::StatusOr<std::shared_ptr<PodSlot>> FindOrAdd(const PodIdentity& pod) {
    std::shared_ptr<PodSlot> slot;
    {
      std::shared_lock lock(mu_);
      auto it = by_uid_.find(pod.uid);
      if (it != by_uid_.end()) slot = it->second;
    }
    if (!slot) {
      std::unique_lock lock(mu_);
      auto it = by_uid_.find(pod.uid);
      if (it != by_uid_.end()) {
        slot = it->second;
      } else {
        if (by_uid_.size() >= options_.max_pods) {
          return absl::ResourceExhaustedError(
              absl::StrCat("window store holds the maximum of ", options_.max_pods, " pods"));
        }
        slot = std::make_shared<PodSlot>();
        slot->ns = pod.ns;
        slot->ring.resize(options_.ring_capacity);
        by_uid_.emplace(pod.uid, slot);
        by_ns_[pod.ns].push_back(slot);
      }
    }
    if (slot->ns != pod.ns) {
      return absl::InvalidArgumentError(
          absl::StrCat("pod uid ", pod.uid, " is already reported in namespace ", slot->ns));
    }
    return slot;
  }

  IngestResult IngestLocked(PodSlot& slot_ref, const DecodedBatch& batch) {
    PodSlot* slot = &slot_ref;
    IngestResult result;
    if (!slot->identity || !(*slot->identity == batch.pod)) {
      slot->identity = std::make_shared<const PodIdentity>(batch.pod);
    }
    std::vector<const DecodedWindow*> order;
    order.reserve(batch.windows.size());
    for (const auto& w : batch.windows) order.push_back(&w);
    std::stable_sort(order.begin(), order.end(),
                     [](const auto* a, const auto* b) { return a->end_ms < b->end_ms; });
    int64_t windows_added = 0;
    for (const DecodedWindow* w : order) {
      bool dup = false;
      for (std::size_t k = 0; k < slot->size; ++k) {
        const auto& s = slot->At(k);
        if (s.sequence == w->sequence && s.start_ms == w->start_ms) {
          dup = true;
          break;
        }
      }
      if (dup) {
        ++result.duplicate;
        continue;
      }
      const StoredWindow* newest = slot->Newest();
      if (newest != nullptr && w->end_ms <= newest->end_ms) {
        ++result.late;
        continue;
      }
      if (slot->size < slot->ring.size()) ++windows_added;
      slot->Push(Encode(*w));
      ++result.accepted;
    }
    if (result.accepted > 0) {
      auto view = BuildView(*slot);
      slot->newest_end_ms.store(view->newest_end_ms, std::memory_order_relaxed);
      std::atomic_store(&slot->view, std::shared_ptr<const PodView>(std::move(view)));
      windows_.fetch_add(windows_added, std::memory_order_relaxed);
    }
    return result;
  }

 public:
  std::vector<PodViewPtr> FreshPods(std::string_view ns, int64_t now_ms) const override {
    std::vector<PodViewPtr> out;
    const int64_t cutoff = now_ms - options_.stale_after_ms;
    std::shared_lock lock(mu_);
    auto collect = [&](const std::vector<std::shared_ptr<PodSlot>>& slots) {
      for (const auto& slot : slots) {
        if (slot->newest_end_ms.load(std::memory_order_relaxed) <= cutoff) continue;
        auto view = std::atomic_load(&slot->view);
        if (view && view->newest_end_ms > cutoff) out.push_back(std::move(view));
      }
    };
    if (ns.empty()) {
      out.reserve(by_uid_.size());
      for (const auto& [name, slots] : by_ns_) collect(slots);
    } else {
      auto it = by_ns_.find(std::string(ns));
      if (it != by_ns_.end()) {
        out.reserve(it->second.size());
        collect(it->second);
      }
    }
    return out;
  }

  std::size_t Sweep(int64_t now_ms) override {
    const int64_t cutoff = now_ms - options_.stale_after_ms;
    std::unique_lock lock(mu_);
    std::size_t removed = 0;
    for (auto it = by_uid_.begin(); it != by_uid_.end();) {
      if (it->second->newest_end_ms.load(std::memory_order_relaxed) <= cutoff) {
        std::lock_guard guard(it->second->mu);
        it->second->removed = true;
        windows_.fetch_sub(static_cast<int64_t>(it->second->size), std::memory_order_relaxed);
        it = by_uid_.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    if (removed > 0) {
      for (auto it = by_ns_.begin(); it != by_ns_.end();) {
        auto& v = it->second;
        v.erase(std::remove_if(v.begin(), v.end(),
                               [cutoff](const auto& s) {
                                 return s->newest_end_ms.load(std::memory_order_relaxed) <= cutoff;
                               }),
                v.end());
        it = v.empty() ? by_ns_.erase(it) : std::next(it);
      }
    }
    return removed;
  }

  StoreStats Stats() const override {
    StoreStats stats;
    std::shared_lock lock(mu_);
    stats.pods = by_uid_.size();
    stats.windows = static_cast<std::size_t>(std::max<int64_t>(0, windows_.load()));
    return stats;
  }

  const StoreOptions& options() const override { return options_; }

 private:
  std::shared_ptr<PodView> BuildView(const PodSlot& slot) const {
    auto view = std::make_shared<PodView>();
    view->identity = slot.identity;
    const StoredWindow* newest = slot.Newest();
    KPISCALE_CHECK(newest != nullptr);  // called after a window was stored
    view->newest_sequence = newest->sequence;
    view->newest_end_ms = newest->end_ms;
    view->oldest_start_ms = newest->start_ms;
    const int64_t horizon = newest->end_ms - options_.window_ms;
    SignalBuilder http, cache, db;
    int64_t reported_ms = 0;
    for (std::size_t k = 0; k < slot.size; ++k) {
      const auto& w = slot.At(k);
      if (w.end_ms <= horizon) continue;
      ++view->windows;
      view->oldest_start_ms = std::min(view->oldest_start_ms, w.start_ms);
      reported_ms += w.end_ms - w.start_ms;
      std::size_t pos = 0;
      // Blobs are written by Encode above, so a decode failure is a bug, not bad input.
      bool ok = true;
      if ((w.present & kHttpBit) != 0) ok = ok && http.AddEncoded(w.blob, &pos);
      if ((w.present & kCacheBit) != 0) ok = ok && cache.AddEncoded(w.blob, &pos);
      if ((w.present & kDbBit) != 0) ok = ok && db.AddEncoded(w.blob, &pos);
      KPISCALE_ASSERT(ok);
    }
    view->http = http.Finish(reported_ms);
    view->cache = cache.Finish(reported_ms);
    view->db = db.Finish(reported_ms);
    return view;
  }

  StoreOptions options_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<PodSlot>> by_uid_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<PodSlot>>> by_ns_;
  std::atomic<int64_t> windows_{0};
};

}  // namespace

absl::StatusOr<WindowStorePtr> CreateMemoryWindowStore(const StoreOptions& options) {
  if (options.window_ms <= 0) return absl::InvalidArgumentError("window must be positive");
  if (options.stale_after_ms <= 0) {
    return absl::InvalidArgumentError("stale-after must be positive");
  }
  if (options.ring_capacity > 100'000) {
    return absl::InvalidArgumentError("ring capacity above 100000 windows per pod");
  }
  return WindowStorePtr(std::make_unique<MemoryWindowStore>(options));
}

}  // namespace kpiscale::adapter
