#include "api/json_util.h"

#include <cstdint>
#include <cstdio>

namespace kpiscale::adapter::internal {

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8.
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
    return 0;
  }
  return n;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
          out->append(buf);
        } else if (c < 0x80) {
          out->push_back(s[i]);
        } else if (const std::size_t n = Utf8Length(s, i); n > 0) {
          // Bytes from the request (names in messages) are echoed only when valid UTF-8.
          out->append(s.substr(i, n));
          i += n - 1;
        } else {
          out->append("\\ufffd");
        }
    }
  }
  out->push_back('"');
}

void AppendLabelsObject(std::string* out, const common::Labels& labels, bool null_if_empty) {
  if (labels.empty() && null_if_empty) {
    out->append("null");
    return;
  }
  out->push_back('{');
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, k);
    out->push_back(':');
    AppendJsonString(out, v);
  }
  out->push_back('}');
}

void AppendSelectorObject(std::string* out, const common::LabelSelector& selector) {
  if (selector.empty()) {
    out->append("null");
    return;
  }
  using Op = common::LabelRequirement::Op;
  common::Labels match_labels;
  std::string expressions;
  for (const auto& r : selector.requirements()) {
    if (r.op == Op::kEquals && r.values.size() == 1 && match_labels.count(r.key) == 0) {
      match_labels[r.key] = r.values.front();
      continue;
    }
    const char* op = "In";
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        op = "In";
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        op = "NotIn";
        break;
      case Op::kExists:
        op = "Exists";
        break;
      case Op::kDoesNotExist:
        op = "DoesNotExist";
        break;
      case Op::kGreaterThan:
        op = "Gt";
        break;
      case Op::kLessThan:
        op = "Lt";
        break;
    }
    if (!expressions.empty()) expressions.push_back(',');
    expressions.append("{\"key\":");
    AppendJsonString(&expressions, r.key);
    expressions.append(",\"operator\":");
    AppendJsonString(&expressions, op);
    if (!r.values.empty()) {
      expressions.append(",\"values\":[");
      for (std::size_t i = 0; i < r.values.size(); ++i) {
        if (i > 0) expressions.push_back(',');
        AppendJsonString(&expressions, r.values[i]);
      }
      expressions.push_back(']');
    }
    expressions.push_back('}');
  }
  out->push_back('{');
  if (!match_labels.empty()) {
    out->append("\"matchLabels\":");
    AppendLabelsObject(out, match_labels, false);
  }
  if (!expressions.empty()) {
    if (!match_labels.empty()) out->push_back(',');
    out->append("\"matchExpressions\":[");
    out->append(expressions);
    out->push_back(']');
  }
  out->push_back('}');
}

std::string StatusBody(int code, std::string_view reason, std::string_view message) {
  std::string out =
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":)";
  AppendJsonString(&out, message);
  if (!reason.empty()) {
    out.append(",\"reason\":");
    AppendJsonString(&out, reason);
  }
  out.append(",\"code\":");
  out.append(std::to_string(code));
  out.push_back('}');
  return out;
}

}  // namespace kpiscale::adapter::internal
