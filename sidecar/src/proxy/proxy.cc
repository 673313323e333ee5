#include "kpiscale/sidecar/proxy.h"

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kpiscale/sidecar/http_parser.h"
#include "kpiscale/sidecar/net.h"
#include "spdlog/spdlog.h"

namespace kpiscale::sidecar {
namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

enum class Kind : uint8_t { kListener, kWake, kClient, kUpstream };

struct Pollable {
  explicit Pollable(Kind k) : kind(k) {}
  Kind kind;
};

struct Conn;

struct Upstream : Pollable {
  Upstream() : Pollable(Kind::kUpstream) {}
  int fd = -1;
  uint32_t events = 0;
  bool connecting = false;
  bool reused = false;
  bool dead = false;
  Conn* owner = nullptr;
  TimePoint idle_since;
};

enum class ReqState { kHead, kBody, kSent, kTunnel, kClosing };
enum class RespState { kNone, kHead, kBody, kDone, kTunnel };

struct Conn : Pollable {
  explicit Conn(std::size_t max_head)
      : Pollable(Kind::kClient),
        req_parser(max_head),
        resp_parser(std::max<std::size_t>(max_head, 64 * 1024)) {}
  int fd = -1;
  uint32_t events = 0;
  std::size_t index = 0;  // in Worker::conns_
  std::string client_ip;
  std::string in;
  std::string out;
  std::size_t out_off = 0;
  Upstream* up = nullptr;
  std::string up_out;
  std::size_t up_out_off = 0;
  std::string up_in;
  std::string head_copy;  // the forwarded request head, for one retry on a stale pooled upstream
  std::string scratch;
  http::HeadParser req_parser;
  http::HeadParser resp_parser;
  http::BodyFramer req_body;
  http::BodyFramer resp_body;
  http::Head head;
  ReqState req = ReqState::kHead;
  RespState resp = RespState::kNone;
  bool active = false;
  bool method_head = false;
  bool req_keep_alive = true;
  bool req_upgrade = false;
  int client_minor = 1;
  bool body_forwarded = false;
  bool response_started = false;
  bool close_after = false;
  bool client_eof = false;
  bool closed = false;
  bool retried = false;
  bool upstream_reusable = true;
  bool have_first_byte = false;
  bool have_ttfb = false;
  int status = 0;
  std::size_t route = 0;
  TimePoint first_byte;
  TimePoint ttfb_time;
  TimePoint last_activity;
  TimePoint up_activity;

  std::size_t out_pending() const { return out.size() - out_off; }
  std::size_t up_out_pending() const { return up_out.size() - up_out_off; }
};

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// Rate-limited warnings: at most one line per kind per second.
void LogLimited(std::atomic<int64_t>& last_second, const std::string& message) {
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now().time_since_epoch())
          .count();
  int64_t prev = last_second.load(std::memory_order_relaxed);
  if (now != prev && last_second.compare_exchange_strong(prev, now)) {
    spdlog::warn("msg=proxy {}", message);
  }
}

std::atomic<int64_t> g_log_accept{0};
std::atomic<int64_t> g_log_upstream{0};

}  // namespace

/// One event loop: listener, clients, upstream pool.
class Worker {
 public:
  Worker(const ProxyOptions& options, const sockaddr_in& upstream, HttpSlot* slot,
         const RouteTable& routes)
      : options_(options), upstream_addr_(upstream), slot_(slot), routes_(routes) {}
  ~Worker();

  absl::Status Init(const sockaddr_in& listen_addr, uint16_t* port);
  void Run();
  void RequestStop(bool force);

 private:
  void Watch(Pollable* p, int fd, uint32_t* current, uint32_t wanted);
  void Accept();
  void OnClientEvent(Conn* c, uint32_t ev);
  void OnUpstreamEvent(Upstream* u, uint32_t ev);
  void ReadClient(Conn* c);
  void ReadUpstream(Conn* c);
  void Advance(Conn* c);
  void AdvanceResponse(Conn* c);
  void StartRequest(Conn* c);
  bool ConnectUpstream(Conn* c, bool allow_pool);
  void SendUpstream(Conn* c, const char* data, std::size_t n);
  void SendClient(Conn* c, const char* data, std::size_t n);
  /// Sends two buffers in one sendmsg (a response head and the first body bytes); what the
  /// kernel does not take waits in c->out. SendClient is the one-buffer case.
  void SendClient2(Conn* c, std::string_view first, std::string_view second);
  void FlushUpstream(Conn* c);
  void FlushClient(Conn* c);
  void FinishConnect(Conn* c);
  void OnUpstreamClosed(Conn* c, bool reset);
  void UpstreamFailed(Conn* c, UpstreamFailure reason);
  void Reject(Conn* c, int status, std::string_view reason);
  void FinishRequest(Conn* c);
  void SwitchToTunnel(Conn* c);
  void CloseConn(Conn* c, bool abort);
  void CloseUpstream(Upstream* u);
  void ReleaseUpstream(Conn* c);
  void UpdateInterest(Conn* c);
  void ScanTimeouts();
  void BeginStop();

