#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "kpiscale/hpa/types.h"

namespace kpiscale::cli {

/// `kpiscale hpa conformance FILE...`: one line per case, then "N passed, M failed, K skipped".
/// Returns 0 when nothing failed, 1 on a failure, 2 when a file cannot be run.
int RunConformance(const std::vector<std::string>& files, hpa::VersionProfile profile,
                   std::ostream& out, std::ostream& err);

}  // namespace kpiscale::cli
