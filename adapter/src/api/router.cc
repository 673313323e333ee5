#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <optional>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api/json_util.h"
#include "api/openapi.h"
#include "kpiscale/adapter/api.h"
#include "kpiscale/adapter/catalog.h"
#include "kpiscale/common/quantity.h"
#include "kpiscale/common/report.h"

namespace kpiscale::adapter {

using internal::AppendJsonString;
using internal::AppendLabelsObject;
using internal::AppendSelectorObject;
using internal::StatusBody;

namespace {

enum class Grouping { kPod, kService, kWorkload, kNamespace, kNode, kWrittenOnly };

struct ResourceDef {
  const char* resource;  // plural, group-qualified
  const char* kind;
  const char* api_version;  // describedObject.apiVersion: "group/version", "/v1" for core
  bool namespaced;
  Grouping grouping;
  bool discovered;  // listed in discovery with every catalogue metric
};

constexpr ResourceDef kResources[] = {
    {"pods", "Pod", "/v1", true, Grouping::kPod, true},
    {"services", "Service", "/v1", true, Grouping::kService, true},
    {"deployments.apps", "Deployment", "apps/v1", true, Grouping::kWorkload, true},
    {"statefulsets.apps", "StatefulSet", "apps/v1", true, Grouping::kWorkload, true},
    {"replicasets.apps", "ReplicaSet", "apps/v1", true, Grouping::kWorkload, true},
    {"daemonsets.apps", "DaemonSet", "apps/v1", true, Grouping::kWorkload, true},
    {"namespaces", "Namespace", "/v1", false, Grouping::kNamespace, true},
    {"nodes", "Node", "/v1", false, Grouping::kNode, true},
    {"jobs.batch", "Job", "batch/v1", true, Grouping::kWrittenOnly, false},
    {"ingresses.networking.k8s.io", "Ingress", "networking.k8s.io/v1", true, Grouping::kWrittenOnly,
     false},
    {"horizontalpodautoscalers.autoscaling", "HorizontalPodAutoscaler", "autoscaling/v2", true,
     Grouping::kWrittenOnly, false},
};

const ResourceDef* FindResource(std::string_view name) {
  for (const auto& r : kResources) {
    if (name == r.resource) return &r;
  }
  // Unqualified apps resources, as people type them with kubectl.
  for (const auto& r : kResources) {
    std::string_view full = r.resource;
    const auto dot = full.find('.');
    if (dot != std::string_view::npos && full.substr(0, dot) == name &&
        full.substr(dot) == ".apps") {
      return &r;
    }
  }
  return nullptr;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

ApiResponse Error(int code, std::string_view reason, std::string_view message) {
  ApiResponse r;
  r.status = code;
  r.body = StatusBody(code, reason, message);
  return r;
}

ApiResponse NotFound(std::string_view message) { return Error(404, "NotFound", message); }
ApiResponse BadRequest(std::string_view message) { return Error(400, "BadRequest", message); }

ApiResponse Json(std::string body) {
  ApiResponse r;
  r.body = std::move(body);
  return r;
}

// The query of a request target, decoded (`+` is a space), in order.
using Query = std::vector<std::pair<std::string, std::string>>;

bool ParseQuery(std::string_view q, Query* out) {
  while (!q.empty()) {
    const auto amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    const auto eq = part.find('=');
    std::string key, value;
    if (!PercentDecode(part.substr(0, eq), true, &key)) return false;
    if (eq != std::string_view::npos && !PercentDecode(part.substr(eq + 1), true, &value)) {
      return false;
    }
    out->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

const std::string* QueryValue(const Query& q, std::string_view key) {
  for (const auto& [k, v] : q) {
    if (k == key) return &v;
  }
  return nullptr;
}

// Whether every media range of Accept asks for a conversion we do not do (`as=…`, e.g. the
// aggregator's APIGroupDiscoveryList or kubectl's Table without fallback). JSON is answered
// for everything else, protobuf-first Accept headers included (they carry */*).
bool OnlyConversionsAccepted(std::string_view accept) {
  if (accept.empty()) return false;
  std::size_t start = 0;
  while (start <= accept.size()) {
    auto comma = accept.find(',', start);
    if (comma == std::string_view::npos) comma = accept.size();
    std::string_view range = accept.substr(start, comma - start);
    while (!range.empty() && range.front() == ' ') range.remove_prefix(1);
    if (!range.empty() && range.find("as=") == std::string_view::npos) return false;
    start = comma + 1;
  }
  return true;
}

struct Object {
  std::string ns;
  std::string name;
  common::Labels labels;
  std::vector<const PodView*> pods;
};

// Labels shared by every pod of a group: the closest thing to a workload's own labels the
// adapter knows without a Kubernetes watch.
common::Labels CommonLabels(const std::vector<const PodView*>& pods) {
  if (pods.empty()) return {};
  common::Labels out = pods.front()->identity->labels;
  out.erase("pod-template-hash");
  out.erase("controller-revision-hash");
  for (std::size_t i = 1; i < pods.size() && !out.empty(); ++i) {
    const auto& l = pods[i]->identity->labels;
    for (auto it = out.begin(); it != out.end();) {
      auto f = l.find(it->first);
      it = (f == l.end() || f->second != it->second) ? out.erase(it) : std::next(it);
    }
  }
  return out;
}

// Groups fresh pods into the objects of one resource. `name` filters ("" = every object).
std::vector<Object> GroupObjects(const ResourceDef& res, const std::vector<PodViewPtr>& views,
                                 std::string_view name, bool need_labels) {
  std::vector<Object> out;
  if (res.grouping == Grouping::kPod) {
    std::unordered_map<std::string, std::size_t> index;  // ns/name -> out index
    for (const auto& v : views) {
      const PodIdentity& id = *v->identity;
      if (!name.empty() && id.name != name) continue;
      const std::string key = absl::StrCat(id.ns, "/", id.name);
      auto it = index.find(key);
      if (it != index.end()) {
        // A pod name reused by a newer pod (StatefulSet restart): keep the newest.
        if (out[it->second].pods.front()->newest_end_ms < v->newest_end_ms) {
          out[it->second].pods.front() = v.get();
        }
        continue;
      }
      index.emplace(key, out.size());
      out.push_back(Object{id.ns, id.name, {}, {v.get()}});
    }
    if (need_labels) {
      for (auto& o : out) o.labels = o.pods.front()->identity->labels;
    }
    return out;
  }
  std::map<std::pair<std::string, std::string>, std::vector<const PodView*>> groups;
  for (const auto& v : views) {
    const PodIdentity& id = *v->identity;
    std::string key_ns = res.namespaced ? id.ns : "";
    std::string key_name;
    switch (res.grouping) {
      case Grouping::kService:
        key_name = id.service;
        break;
      case Grouping::kWorkload:
        if (EqualsIgnoreCase(id.workload_kind, res.kind)) key_name = id.workload_name;
        break;
      case Grouping::kNamespace:
        key_name = id.ns;
        break;
      case Grouping::kNode:
        key_name = id.node;
        break;
      default:
        break;
    }
    if (key_name.empty() || (!name.empty() && key_name != name)) continue;
    groups[{key_ns, key_name}].push_back(v.get());
  }
  out.reserve(groups.size());
  for (auto& [key, pods] : groups) {
    Object o{key.first, key.second, {}, std::move(pods)};
    if (need_labels && res.grouping != Grouping::kNamespace && res.grouping != Grouping::kNode) {
      o.labels = CommonLabels(o.pods);
    }
    out.push_back(std::move(o));
  }
  return out;
}

struct CustomQuery {
  std::string version;  // v1beta1 | v1beta2
  const ResourceDef* resource = nullptr;
  std::string resource_name;  // as in the path
  std::string ns;             // "" at the root
  bool root = false;          // cluster-scoped path form
  std::string name;           // "*" for every object
  std::string metric;
};

void AppendItem(std::string* out, const CustomQuery& q, const std::string& ns,
                const std::string& name, const std::string& selector_json,
                const std::string& quantity, int64_t timestamp_ms,
                std::optional<int64_t> window_seconds) {
  out->append("{\"describedObject\":{\"kind\":");
  AppendJsonString(out, q.resource->kind);
  if (q.resource->namespaced && !ns.empty()) {
    out->append(",\"namespace\":");
    AppendJsonString(out, ns);
  }
  out->append(",\"name\":");
  AppendJsonString(out, name);
  out->append(",\"apiVersion\":");
  AppendJsonString(out, q.resource->api_version);
  out->append("},");
  const bool v1beta1 = q.version == "v1beta1";
  if (v1beta1) {
    out->append("\"metricName\":");
    AppendJsonString(out, q.metric);
  } else {
    out->append("\"metric\":{\"name\":");
    AppendJsonString(out, q.metric);
    out->append(",\"selector\":");
    out->append(selector_json);
    out->push_back('}');
  }
  out->append(",\"timestamp\":");
  AppendJsonString(out, FormatTimestamp(timestamp_ms));
  if (window_seconds) {
    out->append(v1beta1 ? ",\"window\":" : ",\"windowSeconds\":");
    out->append(std::to_string(*window_seconds));
  }
  out->append(",\"value\":");
  AppendJsonString(out, quantity);
  if (v1beta1) {
    out->append(",\"selector\":");
    out->append(selector_json);
  }
  out->push_back('}');
}

std::string DiscoveryBody(std::string_view group_version, bool external,
                          const WrittenMetrics& written) {
  std::string out = R"({"kind":"APIResourceList","apiVersion":"v1","groupVersion":)";
  AppendJsonString(&out, group_version);
  out.append(",\"resources\":[");
  bool first = true;
  auto entry = [&](const std::string& name, bool namespaced, const char* kind) {
    if (!first) out.push_back(',');
    first = false;
    out.append("{\"name\":");
    AppendJsonString(&out, name);
    out.append(",\"singularName\":\"\",\"namespaced\":");
    out.append(namespaced ? "true" : "false");
    out.append(",\"kind\":");
    AppendJsonString(&out, kind);
    out.append(",\"verbs\":[\"get\"]}");
  };
  if (external) {
    for (const auto& m : Catalog()) entry(m.name, true, "ExternalMetricValueList");
  } else {
    std::vector<std::string> seen;
    for (const auto& r : kResources) {
      if (!r.discovered) continue;
      for (const auto& m : Catalog()) {
        entry(absl::StrCat(r.resource, "/", m.name), r.namespaced, "MetricValueList");
      }
    }
    for (const auto& [resource, metric, namespaced] : written.Names()) {
      const ResourceDef* r = FindResource(resource);
      if ((r != nullptr && r->discovered && FindMetric(metric) != nullptr)) continue;
      const std::string n = absl::StrCat(resource, "/", metric);
      if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
      seen.push_back(n);
      entry(n, namespaced, "MetricValueList");
    }
  }
  out.append("]}");
  return out;
}

std::string GroupBody(std::string_view group, const std::vector<std::string>& versions) {
  std::string out = "{\"name\":";
  AppendJsonString(&out, group);
  out.append(",\"versions\":[");
  for (std::size_t i = 0; i < versions.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append("{\"groupVersion\":");
    AppendJsonString(&out, absl::StrCat(std::string(group), "/", versions[i]));
    out.append(",\"version\":");
    AppendJsonString(&out, versions[i]);
    out.push_back('}');
  }
  out.append("],\"preferredVersion\":{\"groupVersion\":");
  AppendJsonString(&out, absl::StrCat(std::string(group), "/", versions.front()));
  out.append(",\"version\":");
  AppendJsonString(&out, versions.front());
  out.append("}}");
  return out;
}

const std::vector<std::string>& VersionsOf(std::string_view group) {
  static const std::vector<std::string> custom = {"v1beta2", "v1beta1"};
  static const std::vector<std::string> external = {"v1beta1"};
  return group == kCustomGroup ? custom : external;
}

bool ValidSegment(std::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos &&
         s.find('%') == std::string_view::npos && s.find('?') == std::string_view::npos;
}

}  // namespace

bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      const int hi = hex(in[i + 1]);
      const int lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

std::string FormatTimestamp(int64_t unix_ms) {
  const std::time_t secs =
      static_cast<std::time_t>(unix_ms >= 0 ? unix_ms / 1000 : (unix_ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ApiHandler::ApiHandler(const WindowStore& store, WrittenMetrics& written,
                       const HealthChecks& health, const common::Clock& clock, ApiOptions options)
    : store_(store),
      written_(written),
      health_(health),
      clock_(clock),
      options_(std::move(options)),
      openapi_(internal::BuildOpenApi(options_.version)) {}

namespace {

struct Context {
  const WindowStore& store;
  WrittenMetrics& written;
  const common::Clock& clock;
};

ApiResponse HandleCustom(const Context& ctx, const CustomQuery& q, const Query& query) {
  ApiResponse resp;
  resp.group = kCustomGroup;
  resp.version = q.version;
  resp.verb = "get";
  common::LabelSelector object_selector = common::LabelSelector::Everything();
  common::LabelSelector metric_selector = common::LabelSelector::Everything();
  if (const std::string* s = QueryValue(query, "labelSelector")) {
    auto parsed = common::LabelSelector::Parse(*s);
    if (!parsed.ok()) {
      ApiResponse e = BadRequest(internal::Sv(parsed.status().message()));
      e.group = resp.group;
      e.version = resp.version;
      e.verb = resp.verb;
      return e;
    }
    object_selector = *std::move(parsed);
  }
  if (const std::string* s = QueryValue(query, "metricLabelSelector")) {
    auto parsed = common::LabelSelector::Parse(*s);
    if (!parsed.ok()) {
      ApiResponse e = BadRequest(internal::Sv(parsed.status().message()));
      e.group = resp.group;
      e.version = resp.version;
      e.verb = resp.verb;
      return e;
    }
    metric_selector = *std::move(parsed);
  }
  const bool wildcard = q.name == "*";
  auto not_found = [&]() {
    std::string msg = absl::StrCat("the server could not find the metric ", q.metric, " for ",
                                   q.resource_name, " ", q.name);
    if (!metric_selector.empty())
      absl::StrAppend(&msg, " with selector ", metric_selector.ToString());
    ApiResponse e = NotFound(msg);
    e.group = resp.group;
    e.version = resp.version;
    e.verb = resp.verb;
    return e;
  };

  const MetricDef* metric = FindMetric(q.metric);
  const bool all_ns = q.root && q.resource->namespaced;
  std::vector<WrittenValue> written =
      ctx.written.Find(q.root ? "" : q.ns, q.resource->resource, q.metric, all_ns);
  if (metric == nullptr && written.empty()) return not_found();

  std::string selector_json;
  AppendSelectorObject(&selector_json, metric_selector);

  std::string items;
  std::size_t count = 0;
  auto add = [&](const std::string& ns, const std::string& name, const std::string& quantity,
                 int64_t ts, std::optional<int64_t> window) {
    if (!wildcard && count > 0) return;  // a named object answers exactly one item
    if (count++ > 0) items.push_back(',');
    AppendItem(&items, q, ns, name, selector_json, quantity, ts, window);
    resp.item_timestamps_ms.push_back(ts);
  };

  std::vector<std::string> written_names;
  for (const auto& w : written) {
    if (!wildcard && w.name != q.name) continue;
    if (wildcard && !object_selector.Matches(w.labels)) continue;
    // Written values carry no series labels.
    if (!metric_selector.Matches({})) continue;
    written_names.push_back(absl::StrCat(w.ns, "/", w.name));
    add(w.ns, w.name, w.quantity, w.timestamp_ms, std::nullopt);
  }

  if (metric != nullptr && q.resource->grouping != Grouping::kWrittenOnly) {
    auto series = ChooseSeries(*metric, metric_selector);
    if (!series.ok()) {
      ApiResponse e = BadRequest(internal::Sv(series.status().message()));
      e.group = resp.group;
      e.version = resp.version;
      e.verb = resp.verb;
      return e;
    }
    if (series->has_value()) {
      const int64_t now = ctx.clock.NowUnixMillis();
      std::string_view ns_filter = q.root ? std::string_view() : std::string_view(q.ns);
      if (q.resource->grouping == Grouping::kNamespace && q.root && !wildcard) ns_filter = q.name;
      const auto views = ctx.store.FreshPods(ns_filter, now);
      const bool need_labels = wildcard && !object_selector.empty();
      auto objects = GroupObjects(*q.resource, views, wildcard ? "" : q.name, need_labels);
      for (const auto& o : objects) {
        if (wildcard && !object_selector.empty() && !object_selector.Matches(o.labels)) continue;
        if (!written_names.empty() &&
            std::find(written_names.begin(), written_names.end(),
                      absl::StrCat(o.ns, "/", o.name)) != written_names.end()) {
          continue;
        }
        auto v = o.pods.size() == 1 ? EvaluatePod(*metric, **series, *o.pods.front())
                                    : EvaluateGroup(*metric, **series, o.pods);
        if (!v) continue;
        add(o.ns, o.name, v->quantity, v->timestamp_ms, v->window_seconds);
      }
    }
  }
  if (!wildcard && count == 0) return not_found();
  resp.body = absl::StrCat(R"({"kind":"MetricValueList","apiVersion":")", kCustomGroup, "/",
                           q.version, R"(","metadata":{},"items":[)", items, "]}");
  return resp;
}

ApiResponse HandleExternal(const Context& ctx, const std::string& ns,
                           const std::string& metric_name, const Query& query) {
  ApiResponse resp;
  resp.group = kExternalGroup;
  resp.version = "v1beta1";
  resp.verb = "list";
  auto fail = [&](ApiResponse e) {
    e.group = resp.group;
    e.version = resp.version;
    e.verb = resp.verb;
    return e;
  };
  common::LabelSelector selector = common::LabelSelector::Everything();
  if (const std::string* s = QueryValue(query, "labelSelector")) {
    auto parsed = common::LabelSelector::Parse(*s);
    if (!parsed.ok()) return fail(BadRequest(internal::Sv(parsed.status().message())));
    selector = *std::move(parsed);
  }
  std::string msg =
      absl::StrCat("the server could not find the metric ", metric_name, " for namespace ", ns);
  if (!selector.empty()) absl::StrAppend(&msg, " with selector ", selector.ToString());
  const MetricDef* metric = FindMetric(metric_name);
  if (metric == nullptr) return fail(NotFound(msg));

  const auto views = ctx.store.FreshPods(ns, ctx.clock.NowUnixMillis());
  std::map<std::pair<std::string, std::string>, std::vector<const PodView*>> workloads;
  for (const auto& v : views) {
    const PodIdentity& id = *v->identity;
    if (id.workload_name.empty()) continue;
    workloads[{id.workload_kind, id.workload_name}].push_back(v.get());
  }
  std::string items;
  std::size_t count = 0;
  for (const auto& [key, pods] : workloads) {
    common::Labels labels;
    labels["workload"] = key.second;
    if (!key.first.empty()) labels[Lower(key.first)] = key.second;
    auto series = ChooseSeries(*metric, selector, labels);
    if (!series.ok()) return fail(BadRequest(internal::Sv(series.status().message())));
    if (!series->has_value()) continue;
    auto v = EvaluateGroup(*metric, **series, pods);
    if (!v) continue;
    if (count++ > 0) items.push_back(',');
    items.append("{\"metricName\":");
    AppendJsonString(&items, metric_name);
    items.append(",\"metricLabels\":");
    AppendLabelsObject(&items, (*series)->labels, true);
    items.append(",\"timestamp\":");
    AppendJsonString(&items, FormatTimestamp(v->timestamp_ms));
    items.append(",\"window\":");
    items.append(std::to_string(v->window_seconds));
    items.append(",\"value\":");
    AppendJsonString(&items, v->quantity);
    items.push_back('}');
    resp.item_timestamps_ms.push_back(v->timestamp_ms);
  }
  // An empty external list fails the HPA anyway; a 404 says why.
  if (count == 0) return fail(NotFound(msg));
  resp.body = absl::StrCat(R"({"kind":"ExternalMetricValueList","apiVersion":")", kExternalGroup,
                           R"(/v1beta1","metadata":{},"items":[)", items, "]}");
  return resp;
}

ApiResponse HandleWrite(const Context& ctx, const std::vector<std::string>& seg, const Query& query,
                        const std::string& body) {
  // seg[0] == "write-metrics"
  WrittenValue w;
  if (seg.size() == 6 && seg[1] == "namespaces") {
    w.ns = seg[2];
    w.resource = seg[3];
    w.name = seg[4];
    w.metric = seg[5];
  } else if (seg.size() == 4) {
    w.resource = seg[1];
    w.name = seg[2];
    w.metric = seg[3];
  } else {
    return NotFound("the server could not find the requested resource");
  }
  const ResourceDef* res = FindResource(w.resource);
  if (res == nullptr) return BadRequest(absl::StrCat("unknown resource ", w.resource));
  if (res->namespaced == w.ns.empty()) {
    return BadRequest(absl::StrCat("resource ", res->resource, " is ",
                                   res->namespaced ? "namespaced" : "cluster-scoped"));
  }
  if (!w.ns.empty()) {
    if (auto st = common::ValidateDns1123Label(w.ns); !st.ok()) {
      return BadRequest(absl::StrCat("namespace: ", st.message()));
    }
  }
  if (w.name == "*" || !ValidSegment(w.name) || !ValidSegment(w.metric)) {
    return BadRequest("invalid object or metric name");
  }
  w.resource = res->resource;
  std::string_view text = body;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    text = text.substr(1, text.size() - 2);
  }
  auto quantity = common::Quantity::Parse(text);
  if (!quantity.ok()) {
    return BadRequest(absl::StrCat("body is not a quantity: ", quantity.status().message()));
  }
  w.quantity = quantity->ToString();
  if (const std::string* labels = QueryValue(query, "labels")) {
    std::string_view rest = *labels;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view kv = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      const auto eq = kv.find('=');
      if (eq == std::string_view::npos)
        return BadRequest(absl::StrCat("label without '=': ", std::string(kv)));
      std::string_view k = kv.substr(0, eq);
      std::string_view v = kv.substr(eq + 1);
      if (auto st = common::ValidateLabelKey(k); !st.ok()) {
        return BadRequest(absl::StrCat("label key ", std::string(k), ": ", st.message()));
      }
      if (auto st = common::ValidateLabelValue(v); !st.ok()) {
        return BadRequest(absl::StrCat("label value ", std::string(v), ": ", st.message()));
      }
      w.labels[std::string(k)] = std::string(v);
    }
  }
  w.timestamp_ms = ctx.clock.NowUnixMillis();
  ctx.written.Set(std::move(w));
  ApiResponse resp;
  resp.verb = "create";
  resp.body = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200})";
  return resp;
}

}  // namespace

