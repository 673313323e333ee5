#include "kpiscale/sidecar/observe/resp_tap.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <algorithm>
#include <string>
#include <unordered_map>

namespace kpiscale::sidecar::observe {
namespace {

bool IsStop(RespKind kind) {
  return kind == RespKind::kStopPubSub || kind == RespKind::kStopMonitor ||
         kind == RespKind::kStopNoReply || kind == RespKind::kStopResp3;
}

// Adds the hits and misses (or the error) one reply means for a command of `kind`.
void ClassifyReply(RespKind kind, uint32_t keys, const redisReply& reply,
                   CacheCommandResult* result) {
  if (reply.type == REDIS_REPLY_ERROR) {
    result->error = true;
    return;
  }
  switch (kind) {
    case RespKind::kSingleRead:
      if (reply.type == REDIS_REPLY_STRING) ++result->hits;
      if (reply.type == REDIS_REPLY_NIL) ++result->misses;
      break;
    case RespKind::kMultiRead:
      if (reply.type != REDIS_REPLY_ARRAY) break;
      for (std::size_t i = 0; i < reply.elements; ++i) {
        const int t = reply.element[i]->type;
        if (t == REDIS_REPLY_STRING) ++result->hits;
        if (t == REDIS_REPLY_NIL) ++result->misses;
      }
      break;
    case RespKind::kHashRead:
      if (reply.type == REDIS_REPLY_ARRAY) {
        if (reply.elements > 0) {
          ++result->hits;
        } else {
          ++result->misses;
        }
      }
      break;
    case RespKind::kExists:
      if (reply.type == REDIS_REPLY_INTEGER && reply.integer >= 0) {
        const auto found =
            static_cast<uint32_t>(std::min<long long>(reply.integer, static_cast<long long>(keys)));
        result->hits += found;
        result->misses += keys - found;
      }
      break;
    default:
      break;
  }
}

}  // namespace

RespKind ClassifyRespCommand(const RespCommand& command) {
  static const auto* const kTable = new std::unordered_map<std::string, RespKind>{
      {"GET", RespKind::kSingleRead},        {"GETEX", RespKind::kSingleRead},
      {"GETDEL", RespKind::kSingleRead},     {"HGET", RespKind::kSingleRead},
      {"MGET", RespKind::kMultiRead},        {"HMGET", RespKind::kMultiRead},
      {"HGETALL", RespKind::kHashRead},      {"EXISTS", RespKind::kExists},
      {"MULTI", RespKind::kMulti},           {"EXEC", RespKind::kExec},
      {"DISCARD", RespKind::kDiscard},       {"BLPOP", RespKind::kBlocking},
      {"BRPOP", RespKind::kBlocking},        {"BRPOPLPUSH", RespKind::kBlocking},
      {"BLMOVE", RespKind::kBlocking},       {"BLMPOP", RespKind::kBlocking},
      {"BZPOPMIN", RespKind::kBlocking},     {"BZPOPMAX", RespKind::kBlocking},
      {"BZMPOP", RespKind::kBlocking},       {"WAIT", RespKind::kBlocking},
      {"WAITAOF", RespKind::kBlocking},      {"SUBSCRIBE", RespKind::kStopPubSub},
      {"PSUBSCRIBE", RespKind::kStopPubSub}, {"SSUBSCRIBE", RespKind::kStopPubSub},
      {"MONITOR", RespKind::kStopMonitor},
  };
  const auto it = kTable->find(command.name);
  if (it != kTable->end()) return it->second;
  if (command.name == "XREAD" || command.name == "XREADGROUP") {
    for (const auto& arg : command.args) {
      if (arg == "BLOCK") return RespKind::kBlocking;
    }
    return RespKind::kOther;
  }
  if (command.name == "CLIENT" && command.args[0] == "REPLY" &&
      (command.args[1] == "OFF" || command.args[1] == "SKIP")) {
    return RespKind::kStopNoReply;
  }
  if (command.name == "HELLO" && command.argc >= 2 && command.args[0] != "2") {
    return RespKind::kStopResp3;
  }
  return RespKind::kOther;
}

void RespTap::ReaderDeleter::operator()(redisReader* r) const { redisReaderFree(r); }

RespTap::RespTap(SignalSink& sink, const CacheStats& stats)
    : sink_(sink), stats_(stats), reader_(redisReaderCreate()) {}

RespTap::~RespTap() = default;

void RespTap::StopTracking(prometheus::Counter& reason) {
  if (!tracking_) return;
  tracking_ = false;
  reason.Increment();
  pending_.clear();
  queued_.clear();
  scratch_.clear();
  reader_.reset();
}

void RespTap::StopFor(RespKind kind) {
  switch (kind) {
    case RespKind::kStopPubSub:
      StopTracking(stats_.untracked_pubsub);
      break;
    case RespKind::kStopMonitor:
      StopTracking(stats_.untracked_monitor);
      break;
    case RespKind::kStopNoReply:
      StopTracking(stats_.untracked_client_reply);
      break;
    default:
      StopTracking(stats_.untracked_resp3);
      break;
  }
}

void RespTap::Record(double seconds, const CacheCommandResult& result) {
  sink_.RecordCacheCommand(seconds, result);
  stats_.commands.Increment();
  if (result.hits > 0) stats_.hits.Increment(result.hits);
  if (result.misses > 0) stats_.misses.Increment(result.misses);
  if (result.error) stats_.errors.Increment();
  stats_.duration.Observe(seconds);
}

void RespTap::OnClientBytes(const char* data, std::size_t len, SteadyTime now) {
  if (!tracking_) return;
  const bool was_mid = parser_.mid_command();
  scratch_.clear();
  const bool ok = parser_.Feed(data, len, &scratch_);
  for (std::size_t i = 0; i < scratch_.size(); ++i) {
    const RespCommand& cmd = scratch_[i];
    const uint64_t keys = cmd.argc > 0 ? cmd.argc - 1 : 0;
    pending_.push_back(Pending{ClassifyRespCommand(cmd),
                               static_cast<uint32_t>(std::min<uint64_t>(keys, UINT32_MAX)),
                               (i == 0 && was_mid) ? partial_start_ : now});
  }
  if (!ok) {
    StopTracking(stats_.untracked_parse_error);
    return;
  }
  if (pending_.size() > kMaxPending) {
    StopTracking(stats_.untracked_overflow);
    return;
  }
  if (parser_.mid_command() && (!was_mid || !scratch_.empty())) partial_start_ = now;
}

void RespTap::OnServerBytes(const char* data, std::size_t len, SteadyTime now) {
  if (!tracking_) return;
  if (redisReaderFeed(reader_.get(), data, len) != REDIS_OK) {
    StopTracking(stats_.untracked_parse_error);
    return;
  }
  while (tracking_) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      StopTracking(stats_.untracked_parse_error);
      return;
    }
    if (raw == nullptr) break;
    OnReply(raw, now);
    freeReplyObject(raw);
  }
  if (tracking_ && reader_->len - reader_->pos > kMaxReplyBuffer) {
    StopTracking(stats_.untracked_overflow);
  }
}

