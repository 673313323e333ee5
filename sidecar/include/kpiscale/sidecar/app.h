#pragma once

#include "absl/status/status.h"
#include "kpiscale/sidecar/config.h"

namespace kpiscale::sidecar {

/// Runs the sidecar until SIGTERM or SIGINT: proxy, data observers, /metrics, window close every
/// push interval and the pusher. On the signal it stops accepting, lets in-flight requests
/// finish (up to the shutdown grace), closes and flushes the last window, and returns OK.
/// Once listening, prints one line to stdout:
/// `ready proxy_port=N metrics_port=N redis_port=N postgres_port=N`.
/// Must be called from the main thread before any other thread exists (it blocks the signals
/// for every thread it starts).
absl::Status RunSidecar(SidecarConfig config);

}  // namespace kpiscale::sidecar
