// PostgreSQL wire: the framer gives the same events however a stream is split, and the tap
// (interception, framing, Sync/ReadyForQuery matching) never crashes on hostile streams.
// Input: byte 0 picks the client/server split of the rest; byte 1 the chunk size.
#include <prometheus/registry.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/pg_tap.h"
#include "kpiscale/sidecar/observe/pg_wire.h"

namespace {

using kpiscale::sidecar::CacheCommandResult;
using kpiscale::sidecar::SignalSink;
using namespace kpiscale::sidecar::observe;

class NullSink final : public SignalSink {
 public:
  void RecordCacheCommand(double, const CacheCommandResult&) override {}
  void RecordCacheServerWide(uint64_t, uint64_t) override {}
  void RecordDbQuery(double seconds, bool) override {
    if (seconds < 0) __builtin_trap();
  }
};

std::vector<PgEvent> Frame(bool frontend, const std::string& s, std::size_t chunk, bool* ok) {
  PgFramer framer(frontend);
  std::vector<PgEvent> out;
  *ok = true;
  for (std::size_t i = 0; i < s.size() && *ok; i += chunk) {
    *ok = framer.Feed(s.data() + i, std::min(chunk, s.size() - i), &out);
  }
  return out;
}

void CheckSplitInvariance(bool frontend, const std::string& s, std::size_t chunk) {
  bool ok_whole = false;
  bool ok_chunked = false;
  const auto whole = Frame(frontend, s, s.size() + 1, &ok_whole);
  const auto chunked = Frame(frontend, s, chunk, &ok_chunked);
  if (ok_whole != ok_chunked || whole.size() != chunked.size()) __builtin_trap();
  for (std::size_t i = 0; i < whole.size(); ++i) {
    if (whole[i].kind != chunked[i].kind || whole[i].type != chunked[i].type ||
        whole[i].length != chunked[i].length || whole[i].complete != chunked[i].complete) {
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static prometheus::Registry* registry = new prometheus::Registry();
  static const DbStats* stats = new DbStats(*DbStats::Create(*registry));
  const std::string rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::size_t split = rest.size() * data[0] / 255;
  const std::size_t chunk = 1 + data[1] % 13;
  const std::string client = rest.substr(0, split);
  const std::string server = rest.substr(split);
  CheckSplitInvariance(true, client, chunk);
  CheckSplitInvariance(false, server, chunk);

  NullSink sink;
  PgTap tap(sink, *stats);
  const auto t = std::chrono::steady_clock::now();
  std::string held = client;
  while (tap.WantsIntercept() && !held.empty()) {
    const Intercept ic = tap.InterceptClient(held.data(), held.size());
    if (ic.action == Intercept::Action::kNeedMore) break;
    if (ic.action == Intercept::Action::kAnswer) {
      if (ic.consumed == 0 || ic.consumed > held.size()) __builtin_trap();
      held.erase(0, ic.consumed);
    }
  }
  std::size_t c = 0;
  std::size_t s = 0;
  while (c < held.size() || s < server.size()) {
    if (c < held.size()) {
      const std::size_t n = std::min(chunk, held.size() - c);
      tap.OnClientBytes(held.data() + c, n, t);
      c += n;
    }
    if (s < server.size()) {
      const std::size_t n = std::min(chunk + 5, server.size() - s);
      tap.OnServerBytes(server.data() + s, n, t);
      s += n;
    }
  }
  tap.OnClose(CloseReason::kUpstreamClosed, t);
  return 0;
}
