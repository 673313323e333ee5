#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kpiscale/hpa/types.h"
#include "nlohmann/json.hpp"

namespace kpiscale::hpa {

/// The outcome of one conformance case.
struct CaseResult {
  enum class Outcome { kPass, kFail, kSkip };
  std::string id;
  Outcome outcome = Outcome::kFail;
  /// FAIL: "expected …, got …"; SKIP: the reason.
  std::string detail;

  /// "PASS id", "FAIL id: detail" or "SKIP id: detail".
  std::string Line() const;
};

/// Options of a conformance run.
struct ConformanceOptions {
  /// The release profile to check. Cases tagged for releases the profile does not cover are
  /// skipped; cases tagged master-only are compared against the release expectation.
  VersionProfile profile = VersionProfile::kLatest;
};

/// Runs every case of one file in the `hpa-conformance` format (schema
/// `hpa-sim/{replica-calculator,group-pods,behavior,defaults,controller-reconcile}/v1`).
/// An unreadable file or unknown schema is an error; a case whose input is malformed FAILs.
absl::StatusOr<std::vector<CaseResult>> RunConformanceFile(const std::string& path,
                                                           const ConformanceOptions& options);
/// Same, on an already parsed file.
absl::StatusOr<std::vector<CaseResult>> RunConformanceJson(const nlohmann::json& file,
                                                           const ConformanceOptions& options);

/// Parses a case time: a number of seconds, "zero" (Go's zero time) or null (absent).
absl::StatusOr<std::optional<Time>> CaseTime(const nlohmann::json& value);

}  // namespace kpiscale::hpa
