#include <fstream>
#include <regex>
#include <set>

#include "cli_test_util.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kpiscale::testing {
namespace {

const std::vector<std::string> kCaseFiles = {
    "replica_calculator_cases.json", "group_pods_cases.json", "behavior_cases.json",
    "defaults_cases.json", "controller_reconcile_cases.json"};

std::string CasePath(const std::string& name) {
  return std::string(KPISCALE_SHARED_DIR) + "/reference/hpa-conformance/" + name;
}

TEST(HpaConformance, EverySharedCasePasses) {
  std::vector<std::string> args{"hpa", "conformance"};
  std::set<std::string> ids;
  for (const std::string& f : kCaseFiles) {
    args.push_back(CasePath(f));
    std::ifstream in(CasePath(f));
    ASSERT_TRUE(in) << CasePath(f);
    const nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& c : j["cases"]) ids.insert(c["id"].get<std::string>());
  }
  ASSERT_FALSE(ids.empty());
  const RunResult r = RunKpiscale(args);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // One PASS line per case, then the summary; the latest-release profile skips nothing here.
  for (const std::string& id : ids) {
    EXPECT_NE(r.out.find("PASS " + id + "\n"), std::string::npos) << id;
  }
  const std::string summary = std::to_string(ids.size()) + " passed, 0 failed, 0 skipped\n";
  ASSERT_GE(r.out.size(), summary.size());
  EXPECT_EQ(r.out.substr(r.out.size() - summary.size()), summary) << r.out;
}

TEST(HpaConformance, EachFileRunsOnItsOwn) {
  for (const std::string& f : kCaseFiles) {
    const RunResult r = RunKpiscale({"hpa", "conformance", CasePath(f)});
    EXPECT_EQ(r.exit_code, 0) << f << "\n" << r.out;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\n[0-9]+ passed, 0 failed, 0 skipped\n$")))
        << r.out;
  }
}

TEST(HpaConformance, AFailingCaseExitsOneAndSaysWhy) {
  TempDir dir;
  std::ifstream in(CasePath("behavior_cases.json"));
  nlohmann::json j = nlohmann::json::parse(in);
  nlohmann::json& first = j["cases"][0];
  const std::string id = first["id"].get<std::string>();
  first["expected"]["replicas"] = 12345;
  std::ofstream(dir.File("bad.json")) << j.dump();
  const RunResult r = RunKpiscale({"hpa", "conformance", dir.File("bad.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("FAIL " + id + ": expected replicas 12345, got "), std::string::npos)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\n[0-9]+ passed, 1 failed, 0 skipped\n$")));
}

TEST(HpaConformance, OlderProfileSkipsOnlyNewerTags) {
  const RunResult r = RunKpiscale({"hpa", "conformance", "--profile", "v1.32",
                                   CasePath("controller_reconcile_cases.json"),
                                   CasePath("replica_calculator_cases.json")});
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(r.out, m, std::regex("([0-9]+) passed, 0 failed, ([0-9]+) skipped")));
  EXPECT_GT(std::stoi(m[2].str()), 0);
  EXPECT_NE(r.out.find("SKIP controller.TestConfigurableTolerance"), std::string::npos);
}

TEST(HpaConformance, BrokenFilesAreErrorsNotCrashes) {
  TempDir dir;
  std::ofstream(dir.File("junk.json")) << "{not json";
  std::ofstream(dir.File("schema.json")) << R"({"schema": "hpa-sim/nope/v1", "cases": []})";
  EXPECT_EQ(RunKpiscale({"hpa", "conformance", dir.File("junk.json")}).exit_code, 2);
  EXPECT_EQ(RunKpiscale({"hpa", "conformance", dir.File("schema.json")}).exit_code, 2);
  EXPECT_EQ(RunKpiscale({"hpa", "conformance", dir.File("missing.json")}).exit_code, 2);
  // A malformed case fails that case only.
  std::ofstream(dir.File("case.json"))
      << R"({"schema": "hpa-sim/defaults/v1", "cases": [{"id": "x", "function": "GenerateHPAScaleUpRules", "input": {"rules": {"policies": [{"type": "Bogus"}]}}, "expected": {}}]})";
  const RunResult r = RunKpiscale({"hpa", "conformance", dir.File("case.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("FAIL x: cannot run case"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kpiscale::testing
