#include "kpiscale/sidecar/observe/tcp_relay.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <unordered_set>

#include "kpiscale/common/status.h"
#include "observe_log.h"

namespace kpiscale::sidecar::observe {

absl::Status SplitHostPort(const std::string& address, std::string* host, uint16_t* port) {
  std::string h;
  std::string p;
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError("invalid address '" + address + "': want [v6]:port");
    }
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("invalid address '" + address + "': want host:port");
    }
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
  }
  unsigned value = 0;
  const auto res = std::from_chars(p.data(), p.data() + p.size(), value);
  if (p.empty() || res.ec != std::errc() || res.ptr != p.data() + p.size() || value > 65535) {
    return absl::InvalidArgumentError("invalid port in '" + address + "'");
  }
  *host = h.empty() ? "0.0.0.0" : h;
  *port = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Idle buffers a loop keeps for reuse (4 MiB at the default 64 KiB); beyond, they are freed.
constexpr std::size_t kMaxFreeBuffers = 64;

// Relay buffers of one loop, recycled last-in first-out: a connection holds a buffer only while
// bytes wait in it (usually between a read and the write right after), so the few buffers in
// use stay hot in the cache, and an idle connection costs no buffer memory at all.
class BufferPool {
 public:
  BufferPool(std::size_t buffer_bytes, std::size_t max_free)
      : buffer_bytes_(buffer_bytes), max_free_(max_free) {}
  ~BufferPool() {
    for (char* b : free_) delete[] b;
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  std::size_t buffer_bytes() const { return buffer_bytes_; }
  char* Get() {
    if (free_.empty()) return new char[buffer_bytes_];
    char* b = free_.back();
    free_.pop_back();
    return b;
  }
  void Put(char* b) {
    if (free_.size() < max_free_) {
      free_.push_back(b);
    } else {
      delete[] b;
    }
  }

 private:
  const std::size_t buffer_bytes_;
  const std::size_t max_free_;
  std::vector<char*> free_;
};

// A fixed-capacity byte buffer: bytes live in [begin_, end_) of a pool buffer, taken when the
// first byte is written and given back when the last one is consumed.
class Buffer {
 public:
  explicit Buffer(BufferPool* pool) : pool_(pool) {}
  ~Buffer() { Release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  std::size_t size() const { return end_ - begin_; }
  std::size_t free() const { return pool_->buffer_bytes() - size(); }
  const char* front() const { return data_ + begin_; }
  // Writable tail after moving the bytes to the start when needed.
  char* Tail(std::size_t* room) {
    if (data_ == nullptr) data_ = pool_->Get();
    if (end_ == pool_->buffer_bytes() && begin_ > 0) {
      std::memmove(data_, data_ + begin_, size());
      end_ -= begin_;
      begin_ = 0;
    }
    *room = pool_->buffer_bytes() - end_;
    return data_ + end_;
  }
  void Produced(std::size_t n) { end_ += n; }
  void Consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) Clear();
  }
  void Clear() {
    begin_ = end_ = 0;
    Release();
  }
  // After a read that produced nothing.
  void ReleaseIfEmpty() {
    if (size() == 0) Clear();
  }
  bool Append(const std::string& bytes) {
    if (bytes.size() > free()) return false;
    std::size_t room = 0;
    char* tail = Tail(&room);
    if (room < bytes.size()) {
      std::memmove(data_, data_ + begin_, size());
      end_ -= begin_;
      begin_ = 0;
      tail = data_ + end_;
    }
    std::memcpy(tail, bytes.data(), bytes.size());
    end_ += bytes.size();
    return true;
  }

 private:
  void Release() {
    if (data_ != nullptr) pool_->Put(data_);
    data_ = nullptr;
  }

