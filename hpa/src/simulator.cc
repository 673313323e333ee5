#include "kpiscale/hpa/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kpiscale/common/quantity.h"
#include "kpiscale/common/status.h"
#include "kpiscale/hpa/replica_calculator.h"

namespace kpiscale::hpa {
namespace {

absl::StatusOr<double> ParseNumber(const std::string& text) {
  const std::string t(absl::StripAsciiWhitespace(text));
  double d = 0;
  if (absl::SimpleAtod(t, &d) && std::isfinite(d)) return d;
  absl::StatusOr<common::Quantity> q = common::Quantity::Parse(t);
  if (!q.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid number or quantity \"", t, "\""));
  }
  return q->ToDouble();
}

absl::StatusOr<int64_t> ParseMilli(const std::string& text) {
  const std::string t(absl::StripAsciiWhitespace(text));
  absl::StatusOr<common::Quantity> q = common::Quantity::Parse(t);
  if (!q.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("invalid quantity \"", t, "\""));
  }
  return q->MilliValue();
}

// A value in units → milli-units, rounded up like Quantity.MilliValue().
int64_t ToMilli(double v) { return CeilToInt64(v * 1000.0); }

std::string Fmt(double v, int precision = 4) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
  return buf;
}
std::string FmtFixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// ---- simulated pods -----------------------------------------------------------------------

struct SimPod {
  std::string name;
  Time created = 0;
  Time started = 0;  // Running from here
  Time ready_at = 0;
  std::optional<Time> deleted_at;
};

Pod Materialize(const SimPod& p, const LoadModel& model, Time now) {
  Pod pod;
  pod.name = p.name;
  pod.deleted = p.deleted_at.has_value() && *p.deleted_at <= now;
  Container c;
  c.name = "app";
  c.requests_milli["cpu"] = model.cpu_request_milli;
  c.requests_milli["memory"] = model.memory_request_bytes * 1000;
  pod.containers.push_back(c);
  if (now < p.started) {
    pod.phase = PodPhase::kPending;
    pod.ready = ReadyCondition{"False", p.created};
    return pod;
  }
  pod.phase = PodPhase::kRunning;
  pod.start_time = p.started;
  if (now >= p.ready_at) {
    pod.ready = ReadyCondition{"True", p.ready_at};
  } else {
    pod.ready = ReadyCondition{"False", p.started};
  }
  return pod;
}

// ---- metric values ------------------------------------------------------------------------

enum class Signal { kRps, kSloRatio, kLatency, kInFlight, kErrors, kUnknown };

Signal SignalFor(const std::string& name) {
  if (absl::StrContains(name, "requests_per_second")) return Signal::kRps;
  if (absl::StrContains(name, "slo_violations")) return Signal::kSloRatio;
  if (absl::StrContains(name, "in_flight")) return Signal::kInFlight;
  if (absl::StrContains(name, "error")) return Signal::kErrors;
  if (absl::StrContains(name, "duration") || absl::StrContains(name, "latency")) {
    return Signal::kLatency;
  }
  return Signal::kUnknown;
}

// One Ready pod's figures as an M/M/1 queue with arrival rate `lambda`.
double SignalValue(Signal s, double lambda, const LoadModel& m) {
  const double mu = m.capacity_per_replica;
  // Past saturation the queue grows without bound; the gap is floored so that figures stay
  // finite and monotone (the client timeout caps latency anyway).
  const double gap = std::max(mu - lambda, 0.01 * mu);
  switch (s) {
    case Signal::kRps:
      return std::min(lambda, mu);
    case Signal::kSloRatio:
      return std::min(1.0, std::exp(-gap * m.slo_threshold_s));
    case Signal::kLatency:
      return std::min(m.latency_cap_s, std::log(100.0) / gap);
    case Signal::kInFlight: {
      const double rho = std::min(lambda / mu, 0.99);
      return rho / (1 - rho);
    }
    case Signal::kErrors:
      return lambda > mu ? 1.0 - mu / lambda : 0.0;
    case Signal::kUnknown:
      break;
  }
  return 0;
}

