#include "kpiscale/adapter/written_metrics.h"

namespace kpiscale::adapter {

void WrittenMetrics::Set(WrittenValue value) {
  std::lock_guard lock(mu_);
  auto key = std::make_tuple(value.resource, value.metric, value.ns, value.name);
  values_[std::move(key)] = std::move(value);
}

std::vector<WrittenValue> WrittenMetrics::Find(std::string_view ns, std::string_view resource,
                                               std::string_view metric, bool all_namespaces) const {
  std::vector<WrittenValue> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, v] : values_) {
    if (std::get<0>(key) != resource || std::get<1>(key) != metric) continue;
    if (!all_namespaces && std::get<2>(key) != ns) continue;
    out.push_back(v);
  }
  return out;
}

std::vector<std::tuple<std::string, std::string, bool>> WrittenMetrics::Names() const {
  std::vector<std::tuple<std::string, std::string, bool>> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, v] : values_) {
    auto t = std::make_tuple(std::get<0>(key), std::get<1>(key), !std::get<2>(key).empty());
    if (out.empty() || out.back() != t) out.push_back(std::move(t));
  }
  return out;
}

bool WrittenMetrics::empty() const {
  std::lock_guard lock(mu_);
  return values_.empty();
}

}  // namespace kpiscale::adapter
