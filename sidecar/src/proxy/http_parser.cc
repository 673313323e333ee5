#include "kpiscale/sidecar/http_parser.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace kpiscale::sidecar::http {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// tchar (RFC 9110 5.6.2) as a table: the parser tests every byte of every header name.
constexpr std::array<bool, 256> MakeTokenTable() {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr std::array<bool, 256> kTokenChar = MakeTokenTable();

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTokenChar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// Field values: visible ASCII, space, tab and obs-text; no other control characters.
bool IsFieldValue(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 ? u != '\t' : u == 0x7f) return false;
  }
  return true;
}

HeaderRole RoleOf(std::string_view name) {
  switch (name.size()) {
    case 2:
      if (EqualsIgnoreCase(name, "te")) return HeaderRole::kHopByHop;
      break;
    case 4:
      if (EqualsIgnoreCase(name, "host")) return HeaderRole::kFraming;
      break;
    case 7:
      if (EqualsIgnoreCase(name, "upgrade")) return HeaderRole::kUpgrade;
      break;
    case 10:
      if (EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive")) {
        return HeaderRole::kHopByHop;
      }
      break;
    case 14:
      if (EqualsIgnoreCase(name, "content-length")) return HeaderRole::kFraming;
      break;
    case 15:
      if (EqualsIgnoreCase(name, "x-forwarded-for")) return HeaderRole::kXForwardedFor;
      break;
    case 16:
      if (EqualsIgnoreCase(name, "proxy-connection")) return HeaderRole::kHopByHop;
      break;
    case 17:
      if (EqualsIgnoreCase(name, "transfer-encoding")) return HeaderRole::kFraming;
      break;
    case 19:
      if (EqualsIgnoreCase(name, "proxy-authorization")) return HeaderRole::kHopByHop;
      break;
    default:
      break;
  }
  return HeaderRole::kEndToEnd;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(token) for each comma-separated, trimmed, non-empty element of a list header.
template <typename Fn>
void ForEachListElement(std::string_view value, Fn fn) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view item = TrimOws(value.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

bool ParseVersion(std::string_view s, int* minor) {
  if (s.size() != 8 || s.substr(0, 7) != "HTTP/1.") return false;
  if (s[7] != '0' && s[7] != '1') return false;
  *minor = s[7] - '0';
  return true;
}

// Splits the header lines (after the start line) into head->headers and derives framing facts.
// Returns an error message, or empty on success.
std::string ParseHeaderLines(std::string_view lines, Head* head, bool* chunked, bool* has_te,
                             bool* has_length) {
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool has_upgrade_header = false;
  *chunked = false;
  *has_te = false;
  *has_length = false;
  while (!lines.empty()) {
    const std::size_t eol = lines.find("\r\n");
    const std::string_view line = lines.substr(0, eol);
    lines.remove_prefix(eol == std::string_view::npos ? lines.size() : eol + 2);
    if (line.empty()) continue;
    if (line.front() == ' ' || line.front() == '\t') return "obsolete line folding";
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "header line without a colon";
    const std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return "invalid header name";
    const std::string_view value = TrimOws(line.substr(colon + 1));
    if (!IsFieldValue(value)) return "invalid header value";
    head->headers.push_back(Header{name, value, RoleOf(name)});
    if (EqualsIgnoreCase(name, "content-length")) {
      uint64_t length = 0;
      if (!ParseDecimal(value, &length)) return "invalid Content-Length";
      if (*has_length && length != head->content_length) return "conflicting Content-Length";
      *has_length = true;
      head->content_length = length;
    } else if (EqualsIgnoreCase(name, "transfer-encoding")) {
      *has_te = true;
      // Only the last coding matters for framing; a later TE header overrides an earlier one.
      bool last_chunked = false;
      ForEachListElement(
          value, [&](std::string_view item) { last_chunked = EqualsIgnoreCase(item, "chunked"); });
      *chunked = last_chunked;
    } else if (EqualsIgnoreCase(name, "connection")) {
      bool other = false;
      ForEachListElement(value, [&](std::string_view item) {
        if (EqualsIgnoreCase(item, "close")) {
          conn_close = true;
          other = true;  // a header literally named "close" would be hop-by-hop
        } else if (EqualsIgnoreCase(item, "keep-alive")) {
          conn_keep_alive = true;
        } else if (EqualsIgnoreCase(item, "upgrade")) {
          conn_upgrade = true;
        } else {
          other = true;
        }
      });
      if (other) ++head->connection_other_names;
    } else if (EqualsIgnoreCase(name, "upgrade")) {
      has_upgrade_header = !value.empty();
    } else if (EqualsIgnoreCase(name, "expect")) {
      if (EqualsIgnoreCase(value, "100-continue")) head->expect_continue = true;
    }
  }
  head->keep_alive = head->version_minor == 1 ? !conn_close : (conn_keep_alive && !conn_close);
  head->upgrade = conn_upgrade && has_upgrade_header;
  return {};
}

// Whether a header stays behind at this hop: hop-by-hop by name, or named in Connection (but
// never a framing header: dropping Content-Length or Transfer-Encoding would let the body be
// read as the next message).
bool IsDropped(const Header& header, const Head& head) {
  switch (header.role) {
    case HeaderRole::kHopByHop:
      return true;
    case HeaderRole::kUpgrade:
      return !head.upgrade;
    case HeaderRole::kFraming:
      return false;
    case HeaderRole::kEndToEnd:
    case HeaderRole::kXForwardedFor:
      break;
  }
  // Connection lists of only keep-alive and upgrade name headers that are hop-by-hop anyway.
  if (head.connection_other_names == 0) return false;
  bool named = false;
  for (const Header& h : head.headers) {
    if (h.role != HeaderRole::kHopByHop || !EqualsIgnoreCase(h.name, "connection")) continue;
    ForEachListElement(h.value, [&](std::string_view item) {
      if (EqualsIgnoreCase(item, header.name)) named = true;
    });
  }
  return named;
}

void AppendHeader(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view FindHeader(const Head& head, std::string_view name) {
  for (const Header& h : head.headers) {
    if (EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

ParseStatus HeadParser::FindEnd(std::string_view buffer, std::size_t* end) {
  const std::size_t limit = std::min(buffer.size(), max_head_bytes_);
  for (std::size_t i = scanned_; i < limit; ++i) {
    const char c = buffer[i];
    if (c == '\n') {
      if (i == 0 || buffer[i - 1] != '\r') {
        error_ = "bare LF in head";
        return ParseStatus::kInvalid;
      }
      // Leading empty lines before a request line are tolerated (RFC 9112 2.2), but an empty
      // line right after a line is the end of the head.
      if (i >= 3 && buffer[i - 2] == '\n' && buffer[i - 3] == '\r') {
        *end = i + 1;
        scanned_ = 0;
        return ParseStatus::kDone;
      }
    } else if (c == '\0') {
      error_ = "NUL in head";
      return ParseStatus::kInvalid;
    }
  }
  scanned_ = limit;
  if (buffer.size() >= max_head_bytes_) return ParseStatus::kTooLarge;
  return ParseStatus::kIncomplete;
}

ParseStatus HeadParser::ParseRequest(std::string_view buffer, Head* out) {
  std::size_t end = 0;
  const ParseStatus found = FindEnd(buffer, &end);
  if (found != ParseStatus::kDone) return found;
  out->Clear();
  out->is_request = true;
  out->head_bytes = end;
  std::string_view head = buffer.substr(0, end - 2);  // keep the CRLF of the last line
  while (head.substr(0, 2) == "\r\n") head.remove_prefix(2);
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    error_ = "malformed request line";
    return ParseStatus::kInvalid;
  }
  out->method = line.substr(0, sp1);
  out->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!IsToken(out->method) || out->target.empty() ||
      !std::all_of(out->target.begin(), out->target.end(),
                   [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; }) ||
      !ParseVersion(line.substr(sp2 + 1), &out->version_minor)) {
    error_ = "malformed request line";
    return ParseStatus::kInvalid;
  }
  bool chunked = false;
  bool has_te = false;
  bool has_length = false;
  error_ = ParseHeaderLines(head.substr(eol + 2), out, &chunked, &has_te, &has_length);
  if (!error_.empty()) return ParseStatus::kInvalid;
  if (has_te) {
    if (has_length) {
      error_ = "both Content-Length and Transfer-Encoding";
      return ParseStatus::kInvalid;
    }
    if (!chunked || out->version_minor == 0) {
      error_ = "unsupported Transfer-Encoding";
      return ParseStatus::kInvalid;
    }
    out->body = BodyKind::kChunked;
  } else if (has_length) {
    out->body = out->content_length > 0 ? BodyKind::kLength : BodyKind::kNone;
  }
  return ParseStatus::kDone;
}

ParseStatus HeadParser::ParseResponse(std::string_view buffer, bool request_method_head,
                                      Head* out) {
  std::size_t end = 0;
  const ParseStatus found = FindEnd(buffer, &end);
  if (found != ParseStatus::kDone) return found;
  out->Clear();
  out->is_request = false;
  out->head_bytes = end;
  const std::string_view head = buffer.substr(0, end - 2);
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  // "HTTP/1.1 200 OK" (reason may be empty, and the space before it may be missing).
  if (line.size() < 12 || !ParseVersion(line.substr(0, 8), &out->version_minor) || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    error_ = "malformed status line";
    return ParseStatus::kInvalid;
  }
  uint64_t status = 0;
  if (!ParseDecimal(line.substr(9, 3), &status) || status < 100) {
    error_ = "malformed status code";
    return ParseStatus::kInvalid;
  }
  out->status = static_cast<int>(status);
  out->reason = line.size() > 13 ? line.substr(13) : std::string_view();
  bool chunked = false;
  bool has_te = false;
  bool has_length = false;
  error_ = ParseHeaderLines(head.substr(eol + 2), out, &chunked, &has_te, &has_length);
  if (!error_.empty()) return ParseStatus::kInvalid;
  if (request_method_head || out->status < 200 || out->status == 204 || out->status == 304) {
    out->body = BodyKind::kNone;
  } else if (has_te) {
    out->body = chunked ? BodyKind::kChunked : BodyKind::kUntilClose;
  } else if (has_length) {
    out->body = out->content_length > 0 ? BodyKind::kLength : BodyKind::kNone;
  } else {
    out->body = BodyKind::kUntilClose;
  }
  if (out->body == BodyKind::kUntilClose) out->keep_alive = false;
  if (out->status == 101) out->upgrade = true;
  return ParseStatus::kDone;
}

void BodyFramer::Reset(BodyKind kind, uint64_t content_length) {
  kind_ = kind;
  remaining_ = 0;
  size_digits_ = 0;
  line_bytes_ = 0;
  switch (kind) {
    case BodyKind::kNone:
      state_ = State::kDone;
      break;
    case BodyKind::kLength:
      remaining_ = content_length;
      state_ = content_length == 0 ? State::kDone : State::kLength;
      break;
    case BodyKind::kChunked:
      state_ = State::kChunkSize;
      break;
    case BodyKind::kUntilClose:
      state_ = State::kUntilClose;
      break;
  }
}

std::size_t BodyFramer::Consume(const char* data, std::size_t len) {
  // Chunk-size lines, extensions and trailer lines are bounded so that a peer cannot make the
  // framer scan forever without progress.
  constexpr std::size_t kMaxLine = 8192;
  std::size_t i = 0;
  while (i < len) {
    const char c = data[i];
    switch (state_) {
      case State::kDone:
      case State::kError:
        return i;
      case State::kUntilClose:
        return len;
      case State::kLength: {
        const uint64_t take = std::min<uint64_t>(remaining_, len - i);
        remaining_ -= take;
        i += static_cast<std::size_t>(take);
        if (remaining_ == 0) state_ = State::kDone;
        continue;
      }
      case State::kChunkSize: {
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (digit >= 0) {
          if (++size_digits_ > 15) {  // beyond 2^60 bytes: refuse rather than overflow
            state_ = State::kError;
            return i;
          }
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
        } else if (size_digits_ == 0) {
          state_ = State::kError;
          return i;
        } else if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kChunkExt;
          line_bytes_ = 0;
        } else {
          state_ = State::kError;
          return i;
        }
        break;
      }
      case State::kChunkExt:
        if (c == '\r') {
          state_ = State::kChunkSizeLf;
        } else if (c == '\n' || ++line_bytes_ > kMaxLine) {
          state_ = State::kError;
          return i;
        }
        break;
      case State::kChunkSizeLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kChunkData;
        break;
      case State::kChunkData: {
        const uint64_t take = std::min<uint64_t>(remaining_, len - i);
        remaining_ -= take;
        i += static_cast<std::size_t>(take);
        if (remaining_ == 0) state_ = State::kChunkDataCr;
        continue;
      }
      case State::kChunkDataCr:
        if (c != '\r') {
          state_ = State::kError;
          return i;
        }
        state_ = State::kChunkDataLf;
        break;
      case State::kChunkDataLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        state_ = State::kChunkSize;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kFinalLf;
        } else if (c == '\n') {
          state_ = State::kError;
          return i;
        } else {
          state_ = State::kTrailerLine;
          line_bytes_ = 1;
        }
        break;
      case State::kTrailerLine:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (c == '\n' || ++line_bytes_ > kMaxLine) {
          state_ = State::kError;
          return i;
        }
        break;
      case State::kTrailerLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        state_ = State::kTrailerStart;
        break;
      case State::kFinalLf:
        if (c != '\n') {
          state_ = State::kError;
          return i;
        }
        state_ = State::kDone;
        return i + 1;
    }
    ++i;
  }
  return i;
}

void Head::Clear() {
  is_request = true;
  method = target = reason = {};
  status = 0;
  version_minor = 1;
  headers.clear();
  head_bytes = 0;
  body = BodyKind::kNone;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
  upgrade = false;
  connection_other_names = 0;
}

void WriteUpstreamRequestHead(const Head& head, std::string_view client_ip, std::string* out) {
  out->clear();
  out->reserve(head.head_bytes + 64);
  out->append(head.method);
  out->push_back(' ');
  out->append(head.target);
  out->append(head.version_minor == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
  bool has_forwarded = false;
  for (const Header& h : head.headers) {
    if (h.role == HeaderRole::kXForwardedFor) {
      has_forwarded = true;
    } else if (!IsDropped(h, head)) {
      AppendHeader(out, h.name, h.value);
    }
  }
  // One X-Forwarded-For: the earlier hops' values in order, then the client's address.
  out->append("X-Forwarded-For: ");
  if (has_forwarded) {
    for (const Header& h : head.headers) {
      if (h.role != HeaderRole::kXForwardedFor || h.value.empty()) continue;
      out->append(h.value);
      out->append(", ");
    }
  }
  out->append(client_ip);
  out->append("\r\n");
  if (head.upgrade) AppendHeader(out, "Connection", "upgrade");
  out->append("\r\n");
}

void WriteClientResponseHead(const Head& head, bool close, int client_version_minor,
                             std::string* out) {
  out->clear();
  out->reserve(head.head_bytes + 32);
  // The status line is rebuilt: the client sees the version the proxy speaks.
  out->append("HTTP/1.1 ");
  const int status = head.status;  // 100..999, checked by the parser
  out->push_back(static_cast<char>('0' + status / 100));
  out->push_back(static_cast<char>('0' + status / 10 % 10));
  out->push_back(static_cast<char>('0' + status % 10));
  out->push_back(' ');
  out->append(head.reason);
  out->append("\r\n");
  for (const Header& h : head.headers) {
    if (!IsDropped(h, head)) AppendHeader(out, h.name, h.value);
  }
  if (head.status == 101) {
    AppendHeader(out, "Connection", "upgrade");
  } else if (close) {
    AppendHeader(out, "Connection", "close");
  } else if (client_version_minor == 0 && head.status >= 200) {
    AppendHeader(out, "Connection", "keep-alive");
  }
  out->append("\r\n");
}

std::string SimpleResponse(int status, std::string_view reason, std::string_view body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(reason);
  out.append("\r\nContent-Type: text/plain\r\nContent-Length: ");
  out.append(std::to_string(body.size()));
  out.append("\r\nConnection: close\r\n\r\n");
  out.append(body);
  return out;
}

}  // namespace kpiscale::sidecar::http
