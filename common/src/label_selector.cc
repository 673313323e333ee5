#include "kpiscale/common/label_selector.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kpiscale/common/absl_compat.h"
#include "kpiscale/common/status.h"
#include "kpiscale/common/text.h"
#include "nlohmann/json.hpp"

namespace kpiscale::common {
namespace {

using Op = LabelRequirement::Op;

// Debian's Abseil has its own string_view type.
constexpr std::size_t kMaxNameLength = 63;
constexpr std::size_t kMaxPrefixLength = 253;
constexpr std::size_t kMaxValueLength = 63;

// Error messages show at most 300 bytes of the offending input.
std::string QuoteSelectorText(std::string_view text) { return QuoteForMessage(text, 300); }

// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, non-empty.
bool IsQualifiedNamePart(std::string_view s) {
  if (s.empty() || !IsAsciiAlnum(s.front()) || !IsAsciiAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsAsciiAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// RFC 1123 subdomain: dot-separated labels of `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
bool IsDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxPrefixLength) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || !IsLowerAsciiAlnum(label.front()) || !IsLowerAsciiAlnum(label.back()))
      return false;
    if (!std::all_of(label.begin(), label.end(),
                     [](char c) { return IsLowerAsciiAlnum(c) || c == '-'; })) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Kubernetes validation.IsQualifiedName; the empty string means valid.
std::string KeyError(std::string_view key) {
  std::string_view name = key;
  const std::size_t slash = key.find('/');
  if (slash != std::string_view::npos) {
    if (key.find('/', slash + 1) != std::string_view::npos) {
      return "a qualified name has at most one '/' (an optional DNS subdomain prefix, then "
             "'/', then a name, e.g. 'example.com/MyName')";
    }
    const std::string_view prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    if (prefix.size() > kMaxPrefixLength) {
      return absl::StrCat("prefix part must be no more than ", kMaxPrefixLength, " characters");
    }
    if (!IsDns1123Subdomain(prefix)) {
      return "prefix part must be a lowercase RFC 1123 subdomain (lowercase alphanumerics, '-' "
             "and '.', starting and ending with an alphanumeric)";
    }
  }
  if (name.empty()) return "name part must be non-empty";
  if (name.size() > kMaxNameLength) {
    return absl::StrCat("name part must be no more than ", kMaxNameLength, " characters");
  }
  if (!IsQualifiedNamePart(name)) {
    return "name part must consist of alphanumerics, '-', '_' or '.', and must start and end "
           "with an alphanumeric";
  }
  return "";
}

// Kubernetes validation.IsValidLabelValue; the empty string means valid.
std::string ValueError(std::string_view value) {
  if (value.empty()) return "";
  if (value.size() > kMaxValueLength) {
    return absl::StrCat("must be no more than ", kMaxValueLength, " characters");
  }
  if (!IsQualifiedNamePart(value)) {
    return "must be empty or consist of alphanumerics, '-', '_' or '.', and must start and end "
           "with an alphanumeric";
  }
  return "";
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// apimachinery NewRequirement: checks the value count for the operator and validates key and
// values. Returns a message, empty when valid; *bad_value is set to the index of a bad value.
std::string RequirementError(const LabelRequirement& r, int* bad_value) {
  *bad_value = -1;
  if (std::string err = KeyError(r.key); !err.empty()) {
    return absl::StrCat("invalid label key ", QuoteSelectorText(r.key), ": ", err);
  }
  switch (r.op) {
    case Op::kIn:
    case Op::kNotIn:
      if (r.values.empty()) return "for 'in', 'notin' operators, values set can't be empty";
      break;
    case Op::kEquals:
    case Op::kNotEquals:
      if (r.values.size() != 1) return "exact-match compatibility requires one single value";
      break;
    case Op::kExists:
    case Op::kDoesNotExist:
      if (!r.values.empty()) return "values set must be empty for exists and does not exist";
      break;
    case Op::kGreaterThan:
    case Op::kLessThan: {
      if (r.values.size() != 1) return "for 'Gt', 'Lt' operators, exactly one value is required";
      int64_t unused = 0;
      if (!ParseInt64(r.values[0], &unused)) {
        *bad_value = 0;
        return "for 'Gt', 'Lt' operators, the value must be an integer";
      }
      break;
    }
  }
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    if (std::string err = ValueError(r.values[i]); !err.empty()) {
      *bad_value = static_cast<int>(i);
      return absl::StrCat("invalid label value ", QuoteSelectorText(r.values[i]), " at key ",
                          QuoteSelectorText(r.key), ": ", err);
    }
  }
  return "";
}

void SortUnique(std::vector<std::string>& values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
}

// ---- String grammar (apimachinery pkg/labels/selector.go: Lexer and Parser). ----

enum class Tok {
  kEnd,
  kIdentifier,  // also the keywords `in` and `notin`, which are operators only after a key
  kNot,         // !
  kNotEquals,   // !=
  kEquals,      // =
  kDoubleEquals,
  kGreater,
  kLess,
  kOpenPar,
  kClosePar,
  kComma,
};

struct Token {
  Tok tok = Tok::kEnd;
  std::string_view text;
  std::size_t pos = 0;
};

bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsSpecial(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

std::vector<Token> Lex(std::string_view s) {
  std::vector<Token> tokens;
  std::size_t i = 0;
  while (true) {
    while (i < s.size() && IsWhitespace(s[i])) ++i;
    if (i >= s.size()) {
      tokens.push_back({Tok::kEnd, std::string_view(), s.size()});
      return tokens;
    }
    const std::size_t start = i;
    if (IsSpecial(s[i])) {
      // Longest match, as the upstream lexer: only `!=` and `==` have two characters.
      if (i + 1 < s.size() && s[i + 1] == '=' && (s[i] == '!' || s[i] == '=')) {
        tokens.push_back({s[i] == '!' ? Tok::kNotEquals : Tok::kDoubleEquals, s.substr(i, 2), i});
        i += 2;
        continue;
      }
      Tok tok = Tok::kComma;
      switch (s[i]) {
        case '=':
          tok = Tok::kEquals;
          break;
        case '!':
          tok = Tok::kNot;
          break;
        case '(':
          tok = Tok::kOpenPar;
          break;
        case ')':
          tok = Tok::kClosePar;
          break;
        case '>':
          tok = Tok::kGreater;
          break;
        case '<':
          tok = Tok::kLess;
          break;
        default:
          tok = Tok::kComma;
          break;
      }
      tokens.push_back({tok, s.substr(i, 1), i});
      ++i;
      continue;
    }
    // Identifiers run to the next whitespace or special symbol; whatever bytes they hold are
    // judged later by key/value validation, which gives the clearer message.
    while (i < s.size() && !IsWhitespace(s[i]) && !IsSpecial(s[i])) ++i;
    tokens.push_back({Tok::kIdentifier, s.substr(start, i - start), start});
  }
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), tokens_(Lex(text)) {}

  absl::StatusOr<std::vector<LabelRequirement>> Run() {
    std::vector<LabelRequirement> requirements;
    while (true) {
      const Token& t = Peek();
      if (t.tok == Tok::kEnd) return requirements;
      if (t.tok != Tok::kIdentifier && t.tok != Tok::kNot) {
        return Error(t, absl::StrCat("found ", Describe(t),
                                     ", expected: !, identifier, or 'end of string'"));
      }
      KPISCALE_ASSIGN_OR_RETURN(LabelRequirement r, ParseRequirement());
      requirements.push_back(std::move(r));
      const Token& after = Next();
      if (after.tok == Tok::kEnd) return requirements;
      if (after.tok != Tok::kComma) {
        return Error(after,
                     absl::StrCat("found ", Describe(after), ", expected: ',' or 'end of string'"));
      }
      const Token& lookahead = Peek();
      if (lookahead.tok != Tok::kIdentifier && lookahead.tok != Tok::kNot) {
        return Error(lookahead, absl::StrCat("found ", Describe(lookahead),
                                             ", expected: identifier after ','"));
      }
    }
  }

 private:
  const Token& Peek() const { return tokens_[next_]; }
  const Token& Next() {
    const Token& t = tokens_[next_];
    if (t.tok != Tok::kEnd) ++next_;
    return t;
  }

  static std::string Describe(const Token& t) {
    if (t.tok == Tok::kEnd) return "end of string";
    return absl::StrCat("'", AbslView(t.text), "'");
  }

  absl::Status Error(const Token& at, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("invalid label selector ",
                                                   QuoteSelectorText(text_), ": ", AbslView(what),
                                                   " at position ", at.pos));
  }
  absl::Status RequirementErrorAt(std::size_t pos, std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid label selector ", QuoteSelectorText(text_),
                     ": unable to parse requirement: ", AbslView(what), " at position ", pos));
  }

  absl::StatusOr<LabelRequirement> ParseRequirement() {
    LabelRequirement r;
    bool negated = false;
    const Token* key = &Next();
    if (key->tok == Tok::kNot) {
      negated = true;
      key = &Next();
    }
    if (key->tok != Tok::kIdentifier) {
      return RequirementErrorAt(key->pos,
                                absl::StrCat("found ", Describe(*key), ", expected: identifier"));
    }
    r.key.assign(key->text);
    std::vector<std::size_t> value_pos;
    const Tok following = Peek().tok;
    if (negated) {
      r.op = Op::kDoesNotExist;
    } else if (following == Tok::kEnd || following == Tok::kComma) {
      r.op = Op::kExists;
    } else {
      const Token& op = Next();
      switch (op.tok) {
        case Tok::kEquals:
        case Tok::kDoubleEquals:
          r.op = Op::kEquals;
          break;
        case Tok::kNotEquals:
          r.op = Op::kNotEquals;
          break;
        case Tok::kGreater:
          r.op = Op::kGreaterThan;
          break;
        case Tok::kLess:
          r.op = Op::kLessThan;
          break;
        case Tok::kIdentifier:
          if (op.text == "in") {
            r.op = Op::kIn;
            break;
          }
          if (op.text == "notin") {
            r.op = Op::kNotIn;
            break;
          }
          [[fallthrough]];
        default:
          return RequirementErrorAt(op.pos, absl::StrCat("found ", Describe(op),
                                                         ", expected: in, notin, =, ==, !=, >, <"));
      }
      if (r.op == Op::kIn || r.op == Op::kNotIn) {
        KPISCALE_RETURN_IF_ERROR(ParseValueSet(&r.values, &value_pos));
      } else {
        KPISCALE_RETURN_IF_ERROR(ParseExactValue(&r.values, &value_pos));
      }
    }
    int bad_value = -1;
    if (std::string err = RequirementError(r, &bad_value); !err.empty()) {
      const std::size_t pos =
          bad_value >= 0 && static_cast<std::size_t>(bad_value) < value_pos.size()
              ? value_pos[static_cast<std::size_t>(bad_value)]
              : key->pos;
      return RequirementErrorAt(pos, err);
    }
    SortUnique(r.values);
    return r;
  }

  // `= value`, where the value may be empty (`a=` or `a=,b`).
  absl::Status ParseExactValue(std::vector<std::string>* values, std::vector<std::size_t>* pos) {
    const Token& t = Peek();
    if (t.tok == Tok::kEnd || t.tok == Tok::kComma) {
      values->emplace_back();
      pos->push_back(t.pos);
      return absl::OkStatus();
    }
    const Token& v = Next();
    if (v.tok != Tok::kIdentifier) {
      return RequirementErrorAt(v.pos,
                                absl::StrCat("found ", Describe(v), ", expected: identifier"));
    }
    values->emplace_back(v.text);
    pos->push_back(v.pos);
    return absl::OkStatus();
  }

  // `( v, v, … )`; empty members (`()`, `(a,)`, `(,,)`) stand for the empty value, as upstream.
  absl::Status ParseValueSet(std::vector<std::string>* values, std::vector<std::size_t>* pos) {
    const Token& open = Next();
    if (open.tok != Tok::kOpenPar) {
      return RequirementErrorAt(open.pos,
                                absl::StrCat("found ", Describe(open), ", expected: '('"));
    }
    bool expect_value = true;
    while (true) {
      const Token& t = Next();
      switch (t.tok) {
        case Tok::kIdentifier:
          if (!expect_value) {
            return RequirementErrorAt(
                t.pos, absl::StrCat("found ", Describe(t), ", expected: ',' or ')'"));
          }
          values->emplace_back(t.text);
          pos->push_back(t.pos);
          expect_value = false;
          break;
        case Tok::kComma:
          if (expect_value) {
            values->emplace_back();
            pos->push_back(t.pos);
          }
          expect_value = true;
          break;
        case Tok::kClosePar:
          if (expect_value) {
            values->emplace_back();
            pos->push_back(t.pos);
          }
          return absl::OkStatus();
        default:
          return RequirementErrorAt(t.pos,
                                    absl::StrCat("found ", Describe(t),
                                                 expect_value ? ", expected: ',', ')' or identifier"
                                                              : ", expected: ',' or ')'"));
      }
    }
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  std::size_t next_ = 0;
};

