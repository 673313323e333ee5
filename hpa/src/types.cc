#include "kpiscale/hpa/types.h"

#include <algorithm>
#include <cmath>

namespace kpiscale::hpa {

Duration Seconds(double seconds) {
  // Saturate at ±1e9 s (about 31 years) so that sums of instants and durations never overflow.
  constexpr double kLimit = 1e9;
  if (std::isnan(seconds)) return 0;
  seconds = std::clamp(seconds, -kLimit, kLimit);
  return static_cast<Duration>(std::llround(seconds * static_cast<double>(kNanosPerSecond)));
}

double ToSeconds(Duration d) {
  return static_cast<double>(d) / static_cast<double>(kNanosPerSecond);
}

bool Tolerances::IsWithin(double ratio) const {
  if (profile == VersionProfile::kV1_32) {
    // Before v1.33 one global tolerance and an absolute difference (algorithm §8).
    return std::fabs(1.0 - ratio) <= scale_up;
  }
  return (1.0 - scale_down) <= ratio && ratio <= (1.0 + scale_up);
}

std::string MetricSpec::DisplayName() const {
  if (type == "Resource") return name;
  if (type == "ContainerResource") return name + "/" + container;
  if (type == "Pods") return "pods/" + name;
  if (type == "Object") return "object/" + described_object.kind + "/" + name;
  if (type == "External") return "external/" + name;
  return type;
}

void HpaStatus::SetCondition(const std::string& type, const std::string& status,
                             const std::string& reason, const std::string& message) {
  for (Condition& c : conditions) {
    if (c.type == type) {
      c.status = status;
      c.reason = reason;
      c.message = message;
      return;
    }
  }
  conditions.push_back(Condition{type, status, reason, message});
}

const Condition* HpaStatus::FindCondition(const std::string& type) const {
  for (const Condition& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

ControllerConfig ControllerConfig::UpstreamTestConstants() {
  ControllerConfig c;
  c.tolerance = 0.1;
  c.cpu_initialization_period = 120 * kNanosPerSecond;
  c.delay_of_initial_readiness_status = 10 * kNanosPerSecond;
  c.downscale_stabilization_window = 300 * kNanosPerSecond;
  c.scale_up_limit_factor = 8.0;
  c.scale_up_limit_minimum = 4.0;
  return c;
}

}  // namespace kpiscale::hpa
