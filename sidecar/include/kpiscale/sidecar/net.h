#pragma once

#include <netinet/in.h>

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace kpiscale::sidecar {

/// Resolves `host:port` (IPv4; an empty host, `*` or `0.0.0.0` means any address) for a
/// listener or an upstream. Port 0 is allowed for listeners.
absl::StatusOr<sockaddr_in> ResolveHostPort(std::string_view host_port);

/// A non-blocking, close-on-exec TCP listener with SO_REUSEADDR (and SO_REUSEPORT when
/// `reuse_port`, so several event loops can listen on one port). Returns the fd.
absl::StatusOr<int> ListenTcp(const sockaddr_in& address, bool reuse_port, int backlog = 1024);

/// The port a bound socket listens on.
uint16_t LocalPort(int fd);

/// Dotted-quad form of an IPv4 address.
std::string FormatIp(const sockaddr_in& address);

}  // namespace kpiscale::sidecar