  const ProxyOptions& options_;
  const sockaddr_in upstream_addr_;
  HttpSlot* const slot_;
  const RouteTable& routes_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  Pollable listener_{Kind::kListener};
  Pollable waker_{Kind::kWake};
  std::vector<Conn*> conns_;
  std::vector<Upstream*> pool_;
  std::vector<Conn*> dead_conns_;
  std::vector<Upstream*> dead_upstreams_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> force_{false};
  bool stopping_ = false;
  TimePoint now_;
  uint64_t pending_rx_ = 0;
  uint64_t pending_tx_ = 0;
  char buf_[64 * 1024];
  http::Head resp_head_;  // the response head being parsed (one at a time per worker)
};

Worker::~Worker() {
  for (Conn* c : conns_) {
    if (c->up != nullptr) {
      close(c->up->fd);
      delete c->up;
    }
    close(c->fd);
    delete c;
  }
  for (Upstream* u : pool_) {
    close(u->fd);
    delete u;
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status Worker::Init(const sockaddr_in& listen_addr, uint16_t* port) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("epoll/eventfd: ", std::strerror(errno)));
  }
  sockaddr_in addr = listen_addr;
  if (*port != 0) addr.sin_port = htons(*port);
  auto fd = ListenTcp(addr, /*reuse_port=*/true);
  if (!fd.ok()) return fd.status();
  listen_fd_ = *fd;
  *port = LocalPort(listen_fd_);
  uint32_t ev = 0;
  Watch(&listener_, listen_fd_, &ev, EPOLLIN);
  ev = 0;
  Watch(&waker_, wake_fd_, &ev, EPOLLIN);
  return absl::OkStatus();
}

void Worker::RequestStop(bool force) {
  stop_.store(true);
  if (force) force_.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t w = write(wake_fd_, &one, sizeof(one));
}

void Worker::Watch(Pollable* p, int fd, uint32_t* current, uint32_t wanted) {
  if (*current == wanted) return;
  epoll_event ev{};
  ev.events = wanted;
  ev.data.ptr = p;
  if (*current == 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  } else {
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }
  *current = wanted;
}

void Worker::Run() {
  epoll_event events[256];
  TimePoint next_scan = SteadyClock::now();
  while (true) {
    const int n = epoll_wait(epoll_fd_, events, 256, 100);
    now_ = SteadyClock::now();
    for (int i = 0; i < n; ++i) {
      auto* p = static_cast<Pollable*>(events[i].data.ptr);
      switch (p->kind) {
        case Kind::kListener:
          Accept();
          break;
        case Kind::kWake: {
          uint64_t v = 0;
          [[maybe_unused]] const ssize_t r = read(wake_fd_, &v, sizeof(v));
          break;
        }
        case Kind::kClient: {
          Conn* c = static_cast<Conn*>(p);
          if (!c->closed) OnClientEvent(c, events[i].events);
          break;
        }
        case Kind::kUpstream: {
          auto* u = static_cast<Upstream*>(p);
          if (!u->dead) OnUpstreamEvent(u, events[i].events);
          break;
        }
      }
    }
    for (Conn* c : dead_conns_) delete c;
    dead_conns_.clear();
    for (Upstream* u : dead_upstreams_) delete u;
    dead_upstreams_.clear();
    if (pending_rx_ != 0 || pending_tx_ != 0) {
      slot_->AddBytes(pending_rx_, pending_tx_);
      pending_rx_ = pending_tx_ = 0;
    }
    if (now_ >= next_scan) {
      ScanTimeouts();
      next_scan = now_ + std::chrono::milliseconds(50);
    }
    if (stop_.load(std::memory_order_relaxed) && !stopping_) BeginStop();
    if (stopping_ && (conns_.empty() || force_.load())) break;
  }
  while (!conns_.empty()) CloseConn(conns_.back(), /*abort=*/true);
  for (Conn* c : dead_conns_) delete c;
  dead_conns_.clear();
  for (Upstream* u : dead_upstreams_) delete u;
  dead_upstreams_.clear();
  if (pending_rx_ != 0 || pending_tx_ != 0) slot_->AddBytes(pending_rx_, pending_tx_);
  pending_rx_ = pending_tx_ = 0;
}

void Worker::BeginStop() {
  stopping_ = true;
  if (listen_fd_ >= 0) {
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    close(listen_fd_);
    listen_fd_ = -1;
  }
  // Idle keep-alive connections close now; busy ones after their current response.
  std::vector<Conn*> snapshot = conns_;
  for (Conn* c : snapshot) {
    c->close_after = true;
    if (!c->active && c->req == ReqState::kHead && c->in.empty() && c->out_pending() == 0) {
      CloseConn(c, false);
    }
  }
}

