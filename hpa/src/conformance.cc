#include "kpiscale/hpa/conformance.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kpiscale/common/status.h"
#include "kpiscale/hpa/controller.h"
#include "kpiscale/hpa/normalize.h"
#include "kpiscale/hpa/replica_calculator.h"
#include "kpiscale/hpa/spec_io.h"

namespace kpiscale::hpa {
namespace {

using nlohmann::json;

const json& Req(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

absl::StatusOr<int64_t> Int(const json& j, const char* key) {
  const json& v = Req(j, key);
  if (!v.is_number_integer()) {
    // Integers must never go through a double; floats with an integral value are accepted.
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
    }
    return absl::InvalidArgumentError(
        absl::StrCat("field ", key, ": expected an integer, got ", v.dump()));
  }
  return v.get<int64_t>();
}

absl::StatusOr<int32_t> Int32(const json& j, const char* key) {
  KPISCALE_ASSIGN_OR_RETURN(int64_t v, Int(j, key));
  return static_cast<int32_t>(v);
}

absl::StatusOr<double> Double(const json& j, const char* key) {
  const json& v = Req(j, key);
  if (!v.is_number()) {
    return absl::InvalidArgumentError(absl::StrCat("field ", key, ": expected a number"));
  }
  return v.get<double>();
}

absl::StatusOr<Time> RequiredTime(const json& j, const char* key) {
  KPISCALE_ASSIGN_OR_RETURN(std::optional<Time> t, CaseTime(Req(j, key)));
  if (!t) return absl::InvalidArgumentError(absl::StrCat("field ", key, ": time required"));
  return *t;
}

absl::StatusOr<PodPhase> Phase(const std::string& s) {
  if (s == "Running") return PodPhase::kRunning;
  if (s == "Pending") return PodPhase::kPending;
  if (s == "Succeeded") return PodPhase::kSucceeded;
  if (s == "Failed") return PodPhase::kFailed;
  if (s == "Unknown") return PodPhase::kUnknown;
  return absl::InvalidArgumentError(absl::StrCat("unknown pod phase ", s));
}

absl::StatusOr<std::map<std::string, int64_t>> ResourceMap(const json& j) {
  std::map<std::string, int64_t> out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat("resource ", k, ": expected an integer"));
    }
    out[k] = v.get<int64_t>();
  }
  return out;
}

absl::StatusOr<std::vector<Pod>> Pods(const json& arr) {
  std::vector<Pod> pods;
  if (!arr.is_array()) return pods;
  for (const json& p : arr) {
    Pod pod;
    pod.name = p.value("name", "");
    KPISCALE_ASSIGN_OR_RETURN(pod.phase, Phase(p.value("phase", "Running")));
    pod.deleted = p.value("deleted", false);
    KPISCALE_ASSIGN_OR_RETURN(pod.start_time, CaseTime(Req(p, "start_time")));
    const json& rc = Req(p, "ready_condition");
    if (rc.is_object()) {
      ReadyCondition c;
      c.status = rc.value("status", "True");
      KPISCALE_ASSIGN_OR_RETURN(c.last_transition_time, RequiredTime(rc, "last_transition_time"));
      pod.ready = c;
    }
    const json& cs = Req(p, "containers");
    if (cs.is_array()) {
      for (const json& c : cs) {
        Container container;
        container.name = c.value("name", "");
        KPISCALE_ASSIGN_OR_RETURN(container.requests_milli, ResourceMap(Req(c, "requests")));
        pod.containers.push_back(container);
      }
    }
    pods.push_back(std::move(pod));
  }
  return pods;
}

absl::StatusOr<std::vector<PodResourceSample>> ResourceSamples(const json& arr) {
  std::vector<PodResourceSample> out;
  if (!arr.is_array()) return out;
  for (const json& s : arr) {
    PodResourceSample sample;
    sample.pod = s.value("pod", "");
    KPISCALE_ASSIGN_OR_RETURN(sample.timestamp, RequiredTime(s, "timestamp"));
    KPISCALE_ASSIGN_OR_RETURN(double w, Double(s, "window_s"));
    sample.window = Seconds(w);
    const json& cs = Req(s, "containers");
    if (cs.is_array()) {
      for (const json& c : cs) {
        ContainerUsage u;
        u.name = c.value("name", "");
        KPISCALE_ASSIGN_OR_RETURN(u.usage_milli, ResourceMap(Req(c, "usage")));
        sample.containers.push_back(u);
      }
    }
    out.push_back(std::move(sample));
  }
  return out;
}

absl::StatusOr<std::vector<Recommendation>> Recommendations(const json& arr) {
  std::vector<Recommendation> out;
  if (!arr.is_array()) return out;
  for (const json& r : arr) {
    Recommendation rec;
    KPISCALE_ASSIGN_OR_RETURN(rec.value, Int32(r, "value"));
    KPISCALE_ASSIGN_OR_RETURN(rec.time, RequiredTime(r, "time"));
    out.push_back(rec);
  }
  return out;
}

