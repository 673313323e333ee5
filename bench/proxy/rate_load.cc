// rate_load: a fixed-rate HTTP/1.1 load generator over N keep-alive connections.
//
// Debian's wrk has no -R (constant throughput), so this drives the 1,000 req/s figure. It is
// open-loop: request i is due at start + i/rate, and its latency is measured from that due time
// (not from when a busy connection got round to sending it), so a stall shows up in the tail
// instead of silently lowering the rate (no coordinated omission).
//
// Usage: rate_load HOST PORT PATH RATE SECONDS CONNECTIONS
// Prints: requests=N errors=N p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::deque<Clock::time_point> due;  // requests sent, awaiting responses (FIFO)
  std::string in;
};

// Length of one complete response at the front of `in` (Content-Length framing), 0 if partial.
std::size_t ResponseLength(const std::string& in) {
  const std::size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  std::size_t length = 0;
  for (std::size_t pos = 0; pos < end;) {
    const std::size_t eol = in.find("\r\n", pos);
    if (eol - pos > 15 && strncasecmp(in.data() + pos, "content-length:", 15) == 0) {
      length = std::strtoul(in.c_str() + pos + 15, nullptr, 10);
    }
    pos = eol + 2;
  }
  return in.size() >= end + 4 + length ? end + 4 + length : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH RATE SECONDS CONNECTIONS\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string path = argv[3];
  const double rate = std::atof(argv[4]);
  const double seconds = std::atof(argv[5]);
  const int nconn = std::atoi(argv[6]);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n";

  const int ep = epoll_create1(0);
  std::vector<Conn> conns(static_cast<std::size_t>(nconn));
  for (int i = 0; i < nconn; ++i) {
    Conn& c = conns[static_cast<std::size_t>(i)];
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::perror("connect");
      return 1;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }

  const auto total = static_cast<uint64_t>(rate * seconds);
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  std::vector<double> latencies_us;
  latencies_us.reserve(total);
  uint64_t sent = 0, errors = 0;
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto hard_stop = start + std::chrono::duration<double>(seconds + 10);
  epoll_event events[128];
  while (latencies_us.size() + errors < total && Clock::now() < hard_stop) {
    auto now = Clock::now();
    // Send everything that is due, round-robin over the connections.
    while (sent < total) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * sent);
      if (due > now) break;
      Conn& c = conns[sent % conns.size()];
      if (send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(request.size())) {
        ++errors;
      } else {
        c.due.push_back(due);
      }
      ++sent;
    }
    // Sleep exactly until the next due time (nanosecond timeout: no spinning, no rounding).
    std::chrono::nanoseconds wait = std::chrono::milliseconds(100);
    if (sent < total) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(interval * sent);
      wait =
          std::min(wait, std::max(std::chrono::nanoseconds(0),
                                  std::chrono::duration_cast<std::chrono::nanoseconds>(due - now)));
    }
    const timespec ts{static_cast<time_t>(wait.count() / 1'000'000'000),
                      static_cast<long>(wait.count() % 1'000'000'000)};
    const int n = epoll_pwait2(ep, events, 128, &ts, nullptr);
    now = Clock::now();
    for (int i = 0; i < n; ++i) {
      Conn& c = conns[events[i].data.u32];
      char buf[65536];
      const ssize_t r = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r <= 0) {
        errors += c.due.size();
        c.due.clear();
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        continue;
      }
      c.in.append(buf, static_cast<std::size_t>(r));
      while (std::size_t len = ResponseLength(c.in)) {
        if (c.in.compare(9, 3, "200") != 0) ++errors;
        c.in.erase(0, len);
        if (c.due.empty()) break;
        latencies_us.push_back(
            std::chrono::duration<double, std::micro>(now - c.due.front()).count());
        c.due.pop_front();
      }
    }
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  auto q = [&](double p) {
    if (latencies_us.empty()) return 0.0;
    return latencies_us[std::min(
        latencies_us.size() - 1,
        static_cast<std::size_t>(p * static_cast<double>(latencies_us.size())))];
  };
  std::printf(
      "requests=%zu errors=%llu p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
      latencies_us.size(), static_cast<unsigned long long>(errors), q(0.5), q(0.9), q(0.99),
      q(0.999), latencies_us.empty() ? 0.0 : latencies_us.back());
  for (Conn& c : conns) close(c.fd);
  close(ep);
  return errors == 0 ? 0 : 1;
}
