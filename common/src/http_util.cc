#include "kpiscale/common/http_util.h"

#include <httplib.h>
#include <prometheus/collectable.h>
#include <prometheus/text_serializer.h>

#include <exception>
#include <string_view>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kpiscale/common/status.h"

namespace kpiscale::common {
namespace {

constexpr char kHttpCodePayload[] = "type.kpiscale.io/http-code";

}  // namespace

absl::Status WithHttpCode(absl::Status status, int http_code) {
  if (status.ok()) return status;
  status.SetPayload(kHttpCodePayload, absl::Cord(absl::StrCat(http_code)));
  return status;
}

std::optional<int> AttachedHttpCode(const absl::Status& status) {
  const auto payload = status.GetPayload(kHttpCodePayload);
  if (!payload.has_value()) return std::nullopt;
  int code = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &code)) return std::nullopt;
  return code;
}

int HttpCodeOf(const absl::Status& status) {
  if (status.ok()) return 200;
  return AttachedHttpCode(status).value_or(HttpCodeFor(status));
}

std::string PrometheusText(
    const std::vector<std::weak_ptr<prometheus::Collectable>>& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& weak : collectables) {
    const std::shared_ptr<prometheus::Collectable> collectable = weak.lock();
    if (!collectable) continue;
    std::vector<prometheus::MetricFamily> part = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(part.begin()),
                    std::make_move_iterator(part.end()));
  }
  return prometheus::TextSerializer{}.Serialize(families);
}

void ServeMetrics(httplib::Server& server,
                  std::vector<std::weak_ptr<prometheus::Collectable>> collectables,
                  const std::string& path) {
  server.Get(path, [collectables = std::move(collectables)](const httplib::Request&,
                                                            httplib::Response& res) {
    res.set_content(PrometheusText(collectables), kPrometheusTextContentType);
  });
}

absl::StatusOr<std::unique_ptr<ServerThread>> ServerThread::Start(httplib::Server& server,
                                                                  const std::string& host,
                                                                  int port) {
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " is out of range 0..65535"));
  }
  const std::string bind_host = host.empty() ? "0.0.0.0" : host;
  // httplib's default socket options add SO_REUSEPORT, with which a second process silently
  // shares a port that is in use; keep only SO_REUSEADDR so that a busy port is an error.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  int bound = -1;
  if (port == 0) {
    bound = server.bind_to_any_port(bind_host.c_str());
  } else if (server.bind_to_port(bind_host.c_str(), port)) {
    bound = port;
  }
  if (bound <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", bind_host, ":", port, ": address in use or invalid"));
  }
  std::unique_ptr<ServerThread> thread(new ServerThread(server, bound));
  ServerThread* raw = thread.get();
  raw->thread_ = std::thread([raw, &server] {
    server.listen_after_bind();
    raw->finished_.store(true);
  });
  // The socket already listens, so early connections queue; but server.stop() before
  // listen_after_bind has started would be lost, so wait until it runs (or gave up).
  while (!server.is_running() && !raw->finished_.load()) std::this_thread::yield();
  if (raw->finished_.load()) {
    return absl::UnavailableError(
        absl::StrCat("server on ", bind_host, ":", bound, " stopped at once"));
  }
  return thread;
}

ServerThread::~ServerThread() { Stop(); }

void ServerThread::Stop() {
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace kpiscale::common