absl::StatusOr<std::vector<ScaleEvent>> Events(const json& arr) {
  std::vector<ScaleEvent> out;
  if (!arr.is_array()) return out;
  for (const json& e : arr) {
    ScaleEvent ev;
    KPISCALE_ASSIGN_OR_RETURN(ev.change, Int32(e, "change"));
    KPISCALE_ASSIGN_OR_RETURN(ev.time, RequiredTime(e, "time"));
    ev.outdated = e.value("outdated", false);
    out.push_back(ev);
  }
  return out;
}

absl::StatusOr<std::optional<ScalingRules>> OptionalRules(const json& j) {
  if (j.is_null()) return std::optional<ScalingRules>();
  KPISCALE_ASSIGN_OR_RETURN(ScalingRules r, ScalingRulesFromJson(j));
  return std::optional<ScalingRules>(r);
}

// Collects "expected X, got Y" mismatches.
class Checker {
 public:
  template <typename T>
  void Eq(const std::string& what, const T& expected, const T& got) {
    if (!(expected == got)) {
      std::ostringstream s;
      s << "expected " << what << " " << expected << ", got " << got;
      errors_.push_back(s.str());
    }
  }
  void EqJson(const std::string& what, const json& expected, const json& got) {
    if (expected != got) {
      errors_.push_back(
          absl::StrCat("expected ", what, " ", expected.dump(), ", got ", got.dump()));
    }
  }
  void Fail(const std::string& msg) { errors_.push_back(msg); }
  bool ok() const { return errors_.empty(); }
  std::string Detail() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

struct Tag {
  bool skip = false;
  std::string skip_reason;
  bool master_only = false;
};

Tag ClassifyTag(const json& c, const ConformanceOptions& opt) {
  Tag t;
  const json& v = Req(c, "version_applicability");
  if (!v.is_string()) return t;
  const std::string tag = v.get<std::string>();
  if (absl::StartsWith(tag, "master-only")) {
    t.master_only = true;
    return t;
  }
  if ((absl::StartsWith(tag, ">=v1.33") || absl::StartsWith(tag, ">= v1.33")) &&
      opt.profile == VersionProfile::kV1_32) {
    t.skip = true;
    t.skip_reason = absl::StrCat("tagged \"", tag, "\"; profile is v1.32");
  }
  return t;
}

std::string Lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// ---- replica calculator ----------------------------------------------------------------------

absl::Status RunReplicaCalc(const json& file, const json& c, const Tag& tag,
                            const ConformanceOptions& opt, Checker& check) {
  const json& in = Req(c, "input");
  const json& consts = Req(file, "controller_constants_used_by_tests");
  GroupingConfig grouping;
  if (consts.is_object()) {
    KPISCALE_ASSIGN_OR_RETURN(double p, Double(consts, "cpuInitializationPeriod_s"));
    KPISCALE_ASSIGN_OR_RETURN(double d, Double(consts, "delayOfInitialReadinessStatus_s"));
    grouping.cpu_initialization_period = Seconds(p);
    grouping.delay_of_initial_readiness_status = Seconds(d);
  } else {
    grouping.cpu_initialization_period = 120 * kNanosPerSecond;
    grouping.delay_of_initial_readiness_status = 10 * kNanosPerSecond;
  }
  Tolerances tol;
  tol.profile = opt.profile;
  const json& tj = Req(in, "tolerances");
  if (tj.is_object()) {
    KPISCALE_ASSIGN_OR_RETURN(tol.scale_down, Double(tj, "scaleDown"));
    KPISCALE_ASSIGN_OR_RETURN(tol.scale_up, Double(tj, "scaleUp"));
  }
  const ReplicaCalculator calc(grouping, 0);
  KPISCALE_ASSIGN_OR_RETURN(std::vector<Pod> pods, Pods(Req(in, "pods")));
  const json& target = Req(in, "target");
  const std::string fn = c.value("function", "");

  absl::StatusOr<Proposal> got = absl::UnknownError("unset");
  if (fn == "GetResourceReplicas") {
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    const std::string resource = in.value("resource", "cpu");
    const json& cj = Req(in, "container");
    const std::string container = cj.is_string() ? cj.get<std::string>() : "";
    KPISCALE_ASSIGN_OR_RETURN(int32_t util, Int32(target, "averageUtilization"));
    KPISCALE_ASSIGN_OR_RETURN(auto samples, ResourceSamples(Req(in, "resource_metrics")));
    absl::StatusOr<PodMetricsInfo> usage = ResourceUsageFromSamples(samples, resource, container);
    if (!usage.ok()) {
      got = absl::Status(usage.status().code(),
                         absl::StrCat("unable to get metrics for resource ", resource, ": ",
                                      usage.status().message()));
    } else {
      got = calc.GetResourceReplicas(current, util, resource, container, tol, pods, *usage);
    }
  } else if (fn == "GetMetricReplicas") {
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int64_t tv, Int(target, "averageValue_milli"));
    PodMetricsInfo metrics;
    const json& pm = Req(in, "pod_metrics");
    if (pm.is_array()) {
      for (const json& m : pm) {
        PodMetric v;
        KPISCALE_ASSIGN_OR_RETURN(v.value, Int(m, "value"));
        KPISCALE_ASSIGN_OR_RETURN(v.timestamp, RequiredTime(m, "timestamp"));
        if (Req(m, "window_s").is_number()) v.window = Seconds(m["window_s"].get<double>());
        metrics[m.value("pod", "")] = v;
      }
    }
    got = calc.GetMetricReplicas(current, tv, tol, pods, metrics);
  } else if (fn == "GetObjectMetricReplicas") {
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int64_t tv, Int(target, "value_milli"));
    KPISCALE_ASSIGN_OR_RETURN(int64_t usage, Int(in, "object_metric_milli"));
    got = calc.GetObjectMetricReplicas(current, tv, tol, pods, usage);
  } else if (fn == "GetObjectPerPodMetricReplicas") {
    KPISCALE_ASSIGN_OR_RETURN(int32_t status, Int32(in, "status_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int64_t tv, Int(target, "averageValue_milli"));
    KPISCALE_ASSIGN_OR_RETURN(int64_t usage, Int(in, "object_metric_milli"));
    got = calc.GetObjectPerPodMetricReplicas(status, tv, tol, usage);
  } else if (fn == "GetExternalMetricReplicas" || fn == "GetExternalPerPodMetricReplicas") {
    std::vector<int64_t> values;
    const json& vs = Req(in, "external_metric_values_milli");
    if (vs.is_array()) {
      for (const json& v : vs) {
        if (!v.is_number_integer()) return absl::InvalidArgumentError("external value: integer");
        values.push_back(v.get<int64_t>());
      }
    }
    if (fn == "GetExternalMetricReplicas") {
      KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
      KPISCALE_ASSIGN_OR_RETURN(int64_t tv, Int(target, "value_milli"));
      got = calc.GetExternalMetricReplicas(current, tv, tol, pods, values);
    } else {
      KPISCALE_ASSIGN_OR_RETURN(int32_t status, Int32(in, "status_replicas"));
      KPISCALE_ASSIGN_OR_RETURN(int64_t tv, Int(target, "averageValue_milli"));
      got = calc.GetExternalPerPodMetricReplicas(status, tv, tol, values);
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown function \"", fn, "\""));
  }

  json expected = Req(c, "expected");
  if (tag.master_only && Req(c, "expected_release_semantics").is_object()) {
    expected = c["expected_release_semantics"];
  }
  if (expected.contains("error_contains")) {
    if (got.ok()) {
      check.Fail(absl::StrCat("expected error containing \"",
                              expected["error_contains"].get<std::string>(), "\", got replicas ",
                              got->replicas));
    }
    return absl::OkStatus();
  }
  if (!got.ok()) {
    check.Fail(absl::StrCat("expected success, got error: ", got.status().message()));
    return absl::OkStatus();
  }
  if (expected.contains("replicas")) {
    check.Eq<int64_t>("replicas", expected["replicas"].get<int64_t>(), got->replicas);
  }
  if (expected.contains("utilization")) {
    check.Eq<int64_t>("utilization", expected["utilization"].get<int64_t>(),
                      got->utilization.value_or(-1));
  }
  if (expected.contains("raw_average_milli")) {
    check.Eq<int64_t>("raw_average_milli", expected["raw_average_milli"].get<int64_t>(),
                      got->usage_milli);
  }
  if (expected.contains("usage_milli")) {
    check.Eq<int64_t>("usage_milli", expected["usage_milli"].get<int64_t>(), got->usage_milli);
  }
  return absl::OkStatus();
}