void Worker::Accept() {
  while (true) {
    sockaddr_in addr{};
    socklen_t len = sizeof(addr);
    const int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (!WouldBlock(errno) && errno != EINTR) {
        LogLimited(g_log_accept, absl::StrCat("accept_failed err=", std::strerror(errno)));
      }
      return;
    }
    if (conns_.size() >= options_.max_connections) {
      slot_->RecordRejected();
      LogLimited(g_log_accept, "connection_refused reason=max_connections");
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto* c = new Conn(options_.max_header_bytes);
    c->fd = fd;
    c->client_ip = FormatIp(addr);
    c->last_activity = now_;
    c->index = conns_.size();
    conns_.push_back(c);
    UpdateInterest(c);
  }
}

void Worker::UpdateInterest(Conn* c) {
  if (c->closed) return;
  bool want_read = false;
  if (!c->client_eof) {
    switch (c->req) {
      case ReqState::kHead:
        want_read = c->active ? c->in.size() < options_.buffer_bytes
                              : c->in.size() <= options_.max_header_bytes;
        break;
      case ReqState::kBody:
        want_read =
            c->up_out_pending() < options_.buffer_bytes && c->in.size() < options_.buffer_bytes;
        break;
      case ReqState::kSent:
        want_read = c->in.size() < options_.buffer_bytes;
        break;
      case ReqState::kTunnel:
        want_read = c->up_out_pending() < options_.buffer_bytes;
        break;
      case ReqState::kClosing:
        want_read = false;
        break;
    }
  }
  uint32_t mask = 0;
  if (want_read) mask |= EPOLLIN | EPOLLRDHUP;
  if (c->out_pending() > 0) mask |= EPOLLOUT;
  // Keep the fd registered even with nothing wanted, so EPOLLHUP/EPOLLERR still arrive.
  if (mask == 0) mask = EPOLLERR;
  Watch(c, c->fd, &c->events, mask);
  if (c->up != nullptr && !c->up->dead) {
    Upstream* u = c->up;
    uint32_t umask = 0;
    if (u->connecting) {
      umask = EPOLLOUT;
    } else {
      if (c->out_pending() < options_.buffer_bytes) umask |= EPOLLIN | EPOLLRDHUP;
      if (c->up_out_pending() > 0) umask |= EPOLLOUT;
    }
    if (umask == 0) umask = EPOLLERR;
    Watch(u, u->fd, &u->events, umask);
  }
}

void Worker::OnClientEvent(Conn* c, uint32_t ev) {
  if ((ev & EPOLLERR) != 0) {
    CloseConn(c, true);
    return;
  }
  if ((ev & EPOLLOUT) != 0) {
    FlushClient(c);
    if (c->closed) return;
  }
  if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) {
    if ((ev & EPOLLHUP) != 0 && (ev & EPOLLIN) == 0) {
      CloseConn(c, true);
      return;
    }
    ReadClient(c);
  }
}