double Interpolate(const Trace& t, double at) {
  if (t.times_s.empty()) return 0;
  if (at <= t.times_s.front()) return t.demand.front();
  for (size_t i = 1; i < t.times_s.size(); ++i) {
    if (at <= t.times_s[i]) {
      const double t0 = t.times_s[i - 1];
      const double t1 = t.times_s[i];
      const double f = t1 > t0 ? (at - t0) / (t1 - t0) : 1.0;
      return t.demand[i - 1] + f * (t.demand[i] - t.demand[i - 1]);
    }
  }
  return t.demand.back();
}

// The row in effect at `at`: the last one with time <= at.
std::optional<size_t> RowAt(const Trace& t, double at) {
  std::optional<size_t> row;
  for (size_t i = 0; i < t.times_s.size() && t.times_s[i] <= at; ++i) row = i;
  return row;
}

// The simulator's view of the metrics APIs at one instant.
class SimMetrics final : public MetricsSource {
 public:
  SimMetrics(const Trace& trace, const std::vector<Pod>& pods, Time now, MetricsSource* live)
      : trace_(trace), pods_(pods), now_(now), live_(live) {
    at_ = ToSeconds(now);
    if (trace.kind == Trace::Kind::kLoad) {
      demand_ = std::max(0.0, Interpolate(trace, at_));
      for (const Pod& p : pods) {
        if (IsServing(p)) ready_++;
      }
      lambda_ = ready_ > 0 ? demand_ / ready_ : 0;
    }
  }

  absl::StatusOr<std::vector<PodResourceSample>> GetResourceMetric(
      const MetricSpec& spec) override {
    std::vector<PodResourceSample> out;
    for (const Pod& p : pods_) {
      if (p.phase != PodPhase::kRunning) continue;  // metrics-server has nothing for Pending pods
      std::optional<int64_t> v;
      if (trace_.kind == Trace::Kind::kLoad) {
        const LoadModel& m = trace_.model;
        const double served = IsServing(p) ? std::min(lambda_, m.capacity_per_replica) : 0;
        if (spec.name == "cpu") {
          v = IsServing(p)
                  ? ToMilli((static_cast<double>(m.cpu_idle_milli) + m.cpu_per_rps_milli * served) /
                            1000.0)
                  : m.cpu_startup_milli;
        } else if (spec.name == "memory") {
          v = ToMilli(static_cast<double>(m.memory_idle_bytes) + m.memory_per_rps_bytes * served);
        }
      } else {
        v = Column(spec.name, p.name);
      }
      if (!v) continue;
      PodResourceSample s;
      s.pod = p.name;
      s.timestamp = now_;
      s.window = 15 * kNanosPerSecond;  // metrics-server's resolution
      s.containers.push_back(ContainerUsage{"app", {{spec.name, *v}}});
      out.push_back(std::move(s));
    }
    return out;
  }

  absl::StatusOr<PodMetricsInfo> GetRawMetric(const MetricSpec& spec) override {
    if (live_ != nullptr) return live_->GetRawMetric(spec);
    PodMetricsInfo out;
    for (const Pod& p : pods_) {
      if (p.phase != PodPhase::kRunning) continue;  // no sidecar yet
      std::optional<int64_t> v;
      if (trace_.kind == Trace::Kind::kLoad) {
        KPISCALE_ASSIGN_OR_RETURN(Signal s, Known(spec.name));
        if (IsServing(p)) {
          v = ToMilli(SignalValue(s, lambda_, trace_.model));
        } else if (s == Signal::kRps || s == Signal::kInFlight) {
          v = 0;  // a running pod without traffic knows it served nothing; ratios are unknown
        }
      } else {
        v = Column(spec.name, p.name);
      }
      if (v) out[p.name] = PodMetric{*v, now_, kNanosPerSecond};
    }
    return out;
  }

  absl::StatusOr<int64_t> GetObjectMetric(const MetricSpec& spec) override {
    if (live_ != nullptr) return live_->GetObjectMetric(spec);
    return Aggregate(spec.name);
  }

  absl::StatusOr<std::vector<int64_t>> GetExternalMetric(const MetricSpec& spec) override {
    if (live_ != nullptr) return live_->GetExternalMetric(spec);
    KPISCALE_ASSIGN_OR_RETURN(int64_t v, Aggregate(spec.name));
    return std::vector<int64_t>{v};
  }

