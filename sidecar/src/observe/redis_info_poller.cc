#include <hiredis/hiredis.h>
#include <prometheus/counter.h>

#include <charconv>
#include <sstream>

#include "kpiscale/common/status.h"
#include "kpiscale/sidecar/observe/pollers.h"
#include "kpiscale/sidecar/observe/tcp_relay.h"
#include "observe_log.h"

namespace kpiscale::sidecar::observe {
namespace {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

bool ParseU64(const std::string& s, uint64_t* out) {
  const auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
}

struct RedisUrl {
  std::string host;
  uint16_t port = 6379;
  std::string password;
};

absl::StatusOr<RedisUrl> ParseRedisUrl(const std::string& url) {
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) {
    return absl::InvalidArgumentError("--redis-info-url must start with redis://: " + url);
  }
  std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  RedisUrl out;
  const auto at = rest.rfind('@');
  if (at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = auth.find(':');
    out.password = colon == std::string::npos ? auth : auth.substr(colon + 1);
  }
  if (rest.find(':') == std::string::npos) rest += ":6379";
  KPISCALE_RETURN_IF_ERROR(SplitHostPort(rest, &out.host, &out.port));
  if (out.port == 0) return absl::InvalidArgumentError("port 0 in " + url);
  return out;
}

class RedisInfoPoller final : public Poller {
 public:
  RedisInfoPoller(RedisUrl url, std::chrono::milliseconds interval, SignalSink& sink,
                  const CacheStats& stats)
      : Poller(interval), url_(std::move(url)), sink_(sink), stats_(stats) {
    StartThread();
  }
  ~RedisInfoPoller() override { Stop(); }

 private:
  void Fail(const std::string& why) {
    ctx_.reset();
    stats_.info_poll_failures.Increment();
    if (log_.ShouldLog()) {
      SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=redis_info_poll_failed host={}:{} err=\"{}\"",
                         url_.host, url_.port, why);
    }
  }

  void PollOnce() override {
    if (ctx_ == nullptr) {
      const timeval timeout{1, 0};
      ctx_.reset(redisConnectWithTimeout(url_.host.c_str(), url_.port, timeout));
      if (ctx_ == nullptr || ctx_->err != 0) {
        Fail(ctx_ != nullptr ? ctx_->errstr : "allocation failed");
        return;
      }
      redisSetTimeout(ctx_.get(), timeout);
      if (!url_.password.empty()) {
        ReplyPtr auth(static_cast<redisReply*>(
            redisCommand(ctx_.get(), "AUTH %b", url_.password.data(), url_.password.size())));
        if (auth == nullptr || auth->type == REDIS_REPLY_ERROR) {
          Fail(auth != nullptr ? std::string(auth->str, auth->len) : ctx_->errstr);
          return;
        }
      }
    }
    ReplyPtr reply(static_cast<redisReply*>(redisCommand(ctx_.get(), "INFO stats")));
    if (reply == nullptr) {
      Fail(ctx_->errstr);
      return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
      Fail("unexpected INFO reply type");
      return;
    }
    auto counters = ParseInfoStats(std::string(reply->str, reply->len));
    if (!counters.ok()) {
      Fail(std::string(counters.status().message()));
      return;
    }
    const auto delta = deltas_.Update(*counters);
    if (!delta.has_value()) return;
    sink_.RecordCacheServerWide(delta->hits, delta->misses);
    if (delta->hits > 0) stats_.server_hits.Increment(static_cast<double>(delta->hits));
    if (delta->misses > 0) stats_.server_misses.Increment(static_cast<double>(delta->misses));
  }

  RedisUrl url_;
  SignalSink& sink_;
  const CacheStats& stats_;
  ContextPtr ctx_;
  KeyspaceDeltas deltas_;
  LogLimiter log_;
};

}  // namespace

absl::StatusOr<KeyspaceCounters> ParseInfoStats(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::optional<uint64_t> hits;
  std::optional<uint64_t> misses;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    uint64_t value = 0;
    if (key == "keyspace_hits" && ParseU64(line.substr(colon + 1), &value)) hits = value;
    if (key == "keyspace_misses" && ParseU64(line.substr(colon + 1), &value)) misses = value;
  }
  if (!hits.has_value() || !misses.has_value()) {
    return absl::InvalidArgumentError("INFO stats without keyspace_hits/keyspace_misses");
  }
  return KeyspaceCounters{*hits, *misses};
}

std::optional<KeyspaceCounters> KeyspaceDeltas::Update(const KeyspaceCounters& now) {
  const std::optional<KeyspaceCounters> prev = previous_;
  previous_ = now;
  if (!prev.has_value()) return std::nullopt;
  if (now.hits < prev->hits || now.misses < prev->misses) return now;  // reset
  return KeyspaceCounters{now.hits - prev->hits, now.misses - prev->misses};
}

Poller::~Poller() = default;

void Poller::StartThread() {
  thread_ = std::thread([this] { Loop(); });
}

void Poller::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Poller::Loop() {
  for (;;) {
    PollOnce();
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, interval_, [this] { return stop_; })) return;
  }
}

absl::StatusOr<std::unique_ptr<Poller>> StartRedisInfoPoller(const std::string& url,
                                                             std::chrono::milliseconds interval,
                                                             SignalSink& sink,
                                                             const CacheStats& stats) {
  KPISCALE_ASSIGN_OR_RETURN(RedisUrl parsed, ParseRedisUrl(url));
  if (interval.count() <= 0) return absl::InvalidArgumentError("redis info interval must be > 0");
  return std::unique_ptr<Poller>(new RedisInfoPoller(std::move(parsed), interval, sink, stats));
}

}  // namespace kpiscale::sidecar::observe
