#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "kpiscale/hpa/simulator.h"

namespace kpiscale::hpa {
namespace {

constexpr double kWidth = 960;
constexpr double kLeft = 70;
constexpr double kRight = 190;  // room for the legend
constexpr double kPanelHeight = 170;
constexpr double kGap = 62;
constexpr double kTop = 50;

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

std::string Label(double v) {
  char buf[32];
  if (std::fabs(v) >= 100 || v == std::floor(v)) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else if (std::fabs(v) >= 1) {
    std::snprintf(buf, sizeof(buf), "%.1f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g", v);
  }
  return buf;
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '&') {
      out += "&amp;";
    } else {
      out += c;
    }
  }
  return out;
}

double NiceStep(double range, int ticks) {
  if (range <= 0) return 1;
  const double raw = range / ticks;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return nice * mag;
}

struct Series {
  std::string label;
  std::string color;
  std::vector<std::pair<double, std::optional<double>>> points;
  bool step = false;
  bool dashed = false;
  double width = 2;
};

class Panel {
 public:
  Panel(std::string title, double y0, double t_max)
      : title_(std::move(title)), y0_(y0), t_max_(t_max) {}
  void Add(Series s) { series_.push_back(std::move(s)); }
  void IntegerAxis() { integer_ = true; }
  void SetTitleSuffix(const std::string& suffix) { title_ += suffix; }

  /// Values above `cap` are clipped at the panel's top edge.
  void Cap(double cap) { cap_ = cap; }
  /// A logarithmic axis from `floor` up (for ratios far from their target).
  void Log(double floor) { log_floor_ = floor; }

  void Render(std::string& svg) const {
    double vmax = 0;
    for (const Series& s : series_) {
      for (const auto& [t, v] : s.points) {
        if (v) vmax = std::max(vmax, *v);
      }
    }
    if (cap_ > 0) vmax = std::min(vmax, cap_);
    if (vmax <= 0) vmax = 1;
    const double plot_w = kWidth - kLeft - kRight;
    auto x = [&](double t) { return kLeft + (t_max_ > 0 ? t / t_max_ : 0) * plot_w; };
    std::vector<double> ticks;
    double ymax = 0;
    double lo = 0;
    if (log_floor_ > 0) {
      lo = std::floor(std::log10(log_floor_));
      ymax = std::ceil(std::log10(vmax));
      if (ymax <= lo) ymax = lo + 1;
      for (double d = lo; d <= ymax + 1e-9; d += 1) ticks.push_back(std::pow(10, d));
    } else {
      double step = NiceStep(vmax * 1.1, 4);
      if (integer_) step = std::max(1.0, std::ceil(step));
      ymax = std::ceil(vmax * 1.1 / step) * step;
      for (double v = 0; v <= ymax + step / 2; v += step) ticks.push_back(v);
    }
    auto y = [&](double v) {
      double f = 0;
      if (log_floor_ > 0) {
        f = (std::log10(std::max(v, std::pow(10, lo))) - lo) / (ymax - lo);
      } else {
        f = v / ymax;
      }
      f = std::min(f, 1.0);  // clipped at the top
      return y0_ + kPanelHeight - f * kPanelHeight;
    };

    absl::StrAppend(&svg, "<text x=\"", Num(kLeft), "\" y=\"", Num(y0_ - 10), "\" class=\"title\">",
                    Escape(title_), "</text>\n");
    absl::StrAppend(&svg, "<rect x=\"", Num(kLeft), "\" y=\"", Num(y0_), "\" width=\"", Num(plot_w),
                    "\" height=\"", Num(kPanelHeight), "\" fill=\"#fafafa\" stroke=\"#999\"/>\n");
    for (double v : ticks) {
      absl::StrAppend(&svg, "<line x1=\"", Num(kLeft), "\" x2=\"", Num(kLeft + plot_w), "\" y1=\"",
                      Num(y(v)), "\" y2=\"", Num(y(v)), "\" stroke=\"#e0e0e0\"/>\n");
      absl::StrAppend(&svg, "<text x=\"", Num(kLeft - 6), "\" y=\"", Num(y(v) + 4),
                      "\" text-anchor=\"end\">", Label(v), "</text>\n");
    }
    const bool minutes = t_max_ > 600;
    const double tstep = NiceStep(minutes ? t_max_ / 60 : t_max_, 8) * (minutes ? 60 : 1);
    for (double t = 0; t <= t_max_ + tstep / 100; t += tstep) {
      absl::StrAppend(&svg, "<line x1=\"", Num(x(t)), "\" x2=\"", Num(x(t)), "\" y1=\"", Num(y0_),
                      "\" y2=\"", Num(y0_ + kPanelHeight), "\" stroke=\"#eeeeee\"/>\n");
      absl::StrAppend(&svg, "<text x=\"", Num(x(t)), "\" y=\"", Num(y0_ + kPanelHeight + 15),
                      "\" text-anchor=\"middle\">", Label(minutes ? t / 60 : t), "</text>\n");
    }
    absl::StrAppend(&svg, "<text x=\"", Num(kLeft + plot_w), "\" y=\"",
                    Num(y0_ + kPanelHeight + 30), "\" text-anchor=\"end\" class=\"axis\">",
                    minutes ? "time (min)" : "time (s)", "</text>\n");
    double ly = y0_ + 12;
    for (const Series& s : series_) {
      std::string path;
      bool pen_down = false;
      double last_y = 0;
      for (const auto& [t, v] : s.points) {
        if (!v) {
          pen_down = false;  // a gap: the value was unknown
          continue;
        }
        if (!pen_down) {
          absl::StrAppend(&path, "M", Num(x(t)), " ", Num(y(*v)), " ");
          pen_down = true;
        } else if (s.step) {
          absl::StrAppend(&path, "L", Num(x(t)), " ", Num(last_y), " L", Num(x(t)), " ", Num(y(*v)),
                          " ");
        } else {
          absl::StrAppend(&path, "L", Num(x(t)), " ", Num(y(*v)), " ");
        }
        last_y = y(*v);
      }
      absl::StrAppend(&svg, "<path d=\"", path, "\" fill=\"none\" stroke=\"", s.color,
                      "\" stroke-width=\"", Num(s.width), "\"",
                      s.dashed ? " stroke-dasharray=\"6 4\"" : "", "/>\n");
      const double lx = kLeft + plot_w + 12;
      absl::StrAppend(&svg, "<line x1=\"", Num(lx), "\" x2=\"", Num(lx + 22), "\" y1=\"",
                      Num(ly - 4), "\" y2=\"", Num(ly - 4), "\" stroke=\"", s.color,
                      "\" stroke-width=\"", Num(s.width), "\"",
                      s.dashed ? " stroke-dasharray=\"6 4\"" : "", "/>\n");
      absl::StrAppend(&svg, "<text x=\"", Num(lx + 28), "\" y=\"", Num(ly), "\">", Escape(s.label),
                      "</text>\n");
      ly += 18;
    }
  }

