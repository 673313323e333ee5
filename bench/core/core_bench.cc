#include <benchmark/benchmark.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>

#include "kpiscale/common/clock.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/report.h"
#include "kpiscale/common/report_builder.h"

namespace {

using kpiscale::common::ReportBatchBuilder;
using kpiscale::common::WindowBuilder;

// A batch as a busy sidecar sends it: every window has http (200 requests, latency spread
// 1 ms–2 s, two SLO thresholds), cache and db signals.
std::string MakeBody(int windows) {
  ReportBatchBuilder b("shop", "checkout-7d9f-abcde", "6f1c2a9e-0d7b-4c0e-9a57-2b1f3c4d5e6f");
  b.NodeName("node-1").Workload("Deployment", "checkout").Label("app", "checkout");
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency(std::log(0.02), 1.0);
  WindowBuilder wb({0.1, 0.2});
  const int64_t t0 = 1'700'000'000'000;
  for (int w = 0; w < windows; ++w) {
    for (int i = 0; i < 200; ++i) {
      const double d = latency(rng);
      wb.RecordHttpRequest(i % 50 == 0 ? 503 : 200, d, d / 2, 300, 4000);
      wb.RecordCacheCommand(
          i % 3 == 0 ? WindowBuilder::CacheResult::kMiss : WindowBuilder::CacheResult::kHit, false,
          d / 100);
      if (i % 4 == 0) wb.RecordQuery(false, d / 10);
    }
    b.AddWindow(wb.Finish(static_cast<uint64_t>(w + 1), t0 + w * 1000, t0 + (w + 1) * 1000));
  }
  return b.SerializeAsString();
}

// Peer: decoding alone, the floor any ingest path pays.
void BM_ProtobufDecodeOnly(benchmark::State& state) {
  const std::string body = MakeBody(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    kpiscale::v1::ReportBatch batch;
    benchmark::DoNotOptimize(batch.ParseFromString(body));
  }
  state.counters["bytes"] = static_cast<double>(body.size());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ProtobufDecodeOnly)->Arg(1)->Arg(120);

void BM_ParseReportBatch(benchmark::State& state) {
  const std::string body = MakeBody(static_cast<int>(state.range(0)));
  const kpiscale::common::ReportLimits limits;
  for (auto _ : state) {
    auto batch = kpiscale::common::ParseReportBatch(body, limits);
    if (!batch.ok()) state.SkipWithError("invalid body");
    benchmark::DoNotOptimize(batch);
  }
  state.counters["bytes"] = static_cast<double>(body.size());
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_ParseReportBatch)->Arg(1)->Arg(120);

// Formats every line into a buffer and drops it: the formatter runs, no I/O is measured.
class FormatOnlySink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    benchmark::DoNotOptimize(buf.data());
  }
  void flush_() override {}
};

void RunLogBench(benchmark::State& state, kpiscale::common::LogFormat format, bool spdlog_default) {
  auto sink = std::make_shared<FormatOnlySink>();
  std::shared_ptr<spdlog::logger> logger;
  if (spdlog_default) {
    logger = std::make_shared<spdlog::logger>("bench.spdlog", sink);
  } else {
    kpiscale::common::LoggingOptions options;
    options.level = "info";
    options.format = format;
    options.sink = sink;
    if (!kpiscale::common::InitLogging(options).ok()) state.SkipWithError("init");
    logger = kpiscale::common::Logger("bench.kpiscale");
  }
  int i = 0;
  for (auto _ : state) {
    logger->info("msg=push_failed pod={} attempt={} err={}", "checkout-7d9f-abcde", ++i,
                 "\"connection refused\"");
  }
}

// Peer: spdlog's default pattern formatter on the same call.
void BM_LogSpdlogDefaultPattern(benchmark::State& state) {
  RunLogBench(state, kpiscale::common::LogFormat::kText, true);
}
BENCHMARK(BM_LogSpdlogDefaultPattern);

void BM_LogKpiscaleText(benchmark::State& state) {
  RunLogBench(state, kpiscale::common::LogFormat::kText, false);
}
BENCHMARK(BM_LogKpiscaleText);

void BM_LogKpiscaleJson(benchmark::State& state) {
  RunLogBench(state, kpiscale::common::LogFormat::kJson, false);
}
BENCHMARK(BM_LogKpiscaleJson);

// The cost of a suppressed line in a failure loop: RateLimitedLog (clock read + mutex) and
// KPISCALE_LOG_EVERY_N (one atomic add), against spdlog's own below-level check.
void BM_SuppressedSpdlogBelowLevel(benchmark::State& state) {
  auto logger = std::make_shared<spdlog::logger>("bench.off", std::make_shared<FormatOnlySink>());
  logger->set_level(spdlog::level::warn);
  for (auto _ : state) logger->info("msg=push_failed attempt={}", 1);
}
BENCHMARK(BM_SuppressedSpdlogBelowLevel);

void BM_SuppressedRateLimited(benchmark::State& state) {
  auto logger =
      std::make_shared<spdlog::logger>("bench.limited", std::make_shared<FormatOnlySink>());
  kpiscale::common::RateLimitedLog limiter(kpiscale::common::RealClock(), 1, std::chrono::hours(1));
  for (auto _ : state) {
    KPISCALE_LOG_RATE_LIMITED(limiter, logger, spdlog::level::warn, "msg=push_failed attempt={}",
                              1);
  }
}
BENCHMARK(BM_SuppressedRateLimited);

void BM_SuppressedEveryN(benchmark::State& state) {
  auto logger =
      std::make_shared<spdlog::logger>("bench.everyn", std::make_shared<FormatOnlySink>());
  for (auto _ : state) {
    KPISCALE_LOG_EVERY_N(logger, spdlog::level::warn, 1'000'000'000, "msg=push_failed attempt={}",
                         1);
  }
}
BENCHMARK(BM_SuppressedEveryN);

}  // namespace

BENCHMARK_MAIN();