  BufferPool* pool_;
  char* data_ = nullptr;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

enum class HandleType { kListener, kWake, kClient, kUpstream };

struct Handle {
  HandleType type;
  void* owner;
};

struct Listener {
  Handle handle{HandleType::kListener, nullptr};
  int fd = -1;
  RelayListenerConfig config;
  sockaddr_storage upstream{};
  socklen_t upstream_len = 0;
  bool paused = false;
  SteadyTime resume_at{};
  // Bytes relayed since the last round: added to the Prometheus counters once per epoll round,
  // not per read (an atomic read-modify-write per read is measurable at 100k commands/s).
  uint64_t bytes_upstream = 0;
  uint64_t bytes_downstream = 0;
};

struct Conn {
  Conn(Listener* l, BufferPool* pool) : listener(l), c2s(pool), s2c(pool) {}
  Handle client_h{HandleType::kClient, this};
  Handle upstream_h{HandleType::kUpstream, this};
  Listener* listener;
  int client_fd = -1;
  int upstream_fd = -1;
  Buffer c2s;
  Buffer s2c;
  std::unique_ptr<ConnectionTap> tap;
  bool connecting = true;
  bool intercepting = false;
  bool client_eof = false;
  bool upstream_eof = false;
  bool upstream_shut = false;
  bool client_shut = false;
  bool upstream_failed = false;
  bool upstream_closed_first = false;
  bool close_after_flush = false;
  bool closed = false;
  bool dirty = false;  // read this round; flushed and settled after every ready socket was read
  uint32_t client_mask = 0;
  uint32_t upstream_mask = 0;
  SteadyTime connect_deadline{};
  std::string upstream_error;
};

LogLimiter& AcceptLog() {
  static auto* limiter = new LogLimiter();
  return *limiter;
}
LogLimiter& UpstreamLog() {
  static auto* limiter = new LogLimiter();
  return *limiter;
}

// One event loop: an epoll set, its own listening sockets (SO_REUSEPORT siblings when there are
// several loops) and the connections they accepted. A connection lives on one loop for its
// whole life, so taps and buffers are never shared between threads.
struct Loop {
  const RelayOptions* options = nullptr;
  std::unique_ptr<BufferPool> pool;            // outlives every connection (they are closed in Run)
  std::atomic<std::size_t>* active = nullptr;  // shared by every loop: the connection limit
  int epoll_fd = -1;
  int wake_fd = -1;
  Handle wake_h{HandleType::kWake, nullptr};
  std::vector<std::unique_ptr<Listener>> listeners;
  std::unordered_set<Conn*> conns;
  std::vector<Conn*> graveyard;
  std::vector<Conn*> dirty;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> accepted{0};
  SteadyTime next_timer_check{};