  std::optional<double> demand() const {
    if (trace_.kind == Trace::Kind::kLoad) return demand_;
    return std::nullopt;
  }

 private:
  static bool IsServing(const Pod& p) {
    return p.phase == PodPhase::kRunning && !p.deleted && p.ready && p.ready->status == "True";
  }

  absl::StatusOr<Signal> Known(const std::string& name) const {
    const Signal s = SignalFor(name);
    if (s == Signal::kUnknown) {
      return absl::InvalidArgumentError(
          absl::StrCat("the load model cannot derive metric \"", name,
                       "\" (known: *requests_per_second*, *slo_violations*, *duration*/*latency*, "
                       "*in_flight*, *error*); use a metrics trace"));
    }
    return s;
  }

  absl::StatusOr<int64_t> Aggregate(const std::string& name) {
    if (trace_.kind == Trace::Kind::kMetrics) {
      std::optional<int64_t> v = Column(name, "");
      if (!v) return absl::NotFoundError(absl::StrCat("no value for ", name, " at ", at_, " s"));
      return *v;
    }
    KPISCALE_ASSIGN_OR_RETURN(Signal s, Known(name));
    if (ready_ == 0) {
      // No pod served anything: the value is unknown, not zero.
      return absl::NotFoundError(absl::StrCat("no fresh pods for ", name));
    }
    // Every Ready pod gets the same share, so the workload figure is the per-pod figure (or
    // the total, for a rate).
    double v = SignalValue(s, lambda_, trace_.model);
    if (s == Signal::kRps || s == Signal::kInFlight) v *= ready_;
    return ToMilli(v);
  }

  std::optional<int64_t> Column(const std::string& metric, const std::string& pod) const {
    const std::optional<size_t> row = RowAt(trace_, at_);
    if (!row) return std::nullopt;
    if (!pod.empty()) {
      auto it = trace_.columns.find(metric + "@" + pod);
      if (it != trace_.columns.end()) return it->second[*row];
    }
    auto it = trace_.columns.find(metric);
    if (it == trace_.columns.end()) return std::nullopt;
    return it->second[*row];
  }

  const Trace& trace_;
  const std::vector<Pod>& pods_;
  Time now_;
  MetricsSource* live_;
  double at_ = 0;
  double demand_ = 0;
  int ready_ = 0;
  double lambda_ = 0;
};

TimelineRow::Metric DescribeMetric(const MetricSpec& m, const MetricOutcome& o) {
  TimelineRow::Metric out;
  out.name = m.DisplayName();
  if (m.target.average_utilization && !m.target.average_value_milli) {
    out.unit = "%";
    out.target = *m.target.average_utilization;
  } else if (m.target.average_value_milli &&
             (m.type != "Object" || m.target.type == "AverageValue")) {
    out.target = static_cast<double>(*m.target.average_value_milli) / 1000.0;
  } else if (m.target.value_milli) {
    out.target = static_cast<double>(*m.target.value_milli) / 1000.0;
  }
  if (o.ok) {
    out.proposal = o.proposal;
    if (o.utilization) {
      out.value = *o.utilization;
    } else {
      out.value = static_cast<double>(o.usage_milli) / 1000.0;
    }
  } else {
    out.error = o.error;
  }
  return out;
}

}  // namespace

