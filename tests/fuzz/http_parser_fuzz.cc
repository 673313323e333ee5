// Feeds arbitrary bytes to the sidecar's HTTP/1.1 head parser and body framer, both whole and in
// pieces, and checks the invariants the proxy relies on: a parsed head never claims more bytes
// than it was given, the framer never consumes more than offered, and incremental feeding agrees
// with feeding everything at once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kpiscale/sidecar/http_parser.h"

namespace {

void Check(bool cond) {
  if (!cond) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kpiscale::sidecar::http;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = size == 0 ? 0 : data[0] % (size + 1);

  for (int mode = 0; mode < 2; ++mode) {
    HeadParser whole(4096);
    Head head;
    const ParseStatus st = mode == 0 ? whole.ParseRequest(input, &head)
                                     : whole.ParseResponse(input, size % 2 == 0, &head);
    // Feeding the first `split` bytes first must not change the outcome.
    HeadParser pieces(4096);
    Head head2;
    ParseStatus st2 = mode == 0
                          ? pieces.ParseRequest(input.substr(0, split), &head2)
                          : pieces.ParseResponse(input.substr(0, split), size % 2 == 0, &head2);
    if (st2 == ParseStatus::kIncomplete) {
      st2 = mode == 0 ? pieces.ParseRequest(input, &head2)
                      : pieces.ParseResponse(input, size % 2 == 0, &head2);
    }
    Check(st == st2);
    if (st != ParseStatus::kDone) continue;
    Check(head.head_bytes == head2.head_bytes && head.head_bytes <= size);
    std::string out;
    if (mode == 0) {
      WriteUpstreamRequestHead(head, "127.0.0.1", &out);
      // What the proxy forwards must itself parse to the same framing.
      HeadParser again(1 << 16);
      Head reparsed;
      Check(again.ParseRequest(out, &reparsed) == ParseStatus::kDone);
      Check(reparsed.body == head.body && reparsed.content_length == head.content_length);
    } else {
      WriteClientResponseHead(head, size % 3 == 0, 1, &out);
      Check(out.size() >= 4 && out.compare(out.size() - 4, 4, "\r\n\r\n") == 0);
    }
    BodyFramer framer;
    framer.Reset(head.body, head.content_length);
    const std::string_view rest = input.substr(head.head_bytes);
    std::size_t used = 0;
    // Odd-sized pieces exercise every state boundary.
    while (used < rest.size() && !framer.done() && !framer.error()) {
      const std::size_t n = std::min<std::size_t>(1 + (used % 7), rest.size() - used);
      const std::size_t took = framer.Consume(rest.data() + used, n);
      Check(took <= n);
      used += took;
      if (took < n) break;
    }
    BodyFramer one_shot;
    one_shot.Reset(head.body, head.content_length);
    const std::size_t took_all = one_shot.Consume(rest.data(), rest.size());
    Check(took_all <= rest.size());
    if (framer.done()) Check(one_shot.done() && took_all == used);
    if (framer.error()) Check(one_shot.error());
  }
  return 0;
}