 private:
  std::string title_;
  double y0_;
  double t_max_;
  std::vector<Series> series_;
  bool integer_ = false;
  double cap_ = 0;
  double log_floor_ = 0;
};

}  // namespace

std::string TimelineToSvg(const HpaSpec& spec, const std::vector<TimelineRow>& rows) {
  const double t_max = rows.empty() ? 1 : std::max(1.0, rows.back().time_s);
  const bool has_demand = !rows.empty() && rows.front().demand.has_value();
  const size_t metric_count = rows.empty() ? 0 : rows.front().metrics.size();
  const size_t panels = 1 + (has_demand ? 1 : 0) + metric_count;
  const double height = kTop + static_cast<double>(panels) * (kPanelHeight + kGap) + 10;

  std::string svg =
      absl::StrCat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", Num(kWidth),
                   "\" height=\"", Num(height), "\" viewBox=\"0 0 ", Num(kWidth), " ", Num(height),
                   "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"11\">\n"
                   "<style>.title{font-size:13px;font-weight:bold}.axis{fill:#555}</style>\n"
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  absl::StrAppend(
      &svg, "<text x=\"", Num(kLeft), "\" y=\"24\" font-size=\"16\">",
      Escape(absl::StrCat("kpiscale simulate: HPA ",
                          spec.name.empty() ? std::string("(unnamed)") : spec.name, " (min ",
                          spec.min_replicas.value_or(1), ", max ", spec.max_replicas, ")")),
      "</text>\n");

  double y0 = kTop + 10;
  {
    Panel p("Replicas", y0, t_max);
    p.IntegerAxis();
    Series desired{"desired (spec)", "#1f77b4", {}, true, false, 2.5};
    Series ready{"ready pods", "#2ca02c", {}, true, false, 2};
    Series rec{"metric proposal (clipped)", "#9467bd", {}, true, true, 1.5};
    Series max_line{"maxReplicas", "#d62728", {}, false, true, 1};
    for (const TimelineRow& r : rows) {
      desired.points.emplace_back(r.time_s, r.desired_replicas);
      ready.points.emplace_back(r.time_s, r.ready_replicas);
      rec.points.emplace_back(
          r.time_s, r.recommendation ? std::optional<double>(*r.recommendation) : std::nullopt);
      max_line.points.emplace_back(r.time_s, spec.max_replicas);
    }
    int32_t top = spec.max_replicas;
    for (const TimelineRow& r : rows) top = std::max({top, r.desired_replicas, r.ready_replicas});
    // Proposals can be far above maxReplicas (a ratio metric at 80x its target); they are
    // clipped so that the replica counts stay readable.
    p.Cap(top * 1.25);
    p.Add(desired);
    p.Add(ready);
    p.Add(rec);
    p.Add(max_line);
    p.Render(svg);
    y0 += kPanelHeight + kGap;
  }
  if (has_demand) {
    Panel p("Demand (requests/s)", y0, t_max);
    Series d{"demand", "#555555", {}, false, false, 2};
    for (const TimelineRow& r : rows) d.points.emplace_back(r.time_s, r.demand);
    p.Add(d);
    p.Render(svg);
    y0 += kPanelHeight + kGap;
  }
  for (size_t i = 0; i < metric_count; ++i) {
    const TimelineRow::Metric& first = rows.front().metrics[i];
    Panel p(absl::StrCat(first.name, first.unit == "%" ? " utilization (%)" : ""), y0, t_max);
    Series v{"value", "#ff7f0e", {}, false, false, 2};
    Series target{"target", "#d62728", {}, false, true, 1.5};
    for (const TimelineRow& r : rows) {
      v.points.emplace_back(r.time_s, r.metrics[i].value);
      target.points.emplace_back(r.time_s, r.metrics[i].target);
    }
    double vmax = 0;
    for (const TimelineRow& r : rows) vmax = std::max(vmax, r.metrics[i].value.value_or(0));
    // A value that runs far past a small target (a ratio at 80x its 1% target) hides the
    // target line on a linear axis; a log axis keeps both readable.
    if (first.target > 0 && vmax > 20 * first.target) {
      p.Log(first.target / 10);
      p.SetTitleSuffix(" (log scale)");
    }
    p.Add(v);
    p.Add(target);
    p.Render(svg);
    y0 += kPanelHeight + kGap;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace kpiscale::hpa