absl::Status LoadModel::Set(const std::string& key, const std::string& value) {
  KPISCALE_ASSIGN_OR_RETURN(double v, ParseNumber(value));
  if (v < 0) return absl::InvalidArgumentError(absl::StrCat(key, ": must not be negative"));
  if (key == "capacity_per_replica") {
    if (v <= 0) return absl::InvalidArgumentError("capacity_per_replica: must be positive");
    capacity_per_replica = v;
  } else if (key == "startup_delay_s") {
    startup_delay = Seconds(v);
  } else if (key == "readiness_delay_s") {
    readiness_delay = Seconds(v);
  } else if (key == "cpu_request") {
    KPISCALE_ASSIGN_OR_RETURN(cpu_request_milli, ParseMilli(value));
  } else if (key == "cpu_idle") {
    KPISCALE_ASSIGN_OR_RETURN(cpu_idle_milli, ParseMilli(value));
  } else if (key == "cpu_startup") {
    KPISCALE_ASSIGN_OR_RETURN(cpu_startup_milli, ParseMilli(value));
  } else if (key == "cpu_per_rps") {
    cpu_per_rps_milli = v * 1000.0;
  } else if (key == "memory_request") {
    memory_request_bytes = static_cast<int64_t>(std::ceil(v));
  } else if (key == "memory_idle") {
    memory_idle_bytes = static_cast<int64_t>(std::ceil(v));
  } else if (key == "memory_per_rps") {
    memory_per_rps_bytes = v;
  } else if (key == "slo_threshold_s") {
    slo_threshold_s = v;
  } else if (key == "latency_cap_s") {
    latency_cap_s = v;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown load-model parameter \"", key, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<Trace> ParseTrace(const std::string& csv_text) {
  Trace t;
  std::vector<std::string> header;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(csv_text, '\n')) {
    line_no++;
    std::string line(absl::StripAsciiWhitespace(raw));
    if (line.empty()) continue;
    if (line[0] == '#') {
      const std::string body(absl::StripAsciiWhitespace(line.substr(1)));
      const size_t colon = body.find(':');
      if (colon == std::string::npos) continue;  // a plain comment
      const std::string key(absl::StripAsciiWhitespace(body.substr(0, colon)));
      const std::string value(absl::StripAsciiWhitespace(body.substr(colon + 1)));
      // Only "# identifier: value" sets a parameter; other comments may contain colons.
      if (key.empty() || !std::all_of(key.begin(), key.end(), [](char ch) {
            return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_';
          })) {
        continue;
      }
      if (absl::Status st = t.model.Set(key, value); !st.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", st.message()));
      }
      continue;
    }
    std::vector<std::string> cells;
    for (absl::string_view c : absl::StrSplit(line, ',')) {
      cells.emplace_back(absl::StripAsciiWhitespace(c));
    }
    if (header.empty()) {
      header = cells;
      if (header.size() < 2 || header[0] != "time") {
        return absl::InvalidArgumentError(absl::StrCat(
            "line ", line_no, ": the header must be \"time,demand\" or \"time,<metric>,...\""));
      }
      if (header.size() == 2 && header[1] == "demand") {
        t.kind = Trace::Kind::kLoad;
      } else {
        t.kind = Trace::Kind::kMetrics;
        for (size_t i = 1; i < header.size(); ++i) {
          if (header[i].empty() || t.columns.count(header[i])) {
            return absl::InvalidArgumentError(
                absl::StrCat("line ", line_no, ": empty or repeated column \"", header[i], "\""));
          }
          t.columns[header[i]];
        }
      }
      continue;
    }
    if (cells.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": expected ", header.size(),
                                                     " cells, got ", cells.size()));
    }
    double time = 0;
    if (!absl::SimpleAtod(cells[0], &time) || !std::isfinite(time)) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_no, ": invalid time \"", cells[0], "\""));
    }
    if (!t.times_s.empty() && time <= t.times_s.back()) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": times must increase"));
    }
    t.times_s.push_back(time);
    if (t.kind == Trace::Kind::kLoad) {
      absl::StatusOr<double> d = ParseNumber(cells[1]);
      if (!d.ok() || *d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_no, ": invalid demand \"", cells[1], "\""));
      }
      t.demand.push_back(*d);
    } else {
      for (size_t i = 1; i < cells.size(); ++i) {
        std::optional<int64_t> v;
        if (!cells[i].empty()) {
          absl::StatusOr<int64_t> m = ParseMilli(cells[i]);
          if (!m.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat("line ", line_no, ", column ", header[i], ": ", m.status().message()));
          }
          v = *m;
        }
        t.columns[header[i]].push_back(v);
      }
    }
  }
  if (header.empty()) return absl::InvalidArgumentError("trace: no header line");
  if (t.times_s.empty()) return absl::InvalidArgumentError("trace: no data rows");
  return t;
}

absl::StatusOr<Trace> LoadTrace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<Trace> t = ParseTrace(ss.str());
  if (!t.ok())
    return absl::Status(t.status().code(), absl::StrCat(path, ": ", t.status().message()));
  return t;
}

