#include "kpiscale/sidecar/observe/data_observers.h"

#include <memory>

#include "absl/status/status.h"

namespace kpiscale::sidecar {
namespace {

class NoDataObservers final : public DataObservers {
 public:
  uint16_t redis_port() const override { return 0; }
  uint16_t postgres_port() const override { return 0; }
  void Stop() override {}
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataObservers>> StartDataObservers(
    const DataObserverOptions& options, SignalSink& /*sink*/, prometheus::Registry& /*registry*/) {
  if (!options.redis_listen.empty() || !options.redis_info_url.empty() ||
      !options.postgres_listen.empty() || !options.postgres_dsn.empty()) {
    return absl::UnimplementedError("data observers: not implemented yet");
  }
  return std::unique_ptr<DataObservers>(new NoDataObservers());
}

}  // namespace kpiscale::sidecar