void Worker::OnUpstreamEvent(Upstream* u, uint32_t ev) {
  if (u->owner == nullptr) {
    // An idle pooled connection spoke or closed: it can no longer carry a request.
    pool_.erase(std::remove(pool_.begin(), pool_.end(), u), pool_.end());
    CloseUpstream(u);
    return;
  }
  Conn* c = u->owner;
  if (u->connecting) {
    FinishConnect(c);
    return;
  }
  if ((ev & EPOLLOUT) != 0) {
    FlushUpstream(c);
    if (c->closed || c->up != u) return;
  }
  if ((ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) ReadUpstream(c);
}

void Worker::ReadClient(Conn* c) {
  while (!c->closed) {
    const ssize_t r = recv(c->fd, buf_, sizeof(buf_), 0);
    if (r > 0) {
      pending_rx_ += static_cast<uint64_t>(r);
      c->last_activity = now_;
      if (c->req == ReqState::kTunnel) {
        SendUpstream(c, buf_, static_cast<std::size_t>(r));
      } else if (c->req != ReqState::kClosing) {
        if (c->in.empty() && !c->active && !c->have_first_byte) {
          c->first_byte = now_;
          c->have_first_byte = true;
        }
        c->in.append(buf_, static_cast<std::size_t>(r));
      }
      if (static_cast<std::size_t>(r) < sizeof(buf_)) break;
      if (c->in.size() >= options_.buffer_bytes) break;
      if (c->up_out_pending() >= options_.buffer_bytes) break;
      continue;
    }
    if (r == 0) {
      c->client_eof = true;
      if (c->req == ReqState::kTunnel) {
        CloseConn(c, false);
        return;
      }
      // A client that half-closes after a complete request still gets its answer; anything
      // else ends the connection.
      if (!(c->active && c->req == ReqState::kSent)) {
        CloseConn(c, c->active);
        return;
      }
      c->close_after = true;
      break;
    }
    if (WouldBlock(errno) || errno == EINTR) break;
    CloseConn(c, true);
    return;
  }
  if (c->closed) return;
  if (c->req != ReqState::kTunnel) Advance(c);
  UpdateInterest(c);
}

void Worker::Advance(Conn* c) {
  while (!c->closed) {
    if (c->req == ReqState::kHead) {
      if (c->active || c->in.empty()) break;
      if (!c->have_first_byte) {
        c->first_byte = now_;
        c->have_first_byte = true;
      }
      const http::ParseStatus st = c->req_parser.ParseRequest(c->in, &c->head);
      if (st == http::ParseStatus::kIncomplete) break;
      if (st == http::ParseStatus::kTooLarge) {
        Reject(c, 431, "Request Header Fields Too Large");
        break;
      }
      if (st == http::ParseStatus::kInvalid) {
        Reject(c, 400, "Bad Request");
        break;
      }
      StartRequest(c);
      continue;
    }
    if (c->req == ReqState::kBody) {
      if (c->in.empty() || c->up_out_pending() >= options_.buffer_bytes) break;
      const std::size_t n = c->req_body.Consume(c->in.data(), c->in.size());
      if (c->req_body.error()) {
        // The framing broke mid-body: the upstream has a partial request, so nothing on
        // either connection can be trusted any more.
        if (!c->response_started) {
          Reject(c, 400, "Bad Request");
        } else {
          CloseConn(c, true);
        }
        break;
      }
      if (n > 0) {
        c->body_forwarded = true;
        SendUpstream(c, c->in.data(), n);
        if (c->closed) break;
        c->in.erase(0, n);
      }
      if (c->req_body.done()) c->req = ReqState::kSent;
      if (n == 0 && !c->req_body.done()) break;
      continue;
    }
    break;
  }
  if (!c->closed) UpdateInterest(c);
}

void Worker::StartRequest(Conn* c) {
  const http::Head& h = c->head;
  c->active = true;
  slot_->AddInFlight(1);
  c->method_head = h.method == "HEAD";
  c->req_keep_alive = h.keep_alive;
  c->req_upgrade = h.upgrade;
  c->client_minor = h.version_minor;
  c->route = routes_.size() > 1 ? routes_.Match(h.method, h.target) : 0;
  if (stopping_) c->close_after = true;
  if (!c->req_keep_alive) c->close_after = true;
  http::WriteUpstreamRequestHead(h, c->client_ip, &c->head_copy);
  c->req_body.Reset(h.body, h.content_length);
  c->in.erase(0, h.head_bytes);
  c->req_parser.Reset();
  c->req = c->req_body.done() ? ReqState::kSent : ReqState::kBody;
  c->resp = RespState::kHead;
  c->resp_parser.Reset();
  c->status = 0;
  c->have_ttfb = false;
  c->response_started = false;
  c->body_forwarded = false;
  c->retried = false;
  c->upstream_reusable = true;
  c->up_in.clear();
  c->up_activity = now_;
  if (!ConnectUpstream(c, /*allow_pool=*/true)) {
    UpstreamFailed(c, UpstreamFailure::kConnect);
    return;
  }
  SendUpstream(c, c->head_copy.data(), c->head_copy.size());
}

bool Worker::ConnectUpstream(Conn* c, bool allow_pool) {
  while (allow_pool && !pool_.empty()) {
    Upstream* u = pool_.back();
    pool_.pop_back();
    u->owner = c;
    u->reused = true;
    c->up = u;
    return true;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const int rc =
      connect(fd, reinterpret_cast<const sockaddr*>(&upstream_addr_), sizeof(upstream_addr_));
  if (rc != 0 && errno != EINPROGRESS) {
    LogLimited(g_log_upstream, absl::StrCat("upstream_connect_failed err=", std::strerror(errno)));
    close(fd);
    return false;
  }
  auto* u = new Upstream();
  u->fd = fd;
  u->connecting = rc != 0;
  u->owner = c;
  c->up = u;
  c->up_out.clear();
  c->up_out_off = 0;
  c->up_activity = now_;
  return true;
}

void Worker::FinishConnect(Conn* c) {
  Upstream* u = c->up;
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(u->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    LogLimited(g_log_upstream, absl::StrCat("upstream_connect_failed err=", std::strerror(err)));
    UpstreamFailed(c, UpstreamFailure::kConnect);
    return;
  }
  u->connecting = false;
  c->up_activity = now_;
  FlushUpstream(c);
  if (!c->closed) UpdateInterest(c);
}

void Worker::SendUpstream(Conn* c, const char* data, std::size_t n) {
  if (c->up == nullptr) return;
  std::size_t sent = 0;
  if (!c->up->connecting && c->up_out_pending() == 0) {
    const ssize_t w = send(c->up->fd, data, n, MSG_NOSIGNAL);
    if (w > 0) {
      sent = static_cast<std::size_t>(w);
      c->up_activity = now_;
    } else if (w < 0 && !WouldBlock(errno) && errno != EINTR) {
      OnUpstreamClosed(c, /*reset=*/true);
      return;
    }
  }
  if (sent < n) {
    if (c->up_out_off > 0 && c->up_out_off == c->up_out.size()) {
      c->up_out.clear();
      c->up_out_off = 0;
    }
    c->up_out.append(data + sent, n - sent);
  }
  UpdateInterest(c);
}

void Worker::FlushUpstream(Conn* c) {
  while (c->up != nullptr && c->up_out_pending() > 0) {
    const ssize_t w =
        send(c->up->fd, c->up_out.data() + c->up_out_off, c->up_out_pending(), MSG_NOSIGNAL);
    if (w > 0) {
      c->up_out_off += static_cast<std::size_t>(w);
      c->up_activity = now_;
      continue;
    }
    if (w < 0 && (WouldBlock(errno) || errno == EINTR)) break;
    OnUpstreamClosed(c, true);
    return;
  }
  if (c->up_out_pending() == 0) {
    c->up_out.clear();
    c->up_out_off = 0;
  }
  // Room again upstream: continue the request body or the tunnel.
  if (c->req == ReqState::kBody) Advance(c);
  if (!c->closed) UpdateInterest(c);
}

void Worker::SendClient(Conn* c, const char* data, std::size_t n) {
  SendClient2(c, std::string_view(data, n), std::string_view());
}

void Worker::SendClient2(Conn* c, std::string_view first, std::string_view second) {
  std::size_t sent = 0;
  if (c->out_pending() == 0) {
    iovec parts[2] = {{const_cast<char*>(first.data()), first.size()},
                      {const_cast<char*>(second.data()), second.size()}};
    msghdr msg{};
    msg.msg_iov = parts;
    msg.msg_iovlen = second.empty() ? 1 : 2;
    const ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    if (w > 0) {
      sent = static_cast<std::size_t>(w);
      pending_tx_ += sent;
      c->last_activity = now_;
    } else if (w < 0 && !WouldBlock(errno) && errno != EINTR) {
      CloseConn(c, true);
      return;
    }
  }
  // Whatever the kernel did not take is queued in order behind what already waits.
  if (sent >= first.size() + second.size()) return;
  if (c->out_off > 0 && c->out_off == c->out.size()) {
    c->out.clear();
    c->out_off = 0;
  }
  if (sent < first.size()) {
    c->out.append(first.data() + sent, first.size() - sent);
    sent = 0;
  } else {
    sent -= first.size();
  }
  c->out.append(second.data() + sent, second.size() - sent);
}

void Worker::FlushClient(Conn* c) {
  while (c->out_pending() > 0) {
    const ssize_t w = send(c->fd, c->out.data() + c->out_off, c->out_pending(), MSG_NOSIGNAL);
    if (w > 0) {
      c->out_off += static_cast<std::size_t>(w);
      pending_tx_ += static_cast<uint64_t>(w);
      c->last_activity = now_;
      continue;
    }
    if (w < 0 && (WouldBlock(errno) || errno == EINTR)) break;
    CloseConn(c, true);
    return;
  }
  if (c->out_pending() > 0) {
    UpdateInterest(c);
    return;
  }
  c->out.clear();
  c->out_off = 0;
  if (c->resp == RespState::kTunnel) {
    UpdateInterest(c);
    return;
  }
  if (c->active && c->resp == RespState::kDone) {
    FinishRequest(c);
    return;
  }
  if (c->active && !c->up_in.empty()) {
    AdvanceResponse(c);
    if (!c->closed) UpdateInterest(c);
    return;
  }
  if (!c->active && c->close_after) {
    CloseConn(c, false);
    return;
  }
  UpdateInterest(c);
}

void Worker::ReadUpstream(Conn* c) {
  while (!c->closed && c->up != nullptr) {
    if (c->out_pending() >= options_.buffer_bytes) break;
    const ssize_t r = recv(c->up->fd, buf_, sizeof(buf_), 0);
    if (r > 0) {
      c->up_activity = now_;
      if (c->resp == RespState::kTunnel) {
        SendClient(c, buf_, static_cast<std::size_t>(r));
      } else {
        c->up_in.append(buf_, static_cast<std::size_t>(r));
      }
      if (static_cast<std::size_t>(r) < sizeof(buf_)) break;
      continue;
    }
    if (r == 0) {
      OnUpstreamClosed(c, false);
      return;
    }
    if (WouldBlock(errno) || errno == EINTR) break;
    OnUpstreamClosed(c, true);
    return;
  }
  if (c->closed) return;
  if (c->resp != RespState::kTunnel) AdvanceResponse(c);
  if (!c->closed) UpdateInterest(c);
}

void Worker::AdvanceResponse(Conn* c) {
  bool head_held = false;  // c->scratch holds a response head not yet handed to SendClient
  while (!c->closed && c->active) {
    if (c->resp == RespState::kHead) {
      if (c->up_in.empty()) break;
      http::Head& h = resp_head_;  // reused: its header vector keeps its capacity
      const http::ParseStatus st = c->resp_parser.ParseResponse(c->up_in, c->method_head, &h);
      if (st == http::ParseStatus::kIncomplete) break;
      if (!c->have_ttfb) {
        c->ttfb_time = now_;
        c->have_ttfb = true;
      }
      if (st != http::ParseStatus::kDone || (h.status == 101 && !c->req_upgrade)) {
        LogLimited(g_log_upstream,
                   absl::StrCat("upstream_bad_response err=\"", c->resp_parser.error(), "\""));
        UpstreamFailed(c, UpstreamFailure::kReset);
        return;
      }
      c->resp_parser.Reset();
      if (h.status == 101) {
        http::WriteClientResponseHead(h, false, c->client_minor, &c->scratch);
        c->up_in.erase(0, h.head_bytes);
        SendClient(c, c->scratch.data(), c->scratch.size());
        if (c->closed) return;
        SwitchToTunnel(c);
        return;
      }
      if (h.status < 200) {
        // Interim response (100 Continue, 103 Early Hints): forward and keep waiting.
        http::WriteClientResponseHead(h, false, c->client_minor, &c->scratch);
        c->up_in.erase(0, h.head_bytes);
        SendClient(c, c->scratch.data(), c->scratch.size());
        continue;
      }
      c->status = h.status;
      c->upstream_reusable = h.keep_alive;
      if (h.body == http::BodyKind::kUntilClose || c->req != ReqState::kSent) {
        // Close-delimited bodies end the client connection too; and a response that arrives
        // before the request body is complete leaves the rest of that body unframed.
        c->close_after = true;
      }
      http::WriteClientResponseHead(h, c->close_after, c->client_minor, &c->scratch);
      c->up_in.erase(0, h.head_bytes);
      c->response_started = true;
      c->resp_body.Reset(h.body, h.content_length);
      c->resp = c->resp_body.done() ? RespState::kDone : RespState::kBody;
      // The head waits in scratch for the first body bytes, so that a response that arrived in
      // one read leaves in one send: one syscall fewer per request.
      head_held = true;
      continue;
    }
    if (c->resp == RespState::kBody) {
      if (c->up_in.empty() || c->out_pending() >= options_.buffer_bytes) break;
      const std::size_t n = c->resp_body.Consume(c->up_in.data(), c->up_in.size());
      if (c->resp_body.error()) {
        UpstreamFailed(c, UpstreamFailure::kReset);
        return;
      }
      if (n > 0) {
        if (head_held) {
          head_held = false;
          SendClient2(c, c->scratch, std::string_view(c->up_in.data(), n));
        } else {
          SendClient(c, c->up_in.data(), n);
        }
        if (c->closed) return;
        c->up_in.erase(0, n);
      }
      if (c->resp_body.done()) c->resp = RespState::kDone;
      if (n == 0 && !c->resp_body.done()) break;
      continue;
    }
    if (c->resp == RespState::kDone) {
      if (head_held) {
        head_held = false;
        SendClient(c, c->scratch.data(), c->scratch.size());
        if (c->closed) return;
      }
      if (c->out_pending() == 0) FinishRequest(c);
      return;
    }
    break;
  }
  if (head_held && !c->closed) SendClient(c, c->scratch.data(), c->scratch.size());
}

void Worker::OnUpstreamClosed(Conn* c, bool reset) {
  if (!c->active || c->resp == RespState::kTunnel) {
    // Tunnel ended (or a stray close): flush what we have and close the client.
    if (c->up != nullptr) CloseUpstream(c->up);
    c->up = nullptr;
    c->close_after = true;
    c->req = ReqState::kClosing;
    if (c->out_pending() == 0) {
      CloseConn(c, false);
    } else {
      UpdateInterest(c);
    }
    return;
  }
  Upstream* u = c->up;
  // A pooled connection the upstream closed just as we reused it: send the request once more on
  // a fresh connection, as long as nothing but the head went out.
  if (u != nullptr && u->reused && !c->retried && !c->response_started && c->up_in.empty() &&
      !c->body_forwarded && c->req == ReqState::kSent) {
    CloseUpstream(u);
    c->up = nullptr;
    c->retried = true;
    c->up_out.clear();
    c->up_out_off = 0;
    if (!ConnectUpstream(c, /*allow_pool=*/false)) {
      UpstreamFailed(c, UpstreamFailure::kConnect);
      return;
    }
    SendUpstream(c, c->head_copy.data(), c->head_copy.size());
    return;
  }
  if (!reset && c->resp == RespState::kBody && c->resp_body.kind() == http::BodyKind::kUntilClose) {
    // Drain what is buffered, then the response is complete.
    if (!c->up_in.empty()) {
      SendClient(c, c->up_in.data(), c->up_in.size());
      if (c->closed) return;
      c->up_in.clear();
    }
    c->upstream_reusable = false;
    CloseUpstream(u);
    c->up = nullptr;
    c->resp = RespState::kDone;
    if (c->out_pending() == 0) {
      FinishRequest(c);
    } else {
      UpdateInterest(c);
    }
    return;
  }
  UpstreamFailed(c, UpstreamFailure::kReset);
}

void Worker::UpstreamFailed(Conn* c, UpstreamFailure reason) {
  slot_->RecordUpstreamFailure(reason);
  if (c->up != nullptr) CloseUpstream(c->up);
  c->up = nullptr;
  c->upstream_reusable = false;
  c->close_after = true;
  c->req = ReqState::kClosing;
  c->resp = RespState::kDone;
  if (!c->have_ttfb) {
    c->ttfb_time = now_;
    c->have_ttfb = true;
  }
  if (!c->response_started) {
    const bool timeout = reason == UpstreamFailure::kTimeout;
    c->status = timeout ? 504 : 502;
    const std::string body =
        timeout ? http::SimpleResponse(504, "Gateway Timeout", "upstream timed out\n")
                : http::SimpleResponse(502, "Bad Gateway", "upstream unavailable\n");
    SendClient(c, body.data(), body.size());
    if (c->closed) return;
    c->response_started = true;
  } else {
    // Part of the response is already out; the client sees a truncated response and a close.
    c->status = 502;
  }
  if (c->out_pending() == 0) {
    FinishRequest(c);
  } else {
    UpdateInterest(c);
  }
}

void Worker::Reject(Conn* c, int status, std::string_view reason) {
  slot_->RecordRejected();
  if (!c->active) {
    c->active = true;
    slot_->AddInFlight(1);
  }
  if (c->up != nullptr) CloseUpstream(c->up);
  c->up = nullptr;
  c->status = status;
  c->ttfb_time = now_;
  c->have_ttfb = true;
  c->close_after = true;
  c->req = ReqState::kClosing;
  c->resp = RespState::kDone;
  c->response_started = true;
  const std::string body = http::SimpleResponse(status, reason, std::string(reason) + "\n");
  SendClient(c, body.data(), body.size());
  if (c->closed) return;
  if (c->out_pending() == 0) {
    FinishRequest(c);
  } else {
    UpdateInterest(c);
  }
}

void Worker::FinishRequest(Conn* c) {
  const double seconds = std::chrono::duration<double>(now_ - c->first_byte).count();
  const double ttfb = std::chrono::duration<double>(c->ttfb_time - c->first_byte).count();
  slot_->RecordRequest(c->status, seconds, std::min(ttfb, seconds), c->route);
  slot_->AddInFlight(-1);
  c->active = false;
  c->have_first_byte = false;
  c->resp = RespState::kNone;
  if (c->req != ReqState::kSent) c->close_after = true;
  ReleaseUpstream(c);
  if (c->close_after) {
    CloseConn(c, false);
    return;
  }
  c->req = ReqState::kHead;
  c->last_activity = now_;
  if (!c->in.empty()) {
    // A pipelined request was waiting behind this one.
    c->first_byte = now_;
    c->have_first_byte = true;
    Advance(c);
  } else {
    UpdateInterest(c);
  }
}

void Worker::ReleaseUpstream(Conn* c) {
  Upstream* u = c->up;
  if (u == nullptr) return;
  c->up = nullptr;
  const bool reusable = c->upstream_reusable && c->req == ReqState::kSent && c->up_in.empty() &&
                        c->up_out_pending() == 0 && !stopping_ &&
                        pool_.size() < options_.max_idle_upstream;
  c->up_out.clear();
  c->up_out_off = 0;
  if (!reusable) {
    CloseUpstream(u);
    return;
  }
  u->owner = nullptr;
  u->idle_since = now_;
  Watch(u, u->fd, &u->events, EPOLLIN | EPOLLRDHUP);
  pool_.push_back(u);
}

void Worker::SwitchToTunnel(Conn* c) {
  slot_->RecordUpgrade();
  slot_->AddInFlight(-1);
  c->active = false;
  c->req = ReqState::kTunnel;
  c->resp = RespState::kTunnel;
  c->upstream_reusable = false;
  if (!c->in.empty()) {
    SendUpstream(c, c->in.data(), c->in.size());
    c->in.clear();
  }
  if (!c->closed && !c->up_in.empty()) {
    SendClient(c, c->up_in.data(), c->up_in.size());
    c->up_in.clear();
  }
  if (!c->closed) UpdateInterest(c);
}

void Worker::CloseUpstream(Upstream* u) {
  if (u->dead) return;
  u->dead = true;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, u->fd, nullptr);
  close(u->fd);
  if (u->owner != nullptr && u->owner->up == u) u->owner->up = nullptr;
  u->owner = nullptr;
  dead_upstreams_.push_back(u);
}

void Worker::CloseConn(Conn* c, bool abort) {
  if (c->closed) return;
  c->closed = true;
  if (c->active) {
    if (abort) slot_->RecordClientAbort();
    slot_->AddInFlight(-1);
    c->active = false;
  }
  if (c->up != nullptr) CloseUpstream(c->up);
  c->up = nullptr;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  Conn* last = conns_.back();
  conns_[c->index] = last;
  last->index = c->index;
  conns_.pop_back();
  dead_conns_.push_back(c);
}

void Worker::ScanTimeouts() {
  const auto expired = [this](TimePoint since, std::chrono::milliseconds limit) {
    return now_ - since > limit;
  };
  std::vector<Conn*> snapshot = conns_;
  for (Conn* c : snapshot) {
    if (c->closed) continue;
    if (c->req == ReqState::kTunnel) {
      if (expired(std::max(c->last_activity, c->up_activity), options_.client_idle_timeout)) {
        CloseConn(c, false);
      }
      continue;
    }
    if (c->active && c->up != nullptr) {
      if (c->up->connecting) {
        if (expired(c->up_activity, options_.upstream_connect_timeout)) {
          UpstreamFailed(c, UpstreamFailure::kConnect);
        }
        continue;
      }
      if (c->req == ReqState::kBody) {
        // Waiting for the client's body.
        if (expired(c->last_activity, options_.client_idle_timeout)) CloseConn(c, true);
        continue;
      }
      if (c->out_pending() > 0) {
        // Waiting for the client to read.
        if (expired(c->last_activity, options_.client_idle_timeout)) CloseConn(c, true);
        continue;
      }
      if (expired(c->up_activity, options_.upstream_timeout)) {
        UpstreamFailed(c, UpstreamFailure::kTimeout);
      }
      continue;
    }
    if (c->active) {
      // Our own error response waiting for a slow reader.
      if (expired(c->last_activity, options_.client_idle_timeout)) CloseConn(c, true);
      continue;
    }
    if (c->have_first_byte && !c->in.empty()) {
      if (expired(c->first_byte, options_.client_header_timeout)) {
        Reject(c, 408, "Request Timeout");
      }
      continue;
    }
    if (expired(c->last_activity, options_.client_idle_timeout)) CloseConn(c, false);
  }
  while (!pool_.empty() && expired(pool_.front()->idle_since, options_.upstream_idle_timeout)) {
    CloseUpstream(pool_.front());
    pool_.erase(pool_.begin());
  }
}

absl::StatusOr<std::unique_ptr<Proxy>> Proxy::Create(const ProxyOptions& options,
                                                     WindowBuilder& builder,
                                                     const RouteTable& routes) {
  if (options.workers < 1 || options.workers > 64) {
    return absl::InvalidArgumentError("--workers must be between 1 and 64");
  }
  auto listen_addr = ResolveHostPort(options.listen);
  if (!listen_addr.ok()) return listen_addr.status();
  auto upstream_addr = ResolveHostPort(options.upstream);
  if (!upstream_addr.ok()) return upstream_addr.status();
  if (upstream_addr->sin_port == 0) return absl::InvalidArgumentError("--upstream needs a port");
  std::unique_ptr<Proxy> proxy(new Proxy());
  uint16_t port = ntohs(listen_addr->sin_port);
  for (int i = 0; i < options.workers; ++i) {
    auto worker = std::make_unique<Worker>(options, *upstream_addr, builder.AddHttpSlot(), routes);
    absl::Status st = worker->Init(*listen_addr, &port);
    if (!st.ok()) return st;
    proxy->workers_.push_back(std::move(worker));
  }
  proxy->port_ = port;
  return proxy;
}

void Proxy::Start() {
  running_ = static_cast<int>(workers_.size());
  for (auto& w : workers_) {
    Worker* worker = w.get();
    threads_.emplace_back([this, worker] {
      worker->Run();
      std::lock_guard<std::mutex> lock(mu_);
      --running_;
      done_.notify_all();
    });
  }
}

void Proxy::Shutdown(std::chrono::milliseconds grace) {
  for (auto& w : workers_) w->RequestStop(false);
  // Workers exit by themselves once their connections are done; past the grace period they
  // are told to drop what is left.
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!done_.wait_for(lock, grace, [this] { return running_ == 0; })) {
      for (auto& w : workers_) w->RequestStop(true);
    }
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Proxy::~Proxy() {
  if (!threads_.empty()) Shutdown(std::chrono::milliseconds(0));
}

}  // namespace kpiscale::sidecar