absl::StatusOr<std::vector<TimelineRow>> Simulate(const HpaSpec& spec, const Trace& trace,
                                                  const SimulationOptions& options,
                                                  MetricsSource* live) {
  if (options.config.sync_period <= 0) {
    return absl::InvalidArgumentError("sync period must be positive");
  }
  if (options.drift < 0) return absl::InvalidArgumentError("drift must not be negative");
  const LoadModel& model = trace.model;
  const std::string prefix = !options.pod_prefix.empty()           ? options.pod_prefix
                             : !spec.scale_target_ref.name.empty() ? spec.scale_target_ref.name
                                                                   : "pod";
  std::vector<SimPod> pods;
  int next_index = 0;
  auto new_pod = [&](Time created) {
    SimPod p;
    p.name = absl::StrCat(prefix, "-", next_index++);
    p.created = created;
    p.started = created + model.startup_delay;
    p.ready_at = p.started + model.readiness_delay;
    return p;
  };

  int32_t replicas = options.initial_replicas;
  if (replicas <= 0) {
    replicas = options.initial_pod_names.empty()
                   ? spec.min_replicas.value_or(1)
                   : static_cast<int32_t>(options.initial_pod_names.size());
  }
  for (int32_t i = 0; i < replicas; ++i) {
    // Starting pods have been Ready for an hour.
    SimPod p = new_pod(-3600 * kNanosPerSecond);
    if (static_cast<size_t>(i) < options.initial_pod_names.size()) {
      p.name = options.initial_pod_names[static_cast<size_t>(i)];
    }
    pods.push_back(p);
  }

  const Time end = options.duration > 0 ? options.duration : Seconds(trace.EndSeconds());
  ControllerState state;
  HpaStatus status;
  status.current_replicas = replicas;
  status.desired_replicas = replicas;
  std::vector<TimelineRow> rows;
  for (Time now = options.first_tick; now <= end;
       now += options.config.sync_period + options.drift) {
    if (!rows.empty() && options.between_ticks) options.between_ticks();
    // Terminated pods leave after the grace period.
    pods.erase(std::remove_if(pods.begin(), pods.end(),
                              [&](const SimPod& p) {
                                return p.deleted_at &&
                                       *p.deleted_at + options.termination_grace <= now;
                              }),
               pods.end());
    std::vector<Pod> view;
    int32_t live_pods = 0;
    TimelineRow row;
    for (const SimPod& p : pods) {
      view.push_back(Materialize(p, model, now));
      const Pod& v = view.back();
      if (v.deleted) continue;
      live_pods++;
      if (v.phase == PodPhase::kPending || (v.ready && v.ready->status != "True")) {
        row.pending_replicas++;
      } else {
        row.ready_replicas++;
      }
    }
    SimMetrics metrics(trace, view, now, live);
    ReconcileInput in;
    in.spec = &spec;
    in.status = status;
    in.scale = Scale{replicas, live_pods};
    in.pods = view;
    in.metrics = &metrics;
    in.now = now;
    const ReconcileResult r = Reconcile(in, options.config, state);

    row.time_s = ToSeconds(now);
    row.demand = metrics.demand();
    row.spec_replicas = replicas;
    row.desired_replicas = r.scale_updated ? r.desired_replicas : replicas;
    row.recommendation = r.metric_desired;
    row.stabilized = r.stabilized;
    if (const Condition* c = r.status.FindCondition("ScalingLimited"))
      row.limited_reason = c->reason;
    if (const Condition* c = r.status.FindCondition("AbleToScale")) row.able_reason = c->reason;
    if (const Condition* c = r.status.FindCondition("ScalingActive")) row.active_reason = c->reason;
    if (r.branch == "above-max") row.limited_reason = "TooManyReplicas";
    if (r.branch == "below-min") row.limited_reason = "TooFewReplicas";
    for (size_t i = 0; i < spec.metrics.size(); ++i) {
      if (i < r.metrics.size()) {
        row.metrics.push_back(DescribeMetric(spec.metrics[i], r.metrics[i]));
      } else {
        TimelineRow::Metric m;
        m.name = spec.metrics[i].DisplayName();
        row.metrics.push_back(m);
      }
    }
    rows.push_back(std::move(row));
    status = r.status;

    if (r.scale_updated) {
      const int32_t target = r.desired_replicas;
      if (target > replicas) {
        for (int32_t i = replicas; i < target; ++i) pods.push_back(new_pod(now));
      } else if (target < replicas) {
        // The ReplicaSet deletes Pending pods first, then unready ones, then the newest.
        std::vector<size_t> order;
        for (size_t i = 0; i < pods.size(); ++i) {
          if (!pods[i].deleted_at) order.push_back(i);
        }
        auto rank = [&](const SimPod& p) {
          if (now < p.started) return 0;
          if (now < p.ready_at) return 1;
          return 2;
        };
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
          if (rank(pods[a]) != rank(pods[b])) return rank(pods[a]) < rank(pods[b]);
          return pods[a].created > pods[b].created;
        });
        for (int32_t k = 0; k < replicas - target && static_cast<size_t>(k) < order.size(); ++k) {
          pods[order[static_cast<size_t>(k)]].deleted_at = now;
        }
      }
      replicas = target;
    }
  }
  return rows;
}

