#include "kpiscale/sidecar/observe/pg_wire.h"

#include <algorithm>
#include <cstring>

namespace kpiscale::sidecar::observe {
namespace {

void AppendBe32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>((v >> 24) & 0xff));
  out->push_back(static_cast<char>((v >> 16) & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
  out->push_back(static_cast<char>(v & 0xff));
}

}  // namespace

bool PgFramer::Fail(const char* why) {
  failed_ = true;
  error_ = why;
  return false;
}

bool PgFramer::Feed(const char* data, std::size_t len, std::vector<PgEvent>* out) {
  std::size_t pos = 0;
  while (pos < len) {
    if (failed_) return false;
    if (body_left_ > 0) {
      const auto take = static_cast<uint32_t>(std::min<std::size_t>(body_left_, len - pos));
      pos += take;
      body_left_ -= take;
      if (body_left_ == 0) {
        current_.complete = true;
        out->push_back(current_);
      }
      continue;
    }
    if (cancelled_) return Fail("bytes after a CancelRequest");
    const std::size_t need = startup_phase_ ? 8 : 5;
    const std::size_t take = std::min(need - header_have_, len - pos);
    std::memcpy(header_ + header_have_, data + pos, take);
    header_have_ += take;
    pos += take;
    if (header_have_ < need) break;
    header_have_ = 0;
    if (startup_phase_) {
      const uint32_t length = ReadBe32(header_);
      const uint32_t code = ReadBe32(header_ + 4);
      if (length < 8 || length > kMaxStartupLength) return Fail("invalid startup packet length");
      if (code == kPgSslRequest || code == kPgGssEncRequest) {
        if (length != 8) return Fail("invalid encryption request length");
        current_.kind =
            code == kPgSslRequest ? PgEvent::Kind::kSslRequest : PgEvent::Kind::kGssEncRequest;
      } else if (code == kPgCancelRequest) {
        if (length != 16) return Fail("invalid CancelRequest length");
        current_.kind = PgEvent::Kind::kCancelRequest;
        cancelled_ = true;
        startup_phase_ = false;
      } else if ((code >> 16) == 3) {
        current_.kind = PgEvent::Kind::kStartup;
        startup_phase_ = false;
      } else {
        return Fail("unsupported protocol version");
      }
      current_.type = 0;
      current_.length = length;
      body_left_ = length - 8;
    } else {
      const uint32_t length = ReadBe32(header_ + 1);
      if (length < 4 || length > kMaxMessageLength) return Fail("invalid message length");
      current_.kind = PgEvent::Kind::kMessage;
      current_.type = static_cast<char>(header_[0]);
      current_.length = length;
      body_left_ = length - 4;
    }
    current_.complete = false;
    out->push_back(current_);
    if (body_left_ == 0) {
      current_.complete = true;
      out->push_back(current_);
    }
  }
  return !failed_;
}

std::string PgErrorResponse(const std::string& sqlstate, const std::string& message) {
  std::string body;
  body += 'S';
  body += "FATAL";
  body += '\0';
  body += 'V';
  body += "FATAL";
  body += '\0';
  body += 'C';
  body += sqlstate;
  body += '\0';
  body += 'M';
  body += message;
  body += '\0';
  body += '\0';
  std::string out;
  out += 'E';
  AppendBe32(&out, static_cast<uint32_t>(body.size() + 4));
  out += body;
  return out;
}

}  // namespace kpiscale::sidecar::observe