  ~Loop() {
    for (auto& l : listeners) {
      if (l->fd >= 0) ::close(l->fd);
    }
    if (wake_fd >= 0) ::close(wake_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  absl::Status Init();
  void Run();
  void Wake();
  void Accept(Listener* l, SteadyTime now);
  void OnClientEvent(Conn* c, uint32_t events, SteadyTime now);
  void OnUpstreamEvent(Conn* c, uint32_t events, SteadyTime now);
  void ReadClient(Conn* c, SteadyTime now);
  void ReadUpstream(Conn* c, SteadyTime now);
  void MarkDirty(Conn* c);
  void FlushDirty(SteadyTime now);
  void FlushByteCounts();
  void FlushToUpstream(Conn* c);
  void FlushToClient(Conn* c);
  void RunIntercept(Conn* c, SteadyTime now);
  void FinishConnect(Conn* c, SteadyTime now);
  void UpstreamFailed(Conn* c, const std::string& error, SteadyTime now);
  void FailToClient(Conn* c, SteadyTime now);
  void Settle(Conn* c, SteadyTime now);
  void UpdateInterest(Conn* c);
  void Close(Conn* c, CloseReason reason, SteadyTime now);
  void CheckTimers(SteadyTime now);
};

}  // namespace

struct TcpRelay::Impl {
  RelayOptions options;
  std::atomic<std::size_t> active{0};
  std::vector<std::unique_ptr<Loop>> loops;
  std::vector<std::thread> threads;
};

absl::Status Loop::Init() {
  epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return absl::InternalError("epoll_create1: " + ErrnoText(errno));
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return absl::InternalError("eventfd: " + ErrnoText(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_h;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
    return absl::InternalError("epoll_ctl: " + ErrnoText(errno));
  }
  return absl::OkStatus();
}

void Loop::Wake() {
  stop.store(true);
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof(one));
}

absl::StatusOr<std::unique_ptr<TcpRelay>> TcpRelay::Create(const RelayOptions& options) {
  if (options.buffer_bytes < 16) return absl::InvalidArgumentError("relay buffer too small");
  if (options.threads < 1 || options.threads > RelayOptions::kMaxThreads) {
    return absl::InvalidArgumentError("relay threads must be 1.." +
                                      std::to_string(RelayOptions::kMaxThreads));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  for (int i = 0; i < options.threads; ++i) {
    auto loop = std::make_unique<Loop>();
    loop->options = &impl->options;
    loop->active = &impl->active;
    loop->pool = std::make_unique<BufferPool>(options.buffer_bytes, kMaxFreeBuffers);
    KPISCALE_RETURN_IF_ERROR(loop->Init());
    impl->loops.push_back(std::move(loop));
  }
  return std::unique_ptr<TcpRelay>(new TcpRelay(std::move(impl)));
}

TcpRelay::TcpRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

TcpRelay::~TcpRelay() { Stop(); }

std::size_t TcpRelay::active_connections() const { return impl_->active.load(); }

int TcpRelay::threads() const { return static_cast<int>(impl_->loops.size()); }

std::vector<uint64_t> TcpRelay::accepted_per_thread() const {
  std::vector<uint64_t> out;
  for (const auto& loop : impl_->loops) out.push_back(loop->accepted.load());
  return out;
}

absl::StatusOr<uint16_t> TcpRelay::AddListener(const RelayListenerConfig& config) {
  if (started_) return absl::FailedPreconditionError("AddListener after Start");
  if (!config.new_tap || config.stats == nullptr) {
    return absl::InvalidArgumentError("listener needs a tap factory and stats");
  }
  std::string host;
  uint16_t port = 0;
  KPISCALE_RETURN_IF_ERROR(SplitHostPort(config.listen, &host, &port));
  std::string up_host;
  uint16_t up_port = 0;
  KPISCALE_RETURN_IF_ERROR(SplitHostPort(config.upstream, &up_host, &up_port));
  if (up_port == 0) return absl::InvalidArgumentError("upstream port 0 in " + config.upstream);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  const std::string up_port_text = std::to_string(up_port);
  int rc = ::getaddrinfo(up_host.c_str(), up_port_text.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::InvalidArgumentError(config.name + ": cannot resolve upstream " + config.upstream +
                                      ": " + gai_strerror(rc));
  }
  sockaddr_storage upstream{};
  std::memcpy(&upstream, res->ai_addr, res->ai_addrlen);
  const socklen_t upstream_len = res->ai_addrlen;
  ::freeaddrinfo(res);

  // With several loops every loop gets its own listening socket on the same port
  // (SO_REUSEPORT): the kernel spreads new connections over them without an acceptor thread
  // handing descriptors around. The first socket picks the port when port 0 was asked for.
  const bool share_port = impl_->loops.size() > 1;
  std::vector<int> fds;
  auto close_all = [&fds] {
    for (int fd : fds) ::close(fd);
  };
  uint16_t bound_port = port;
  for (std::size_t i = 0; i < impl_->loops.size(); ++i) {
    hints = addrinfo{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_PASSIVE;
    res = nullptr;
    const std::string port_text = std::to_string(bound_port);
    rc = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &res);
    if (rc != 0 || res == nullptr) {
      close_all();
      return absl::InvalidArgumentError(config.name + ": cannot resolve listen address " +
                                        config.listen + ": " + gai_strerror(rc));
    }
    const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ::freeaddrinfo(res);
      close_all();
      return absl::InternalError("socket: " + ErrnoText(errno));
    }
    fds.push_back(fd);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (share_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      const int err = errno;
      ::freeaddrinfo(res);
      close_all();
      return absl::InternalError(config.name + ": SO_REUSEPORT: " + ErrnoText(err));
    }
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
      const int err = errno;
      ::freeaddrinfo(res);
      close_all();
      return absl::UnavailableError(config.name + ": cannot listen on " + config.listen + ": " +
                                    ErrnoText(err));
    }
    ::freeaddrinfo(res);
    if (i == 0) {
      sockaddr_storage bound{};
      socklen_t bound_len = sizeof(bound);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
      bound_port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    }
  }
  for (std::size_t i = 0; i < impl_->loops.size(); ++i) {
    Loop& loop = *impl_->loops[i];
    auto listener = std::make_unique<Listener>();
    listener->handle.owner = listener.get();
    listener->config = config;
    listener->upstream = upstream;
    listener->upstream_len = upstream_len;
    listener->fd = fds[i];
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &listener->handle;
    if (::epoll_ctl(loop.epoll_fd, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
      const int err = errno;
      for (std::size_t j = i; j < fds.size(); ++j) ::close(fds[j]);
      return absl::InternalError("epoll_ctl: " + ErrnoText(err));
    }
    loop.listeners.push_back(std::move(listener));
  }
  return bound_port;
}

absl::Status TcpRelay::Start() {
  if (started_) return absl::FailedPreconditionError("relay already started");
  started_ = true;
  for (auto& loop : impl_->loops) {
    Loop* l = loop.get();
    impl_->threads.emplace_back([l] { l->Run(); });
  }
  return absl::OkStatus();
}

void TcpRelay::Stop() {
  if (impl_->threads.empty()) return;
  for (auto& loop : impl_->loops) loop->Wake();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

void Loop::Run() {
  std::vector<epoll_event> events(256);
  bool poll_again = false;
  while (!stop.load(std::memory_order_relaxed)) {
    // Connect deadlines and paused listeners are checked at most every 100 ms, so the cost of
    // the scan over connections never grows with the request rate.
    const int timeout_ms = poll_again ? 0 : 100;
    const int n =
        ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), timeout_ms);
    poll_again = options->poll_before_sleep && n > 0;
    const SteadyTime now = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handle*>(events[i].data.ptr);
      const uint32_t ev = events[i].events;
      switch (h->type) {
        case HandleType::kWake: {
          uint64_t v = 0;
          [[maybe_unused]] const ssize_t r = ::read(wake_fd, &v, sizeof(v));
          break;
        }
        case HandleType::kListener:
          Accept(static_cast<Listener*>(h->owner), now);
          break;
        case HandleType::kClient: {
          auto* c = static_cast<Conn*>(h->owner);
          if (!c->closed) OnClientEvent(c, ev, now);
          break;
        }
        case HandleType::kUpstream: {
          auto* c = static_cast<Conn*>(h->owner);
          if (!c->closed) OnUpstreamEvent(c, ev, now);
          break;
        }
      }
    }
    FlushDirty(now);
    FlushByteCounts();
    if (now >= next_timer_check) {
      CheckTimers(now);
      next_timer_check = now + std::chrono::milliseconds(100);
    }
    for (Conn* c : graveyard) delete c;
    graveyard.clear();
  }
  FlushByteCounts();
  const SteadyTime now = std::chrono::steady_clock::now();
  const std::vector<Conn*> all(conns.begin(), conns.end());
  for (Conn* c : all) Close(c, CloseReason::kShutdown, now);
  for (Conn* c : graveyard) delete c;
  graveyard.clear();
}