std::string TimelineToCsv(const std::vector<TimelineRow>& rows) {
  std::string out =
      "time_s,demand,spec_replicas,desired_replicas,ready_replicas,pending_replicas,"
      "recommendation,stabilized,able_to_scale,scaling_active,scaling_limited";
  if (!rows.empty()) {
    for (const TimelineRow::Metric& m : rows.front().metrics) {
      absl::StrAppend(&out, ",", m.name, ",", m.name, "_target,", m.name, "_proposal");
    }
  }
  out += "\n";
  for (const TimelineRow& r : rows) {
    absl::StrAppend(&out, FmtFixed(r.time_s, 2), ",", r.demand ? Fmt(*r.demand, 6) : "", ",",
                    r.spec_replicas, ",", r.desired_replicas, ",", r.ready_replicas, ",",
                    r.pending_replicas, ",",
                    r.recommendation ? absl::StrCat(*r.recommendation) : "", ",",
                    r.stabilized ? absl::StrCat(*r.stabilized) : "", ",", r.able_reason, ",",
                    r.active_reason, ",", r.limited_reason);
    for (const TimelineRow::Metric& m : r.metrics) {
      absl::StrAppend(&out, ",", m.value ? Fmt(*m.value, 6) : "", ",", Fmt(m.target, 6), ",",
                      m.proposal ? absl::StrCat(*m.proposal) : "");
    }
    out += "\n";
  }
  return out;
}

nlohmann::json TimelineToJson(const std::vector<TimelineRow>& rows) {
  nlohmann::json a = nlohmann::json::array();
  for (const TimelineRow& r : rows) {
    nlohmann::json j;
    j["time_s"] = std::round(r.time_s * 100) / 100;
    j["demand"] = r.demand ? nlohmann::json(*r.demand) : nullptr;
    j["spec_replicas"] = r.spec_replicas;
    j["desired_replicas"] = r.desired_replicas;
    j["ready_replicas"] = r.ready_replicas;
    j["pending_replicas"] = r.pending_replicas;
    j["recommendation"] = r.recommendation ? nlohmann::json(*r.recommendation) : nullptr;
    j["stabilized"] = r.stabilized ? nlohmann::json(*r.stabilized) : nullptr;
    j["able_to_scale"] = r.able_reason;
    j["scaling_active"] = r.active_reason;
    j["scaling_limited"] = r.limited_reason;
    nlohmann::json ms = nlohmann::json::array();
    for (const TimelineRow::Metric& m : r.metrics) {
      nlohmann::json mj;
      mj["name"] = m.name;
      mj["value"] = m.value ? nlohmann::json(*m.value) : nullptr;
      mj["target"] = m.target;
      mj["unit"] = m.unit;
      mj["proposal"] = m.proposal ? nlohmann::json(*m.proposal) : nullptr;
      if (!m.error.empty()) mj["error"] = m.error;
      ms.push_back(mj);
    }
    j["metrics"] = ms;
    a.push_back(j);
  }
  return a;
}

}  // namespace kpiscale::hpa
