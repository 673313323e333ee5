#include "kpiscale/hpa/spec_io.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "kpiscale/common/quantity.h"
#include "kpiscale/common/status.h"
#include "kpiscale/hpa/normalize.h"
#include "yaml-cpp/yaml.h"

namespace kpiscale::hpa {
namespace {

absl::StatusOr<std::string> QuantityText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) return v.dump();
  return absl::InvalidArgumentError(absl::StrCat("expected a quantity, got ", v.dump()));
}

bool IsPlainDecimal(const std::string& s) {
  if (s.empty()) return false;
  bool digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '.' && c != '-' && c != '+') {
      return false;
    }
  }
  return digit;
}

absl::StatusOr<int32_t> Int32Field(const nlohmann::json& v, const char* name) {
  if (!v.is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": expected an integer, got ", v.dump()));
  }
  const int64_t x = v.get<int64_t>();
  if (x < INT32_MIN || x > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": out of int32 range"));
  }
  return static_cast<int32_t>(x);
}

const nlohmann::json* Child(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

// The selector object (matchLabels only; matchExpressions are rendered in set form) as the
// string the metrics APIs take in `labelSelector=`/`metricLabelSelector=`.
std::string SelectorString(const nlohmann::json& sel) {
  std::string out;
  auto add = [&](const std::string& s) {
    if (!out.empty()) out += ",";
    out += s;
  };
  if (const nlohmann::json* ml = Child(sel, "matchLabels"); ml && ml->is_object()) {
    for (const auto& [k, v] : ml->items())
      add(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
  }
  if (const nlohmann::json* me = Child(sel, "matchExpressions"); me && me->is_array()) {
    for (const auto& e : *me) {
      const std::string key = e.value("key", "");
      const std::string op = e.value("operator", "");
      std::string values;
      if (const nlohmann::json* vs = Child(e, "values"); vs && vs->is_array()) {
        for (const auto& v : *vs) {
          if (!values.empty()) values += ",";
          values += v.is_string() ? v.get<std::string>() : v.dump();
        }
      }
      if (op == "In") add(key + " in (" + values + ")");
      if (op == "NotIn") add(key + " notin (" + values + ")");
      if (op == "Exists") add(key);
      if (op == "DoesNotExist") add("!" + key);
    }
  }
  return out;
}

absl::StatusOr<MetricTarget> TargetFromJson(const nlohmann::json* t) {
  MetricTarget target;
  if (t == nullptr) return target;
  target.type = t->value("type", "");
  if (const nlohmann::json* u = Child(*t, "averageUtilization")) {
    KPISCALE_ASSIGN_OR_RETURN(target.average_utilization, Int32Field(*u, "averageUtilization"));
  }
  if (const nlohmann::json* v = Child(*t, "averageValue")) {
    KPISCALE_ASSIGN_OR_RETURN(target.average_value_milli, QuantityMilli(*v));
    KPISCALE_ASSIGN_OR_RETURN(target.average_value_text, QuantityText(*v));
  }
  if (const nlohmann::json* v = Child(*t, "value")) {
    KPISCALE_ASSIGN_OR_RETURN(target.value_milli, QuantityMilli(*v));
    KPISCALE_ASSIGN_OR_RETURN(target.value_text, QuantityText(*v));
  }
  return target;
}

ObjectReference RefFromJson(const nlohmann::json* r) {
  ObjectReference ref;
  if (r == nullptr) return ref;
  ref.kind = r->value("kind", "");
  ref.api_version = r->value("apiVersion", "");
  ref.name = r->value("name", "");
  return ref;
}

absl::StatusOr<MetricSpec> MetricFromJson(const nlohmann::json& j) {
  MetricSpec m;
  m.type = j.value("type", "");
  const nlohmann::json* body = nullptr;
  if (m.type == "Resource") body = Child(j, "resource");
  if (m.type == "ContainerResource") body = Child(j, "containerResource");
  if (m.type == "Pods") body = Child(j, "pods");
  if (m.type == "Object") body = Child(j, "object");
  if (m.type == "External") body = Child(j, "external");
  if (body == nullptr) return m;  // unknown type or missing body: invalid at reconcile time
  if (m.type == "Resource" || m.type == "ContainerResource") {
    m.name = body->value("name", "");
    m.container = body->value("container", "");
  } else {
    const nlohmann::json* metric = Child(*body, "metric");
    if (metric != nullptr) {
      m.name = metric->value("name", "");
      if (const nlohmann::json* sel = Child(*metric, "selector")) m.selector = SelectorString(*sel);
    }
    if (m.type == "Object") m.described_object = RefFromJson(Child(*body, "describedObject"));
  }
  KPISCALE_ASSIGN_OR_RETURN(m.target, TargetFromJson(Child(*body, "target")));
  return m;
}

// yaml-cpp 0.7 can loop allocating on invalid UTF-8, so the text is checked first.
bool IsValidUtf8(const std::string& s, size_t* bad_offset) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      i++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      *bad_offset = i;
      return false;
    }
    if (i + len > s.size()) {
      *bad_offset = i;
      return false;
    }
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        *bad_offset = i;
        return false;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    const bool overlong =
        (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      *bad_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

// Splits a multi-document stream at "---" / "..." marker lines. yaml-cpp 0.7's LoadAll can
// loop without end on some invalid input (a document starting with ','), so each document is
// loaded on its own with YAML::Load.
std::vector<std::string> SplitYamlDocuments(const std::string& text) {
  std::vector<std::string> docs(1);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    const bool marker = (line.rfind("---", 0) == 0 || line.rfind("...", 0) == 0) &&
                        (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker) {
      docs.emplace_back();
      if (line[0] == '-' && line.size() > 3) docs.back() += line.substr(4) + "\n";
    } else {
      docs.back() += line + "\n";
    }
    pos = end + 1;
  }
  return docs;
}

nlohmann::json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& e : n) a.push_back(YamlToJson(e));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "null" || s == "~") return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  if (!s.empty()) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(s.c_str(), &end, 10);
    if (end != nullptr && *end == '\0' && errno == 0) return static_cast<int64_t>(v);
  }
  return s;
}

}  // namespace