// Every socket epoll reported was read before anything is written: the writes of one round
// then go out back to back, and the peers they wake find the relay still running instead of
// preempting it between a read and the next.
void Loop::MarkDirty(Conn* c) {
  if (c->dirty) return;
  c->dirty = true;
  dirty.push_back(c);
}

void Loop::FlushByteCounts() {
  for (auto& l : listeners) {
    if (l->bytes_upstream > 0) {
      l->config.stats->bytes_upstream.Increment(static_cast<double>(l->bytes_upstream));
      l->bytes_upstream = 0;
    }
    if (l->bytes_downstream > 0) {
      l->config.stats->bytes_downstream.Increment(static_cast<double>(l->bytes_downstream));
      l->bytes_downstream = 0;
    }
  }
}

void Loop::FlushDirty(SteadyTime now) {
  for (std::size_t i = 0; i < dirty.size(); ++i) {
    Conn* c = dirty[i];
    c->dirty = false;
    if (c->closed) continue;
    FlushToUpstream(c);
    if (!c->closed) FlushToClient(c);
    if (!c->closed) Settle(c, now);
  }
  dirty.clear();
}

void Loop::CheckTimers(SteadyTime now) {
  for (auto& l : listeners) {
    if (l->paused && now >= l->resume_at) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = &l->handle;
      if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, l->fd, &ev) == 0) l->paused = false;
    }
  }
  std::vector<Conn*> expired;
  for (Conn* c : conns) {
    if (c->connecting && !c->upstream_failed && now >= c->connect_deadline) expired.push_back(c);
  }
  for (Conn* c : expired) {
    if (!c->closed) UpstreamFailed(c, "connect timeout", now);
  }
}

