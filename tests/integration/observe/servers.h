#pragma once

// Real Redis and PostgreSQL 15 for integration tests, on free loopback ports in temporary
// directories (house style §3.4). Include by relative path from other test folders.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "recording_sink.h"

namespace kpiscale::testing {

inline constexpr const char* kPgBin = "/usr/lib/postgresql/15/bin";

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

/// Runs a shell command and collects its output.
inline CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

/// A port that was free a moment ago (for servers that cannot take port 0).
inline uint16_t FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// A temporary directory, world-traversable so the postgres user can reach its children.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  const char* dir = ::mkdtemp(buf.data());
  if (dir == nullptr) return "";
  ::chmod(dir, 0755);
  return dir;
}

/// A redis-server on a free loopback port; stopped (and its directory removed) on destruction.
class RedisServer {
 public:
  static std::unique_ptr<RedisServer> Start() {
    auto s = std::unique_ptr<RedisServer>(new RedisServer());
    s->dir_ = MakeTempDir("kpiscale-redis");
    for (int attempt = 0; attempt < 5; ++attempt) {
      s->port_ = FreePort();
      const auto r =
          RunCommand("redis-server --bind 127.0.0.1 --port " + std::to_string(s->port_) +
                     " --save '' --appendonly no --daemonize yes --dir " + s->dir_ + " --logfile " +
                     s->dir_ + "/redis.log --pidfile " + s->dir_ + "/redis.pid");
      if (r.exit_code != 0) continue;
      if (WaitFor([&] { return s->Cli("ping").output.find("PONG") != std::string::npos; })) {
        s->running_ = true;
        return s;
      }
    }
    return nullptr;
  }
  ~RedisServer() {
    Stop();
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  CommandResult Cli(const std::string& args) const {
    return RunCommand("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + args);
  }
  void Stop() {
    if (!running_) return;
    running_ = false;
    Cli("shutdown nosave");
    WaitFor([&] { return Cli("ping").exit_code != 0; });
  }

 private:
  RedisServer() = default;
  std::string dir_;
  uint16_t port_ = 0;
  bool running_ = false;
};

/// A PostgreSQL 15 cluster (trust auth, fsync off, pg_stat_statements preloaded) run as the
/// postgres user on a free loopback port; stopped and removed on destruction.
class PostgresServer {
 public:
  static std::unique_ptr<PostgresServer> Start() {
    auto s = std::unique_ptr<PostgresServer>(new PostgresServer());
    s->dir_ = MakeTempDir("kpiscale-pg");
    const std::string data = s->dir_ + "/pg";
    if (RunCommand("chown postgres " + s->dir_).exit_code != 0) return nullptr;
    const auto init = AsPostgres(std::string(kPgBin) + "/initdb -D " + data +
                                 " -U postgres -A trust --no-sync -E UTF8 --locale=C.UTF-8");
    if (init.exit_code != 0) {
      std::fprintf(stderr, "initdb failed: %s\n", init.output.c_str());
      return nullptr;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      s->port_ = FreePort();
      {
        std::ofstream conf(data + "/postgresql.auto.conf", std::ios::trunc);
        conf << "listen_addresses='127.0.0.1'\nport=" << s->port_ << "\nunix_socket_directories='"
             << data
             << "'\nshared_preload_libraries='pg_stat_statements'\nfsync=off\n"
                "synchronous_commit=off\nfull_page_writes=off\nmax_connections=200\n";
      }
      RunCommand("chown postgres " + data + "/postgresql.auto.conf");
      const auto start = AsPostgres(std::string(kPgBin) + "/pg_ctl -D " + data + " -l " + s->dir_ +
                                    "/pg.log -w -t 30 start");
      if (start.exit_code == 0) {
        s->running_ = true;
        return s;
      }
    }
    return nullptr;
  }
  ~PostgresServer() {
    Stop();
    if (!dir_.empty()) RunCommand("rm -rf " + dir_);
  }
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string dsn() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  }
  /// psql against `port` (the server's own by default), one command, unaligned tuples only.
  CommandResult Psql(const std::string& sql, uint16_t port = 0) const {
    return RunCommand("psql -X -A -t -h 127.0.0.1 -U postgres -d postgres -p " +
                      std::to_string(port == 0 ? port_ : port) + " -v ON_ERROR_STOP=1 -c \"" + sql +
                      "\"");
  }
  void Stop() {
    if (!running_) return;
    running_ = false;
    AsPostgres(std::string(kPgBin) + "/pg_ctl -D " + dir_ + "/pg -m immediate -w stop");
  }

  static CommandResult AsPostgres(const std::string& command) {
    return RunCommand("cd /tmp && runuser -u postgres -- " + command);
  }

 private:
  PostgresServer() = default;
  std::string dir_;
  uint16_t port_ = 0;
  bool running_ = false;
};

}  // namespace kpiscale::testing
