#include "kpiscale/sidecar/observe/resp_request_parser.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace kpiscale::sidecar::observe {
namespace {

// Header lines (`*N`, `$len`) are short; anything longer is not RESP.
constexpr std::size_t kMaxHeaderLine = 32;

void AppendUpper(std::string* dst, const char* data, std::size_t len, std::size_t cap) {
  const std::size_t room = cap > dst->size() ? cap - dst->size() : 0;
  const std::size_t n = std::min(room, len);
  for (std::size_t i = 0; i < n; ++i) {
    dst->push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(data[i]))));
  }
}

// Parses a decimal integer the way redis' string2ll accepts it for protocol headers.
bool ParseInt(const std::string& s, std::size_t from, int64_t* out) {
  if (from >= s.size()) return false;
  bool negative = false;
  std::size_t i = from;
  if (s[i] == '-') {
    negative = true;
    ++i;
  }
  if (i >= s.size()) return false;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    if (v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = negative ? -v : v;
  return true;
}

}  // namespace

bool RespRequestParser::Fail(const char* why) {
  state_ = State::kFailed;
  error_ = why;
  return false;
}

void RespRequestParser::Emit(std::vector<RespCommand>* out) {
  out->push_back(std::move(current_));
  current_ = RespCommand{};
  state_ = State::kIdle;
}

void RespRequestParser::Capture(const char* data, std::size_t len) {
  if (arg_index_ == 0) {
    AppendUpper(&current_.name, data, len, RespCommand::kMaxNameBytes);
  } else if (arg_index_ <= RespCommand::kCapturedArgs) {
    AppendUpper(&current_.args[arg_index_ - 1], data, len, RespCommand::kMaxArgBytes);
  }
}

bool RespRequestParser::FinishInline(std::vector<RespCommand>* out) {
  // The line has its '\n' removed; redis also strips a trailing '\r'.
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  std::size_t i = 0;
  uint64_t argc = 0;
  while (i < line_.size()) {
    while (i < line_.size() && std::isspace(static_cast<unsigned char>(line_[i]))) ++i;
    if (i >= line_.size()) break;
    std::size_t start = i;
    std::size_t end = i;
    if (line_[i] == '"' || line_[i] == '\'') {
      // Quoted argument: keep the content (escapes are rare in inline commands and only matter
      // for the captured prefix).
      const char quote = line_[i];
      start = i + 1;
      end = line_.find(quote, start);
      if (end == std::string::npos) end = line_.size();
      i = end + 1;
    } else {
      while (i < line_.size() && !std::isspace(static_cast<unsigned char>(line_[i]))) ++i;
      end = i;
    }
    arg_index_ = argc;
    Capture(line_.data() + start, end - start);
    ++argc;
  }
  line_.clear();
  if (argc == 0) {  // an empty line is no command; redis sends no reply
    current_ = RespCommand{};
    state_ = State::kIdle;
    return true;
  }
  current_.argc = argc;
  current_.inline_command = true;
  Emit(out);
  return true;
}

bool RespRequestParser::Feed(const char* data, std::size_t len, std::vector<RespCommand>* out) {
  std::size_t pos = 0;
  while (pos < len) {
    switch (state_) {
      case State::kFailed:
        return false;
      case State::kIdle:
        current_ = RespCommand{};
        line_.clear();
        if (data[pos] == '*') {
          state_ = State::kCount;
          ++pos;
        } else {
          state_ = State::kInline;
        }
        break;
      case State::kInline: {
        const void* nl = std::memchr(data + pos, '\n', len - pos);
        const std::size_t end =
            nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : len;
        if (line_.size() + (end - pos) > limits_.max_inline) {
          return Fail("inline request too big");
        }
        line_.append(data + pos, end - pos);
        pos = end;
        if (nl != nullptr) {
          ++pos;
          FinishInline(out);
        }
        break;
      }
      case State::kCount:
      case State::kBulkHeader: {
        const char c = data[pos++];
        if (c != '\n') {
          if (line_.size() >= kMaxHeaderLine) return Fail("protocol header line too long");
          line_.push_back(c);
          break;
        }
        if (line_.empty() || line_.back() != '\r') return Fail("protocol header without CR");
        line_.pop_back();
        int64_t n = 0;
        if (state_ == State::kCount) {
          if (!ParseInt(line_, 0, &n) || n > limits_.max_multibulk) {
            return Fail("invalid multibulk length");
          }
          line_.clear();
          if (n <= 0) {  // redis: no command, no reply
            state_ = State::kIdle;
            break;
          }
          current_.argc = static_cast<uint64_t>(n);
          args_left_ = n;
          arg_index_ = 0;
          state_ = State::kBulkHeader;
        } else {
          if (line_.empty() || line_[0] != '$') return Fail("expected '$'");
          if (!ParseInt(line_, 1, &n) || n < 0 || n > limits_.max_bulk) {
            return Fail("invalid bulk length");
          }
          line_.clear();
          bulk_left_ = n + 2;
          state_ = State::kBulkBody;
        }
        break;
      }
      case State::kBulkBody: {
        const std::size_t avail = len - pos;
        const std::size_t take = std::min<std::size_t>(avail, static_cast<std::size_t>(bulk_left_));
        // Only the payload (not the trailing CRLF) is captured.
        const int64_t payload_left = bulk_left_ - 2;
        if (payload_left > 0) {
          Capture(data + pos, std::min<std::size_t>(take, static_cast<std::size_t>(payload_left)));
        }
        pos += take;
        bulk_left_ -= static_cast<int64_t>(take);
        if (bulk_left_ == 0) {
          ++arg_index_;
          if (--args_left_ == 0) {
            Emit(out);
          } else {
            state_ = State::kBulkHeader;
          }
        }
        break;
      }
    }
  }
  return state_ != State::kFailed;
}

}  // namespace kpiscale::sidecar::observe