ApiResponse ApiHandler::Handle(const ApiRequest& request) const {
  std::string_view target = request.target;
  const auto qpos = target.find('?');
  std::string_view raw_path = target.substr(0, qpos);
  Query query;
  if (qpos != std::string_view::npos && !ParseQuery(target.substr(qpos + 1), &query)) {
    return BadRequest("malformed query string");
  }
  if (raw_path.empty() || raw_path.front() != '/') return BadRequest("invalid request path");
  // Segments, each percent-decoded once. A trailing slash leaves an empty last segment.
  std::vector<std::string> seg;
  {
    std::string_view p = raw_path.substr(1);
    while (true) {
      const auto slash = p.find('/');
      std::string decoded;
      if (!PercentDecode(p.substr(0, slash), false, &decoded)) {
        return BadRequest("invalid request path");
      }
      seg.push_back(std::move(decoded));
      if (slash == std::string_view::npos) break;
      p = p.substr(slash + 1);
    }
  }
  const Context ctx{store_, written_, clock_};
  const bool is_get = request.method == "GET" || request.method == "HEAD";

  if (seg.size() >= 1 && seg[0] == "write-metrics" && options_.enable_write_metrics) {
    if (request.method != "POST") {
      return Error(405, "MethodNotAllowed",
                   "the server does not allow this method on the requested resource");
    }
    return HandleWrite(ctx, seg, query, request.body);
  }
  if (!is_get) {
    return Error(405, "MethodNotAllowed",
                 "the server does not allow this method on the requested resource");
  }

  // Health.
  if (!seg.empty() && (seg[0] == "healthz" || seg[0] == "livez" || seg[0] == "readyz") &&
      seg.size() <= 2) {
    bool verbose = false;
    std::vector<std::string> excludes;
    for (const auto& [k, v] : query) {
      if (k == "verbose") verbose = true;
      if (k == "exclude") excludes.push_back(v);
    }
    const auto result = health_.Evaluate(seg[0], seg.size() == 2 ? seg[1] : "", verbose, excludes);
    ApiResponse r;
    r.status = result.status;
    r.content_type = "text/plain; charset=utf-8";
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.body = result.body;
    return r;
  }
  if (seg.size() == 1 && seg[0] == "version") {
    return Json(absl::StrCat(R"({"major":"1","minor":"0","gitVersion":"v)", options_.version,
                             R"(","gitCommit":"","gitTreeState":"clean","buildDate":"",)",
                             R"("goVersion":"","compiler":"gcc","platform":"linux/amd64"})"));
  }
  if (seg.size() == 2 && seg[0] == "openapi" && seg[1] == "v2") {
    return Json(openapi_);
  }
  if (seg.empty() || seg[0] != "apis") {
    return NotFound("the server could not find the requested resource");
  }
  // /apis: the group list for clients that talk to us directly. The aggregator asks for the
  // aggregated discovery document only (every Accept range has as=APIGroupDiscoveryList); it
  // gets 406 and falls back to /apis/<group>/<version>, which is always answered.
  if (seg.size() == 1) {
    if (OnlyConversionsAccepted(request.accept)) {
      return Error(406, "NotAcceptable",
                   "only the following media types are accepted: application/json");
    }
    return Json(absl::StrCat(R"({"kind":"APIGroupList","apiVersion":"v1","groups":[)",
                             GroupBody(kCustomGroup, VersionsOf(kCustomGroup)), ",",
                             GroupBody(kExternalGroup, VersionsOf(kExternalGroup)), "]}"));
  }
  const std::string& group = seg[1];
  if (group != kCustomGroup && group != kExternalGroup) {
    return NotFound("the server could not find the requested resource");
  }
  if (seg.size() == 2) {
    return Json(absl::StrCat(R"({"kind":"APIGroup","apiVersion":"v1",)",
                             GroupBody(group, VersionsOf(group)).substr(1)));
  }
  const std::string& version = seg[2];
  const auto& versions = VersionsOf(group);
  if (std::find(versions.begin(), versions.end(), version) == versions.end()) {
    return NotFound("the server could not find the requested resource");
  }
  const bool external = group == kExternalGroup;
  std::vector<std::string> rest(seg.begin() + 3, seg.end());
  if (rest.empty()) {
    ApiResponse r = Json(DiscoveryBody(absl::StrCat(group, "/", version), external, written_));
    r.group = group;
    r.version = version;
    r.verb = "get";
    return r;
  }
  for (const auto& s : rest) {
    if (!ValidSegment(s)) {
      ApiResponse r = NotFound("the server could not find the requested resource");
      r.group = group;
      r.version = version;
      return r;
    }
  }
  if (external) {
    if (rest.size() == 3 && rest[0] == "namespaces") {
      return HandleExternal(ctx, rest[1], rest[2], query);
    }
    ApiResponse r = NotFound("the server could not find the requested resource");
    r.group = group;
    r.version = version;
    return r;
  }
  CustomQuery q;
  q.version = version;
  if (rest.size() == 4 && rest[0] == "namespaces" && rest[2] == "metrics") {
    // The Namespace object itself (cmapi handles it as resource namespaces, name {ns}).
    q.resource = FindResource("namespaces");
    q.resource_name = "namespaces";
    q.root = true;
    q.name = rest[1];
    q.metric = rest[3];
  } else if (rest.size() == 5 && rest[0] == "namespaces") {
    q.ns = rest[1];
    q.resource_name = rest[2];
    q.name = rest[3];
    q.metric = rest[4];
  } else if (rest.size() == 3) {
    q.root = true;
    q.resource_name = rest[0];
    q.name = rest[1];
    q.metric = rest[2];
  } else {
    ApiResponse r = NotFound("the server could not find the requested resource");
    r.group = group;
    r.version = version;
    return r;
  }
  if (q.resource == nullptr) q.resource = FindResource(q.resource_name);
  if (q.resource == nullptr || (!q.root && !q.resource->namespaced)) {
    ApiResponse r = NotFound(absl::StrCat("the server could not find the metric ", q.metric,
                                          " for ", q.resource_name, " ", q.name));
    r.group = group;
    r.version = version;
    r.verb = "get";
    return r;
  }
  return HandleCustom(ctx, q, query);
}

}  // namespace kpiscale::adapter
