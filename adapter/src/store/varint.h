#pragma once

// Base-128 varints for the adapter's compact in-memory encodings (window store rows and
// histogram snapshots). Private to the store: nothing outside adapter/src/store decodes them.

#include <cstddef>
#include <cstdint>
#include <string>

namespace kpiscale::adapter::store_encoding {

inline void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

/// Reads one varint at *pos and advances it; false on truncated or over-long input.
inline bool GetVarint(const std::string& in, std::size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= in.size()) return false;
    const auto byte = static_cast<uint8_t>(in[(*pos)++]);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace kpiscale::adapter::store_encoding