absl::StatusOr<int64_t> QuantityMilli(const nlohmann::json& value) {
  KPISCALE_ASSIGN_OR_RETURN(std::string text, QuantityText(value));
  absl::StatusOr<common::Quantity> q = common::Quantity::Parse(text);
  if (!q.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid quantity \"", text, "\": ", q.status().message()));
  }
  return q->MilliValue();
}

absl::StatusOr<double> QuantityDouble(const nlohmann::json& value) {
  KPISCALE_ASSIGN_OR_RETURN(std::string text, QuantityText(value));
  absl::StatusOr<common::Quantity> q = common::Quantity::Parse(text);
  if (!q.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid quantity \"", text, "\": ", q.status().message()));
  }
  // A plain decimal converts to the nearest double through strtod, which is exact-rounding.
  if (IsPlainDecimal(text)) return std::strtod(text.c_str(), nullptr);
  return q->ToDouble();
}

absl::StatusOr<ScalingRules> ScalingRulesFromJsonImpl(const nlohmann::json& j) {
  ScalingRules r;
  if (const nlohmann::json* w = Child(j, "stabilizationWindowSeconds")) {
    KPISCALE_ASSIGN_OR_RETURN(r.stabilization_window_seconds,
                              Int32Field(*w, "stabilizationWindowSeconds"));
  }
  if (const nlohmann::json* s = Child(j, "selectPolicy")) {
    const std::string v = s->is_string() ? s->get<std::string>() : s->dump();
    if (v == "Max") {
      r.select_policy = SelectPolicy::kMax;
    } else if (v == "Min") {
      r.select_policy = SelectPolicy::kMin;
    } else if (v == "Disabled") {
      r.select_policy = SelectPolicy::kDisabled;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("selectPolicy: must be Max, Min or Disabled, got ", v));
    }
  }
  if (const nlohmann::json* ps = Child(j, "policies")) {
    if (!ps->is_array()) return absl::InvalidArgumentError("policies: expected a list");
    std::vector<ScalingPolicy> policies;
    for (const auto& p : *ps) {
      ScalingPolicy policy;
      const std::string type = p.value("type", "");
      if (type == "Pods") {
        policy.type = ScalingPolicy::Type::kPods;
      } else if (type == "Percent") {
        policy.type = ScalingPolicy::Type::kPercent;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("policies[].type: must be Pods or Percent, got \"", type, "\""));
      }
      const nlohmann::json* v = Child(p, "value");
      const nlohmann::json* per = Child(p, "periodSeconds");
      if (v == nullptr || per == nullptr) {
        return absl::InvalidArgumentError("policies[]: value and periodSeconds are required");
      }
      KPISCALE_ASSIGN_OR_RETURN(policy.value, Int32Field(*v, "policies[].value"));
      KPISCALE_ASSIGN_OR_RETURN(policy.period_seconds,
                                Int32Field(*per, "policies[].periodSeconds"));
      policies.push_back(policy);
    }
    r.policies = std::move(policies);
  }
  if (const nlohmann::json* t = Child(j, "tolerance")) {
    KPISCALE_ASSIGN_OR_RETURN(r.tolerance, QuantityDouble(*t));
  }
  return r;
}