// ---- Object form ----

absl::Status FieldError(std::string_view path, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid label selector object: ", AbslView(path), ": ", AbslView(what)));
}

absl::StatusOr<LabelRequirement> ExpressionFromJson(const nlohmann::json& e,
                                                    const std::string& path) {
  if (!e.is_object()) return FieldError(path, "must be an object");
  LabelRequirement r;
  bool has_key = false;
  bool has_op = false;
  for (const auto& [name, field] : e.items()) {
    if (name == "key") {
      if (!field.is_string()) return FieldError(path + ".key", "must be a string");
      r.key = field.get<std::string>();
      has_key = true;
    } else if (name == "operator") {
      if (!field.is_string()) return FieldError(path + ".operator", "must be a string");
      const auto& op = field.get_ref<const std::string&>();
      if (op == "In") {
        r.op = Op::kIn;
      } else if (op == "NotIn") {
        r.op = Op::kNotIn;
      } else if (op == "Exists") {
        r.op = Op::kExists;
      } else if (op == "DoesNotExist") {
        r.op = Op::kDoesNotExist;
      } else {
        return FieldError(path + ".operator",
                          absl::StrCat(QuoteSelectorText(op),
                                       " is not a valid label selector operator (In, NotIn, "
                                       "Exists, DoesNotExist)"));
      }
      has_op = true;
    } else if (name == "values") {
      if (field.is_null()) continue;
      if (!field.is_array()) return FieldError(path + ".values", "must be a list of strings");
      for (std::size_t i = 0; i < field.size(); ++i) {
        if (!field[i].is_string()) {
          return FieldError(absl::StrCat(path, ".values[", i, "]"), "must be a string");
        }
        r.values.push_back(field[i].get<std::string>());
      }
    } else {
      return FieldError(absl::StrCat(path, ".", name), "unknown field");
    }
  }
  if (!has_key) return FieldError(path + ".key", "is required");
  if (!has_op) return FieldError(path + ".operator", "is required");
  int bad_value = -1;
  if (std::string err = RequirementError(r, &bad_value); !err.empty()) {
    return FieldError(bad_value >= 0 ? absl::StrCat(path, ".values[", bad_value, "]") : path, err);
  }
  SortUnique(r.values);
  return r;
}