// ---- groupPods -------------------------------------------------------------------------------

absl::Status RunGroupPods(const json& c, const Tag& tag, Checker& check) {
  const json& in = Req(c, "input");
  GroupingConfig g;
  KPISCALE_ASSIGN_OR_RETURN(double p, Double(in, "cpu_initialization_period_s"));
  KPISCALE_ASSIGN_OR_RETURN(double d, Double(in, "delay_of_initial_readiness_status_s"));
  g.cpu_initialization_period = Seconds(p);
  g.delay_of_initial_readiness_status = Seconds(d);
  KPISCALE_ASSIGN_OR_RETURN(std::vector<Pod> pods, Pods(Req(in, "pods")));
  PodMetricsInfo metrics;
  const json& mj = Req(in, "metrics");
  if (mj.is_object()) {
    for (const auto& [name, m] : mj.items()) {
      PodMetric v;
      KPISCALE_ASSIGN_OR_RETURN(v.value, Int(m, "value"));
      KPISCALE_ASSIGN_OR_RETURN(v.timestamp, RequiredTime(m, "timestamp"));
      KPISCALE_ASSIGN_OR_RETURN(double w, Double(m, "window_s"));
      v.window = Seconds(w);
      metrics[name] = v;
    }
  }
  const PodGroups got = GroupPods(pods, metrics, in.value("resource", ""), g, 0);

  const json& e = Req(c, "expected");
  auto to_set = [](const json& a) {
    std::set<std::string> s;
    if (a.is_array()) {
      for (const json& x : a) s.insert(x.get<std::string>());
    }
    return s;
  };
  int64_t ready = e.value("ready_pod_count", int64_t{0});
  std::set<std::string> unready = to_set(Req(e, "unready"));
  std::set<std::string> missing = to_set(Req(e, "missing"));
  std::set<std::string> ignored = to_set(Req(e, "ignored"));
  if (tag.master_only) {
    // Master ignores Succeeded pods (IsPodTerminal); releases classify them like Running pods.
    // The tag states where the release puts them.
    const std::string t = Lower(c["version_applicability"].get<std::string>());
    for (const Pod& pod : pods) {
      if (pod.phase != PodPhase::kSucceeded || pod.deleted || !ignored.count(pod.name)) continue;
      ignored.erase(pod.name);
      if (absl::StrContains(t, "unready")) {
        unready.insert(pod.name);
      } else if (absl::StrContains(t, "missing")) {
        missing.insert(pod.name);
      } else {
        ready++;
      }
    }
  }
  auto join = [](const std::set<std::string>& s) { return "[" + absl::StrJoin(s, ",") + "]"; };
  check.Eq<int64_t>("ready_pod_count", ready, got.ready_pod_count);
  check.Eq<std::string>("unready", join(unready), join(got.unready));
  check.Eq<std::string>("missing", join(missing), join(got.missing));
  check.Eq<std::string>("ignored", join(ignored), join(got.ignored));
  return absl::OkStatus();
}

