#include "kpiscale/sidecar/pusher.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "spdlog/spdlog.h"

namespace kpiscale::sidecar {
namespace {

std::string ReadToken(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token = ss.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  return token;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pusher>> Pusher::Create(PusherOptions options,
                                                       kpiscale::v1::PodIdentity pod,
                                                       SidecarStats* stats) {
  const std::string& url = options.adapter_url;
  const bool https = url.rfind("https://", 0) == 0;
  const bool http = url.rfind("http://", 0) == 0;
  if (!https && !http) {
    return absl::InvalidArgumentError(
        absl::StrCat("--adapter-url '", url, "': must start with https:// (or http://)"));
  }
  if (options.max_pending_windows == 0 || options.max_windows_per_batch == 0) {
    return absl::InvalidArgumentError("--max-pending-windows must be at least 1");
  }
  if (!options.ca_file.empty() && !std::ifstream(options.ca_file)) {
    return absl::NotFoundError(
        absl::StrCat("--adapter-ca-file ", options.ca_file, ": cannot open"));
  }
  if (!options.token_file.empty() && !std::ifstream(options.token_file)) {
    return absl::NotFoundError(
        absl::StrCat("--adapter-token-file ", options.token_file, ": cannot open"));
  }
  const std::size_t scheme_end = url.find("://") + 3;
  const std::size_t slash = url.find('/', scheme_end);
  const std::string authority = url.substr(scheme_end, slash - scheme_end);
  std::string host = authority;
  int port = https ? 443 : 80;
  const std::size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    host = authority.substr(0, colon);
    if (!absl::SimpleAtoi(authority.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("--adapter-url '", url, "': bad port"));
    }
  }
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--adapter-url '", url, "': no host"));
  }
  std::unique_ptr<Pusher> p(new Pusher(std::move(options), std::move(pod), stats));
  p->https_ = https;
  p->host_ = host;
  p->port_ = port;
  std::string prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  p->path_ = prefix + "/v1/reports";
  return p;
}

Pusher::Pusher(PusherOptions options, kpiscale::v1::PodIdentity pod, SidecarStats* stats)
    : options_(std::move(options)), pod_(std::move(pod)), stats_(stats) {}

Pusher::~Pusher() {
  if (thread_.joinable()) Stop(std::chrono::milliseconds(0));
}

void Pusher::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Pusher::Enqueue(kpiscale::v1::Window window) {
  std::size_t depth = 0;
  uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(window));
    while (queue_.size() > options_.max_pending_windows) {
      queue_.pop_front();
      ++dropped;
    }
    depth = queue_.size();
  }
  if (stats_ != nullptr) {
    if (dropped > 0) stats_->windows_dropped->Increment(static_cast<double>(dropped));
    stats_->push_queue->Set(static_cast<double>(depth));
  }
  cv_.notify_one();
}

std::size_t Pusher::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Pusher::Stop(std::chrono::milliseconds flush_deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    flush_deadline_ = std::chrono::steady_clock::now() + flush_deadline;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int Pusher::Send(const std::string& body, std::string* error) {
  if (client_ == nullptr) {
    if (https_) {
      auto ssl = std::make_unique<httplib::SSLClient>(host_, port_);
      ssl->enable_server_certificate_verification(!options_.insecure_skip_tls_verify);
      if (!options_.ca_file.empty()) ssl->set_ca_cert_path(options_.ca_file.c_str());
      client_ = std::move(ssl);
    } else {
      client_ = std::make_unique<httplib::ClientImpl>(host_, port_);
    }
    client_->set_connection_timeout(options_.timeout);
    client_->set_read_timeout(options_.timeout);
    client_->set_write_timeout(options_.timeout);
    client_->set_keep_alive(true);
  }
  if (!options_.token_file.empty()) client_->set_bearer_token_auth(ReadToken(options_.token_file));
  auto res = client_->Post(path_.c_str(), body, "application/x-protobuf");
  if (!res) {
    *error = httplib::to_string(res.error());
    client_.reset();  // a fresh connection next time
    return -1;
  }
  if (res->status < 200 || res->status > 299) *error = res->body.substr(0, 200);
  return res->status;
}

void Pusher::Run() {
  auto backoff = options_.initial_backoff;
  auto next_attempt = std::chrono::steady_clock::now();
  int64_t last_log_second = 0;
  while (true) {
    kpiscale::v1::ReportBatch batch;
    uint64_t retried = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        const auto now = std::chrono::steady_clock::now();
        if (stopping_ && (queue_.empty() || now >= flush_deadline_)) return;
        if (!queue_.empty() && now >= next_attempt) break;
        if (queue_.empty()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, stopping_ ? std::min(next_attempt, flush_deadline_) : next_attempt);
        }
      }
      *batch.mutable_pod() = pod_;
      batch.set_sidecar_version(KPISCALE_VERSION);
      const std::size_t n = std::min(queue_.size(), options_.max_windows_per_batch);
      for (std::size_t i = 0; i < n; ++i) {
        *batch.add_windows() = queue_[i];
        if (queue_[i].sequence() <= highest_attempted_) ++retried;
      }
      highest_attempted_ = std::max(highest_attempted_, queue_[n - 1].sequence());
    }
    if (retried > 0 && stats_ != nullptr) {
      stats_->windows_retried->Increment(static_cast<double>(retried));
    }
    const std::string body = batch.SerializeAsString();
    std::string error;
    const int status = Send(body, &error);
    const uint64_t last_sequence = batch.windows(batch.windows_size() - 1).sequence();
    const bool ok = status >= 200 && status <= 299;
    const bool refused = status >= 400 && status <= 499 && status != 408 && status != 429;
    std::size_t depth = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Remove what this batch carried (the queue may have lost some of it to overflow).
      while (!queue_.empty() && (ok || refused) && queue_.front().sequence() <= last_sequence) {
        queue_.pop_front();
      }
      depth = queue_.size();
    }
    if (stats_ != nullptr) {
      stats_->push_queue->Set(static_cast<double>(depth));
      const auto n = static_cast<double>(batch.windows_size());
      if (ok) stats_->windows_pushed->Increment(n);
      if (refused) stats_->windows_dropped->Increment(n);
      if (!ok) stats_->push_failures->Increment();
    }
    const auto now = std::chrono::steady_clock::now();
    if (ok || refused) {
      backoff = options_.initial_backoff;
      next_attempt = now;
    } else {
      // Full jitter between half and the whole backoff, so many sidecars do not retry in step.
      std::uniform_real_distribution<double> jitter(0.5, 1.0);
      next_attempt =
          now + std::chrono::duration_cast<std::chrono::milliseconds>(backoff * jitter(rng_));
      backoff = std::min(options_.max_backoff, backoff * 2);
    }
    if (!ok) {
      const int64_t second =
          std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
      if (second != last_log_second) {
        last_log_second = second;
        spdlog::warn("msg=push_failed status={} windows={} dropped={} err=\"{}\"", status,
                     batch.windows_size(), refused, error);
      }
    }
  }
}

}  // namespace kpiscale::sidecar
