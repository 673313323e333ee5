// Fuzz target for LabelSelector::Parse and FromJson. Properties checked on every input: no crash;
// a parsed selector's ToString parses back to an equal selector that prints the same; Matches
// agrees with the per-requirement semantics on a label map derived from the input.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kpiscale/common/label_selector.h"
#include "nlohmann/json.hpp"

namespace {

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "label_selector fuzz: %s for input \"%.*s\"\n", what,
               static_cast<int>(input.size()), input.data());
  std::abort();
}

void CheckSelector(const kpiscale::common::LabelSelector& s, std::string_view input) {
  using kpiscale::common::LabelSelector;
  const std::string printed = s.ToString();
  const auto back = LabelSelector::Parse(printed);
  Check(back.ok(), "canonical string does not parse", input);
  Check(*back == s, "canonical string parses to a different selector", input);
  Check(back->ToString() == printed, "printing is not idempotent", input);
  // Labels made from the selector's own keys and values, so matches are actually exercised.
  kpiscale::common::Labels labels;
  for (std::size_t i = 0; i < s.requirements().size(); ++i) {
    const auto& r = s.requirements()[i];
    if (i % 3 != 2) labels[r.key] = r.values.empty() ? "" : r.values[i % r.values.size()];
  }
  bool all = true;
  for (const auto& r : s.requirements()) all = all && r.Matches(labels);
  Check(s.Matches(labels) == all, "Matches is not the AND of its requirements", input);
  Check(s.Matches(labels) == back->Matches(labels), "round trip changes matching", input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kpiscale::common::LabelSelector;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (const auto s = LabelSelector::Parse(input); s.ok()) CheckSelector(*s, input);
  const auto json = nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
  if (!json.is_discarded()) {
    if (const auto s = LabelSelector::FromJson(json); s.ok()) CheckSelector(*s, input);
  }
  return 0;
}