nlohmann::json ScalingRulesToJson(const ScalingRules& r) {
  nlohmann::json j = nlohmann::json::object();
  j["stabilizationWindowSeconds"] =
      r.stabilization_window_seconds ? nlohmann::json(*r.stabilization_window_seconds) : nullptr;
  if (r.select_policy) {
    j["selectPolicy"] = *r.select_policy == SelectPolicy::kMax   ? "Max"
                        : *r.select_policy == SelectPolicy::kMin ? "Min"
                                                                 : "Disabled";
  } else {
    j["selectPolicy"] = nullptr;
  }
  if (r.policies) {
    nlohmann::json ps = nlohmann::json::array();
    for (const ScalingPolicy& p : *r.policies) {
      ps.push_back({{"type", p.type == ScalingPolicy::Type::kPods ? "Pods" : "Percent"},
                    {"value", p.value},
                    {"periodSeconds", p.period_seconds}});
    }
    j["policies"] = ps;
  } else {
    j["policies"] = nullptr;
  }
  return j;
}

absl::StatusOr<HpaSpec> HpaSpecFromJsonImpl(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("spec: expected an object");
  HpaSpec spec;
  if (const nlohmann::json* m = Child(j, "minReplicas")) {
    KPISCALE_ASSIGN_OR_RETURN(spec.min_replicas, Int32Field(*m, "minReplicas"));
  }
  const nlohmann::json* max = Child(j, "maxReplicas");
  if (max == nullptr) return absl::InvalidArgumentError("spec.maxReplicas: required");
  KPISCALE_ASSIGN_OR_RETURN(spec.max_replicas, Int32Field(*max, "maxReplicas"));
  spec.scale_target_ref = RefFromJson(Child(j, "scaleTargetRef"));
  if (const nlohmann::json* ms = Child(j, "metrics")) {
    if (!ms->is_array()) return absl::InvalidArgumentError("spec.metrics: expected a list");
    for (const auto& m : *ms) {
      KPISCALE_ASSIGN_OR_RETURN(MetricSpec metric, MetricFromJson(m));
      spec.metrics.push_back(std::move(metric));
    }
  }
  if (const nlohmann::json* b = Child(j, "behavior")) {
    Behavior behavior;
    if (const nlohmann::json* up = Child(*b, "scaleUp")) {
      KPISCALE_ASSIGN_OR_RETURN(behavior.scale_up, ScalingRulesFromJsonImpl(*up));
    }
    if (const nlohmann::json* down = Child(*b, "scaleDown")) {
      KPISCALE_ASSIGN_OR_RETURN(behavior.scale_down, ScalingRulesFromJsonImpl(*down));
    }
    spec.behavior = behavior;
  }
  return spec;
}

