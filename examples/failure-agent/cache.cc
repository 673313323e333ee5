#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "failure_agent.h"

namespace kpiscale::examples {
namespace {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

void Cache::ContextDeleter::operator()(redisContext* c) const { redisFree(c); }

Cache::Cache(CacheOptions options) : options_(std::move(options)) {
  if (options_.address.empty()) return;
  const auto colon = options_.address.rfind(':');
  host_ = colon == std::string::npos ? options_.address : options_.address.substr(0, colon);
  port_ = colon == std::string::npos ? 6379 : std::atoi(options_.address.c_str() + colon + 1);
}

Cache::~Cache() = default;

void Cache::Failed(const std::string& what) {
  failures_.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  // Log once per back-off period; requests meanwhile go straight to the database.
  if (now >= skip_until_) {
    spdlog::warn("msg=cache_unavailable addr={} err=\"{}\" retry_after_ms={}", options_.address,
                 what, options_.retry_after.count());
  }
  skip_until_ = now + options_.retry_after;
  idle_.clear();
}

Cache::ContextPtr Cache::Borrow() {
  if (!enabled()) return nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::chrono::steady_clock::now() < skip_until_) return nullptr;
    if (!idle_.empty()) {
      ContextPtr ctx = std::move(idle_.back());
      idle_.pop_back();
      return ctx;
    }
  }
  ContextPtr ctx(redisConnectWithTimeout(host_.c_str(), port_, ToTimeval(options_.timeout)));
  if (ctx == nullptr || ctx->err != 0) {
    Failed(ctx != nullptr ? ctx->errstr : "allocation failed");
    return nullptr;
  }
  redisSetTimeout(ctx.get(), ToTimeval(options_.timeout));
  return ctx;
}

void Cache::Return(ContextPtr ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 64) idle_.push_back(std::move(ctx));
}

std::optional<nlohmann::json> Cache::Get(const std::string& key) {
  ContextPtr ctx = Borrow();
  if (ctx == nullptr) return std::nullopt;
  ReplyPtr reply(
      static_cast<redisReply*>(redisCommand(ctx.get(), "GET %b", key.data(), key.size())));
  if (reply == nullptr) {
    Failed(ctx->errstr);
    return std::nullopt;
  }
  std::optional<nlohmann::json> out;
  if (reply->type == REDIS_REPLY_STRING) {
    auto j = nlohmann::json::parse(std::string(reply->str, reply->len), nullptr, false);
    if (!j.is_discarded()) out = std::move(j);
  }
  Return(std::move(ctx));
  return out;
}

void Cache::Set(const std::string& key, const nlohmann::json& value) {
  Set(key, value, options_.ttl);
}

void Cache::Set(const std::string& key, const nlohmann::json& value, std::chrono::seconds ttl) {
  ContextPtr ctx = Borrow();
  if (ctx == nullptr) return;
  const std::string text = value.dump();
  const std::string seconds = std::to_string(ttl.count());
  ReplyPtr reply(
      static_cast<redisReply*>(redisCommand(ctx.get(), "SET %b %b EX %s", key.data(), key.size(),
                                            text.data(), text.size(), seconds.c_str())));
  if (reply == nullptr) {
    Failed(ctx->errstr);
    return;
  }
  Return(std::move(ctx));
}

void Cache::Delete(const std::string& key) {
  ContextPtr ctx = Borrow();
  if (ctx == nullptr) return;
  ReplyPtr reply(
      static_cast<redisReply*>(redisCommand(ctx.get(), "DEL %b", key.data(), key.size())));
  if (reply == nullptr) {
    Failed(ctx->errstr);
    return;
  }
  Return(std::move(ctx));
}

void Cache::ClearPattern(const std::string& pattern) {
  ContextPtr ctx = Borrow();
  if (ctx == nullptr) return;
  std::string cursor = "0";
  do {
    ReplyPtr reply(static_cast<redisReply*>(redisCommand(
        ctx.get(), "SCAN %s MATCH %b COUNT 500", cursor.c_str(), pattern.data(), pattern.size())));
    if (reply == nullptr) {
      Failed(ctx->errstr);
      return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      Failed("unexpected SCAN reply");
      return;
    }
    cursor.assign(reply->element[0]->str, reply->element[0]->len);
    const redisReply* keys = reply->element[1];
    if (keys->elements > 0) {
      std::vector<const char*> argv{"UNLINK"};
      std::vector<std::size_t> lens{6};
      for (std::size_t i = 0; i < keys->elements; ++i) {
        argv.push_back(keys->element[i]->str);
        lens.push_back(keys->element[i]->len);
      }
      ReplyPtr del(static_cast<redisReply*>(
          redisCommandArgv(ctx.get(), static_cast<int>(argv.size()), argv.data(), lens.data())));
      if (del == nullptr) {
        Failed(ctx->errstr);
        return;
      }
    }
  } while (cursor != "0");
  Return(std::move(ctx));
}

}  // namespace kpiscale::examples
