#include "cli.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace kpiscale::cli {
namespace {

struct Output {
  int code = -1;
  std::string out;
  std::string err;
};

Output Call(const std::vector<std::string>& args) {
  std::ostringstream out;
  std::ostringstream err;
  Output o;
  o.code = Run(args, out, err);
  o.out = out.str();
  o.err = err.str();
  return o;
}

std::string TempFile(const std::string& name, const std::string& content) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(Cli, HelpAndVersion) {
  const Output help = Call({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("simulate"), std::string::npos);
  EXPECT_NE(help.out.find("hpa"), std::string::npos);
  const Output version = Call({"--version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_NE(version.out.find(KPISCALE_VERSION), std::string::npos);
}

TEST(Cli, UsageErrorsAreNonZero) {
  EXPECT_NE(Call({}).code, 0);
  EXPECT_NE(Call({"bogus"}).code, 0);
  EXPECT_NE(Call({"hpa", "conformance"}).code, 0);  // FILE is required
  EXPECT_NE(Call({"hpa", "conformance", "--profile", "v1.0", "x.json"}).code, 0);
  EXPECT_NE(Call({"simulate", "--hpa", "x.yaml", "--format", "xml"}).code, 0);
}

TEST(Cli, ConformanceCountsAndExitStatus) {
  const std::string good = TempFile("good.json", R"({"schema": "hpa-sim/defaults/v1", "cases": [
    {"id": "d1", "function": "GenerateHPAScaleUpRules", "input": {"rules": {}},
     "expected": {"selectPolicy": "Max", "stabilizationWindowSeconds": 0,
                  "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                               {"type": "Percent", "value": 100, "periodSeconds": 15}]}},
    {"id": "d2", "function": "GenerateHPAScaleDownRules", "input": {"rules": {"selectPolicy": "Min"}},
     "expected": {"selectPolicy": "Max"}}]})");
  const Output o = Call({"hpa", "conformance", good});
  EXPECT_EQ(o.code, 1);
  EXPECT_NE(o.out.find("PASS d1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("FAIL d2: expected selectPolicy \"Max\", got \"Min\""), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("1 passed, 1 failed, 0 skipped\n"), std::string::npos);
}

TEST(Cli, SimulateNeedsATraceOrAnAdapter) {
  const std::string hpa = TempFile("hpa.yaml",
                                   "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                                   "metadata: {name: web}\nspec: {maxReplicas: 3}\n");
  Output o = Call({"simulate", "--hpa", hpa});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("give --trace, --adapter, or both"), std::string::npos);
  o = Call({"simulate", "--hpa", hpa, "--adapter", "ftp://x"});
  EXPECT_EQ(o.code, 2);
  EXPECT_NE(o.err.find("must start with http://"), std::string::npos);
  const std::string trace = TempFile("t.csv", "time,demand\n0,50\n30,50\n");
  o = Call({"simulate", "--hpa", hpa, "--trace", trace, "--set", "nonsense"});
  EXPECT_EQ(o.code, 2);
  o = Call({"simulate", "--hpa", hpa, "--trace", trace, "--set", "capacity_per_replica=0"});
  EXPECT_EQ(o.code, 2);
  o = Call({"simulate", "--hpa", hpa, "--trace", trace, "--format", "json"});
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out.front(), '[');
}

}  // namespace
}  // namespace kpiscale::cli