nlohmann::json YamlTextToJson(const std::string& yaml_text, int document_index) {
  if (size_t bad = 0; !IsValidUtf8(yaml_text, &bad)) return nullptr;
  try {
    const std::vector<std::string> docs = SplitYamlDocuments(yaml_text);
    if (document_index < 0 || document_index >= static_cast<int>(docs.size())) return nullptr;
    return YamlToJson(YAML::Load(docs[static_cast<size_t>(document_index)]));
  } catch (const YAML::Exception&) {
    return nullptr;  // documented: invalid YAML gives null
  }
}

absl::StatusOr<HpaSpec> ParseHpaManifestImpl(const std::string& yaml_text) {
  if (size_t bad = 0; !IsValidUtf8(yaml_text, &bad)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 at byte ", bad));
  }
  if (yaml_text.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the manifest contains a NUL byte");
  }
  std::vector<nlohmann::json> docs;
  try {
    for (const std::string& d : SplitYamlDocuments(yaml_text)) {
      docs.push_back(YamlToJson(YAML::Load(d)));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid YAML: ", e.what()));
  }
  for (const nlohmann::json& j : docs) {
    if (!j.is_object() || j.value("kind", "") != "HorizontalPodAutoscaler") continue;
    const std::string api = j.value("apiVersion", "");
    if (api != "autoscaling/v2" && api != "autoscaling/v2beta2") {
      return absl::InvalidArgumentError(absl::StrCat("HorizontalPodAutoscaler apiVersion ", api,
                                                     " is not supported (want autoscaling/v2)"));
    }
    const nlohmann::json* spec_json = Child(j, "spec");
    if (spec_json == nullptr) return absl::InvalidArgumentError("HorizontalPodAutoscaler: no spec");
    KPISCALE_ASSIGN_OR_RETURN(HpaSpec spec, HpaSpecFromJsonImpl(*spec_json));
    if (const nlohmann::json* md = Child(j, "metadata")) {
      spec.name = md->value("name", "");
      spec.namespace_name = md->value("namespace", "default");
    }
    // API defaulting (SetDefaults_HorizontalPodAutoscaler).
    if (!spec.min_replicas) spec.min_replicas = 1;
    if (spec.metrics.empty()) {
      MetricSpec cpu;
      cpu.type = "Resource";
      cpu.name = "cpu";
      cpu.target.type = "Utilization";
      cpu.target.average_utilization = 80;
      spec.metrics.push_back(cpu);
    }
    if (spec.behavior) KPISCALE_RETURN_IF_ERROR(ValidateBehavior(*spec.behavior));
    if (spec.max_replicas < 1) {
      return absl::InvalidArgumentError("spec.maxReplicas: must be greater than or equal to 1");
    }
    if (*spec.min_replicas > spec.max_replicas) {
      return absl::InvalidArgumentError(
          "spec.maxReplicas: must be greater than or equal to "
          "minReplicas");
    }
    return spec;
  }
  return absl::NotFoundError("no HorizontalPodAutoscaler document found");
}

// The parsers read loosely typed documents: a field of the wrong JSON type makes nlohmann throw,
// which becomes an InvalidArgument error here instead of escaping.
absl::StatusOr<ScalingRules> ScalingRulesFromJson(const nlohmann::json& rules) {
  try {
    return ScalingRulesFromJsonImpl(rules);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("behavior rules: ", e.what()));
  }
}

absl::StatusOr<HpaSpec> HpaSpecFromJson(const nlohmann::json& spec) {
  try {
    return HpaSpecFromJsonImpl(spec);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("spec: ", e.what()));
  }
}

absl::StatusOr<HpaSpec> ParseHpaManifest(const std::string& yaml_text) {
  try {
    return ParseHpaManifestImpl(yaml_text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("HorizontalPodAutoscaler: ", e.what()));
  }
}

absl::StatusOr<HpaSpec> LoadHpaManifest(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<HpaSpec> spec = ParseHpaManifest(ss.str());
  if (!spec.ok()) {
    return absl::Status(spec.status().code(), absl::StrCat(path, ": ", spec.status().message()));
  }
  return spec;
}

}  // namespace kpiscale::hpa
