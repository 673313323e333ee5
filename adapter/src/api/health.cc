#include "kpiscale/adapter/health.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"

namespace kpiscale::adapter {
namespace {

unsigned EndpointBit(std::string_view endpoint) {
  if (endpoint == "healthz") return HealthChecks::kHealthz;
  if (endpoint == "livez") return HealthChecks::kLivez;
  if (endpoint == "readyz") return HealthChecks::kReadyz;
  return 0;
}

}  // namespace

void HealthChecks::Add(std::string name, unsigned endpoints, Check check) {
  checks_.push_back(Entry{std::move(name), endpoints, std::move(check)});
}

HealthChecks::Result HealthChecks::Evaluate(std::string_view endpoint, std::string_view check,
                                            bool verbose,
                                            const std::vector<std::string>& excludes) const {
  const unsigned bit = EndpointBit(endpoint);
  Result result;
  if (!check.empty()) {
    for (const auto& c : checks_) {
      if ((c.endpoints & bit) == 0 || c.name != check) continue;
      const absl::Status st = c.check();
      if (st.ok()) {
        result.body = "ok";
      } else {
        result.status = 500;
        result.body = absl::StrCat("internal server error: ", st.message(), "\n");
      }
      return result;
    }
    result.status = 404;
    result.body = "404 page not found\n";
    return result;
  }
  std::set<std::string> unmatched(excludes.begin(), excludes.end());
  std::string lines;
  bool failed = false;
  for (const auto& c : checks_) {
    if ((c.endpoints & bit) == 0) continue;
    if (unmatched.erase(c.name) > 0 ||
        std::find(excludes.begin(), excludes.end(), c.name) != excludes.end()) {
      absl::StrAppend(&lines, "[+]", c.name, " excluded: ok\n");
      continue;
    }
    if (c.check().ok()) {
      absl::StrAppend(&lines, "[+]", c.name, " ok\n");
    } else {
      failed = true;
      absl::StrAppend(&lines, "[-]", c.name, " failed: reason withheld\n");
    }
  }
  if (!unmatched.empty()) {
    std::string names;
    for (const auto& n : unmatched) {
      if (!names.empty()) names += ", ";
      absl::StrAppend(&names, "\"", n, "\"");
    }
    absl::StrAppend(&lines, "warn: some health checks cannot be excluded: no matches for ", names,
                    "\n");
  }
  if (failed) {
    result.status = 500;
    result.body = absl::StrCat(lines, std::string(endpoint), " check failed\n");
    return result;
  }
  result.body = verbose ? absl::StrCat(lines, std::string(endpoint), " check passed\n") : "ok";
  return result;
}

}  // namespace kpiscale::adapter
