// RESP2: the request parser gives the same commands however the stream is split, and the tap
// (request parser + hiredis reply reader + matching) never crashes on hostile streams.
// Input: byte 0 picks where the rest splits into client bytes and server bytes; byte 1 picks the
// chunk size.
#include <prometheus/registry.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kpiscale/sidecar/observe/observe_stats.h"
#include "kpiscale/sidecar/observe/resp_request_parser.h"
#include "kpiscale/sidecar/observe/resp_tap.h"

namespace {

using kpiscale::sidecar::CacheCommandResult;
using kpiscale::sidecar::SignalSink;
using namespace kpiscale::sidecar::observe;

class NullSink final : public SignalSink {
 public:
  void RecordCacheCommand(double seconds, const CacheCommandResult&) override {
    if (seconds < 0) __builtin_trap();
  }
  void RecordCacheServerWide(uint64_t, uint64_t) override {}
  void RecordDbQuery(double, bool) override {}
};

std::vector<RespCommand> Parse(const std::string& s, std::size_t chunk, bool* ok) {
  RespRequestParser parser;
  std::vector<RespCommand> out;
  *ok = true;
  for (std::size_t i = 0; i < s.size() && *ok; i += chunk) {
    *ok = parser.Feed(s.data() + i, std::min(chunk, s.size() - i), &out);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static prometheus::Registry* registry = new prometheus::Registry();
  static const CacheStats* stats = new CacheStats(*CacheStats::Create(*registry));
  const std::string rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::size_t split = rest.size() * data[0] / 255;
  const std::size_t chunk = 1 + data[1] % 13;
  const std::string client = rest.substr(0, split);
  const std::string server = rest.substr(split);

  bool ok_whole = false;
  bool ok_chunked = false;
  const auto whole = Parse(client, client.size() + 1, &ok_whole);
  const auto chunked = Parse(client, chunk, &ok_chunked);
  // A failure may be detected at the same byte only; the commands before it must agree.
  if (ok_whole != ok_chunked || whole.size() != chunked.size()) __builtin_trap();
  for (std::size_t i = 0; i < whole.size(); ++i) {
    if (whole[i].name != chunked[i].name || whole[i].argc != chunked[i].argc ||
        whole[i].args != chunked[i].args) {
      __builtin_trap();
    }
  }

  NullSink sink;
  RespTap tap(sink, *stats);
  const auto t = std::chrono::steady_clock::now();
  std::size_t c = 0;
  std::size_t s = 0;
  while (c < client.size() || s < server.size()) {
    if (c < client.size()) {
      const std::size_t n = std::min(chunk, client.size() - c);
      tap.OnClientBytes(client.data() + c, n, t);
      c += n;
    }
    if (s < server.size()) {
      const std::size_t n = std::min(chunk + 3, server.size() - s);
      tap.OnServerBytes(server.data() + s, n, t);
      s += n;
    }
  }
  tap.OnClose(CloseReason::kUpstreamClosed, t);
  return 0;
}