nlohmann::json YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.Scalar()] = YamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(YamlToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      // Label values such as `1` or `true` stay strings (they are strings in the API).
      return node.Scalar();
    default:
      return nullptr;
  }
}

}  // namespace

bool LabelRequirement::Matches(const Labels& labels) const {
  const auto it = labels.find(key);
  const bool has = it != labels.end();
  const auto contains = [&](const std::string& v) {
    return std::binary_search(values.begin(), values.end(), v);
  };
  switch (op) {
    case Op::kEquals:
    case Op::kIn:
      return has && contains(it->second);
    case Op::kNotEquals:
    case Op::kNotIn:
      return !has || !contains(it->second);
    case Op::kExists:
      return has;
    case Op::kDoesNotExist:
      return !has;
    case Op::kGreaterThan:
    case Op::kLessThan: {
      int64_t have = 0;
      int64_t want = 0;
      if (!has || values.size() != 1 || !ParseInt64(it->second, &have) ||
          !ParseInt64(values[0], &want)) {
        return false;
      }
      return op == Op::kGreaterThan ? have > want : have < want;
    }
  }
  return false;
}

std::string LabelRequirement::ToString() const {
  switch (op) {
    case Op::kEquals:
      return absl::StrCat(key, "=", values.empty() ? "" : values[0]);
    case Op::kNotEquals:
      return absl::StrCat(key, "!=", values.empty() ? "" : values[0]);
    case Op::kIn:
      return absl::StrCat(key, " in (", absl::StrJoin(values, ","), ")");
    case Op::kNotIn:
      return absl::StrCat(key, " notin (", absl::StrJoin(values, ","), ")");
    case Op::kExists:
      return key;
    case Op::kDoesNotExist:
      return absl::StrCat("!", key);
    case Op::kGreaterThan:
      return absl::StrCat(key, ">", values.empty() ? "" : values[0]);
    case Op::kLessThan:
      return absl::StrCat(key, "<", values.empty() ? "" : values[0]);
  }
  return key;
}