// ---- behavior --------------------------------------------------------------------------------

json EventsOut(const std::vector<ScaleEvent>& events) {
  json a = json::array();
  for (const ScaleEvent& e : events) a.push_back({{"change", e.change}, {"outdated", e.outdated}});
  return a;
}

absl::Status RunBehavior(const json& c, Checker& check) {
  const json& in = Req(c, "input");
  const json& e = Req(c, "expected");
  const std::string fn = c.value("function", "");
  const Time now = 0;
  if (fn == "convertDesiredReplicasWithBehaviorRate") {
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t desired, Int32(in, "prenormalized_desired_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t min, Int32(in, "min_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t max, Int32(in, "max_replicas"));
    // Default the rules as the test wrote them and check that against the effective rules the
    // file lists; the limiter then runs on our defaulting.
    KPISCALE_ASSIGN_OR_RETURN(auto up_given, OptionalRules(Req(in, "scale_up_rules_as_given")));
    KPISCALE_ASSIGN_OR_RETURN(auto down_given, OptionalRules(Req(in, "scale_down_rules_as_given")));
    const ScalingRules up = DefaultScaleUpRules(up_given);
    const ScalingRules down = DefaultScaleDownRules(down_given);
    for (const auto& [key, mine] :
         {std::pair<const char*, const ScalingRules*>{"scale_up_rules_effective", &up},
          {"scale_down_rules_effective", &down}}) {
      const json& want = Req(in, key);
      if (!want.is_object()) continue;
      const json got = ScalingRulesToJson(*mine);
      for (const char* field : {"policies", "selectPolicy"}) {
        if (want.contains(field))
          check.EqJson(absl::StrCat(key, ".", field), want[field], got[field]);
      }
    }
    // The limiter reads the effective rules (they may carry a filled-in window).
    ScalingRules up_eff = up;
    ScalingRules down_eff = down;
    if (Req(in, "scale_up_rules_effective").is_object()) {
      KPISCALE_ASSIGN_OR_RETURN(up_eff, ScalingRulesFromJson(in["scale_up_rules_effective"]));
    }
    if (Req(in, "scale_down_rules_effective").is_object()) {
      KPISCALE_ASSIGN_OR_RETURN(down_eff, ScalingRulesFromJson(in["scale_down_rules_effective"]));
    }
    KPISCALE_ASSIGN_OR_RETURN(auto up_events, Events(Req(in, "scale_up_events")));
    KPISCALE_ASSIGN_OR_RETURN(auto down_events, Events(Req(in, "scale_down_events")));
    const Limited got = ConvertDesiredReplicasWithBehaviorRate(
        current, desired, min, max, up_eff, down_eff, up_events, down_events, now);
    check.Eq<int64_t>("replicas", e.value("replicas", int64_t{-1}), got.replicas);
    if (e.contains("condition_reason")) {
      check.Eq<std::string>("condition_reason", e["condition_reason"].get<std::string>(),
                            got.reason);
    }
    return absl::OkStatus();
  }
  if (fn == "stabilizeRecommendationWithBehaviors") {
    KPISCALE_ASSIGN_OR_RETURN(auto recs, Recommendations(Req(in, "recommendations")));
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t desired, Int32(in, "prenormalized_desired_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(double up, Double(in, "scale_up_stabilization_window_s"));
    KPISCALE_ASSIGN_OR_RETURN(double down, Double(in, "scale_down_stabilization_window_s"));
    const Stabilized got = StabilizeRecommendationWithBehaviors(recs, current, desired, Seconds(up),
                                                                Seconds(down), now);
    check.Eq<int64_t>("stabilized_replicas", e.value("stabilized_replicas", int64_t{-1}),
                      got.replicas);
    if (e.contains("stored_recommendation_values_in_order")) {
      json values = json::array();
      for (const Recommendation& r : recs) values.push_back(r.value);
      check.EqJson("stored recommendations", e["stored_recommendation_values_in_order"], values);
    }
    return absl::OkStatus();
  }
  if (absl::StartsWith(fn, "stabilizeRecommendation")) {
    KPISCALE_ASSIGN_OR_RETURN(auto recs, Recommendations(Req(in, "recommendations")));
    KPISCALE_ASSIGN_OR_RETURN(int32_t desired, Int32(in, "prenormalized_desired_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(double w, Double(in, "downscale_stabilization_window_s"));
    const int32_t got = StabilizeRecommendation(recs, desired, Seconds(w), now);
    check.Eq<int64_t>("stabilized_replicas", e.value("stabilized_replicas", int64_t{-1}), got);
    if (e.contains("recommendation_log_length")) {
      check.Eq<int64_t>("recommendation_log_length", e["recommendation_log_length"].get<int64_t>(),
                        static_cast<int64_t>(recs.size()));
    }
    return absl::OkStatus();
  }
  if (absl::StartsWith(fn, "convertDesiredReplicasWithRules")) {
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t desired, Int32(in, "prenormalized_desired_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t min, Int32(in, "min_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(int32_t max, Int32(in, "max_replicas"));
    const double factor = Req(in, "scale_up_limit_factor").is_number()
                              ? in["scale_up_limit_factor"].get<double>()
                              : 8.0;
    const double minimum = Req(in, "scale_up_limit_minimum").is_number()
                               ? in["scale_up_limit_minimum"].get<double>()
                               : 4.0;
    const Limited got =
        ConvertDesiredReplicasWithRules(current, desired, min, max, factor, minimum);
    check.Eq<int64_t>("replicas", e.value("replicas", int64_t{-1}), got.replicas);
    if (e.contains("condition_reason")) {
      check.Eq<std::string>("condition_reason", e["condition_reason"].get<std::string>(),
                            got.reason);
    }
    if (e.contains("replicas_with_production_factor_2")) {
      const Limited prod =
          ConvertDesiredReplicasWithRules(current, desired, min, max, 2.0, minimum);
      check.Eq<int64_t>("replicas with factor 2",
                        e["replicas_with_production_factor_2"].get<int64_t>(), prod.replicas);
    }
    return absl::OkStatus();
  }
  if (fn == "calculateScaleUpLimitWithScalingRules" ||
      fn == "calculateScaleDownLimitWithBehaviors") {
    KPISCALE_ASSIGN_OR_RETURN(int32_t current, Int32(in, "current_replicas"));
    KPISCALE_ASSIGN_OR_RETURN(auto up_events, Events(Req(in, "scale_up_events")));
    KPISCALE_ASSIGN_OR_RETURN(auto down_events, Events(Req(in, "scale_down_events")));
    KPISCALE_ASSIGN_OR_RETURN(ScalingRules rules, ScalingRulesFromJson(Req(in, "rules")));
    const int32_t got =
        fn == "calculateScaleUpLimitWithScalingRules"
            ? CalculateScaleUpLimitWithScalingRules(current, up_events, down_events, rules, now)
            : CalculateScaleDownLimitWithBehaviors(current, up_events, down_events, rules, now);
    check.Eq<int64_t>("limit", e.value("limit", int64_t{-1}), got);
    return absl::OkStatus();
  }
  if (absl::StartsWith(fn, "getReplicasChangePerPeriod")) {
    KPISCALE_ASSIGN_OR_RETURN(int32_t change, Int32(in, "replica_change"));
    KPISCALE_ASSIGN_OR_RETURN(auto prev, Events(Req(in, "previous_events")));
    KPISCALE_ASSIGN_OR_RETURN(auto rules, OptionalRules(Req(in, "rules")));
    const bool behavior_nil = in.value("behavior_is_nil", false);
    check.Eq<int64_t>("replicas_change_per_60s_before_store",
                      e.value("replicas_change_per_60s_before_store", int64_t{-1}),
                      GetReplicasChangePerPeriod(60, prev, now));
    for (int direction = 0; direction < 2; ++direction) {
      std::optional<Behavior> behavior;
      if (!behavior_nil) {
        Behavior b;
        if (direction == 0) {
          b.scale_up = rules;
        } else {
          b.scale_down = rules;
        }
        behavior = b;
      }
      ControllerState state;
      (direction == 0 ? state.scale_up_events : state.scale_down_events) = prev;
      StoreScaleEvent(behavior, state, 10, direction == 0 ? 10 + change : 10 - change, now);
      const auto& after = direction == 0 ? state.scale_up_events : state.scale_down_events;
      // The new event's time is now and is not listed; compare {change, outdated} in order.
      check.EqJson(direction == 0 ? "events after scale-up store" : "events after scale-down store",
                   Req(e, "events_after_store"), EventsOut(after));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown function \"", fn, "\""));
}

// ---- defaults --------------------------------------------------------------------------------

absl::Status RunDefaults(const json& c, Checker& check) {
  const std::string fn = c.value("function", "");
  const json& in = Req(c, "input");
  KPISCALE_ASSIGN_OR_RETURN(auto given, OptionalRules(Req(in, "rules")));
  ScalingRules got;
  if (fn == "GenerateHPAScaleUpRules") {
    got = DefaultScaleUpRules(given);
  } else if (fn == "GenerateHPAScaleDownRules") {
    got = DefaultScaleDownRules(given);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown function \"", fn, "\""));
  }
  const json out = ScalingRulesToJson(got);
  const json& e = Req(c, "expected");
  for (const char* key : {"policies", "stabilizationWindowSeconds", "selectPolicy"}) {
    if (e.contains(key)) check.EqJson(key, e[key], out[key]);
  }
  return absl::OkStatus();
}

// ---- controller ------------------------------------------------------------------------------

class CaseMetrics final : public MetricsSource {
 public:
  CaseMetrics(std::vector<PodResourceSample> resource, json pods, json object, json external)
      : resource_(std::move(resource)),
        pods_(std::move(pods)),
        object_(std::move(object)),
        external_(std::move(external)) {}

  absl::StatusOr<std::vector<PodResourceSample>> GetResourceMetric(const MetricSpec&) override {
    return resource_;
  }
  absl::StatusOr<PodMetricsInfo> GetRawMetric(const MetricSpec& spec) override {
    const json& list = Req(pods_, spec.name.c_str());
    if (!list.is_array()) return absl::NotFoundError(absl::StrCat("no metric ", spec.name));
    PodMetricsInfo out;
    for (const json& m : list) {
      PodMetric v;
      KPISCALE_ASSIGN_OR_RETURN(v.value, Int(m, "value_milli"));
      KPISCALE_ASSIGN_OR_RETURN(v.timestamp, RequiredTime(m, "timestamp"));
      out[m.value("pod", "")] = v;
    }
    return out;
  }
  absl::StatusOr<int64_t> GetObjectMetric(const MetricSpec& spec) override {
    const json& v = Req(object_, spec.name.c_str());
    if (!v.is_number_integer()) return absl::NotFoundError(absl::StrCat("no metric ", spec.name));
    return v.get<int64_t>();
  }
  absl::StatusOr<std::vector<int64_t>> GetExternalMetric(const MetricSpec& spec) override {
    const json& list = Req(external_, spec.name.c_str());
    if (!list.is_array()) return absl::NotFoundError(absl::StrCat("no metric ", spec.name));
    std::vector<int64_t> out;
    for (const json& v : list) out.push_back(v.get<int64_t>());
    return out;
  }

 private:
  std::vector<PodResourceSample> resource_;
  json pods_;
  json object_;
  json external_;
};

absl::Status RunController(const json& c, const ConformanceOptions& opt, Checker& check) {
  const json& in = Req(c, "input");
  KPISCALE_ASSIGN_OR_RETURN(HpaSpec spec, HpaSpecFromJson(Req(in, "hpa")));

  ControllerConfig config = ControllerConfig::UpstreamTestConstants();
  config.profile = opt.profile;
  const json& cc = Req(in, "controller_config");
  if (cc.is_object()) {
    KPISCALE_ASSIGN_OR_RETURN(config.tolerance, Double(cc, "tolerance"));
    KPISCALE_ASSIGN_OR_RETURN(double p, Double(cc, "cpu_initialization_period_s"));
    KPISCALE_ASSIGN_OR_RETURN(double d, Double(cc, "delay_of_initial_readiness_status_s"));
    KPISCALE_ASSIGN_OR_RETURN(double w, Double(cc, "downscale_stabilization_window_s"));
    config.cpu_initialization_period = Seconds(p);
    config.delay_of_initial_readiness_status = Seconds(d);
    config.downscale_stabilization_window = Seconds(w);
    if (Req(cc, "scale_up_limit_factor").is_number()) {
      config.scale_up_limit_factor = cc["scale_up_limit_factor"].get<double>();
    }
    if (Req(cc, "scale_up_limit_minimum").is_number()) {
      config.scale_up_limit_minimum = cc["scale_up_limit_minimum"].get<double>();
    }
  }
  const json& gates = Req(in, "feature_gates");
  if (gates.is_object()) {
    config.gates.configurable_tolerance =
        gates.value("HPAConfigurableTolerance", config.gates.configurable_tolerance);
    config.gates.pod_level_resources =
        gates.value("PodLevelResources", config.gates.pod_level_resources);
  }

  // Our API defaulting must produce the effective behavior the file lists.
  const json& eff = Req(in, "effective_behavior");
  if (spec.behavior && eff.is_object()) {
    const Behavior mine = EffectiveBehavior(*spec.behavior, config.downscale_stabilization_window);
    for (const char* dir : {"scaleUp", "scaleDown"}) {
      const ScalingRules& r = std::string(dir) == "scaleUp" ? *mine.scale_up : *mine.scale_down;
      const json want = Req(eff, dir);
      const json got = ScalingRulesToJson(r);
      for (const char* key : {"policies", "stabilizationWindowSeconds", "selectPolicy"}) {
        if (want.contains(key))
          check.EqJson(absl::StrCat("effective ", dir, ".", key), want[key], got[key]);
      }
    }
  }

  ReconcileInput input;
  input.spec = &spec;
  const json& hs = Req(in, "hpa_status");
  KPISCALE_ASSIGN_OR_RETURN(input.status.current_replicas, Int32(hs, "currentReplicas"));
  KPISCALE_ASSIGN_OR_RETURN(input.status.desired_replicas, Int32(hs, "desiredReplicas"));
  KPISCALE_ASSIGN_OR_RETURN(input.status.last_scale_time, CaseTime(Req(hs, "lastScaleTime")));
  Scale scale;
  KPISCALE_ASSIGN_OR_RETURN(scale.spec_replicas, Int32(Req(in, "scale"), "specReplicas"));
  KPISCALE_ASSIGN_OR_RETURN(scale.status_replicas, Int32(Req(in, "scale"), "statusReplicas"));
  input.scale = scale;
  KPISCALE_ASSIGN_OR_RETURN(input.pods, Pods(Req(in, "pods")));
  KPISCALE_ASSIGN_OR_RETURN(auto samples, ResourceSamples(Req(in, "resource_metrics")));
  CaseMetrics metrics(std::move(samples), Req(in, "pods_metrics"), Req(in, "object_metrics"),
                      Req(in, "external_metrics"));
  input.metrics = &metrics;
  const json& errs = Req(in, "metric_fetch_errors");
  if (errs.is_array()) {
    for (const json& i : errs) input.metric_fetch_errors.push_back(i.get<int>());
  }
  input.now = 0;

  ControllerState state;
  const json& cs = Req(in, "controller_state");
  if (Req(cs, "recommendations").is_array()) {
    KPISCALE_ASSIGN_OR_RETURN(state.recommendations, Recommendations(cs["recommendations"]));
  }
  KPISCALE_ASSIGN_OR_RETURN(state.scale_up_events, Events(Req(cs, "scale_up_events")));
  KPISCALE_ASSIGN_OR_RETURN(state.scale_down_events, Events(Req(cs, "scale_down_events")));

  const ReconcileResult r = Reconcile(input, config, state);

  const json& e = Req(c, "expected");
  if (e.contains("desired_replicas")) {
    check.Eq<int64_t>("desired_replicas", e["desired_replicas"].get<int64_t>(), r.desired_replicas);
  }
  if (e.contains("scale_updated")) {
    check.Eq<bool>("scale_updated", e["scale_updated"].get<bool>(), r.scale_updated);
  }
  if (e.contains("conditions")) {
    json got = json::array();
    for (const Condition& cond : r.status.conditions) {
      got.push_back({{"type", cond.type}, {"status", cond.status}, {"reason", cond.reason}});
    }
    check.EqJson("conditions", e["conditions"], got);
  }
  if (e.contains("cpu_utilization_percent")) {
    int64_t util = -1;
    for (size_t i = 0; i < spec.metrics.size() && i < r.metrics.size(); ++i) {
      if (spec.metrics[i].type == "Resource" && spec.metrics[i].name == "cpu" &&
          r.metrics[i].utilization) {
        util = *r.metrics[i].utilization;
        break;
      }
    }
    check.Eq<int64_t>("cpu_utilization_percent", e["cpu_utilization_percent"].get<int64_t>(), util);
  }
  if (e.contains("reconcile_returns_error")) {
    check.Eq<bool>("reconcile_returns_error", e["reconcile_returns_error"].get<bool>(),
                   r.returns_error);
  }
  if (e.contains("reconciliation_action_label")) {
    check.Eq<std::string>("reconciliation_action_label",
                          e["reconciliation_action_label"].get<std::string>(),
                          ActionLabelName(r.action));
  }
  return absl::OkStatus();
}

}  // namespace

std::string CaseResult::Line() const {
  switch (outcome) {
    case Outcome::kPass:
      return "PASS " + id;
    case Outcome::kSkip:
      return "SKIP " + id + ": " + detail;
    case Outcome::kFail:
      break;
  }
  return "FAIL " + id + ": " + detail;
}

absl::StatusOr<std::optional<Time>> CaseTime(const json& v) {
  if (v.is_null()) return std::optional<Time>();
  if (v.is_string()) {
    if (v.get<std::string>() == "zero") return std::optional<Time>(kZeroTime);
    return absl::InvalidArgumentError(absl::StrCat("invalid time ", v.dump()));
  }
  if (v.is_number_integer()) {
    const int64_t secs =
        v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX ? INT64_MAX : v.get<int64_t>();
    if (secs > 1'000'000'000 || secs < -1'000'000'000) {
      return absl::InvalidArgumentError(absl::StrCat("time out of range: ", v.dump()));
    }
    return std::optional<Time>(secs * kNanosPerSecond);
  }
  if (v.is_number_float()) return std::optional<Time>(Seconds(v.get<double>()));
  return absl::InvalidArgumentError(absl::StrCat("invalid time ", v.dump()));
}

absl::StatusOr<std::vector<CaseResult>> RunConformanceJson(const json& file,
                                                           const ConformanceOptions& options) {
  if (!file.is_object()) return absl::InvalidArgumentError("case file: expected a JSON object");
  const json& schema_json = Req(file, "schema");
  const std::string schema = schema_json.is_string() ? schema_json.get<std::string>() : "";
  const json& cases = Req(file, "cases");
  if (!cases.is_array()) return absl::InvalidArgumentError("case file: no \"cases\" array");
  enum class Kind { kRc, kGroup, kBehavior, kDefaults, kController };
  Kind kind;
  if (schema == "hpa-sim/replica-calculator/v1") {
    kind = Kind::kRc;
  } else if (schema == "hpa-sim/group-pods/v1") {
    kind = Kind::kGroup;
  } else if (schema == "hpa-sim/behavior/v1") {
    kind = Kind::kBehavior;
  } else if (schema == "hpa-sim/defaults/v1") {
    kind = Kind::kDefaults;
  } else if (schema == "hpa-sim/controller-reconcile/v1") {
    kind = Kind::kController;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown schema \"", schema, "\""));
  }
  std::vector<CaseResult> results;
  for (const json& c : cases) {
    CaseResult res;
    res.id = "<no id>";
    if (c.is_object() && c.contains("id") && c["id"].is_string())
      res.id = c["id"].get<std::string>();
    const Tag tag = ClassifyTag(c, options);
    if (tag.skip) {
      res.outcome = CaseResult::Outcome::kSkip;
      res.detail = tag.skip_reason;
      results.push_back(res);
      continue;
    }
    Checker check;
    absl::Status st;
    try {
      switch (kind) {
        case Kind::kRc:
          st = RunReplicaCalc(file, c, tag, options, check);
          break;
        case Kind::kGroup:
          st = RunGroupPods(c, tag, check);
          break;
        case Kind::kBehavior:
          st = RunBehavior(c, check);
          break;
        case Kind::kDefaults:
          st = RunDefaults(c, check);
          break;
        case Kind::kController:
          st = RunController(c, options, check);
          break;
      }
    } catch (const json::exception& ex) {
      // A malformed case (wrong JSON type somewhere) fails that case only.
      st = absl::InvalidArgumentError(absl::StrCat("malformed case: ", ex.what()));
    }
    if (!st.ok()) {
      res.outcome = CaseResult::Outcome::kFail;
      res.detail = absl::StrCat("cannot run case: ", st.message());
    } else if (!check.ok()) {
      res.outcome = CaseResult::Outcome::kFail;
      res.detail = check.Detail();
    } else {
      res.outcome = CaseResult::Outcome::kPass;
    }
    results.push_back(res);
  }
  return results;
}

absl::StatusOr<std::vector<CaseResult>> RunConformanceFile(const std::string& path,
                                                           const ConformanceOptions& options) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  json file;
  try {
    file = json::parse(in);
  } catch (const json::exception& ex) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON: ", ex.what()));
  }
  absl::StatusOr<std::vector<CaseResult>> r = RunConformanceJson(file, options);
  if (!r.ok())
    return absl::Status(r.status().code(), absl::StrCat(path, ": ", r.status().message()));
  return r;
}

}  // namespace kpiscale::hpa