void Loop::Accept(Listener* l, SteadyTime now) {
  for (;;) {
    const int fd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return;
      if (err == EINTR || err == ECONNABORTED) continue;
      if (AcceptLog().ShouldLog()) {
        SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=accept_failed observer={} err=\"{}\"",
                           l->config.name, ErrnoText(err));
      }
      // Out of descriptors or memory: stop accepting for a moment instead of spinning.
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, l->fd, nullptr);
      l->paused = true;
      l->resume_at = now + std::chrono::milliseconds(100);
      return;
    }
    RelayStats& stats = *l->config.stats;
    // Reserved before the check so that loops accepting at the same time cannot overshoot.
    if (active->fetch_add(1) >= options->max_connections) {
      active->fetch_sub(1);
      stats.rejected.Increment();
      ::close(fd);
      if (AcceptLog().ShouldLog()) {
        SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=connection_limit observer={} max={}",
                           l->config.name, options->max_connections);
      }
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto* c = new Conn(l, pool.get());
    c->client_fd = fd;
    c->tap = l->config.new_tap();
    c->intercepting = c->tap->WantsIntercept();
    c->connect_deadline = now + options->connect_timeout;
    conns.insert(c);
    accepted.fetch_add(1, std::memory_order_relaxed);
    stats.connections.Increment();
    stats.active.Increment();

    epoll_event ev{};
    c->client_mask = EPOLLIN;
    ev.events = c->client_mask;
    ev.data.ptr = &c->client_h;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);

    const int up = ::socket(l->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (up < 0) {
      UpstreamFailed(c, "socket: " + ErrnoText(errno), now);
      continue;
    }
    ::setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->upstream_fd = up;
    const int rc = ::connect(up, reinterpret_cast<const sockaddr*>(&l->upstream), l->upstream_len);
    if (rc != 0 && errno != EINPROGRESS) {
      UpstreamFailed(c, ErrnoText(errno), now);
      continue;
    }
    c->connecting = rc != 0;
    c->upstream_mask = EPOLLOUT;
    ev.events = c->upstream_mask;
    ev.data.ptr = &c->upstream_h;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, up, &ev);
    Settle(c, now);
  }
}

void Loop::OnClientEvent(Conn* c, uint32_t events, SteadyTime now) {
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) ReadClient(c, now);
  if (!c->closed && (events & EPOLLOUT) != 0) FlushToClient(c);
  if (!c->closed && !c->dirty) Settle(c, now);
}

void Loop::OnUpstreamEvent(Conn* c, uint32_t events, SteadyTime now) {
  if (c->connecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) FinishConnect(c, now);
    if (!c->closed) Settle(c, now);
    return;
  }
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) ReadUpstream(c, now);
  if (!c->closed && (events & EPOLLOUT) != 0) FlushToUpstream(c);
  if (!c->closed && !c->dirty) Settle(c, now);
}

void Loop::ReadClient(Conn* c, SteadyTime now) {
  if (c->client_eof) return;
  std::size_t room = 0;
  char* tail = c->c2s.Tail(&room);
  if (room == 0) return;  // backpressure: the upstream has not taken what we have
  const ssize_t n = ::recv(c->client_fd, tail, room, 0);
  if (n > 0) {
    c->c2s.Produced(static_cast<std::size_t>(n));
    c->listener->bytes_upstream += static_cast<uint64_t>(n);
    if (c->intercepting) {
      RunIntercept(c, now);
    } else if (!c->upstream_failed) {
      c->tap->OnClientBytes(tail, static_cast<std::size_t>(n), now);
    }
    if (c->closed) return;
    if (options->defer_writes) {
      MarkDirty(c);
    } else {
      FlushToUpstream(c);
    }
    return;
  }
  const int err = errno;
  c->c2s.ReleaseIfEmpty();
  if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) return;
  if (n < 0) {  // reset: nothing more can be delivered either way
    Close(c, CloseReason::kClientClosed, now);
    return;
  }
  c->client_eof = true;  // FIN: the application is done sending, it may still read
}

