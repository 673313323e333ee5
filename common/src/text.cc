#include "kpiscale/common/text.h"

#include "absl/strings/str_cat.h"

namespace kpiscale::common {

std::string QuoteForMessage(std::string_view text, std::size_t max_shown) {
  std::string out = "\"";
  const std::size_t shown = text.size() > max_shown ? max_shown : text.size();
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown < text.size()) absl::StrAppend(&out, "...(", text.size(), " bytes)");
  out += '"';
  return out;
}

}  // namespace kpiscale::common
