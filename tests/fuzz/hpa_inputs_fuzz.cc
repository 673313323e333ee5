// Feeds one input to every parser of the HPA engine's user-facing files: the simulator's trace
// CSV, the HorizontalPodAutoscaler manifest, and a conformance case file (which then runs).
// None may crash; each returns a Status.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kpiscale/hpa/conformance.h"
#include "kpiscale/hpa/simulator.h"
#include "kpiscale/hpa/spec_io.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)kpiscale::hpa::ParseTrace(input);
  (void)kpiscale::hpa::ParseHpaManifest(input);
  const nlohmann::json j = nlohmann::json::parse(input, nullptr, false);
  if (!j.is_discarded()) {
    (void)kpiscale::hpa::RunConformanceJson(j, kpiscale::hpa::ConformanceOptions{});
  }
  return 0;
}