void Loop::ReadUpstream(Conn* c, SteadyTime now) {
  if (c->upstream_eof || c->upstream_fd < 0) return;
  std::size_t room = 0;
  char* tail = c->s2c.Tail(&room);
  if (room == 0) return;  // backpressure: the application has not read what we have
  const ssize_t n = ::recv(c->upstream_fd, tail, room, 0);
  if (n > 0) {
    c->s2c.Produced(static_cast<std::size_t>(n));
    c->listener->bytes_downstream += static_cast<uint64_t>(n);
    c->tap->OnServerBytes(tail, static_cast<std::size_t>(n), now);
    if (options->defer_writes) {
      MarkDirty(c);
    } else {
      FlushToClient(c);
    }
    return;
  }
  const int err = errno;
  c->s2c.ReleaseIfEmpty();
  if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) return;
  if (!c->client_eof) c->upstream_closed_first = true;
  if (n < 0) {  // reset by the server
    Close(c, c->upstream_closed_first ? CloseReason::kUpstreamClosed : CloseReason::kClientClosed,
          now);
    return;
  }
  c->upstream_eof = true;
}

void Loop::FlushToUpstream(Conn* c) {
  if (c->connecting || c->intercepting || c->upstream_fd < 0 || c->upstream_failed) return;
  while (c->c2s.size() > 0) {
    const ssize_t n = ::send(c->upstream_fd, c->c2s.front(), c->c2s.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c->c2s.Consume(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    // The server is gone for writing; whatever it still sends is relayed, the rest is dropped.
    c->c2s.Clear();
    c->upstream_eof = true;
    if (!c->client_eof) c->upstream_closed_first = true;
    return;
  }
}

void Loop::FlushToClient(Conn* c) {
  while (c->s2c.size() > 0) {
    const ssize_t n = ::send(c->client_fd, c->s2c.front(), c->s2c.size(), MSG_NOSIGNAL);
    if (n > 0) {
      c->s2c.Consume(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    // The application is gone: nothing it was sent matters any more.
    c->s2c.Clear();
    c->client_eof = true;
    c->close_after_flush = true;
    return;
  }
}

void Loop::RunIntercept(Conn* c, SteadyTime now) {
  while (c->intercepting && c->c2s.size() > 0) {
    const Intercept ic = c->tap->InterceptClient(c->c2s.front(), c->c2s.size());
    if (ic.action == Intercept::Action::kNeedMore) {
      if (c->c2s.free() == 0) c->intercepting = false;  // cannot hold more: just relay
      break;
    }
    if (ic.action == Intercept::Action::kAnswer) {
      c->c2s.Consume(std::min(ic.consumed, c->c2s.size()));
      if (!c->s2c.Append(ic.answer)) {
        Close(c, CloseReason::kClientClosed, now);
        return;
      }
      FlushToClient(c);
      continue;
    }
    c->intercepting = false;
  }
  if (c->intercepting) return;
  if (c->upstream_failed) {
    FailToClient(c, now);
    return;
  }
  if (c->c2s.size() > 0) c->tap->OnClientBytes(c->c2s.front(), c->c2s.size(), now);
}

void Loop::FinishConnect(Conn* c, SteadyTime now) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(c->upstream_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    UpstreamFailed(c, ErrnoText(err), now);
    return;
  }
  c->connecting = false;
  FlushToUpstream(c);
}

void Loop::UpstreamFailed(Conn* c, const std::string& error, SteadyTime now) {
  c->listener->config.stats->upstream_failures.Increment();
  if (UpstreamLog().ShouldLog()) {
    SPDLOG_LOGGER_WARN(ObserveLogger(), "msg=upstream_failed observer={} upstream={} err=\"{}\"",
                       c->listener->config.name, c->listener->config.upstream, error);
  }
  if (c->upstream_fd >= 0) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->upstream_fd, nullptr);
    ::close(c->upstream_fd);
    c->upstream_fd = -1;
  }
  c->upstream_failed = true;
  c->connecting = false;
  c->upstream_error = error;
  if (!c->intercepting) FailToClient(c, now);
}

void Loop::FailToClient(Conn* c, SteadyTime now) {
  const std::string answer = c->tap->UpstreamFailureAnswer(c->upstream_error);
  c->c2s.Clear();
  if (answer.empty() || !c->s2c.Append(answer)) {
    Close(c, CloseReason::kUpstreamConnectFailed, now);
    return;
  }
  c->close_after_flush = true;
  FlushToClient(c);
  if (c->s2c.size() == 0) Close(c, CloseReason::kUpstreamConnectFailed, now);
}

// After any event: passes half-closes on, closes what is finished, and updates interest.
void Loop::Settle(Conn* c, SteadyTime now) {
  if (c->closed) return;
  if (c->close_after_flush) {
    if (c->s2c.size() == 0 || c->client_eof) {
      Close(c,
            c->upstream_failed ? CloseReason::kUpstreamConnectFailed : CloseReason::kClientClosed,
            now);
      return;
    }
    UpdateInterest(c);
    return;
  }
  if (c->upstream_failed) {
    if (c->client_eof) Close(c, CloseReason::kUpstreamConnectFailed, now);
    if (!c->closed) UpdateInterest(c);
    return;
  }
  if (c->client_eof && c->c2s.size() == 0 && !c->connecting && !c->upstream_shut &&
      c->upstream_fd >= 0) {
    ::shutdown(c->upstream_fd, SHUT_WR);
    c->upstream_shut = true;
  }
  if (c->upstream_eof && c->s2c.size() == 0 && !c->client_shut) {
    ::shutdown(c->client_fd, SHUT_WR);
    c->client_shut = true;
  }
  const bool up_done = c->client_eof && c->c2s.size() == 0;
  const bool down_done = c->upstream_eof && c->s2c.size() == 0;
  if (up_done && down_done) {
    Close(c, c->upstream_closed_first ? CloseReason::kUpstreamClosed : CloseReason::kClientClosed,
          now);
    return;
  }
  UpdateInterest(c);
}

void Loop::UpdateInterest(Conn* c) {
  uint32_t client_mask = 0;
  if (!c->client_eof && c->c2s.free() > 0 && !c->close_after_flush) client_mask |= EPOLLIN;
  if (c->s2c.size() > 0) client_mask |= EPOLLOUT;
  if (client_mask != c->client_mask) {
    epoll_event ev{};
    ev.events = client_mask;
    ev.data.ptr = &c->client_h;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->client_fd, &ev);
    c->client_mask = client_mask;
  }
  if (c->upstream_fd < 0) return;
  uint32_t up_mask = 0;
  if (c->connecting) {
    up_mask = EPOLLOUT;
  } else {
    if (!c->upstream_eof && c->s2c.free() > 0) up_mask |= EPOLLIN;
    if (c->c2s.size() > 0 && !c->intercepting) up_mask |= EPOLLOUT;
  }
  if (up_mask != c->upstream_mask) {
    epoll_event ev{};
    ev.events = up_mask;
    ev.data.ptr = &c->upstream_h;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->upstream_fd, &ev);
    c->upstream_mask = up_mask;
  }
}

void Loop::Close(Conn* c, CloseReason reason, SteadyTime now) {
  if (c->closed) return;
  c->closed = true;
  // Whoever sees the connection gone (active count, tap) also sees all of its bytes counted.
  FlushByteCounts();
  c->tap->OnClose(reason, now);
  if (c->client_fd >= 0) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->client_fd, nullptr);
    ::close(c->client_fd);
    c->client_fd = -1;
  }
  if (c->upstream_fd >= 0) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->upstream_fd, nullptr);
    ::close(c->upstream_fd);
    c->upstream_fd = -1;
  }
  c->listener->config.stats->active.Decrement();
  active->fetch_sub(1);
  conns.erase(c);
  graveyard.push_back(c);
}

}  // namespace kpiscale::sidecar::observe
