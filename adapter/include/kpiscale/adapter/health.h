#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace kpiscale::adapter {

/// The /healthz, /livez and /readyz endpoints in the apiserver format (k8s.io/apiserver
/// pkg/server/healthz): `ok`; `?verbose` lists `[+]<check> ok` then `<endpoint> check passed`;
/// `?exclude=<check>` (repeatable) marks a check `excluded: ok` and warns about unknown names;
/// any failure answers 500 with the whole list, `[-]<check> failed: reason withheld` and
/// `<endpoint> check failed`; `/<endpoint>/<check>` runs one check.
/// Thread-safety: Add before serving; Evaluate may be called concurrently.
class HealthChecks final {
 public:
  using Check = std::function<absl::Status()>;
  enum Endpoints : unsigned { kHealthz = 1, kLivez = 2, kReadyz = 4, kAll = 7 };

  void Add(std::string name, unsigned endpoints, Check check);

  struct Result {
    int status = 200;
    std::string body;
  };
  /// endpoint: "healthz", "livez" or "readyz"; check: "" for the root, else one check's name
  /// (404 when unknown). verbose: whether `verbose` was in the query.
  Result Evaluate(std::string_view endpoint, std::string_view check, bool verbose,
                  const std::vector<std::string>& excludes) const;

 private:
  struct Entry {
    std::string name;
    unsigned endpoints;
    Check check;
  };
  std::vector<Entry> checks_;
};

}  // namespace kpiscale::adapter