LabelSelector::LabelSelector(std::vector<LabelRequirement> requirements)
    : requirements_(std::move(requirements)) {
  std::stable_sort(
      requirements_.begin(), requirements_.end(),
      [](const LabelRequirement& a, const LabelRequirement& b) { return a.key < b.key; });
}

absl::StatusOr<LabelSelector> LabelSelector::Parse(std::string_view text) {
  KPISCALE_ASSIGN_OR_RETURN(auto requirements, Parser(text).Run());
  return LabelSelector(std::move(requirements));
}

absl::StatusOr<LabelSelector> LabelSelector::FromJson(const nlohmann::json& object) {
  if (object.is_null()) return Everything();
  if (!object.is_object()) return FieldError("(root)", "must be an object");
  std::vector<LabelRequirement> requirements;
  for (const auto& [name, field] : object.items()) {
    if (name == "matchLabels") {
      if (field.is_null()) continue;
      if (!field.is_object()) return FieldError("matchLabels", "must be an object");
      for (const auto& [key, value] : field.items()) {
        const std::string path = absl::StrCat("matchLabels[", QuoteSelectorText(key), "]");
        if (!value.is_string()) return FieldError(path, "must be a string");
        LabelRequirement r{key, Op::kEquals, {value.get<std::string>()}};
        int bad_value = -1;
        if (std::string err = RequirementError(r, &bad_value); !err.empty()) {
          return FieldError(path, err);
        }
        requirements.push_back(std::move(r));
      }
    } else if (name == "matchExpressions") {
      if (field.is_null()) continue;
      if (!field.is_array()) return FieldError("matchExpressions", "must be a list");
      for (std::size_t i = 0; i < field.size(); ++i) {
        KPISCALE_ASSIGN_OR_RETURN(
            LabelRequirement r,
            ExpressionFromJson(field[i], absl::StrCat("matchExpressions[", i, "]")));
        requirements.push_back(std::move(r));
      }
    } else {
      return FieldError(name, "unknown field (expected matchLabels, matchExpressions)");
    }
  }
  return LabelSelector(std::move(requirements));
}

absl::StatusOr<LabelSelector> LabelSelector::FromYaml(const YAML::Node& object) {
  if (!object.IsDefined() || object.IsNull()) return Everything();
  return FromJson(YamlToJson(object));
}

LabelSelector LabelSelector::Everything() { return LabelSelector(); }

bool LabelSelector::Matches(const Labels& labels) const {
  return std::all_of(requirements_.begin(), requirements_.end(),
                     [&](const LabelRequirement& r) { return r.Matches(labels); });
}

std::string LabelSelector::ToString() const {
  return absl::StrJoin(requirements_, ",", [](std::string* out, const LabelRequirement& r) {
    out->append(r.ToString());
  });
}

}  // namespace kpiscale::common