void RespTap::OnReply(const void* raw, SteadyTime now) {
  if (pending_.empty()) {
    StopTracking(stats_.untracked_unmatched_reply);
    return;
  }
  const Pending p = pending_.front();
  pending_.pop_front();
  const auto& reply = *static_cast<const redisReply*>(raw);
  const double seconds = ElapsedSeconds(p.start, now);
  if (IsStop(p.kind)) {
    StopFor(p.kind);
    return;
  }
  CacheCommandResult result;
  if (p.kind == RespKind::kBlocking && !in_transaction_) {
    stats_.blocking_commands.Increment();
    stats_.blocking_duration.Observe(seconds);
    return;
  }
  if (p.kind == RespKind::kMulti) {
    if (reply.type == REDIS_REPLY_ERROR) {
      result.error = true;
    } else {
      in_transaction_ = true;
      queued_.clear();
    }
  } else if (p.kind == RespKind::kExec) {
    if (reply.type == REDIS_REPLY_ERROR) {
      result.error = true;  // EXECABORT, or EXEC without MULTI
    } else if (reply.type == REDIS_REPLY_ARRAY && reply.elements == queued_.size()) {
      for (std::size_t i = 0; i < reply.elements; ++i) {
        ClassifyReply(queued_[i].kind, queued_[i].keys, *reply.element[i], &result);
      }
    }
    // A nil EXEC (a WATCHed key changed) ran nothing: no hits, no misses, no error.
    in_transaction_ = false;
    const RespKind stop = [&] {
      for (const Pending& q : queued_) {
        if (IsStop(q.kind)) return q.kind;
      }
      return RespKind::kOther;
    }();
    queued_.clear();
    Record(seconds, result);
    if (stop != RespKind::kOther) StopFor(stop);
    return;
  } else if (p.kind == RespKind::kDiscard) {
    if (reply.type == REDIS_REPLY_ERROR) result.error = true;
    in_transaction_ = false;
    queued_.clear();
  } else if (in_transaction_) {
    // Inside MULTI the server answers +QUEUED; the reads count when EXEC answers.
    if (reply.type == REDIS_REPLY_ERROR) {
      result.error = true;
    } else {
      queued_.push_back(p);
    }
  } else {
    ClassifyReply(p.kind, p.keys, reply, &result);
  }
  Record(seconds, result);
}

void RespTap::OnClose(CloseReason reason, SteadyTime now) {
  if (!tracking_) return;
  if (reason == CloseReason::kUpstreamClosed || reason == CloseReason::kUpstreamConnectFailed) {
    // The application saw these commands fail.
    for (const Pending& p : pending_) {
      if (p.kind == RespKind::kBlocking || IsStop(p.kind)) continue;
      CacheCommandResult result;
      result.error = true;
      Record(ElapsedSeconds(p.start, now), result);
    }
  }
  pending_.clear();
}

}  // namespace kpiscale::sidecar::observe
