#include "kpiscale/common/process_metrics.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "kpiscale/common/http_util.h"

namespace kpiscale::common {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A fake procfs tree with known values.
class FakeProc {
 public:
  FakeProc() {
    root_ = std::filesystem::path(testing::TempDir()) /
            ("kpiscale_fake_proc_" + std::to_string(getpid()) + "_" +
             testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "self" / "fd");
  }
  ~FakeProc() { std::filesystem::remove_all(root_); }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

// Fields 3.. of /proc/self/stat: utime (14) = 250 ticks, stime (15) = 150 ticks,
// starttime (22) = 1000 ticks, vsize (23) = 123456789, rss (24) = 300 pages.
constexpr char kStat[] =
    "4242 (kpiscale side) car) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 3 0 1000 "
    "123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

ProcessCollector::Options FakeOptions(const FakeProc& proc) {
  ProcessCollector::Options o;
  o.proc_root = proc.root();
  o.page_size = 4096;
  o.clock_ticks_per_second = 100;
  o.version = "9.9.9";
  o.component = "sidecar";
  return o;
}

TEST(ProcessCollectorTest, ReadsExactValuesFromProc) {
  FakeProc proc;
  proc.Write("self/stat", kStat);
  proc.Write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 10\n");
  proc.Write("self/limits",
             "Limit                     Soft Limit           Hard Limit           Units     \n"
             "Max open files            1024                 1048576              files     \n");
  for (const char* fd : {"0", "1", "2", "7"}) proc.Write(std::string("self/fd/") + fd, "");
  ProcessCollector collector(FakeOptions(proc));
  const auto r = collector.Read();
  ASSERT_TRUE(r.cpu_seconds.has_value());
  EXPECT_DOUBLE_EQ(*r.cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(*r.resident_memory_bytes, 300.0 * 4096);
  EXPECT_DOUBLE_EQ(*r.virtual_memory_bytes, 123456789.0);
  EXPECT_DOUBLE_EQ(*r.start_time_seconds, 1700000010.0);
  EXPECT_DOUBLE_EQ(*r.open_fds, 4.0);
  EXPECT_DOUBLE_EQ(*r.max_fds, 1024.0);

  auto shared = std::make_shared<ProcessCollector>(FakeOptions(proc));
  const std::string text = PrometheusText({shared});
  EXPECT_THAT(text,
              HasSubstr("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 4"));
  EXPECT_THAT(text, HasSubstr("process_resident_memory_bytes 1228800"));
  EXPECT_THAT(text, HasSubstr("process_open_fds 4"));
  EXPECT_THAT(text, HasSubstr("process_start_time_seconds 1700000010"));
  EXPECT_THAT(text, HasSubstr("kpiscale_build_info{component=\"sidecar\",version=\"9.9.9\"} 1"));
}

TEST(ProcessCollectorTest, UnreadableValuesAreAbsentNotZero) {
  FakeProc proc;
  proc.Write("self/stat", "garbage without parens\n");
  std::filesystem::remove_all(proc.root() + "/self/fd");
  ProcessCollector collector(FakeOptions(proc));
  const auto r = collector.Read();
  EXPECT_FALSE(r.cpu_seconds.has_value());
  EXPECT_FALSE(r.start_time_seconds.has_value());
  EXPECT_FALSE(r.open_fds.has_value());
  const auto families = collector.Collect();
  ASSERT_EQ(families.size(), 1u);  // only build info
  EXPECT_EQ(families[0].name, "kpiscale_build_info");

  // btime missing: the start time is unknown although the stat line is fine.
  proc.Write("self/stat", kStat);
  EXPECT_TRUE(collector.Read().cpu_seconds.has_value());
  EXPECT_FALSE(collector.Read().start_time_seconds.has_value());
}

TEST(ProcessCollectorTest, RealProcIsPlausibleAndTracksDescriptors) {
  ProcessCollector collector;
  const auto before = collector.Read();
  ASSERT_TRUE(before.resident_memory_bytes.has_value());
  EXPECT_GT(*before.resident_memory_bytes, 1 << 20);
  ASSERT_TRUE(before.start_time_seconds.has_value());
  EXPECT_GT(*before.start_time_seconds, 1.6e9);
  ASSERT_TRUE(before.open_fds.has_value());
  ASSERT_TRUE(before.cpu_seconds.has_value());
  EXPECT_GE(*before.cpu_seconds, 0.0);
  ASSERT_TRUE(before.max_fds.has_value());

  const int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const auto after = collector.Read();
  close(fd);
  EXPECT_EQ(*after.open_fds, *before.open_fds + 1);
}

}  // namespace
}  // namespace kpiscale::common
