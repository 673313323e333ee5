#include "commands.h"
#include "kpiscale/hpa/conformance.h"

namespace kpiscale::cli {

int RunConformance(const std::vector<std::string>& files, hpa::VersionProfile profile,
                   std::ostream& out, std::ostream& err) {
  hpa::ConformanceOptions options;
  options.profile = profile;
  int passed = 0;
  int failed = 0;
  int skipped = 0;
  bool broken_file = false;
  for (const std::string& f : files) {
    absl::StatusOr<std::vector<hpa::CaseResult>> results = hpa::RunConformanceFile(f, options);
    if (!results.ok()) {
      err << "error: " << results.status().message() << "\n";
      broken_file = true;
      continue;
    }
    for (const hpa::CaseResult& r : *results) {
      out << r.Line() << "\n";
      switch (r.outcome) {
        case hpa::CaseResult::Outcome::kPass:
          passed++;
          break;
        case hpa::CaseResult::Outcome::kFail:
          failed++;
          break;
        case hpa::CaseResult::Outcome::kSkip:
          skipped++;
          break;
      }
    }
  }
  out << passed << " passed, " << failed << " failed, " << skipped << " skipped\n";
  out.flush();
  if (broken_file) return 2;
  return failed > 0 ? 1 : 0;
}

}  // namespace kpiscale::cli
