#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "kpiscale/sidecar/observe/pg_session.h"

namespace kpiscale::sidecar::observe {
namespace {

// Points KPISCALE_SIDECAR_MODULE_DIR at a fresh directory for one test.
class PostgresModuleDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kpiscale-module-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    unsetenv("KPISCALE_SIDECAR_MODULE_DIR");
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST(PostgresModuleLoaderTest, LoadsTheBuiltModuleAndReportsAFailedConnectAsBroken) {
  auto session = LoadPgSession("host=127.0.0.1 port=1 connect_timeout=2 user=nobody");
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_FALSE((*session)->connected());
  const PgCallResult connected = (*session)->Connect();
  EXPECT_EQ(connected.kind, PgCallResult::Kind::kBroken);
  EXPECT_NE(connected.error.find("127.0.0.1"), std::string::npos) << connected.error;
  EXPECT_FALSE((*session)->connected());
  // Calls without a connection fail as broken instead of throwing across the module boundary.
  std::vector<PgStatementRow> rows{{1, 2, 3.0}};
  EXPECT_EQ((*session)->ReadStatements(&rows).kind, PgCallResult::Kind::kBroken);
  EXPECT_TRUE(rows.empty());
  EXPECT_EQ((*session)->Probe().kind, PgCallResult::Kind::kBroken);
}

TEST_F(PostgresModuleDirTest, AFileThatIsNotASharedObjectIsAClearErrorNamingIt) {
  const std::filesystem::path fake = dir_ / kPgSessionModuleName;
  std::ofstream(fake) << "not an ELF file\n";
  setenv("KPISCALE_SIDECAR_MODULE_DIR", dir_.c_str(), 1);
  auto session = LoadPgSession("host=127.0.0.1");
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(session.status().message().find(fake.string()), std::string::npos) << session.status();
}

}  // namespace
}  // namespace kpiscale::sidecar::observe
