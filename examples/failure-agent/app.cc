#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "failure_agent.h"
#include "kpiscale/common/status.h"

namespace kpiscale::examples {
namespace {

void Reply(httplib::Response& res, int code, const nlohmann::json& body) {
  res.status = code;
  res.set_content(body.dump(), "application/json");
}

void ReplyError(httplib::Response& res, const absl::Status& s) {
  if (common::HttpCodeFor(s) >= 500) spdlog::warn("msg=request_failed err=\"{}\"", s.ToString());
  Reply(res, common::HttpCodeFor(s), nlohmann::json{{"error", std::string(s.message())}});
}

}  // namespace

absl::StatusOr<std::unique_ptr<App>> App::Create(const AppOptions& options) {
  auto app = std::unique_ptr<App>(new App());
  KPISCALE_ASSIGN_OR_RETURN(app->pool_, ConnectionPool::Create(options.db));
  KPISCALE_RETURN_IF_ERROR(Migrate(*app->pool_));
  app->repo_ = std::make_unique<FailureRepository>(*app->pool_);
  if (options.seed_rows > 0) KPISCALE_RETURN_IF_ERROR(app->repo_->Seed(options.seed_rows, 0.42));
  app->cache_ = std::make_unique<Cache>(options.cache);
  app->server_ = std::make_unique<httplib::Server>();
  app->Routes();
  const auto colon = options.listen.rfind(':');
  if (colon == std::string::npos) return absl::InvalidArgumentError("--listen wants host:port");
  const std::string host = options.listen.substr(0, colon);
  int port = 0;
  const std::string port_text = options.listen.substr(colon + 1);
  const auto res = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (res.ec != std::errc() || port < 0 || port > 65535) {
    return absl::InvalidArgumentError("--listen: bad port");
  }
  if (port == 0) {
    app->port_ = app->server_->bind_to_any_port(host);
  } else {
    app->port_ = app->server_->bind_to_port(host, port) ? port : -1;
  }
  if (app->port_ <= 0) return absl::UnavailableError("cannot listen on " + options.listen);
  spdlog::info("msg=listening addr={}:{} cache={}", host, app->port_,
               options.cache.address.empty() ? "off" : options.cache.address);
  return app;
}

App::~App() { Stop(); }

void App::Run() { server_->listen_after_bind(); }

void App::Start() {
  thread_ = std::thread([this] { Run(); });
  while (!server_->is_running()) std::this_thread::yield();
}

void App::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

void App::Routes() {
  httplib::Server& s = *server_;
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Reply(res, 500, nlohmann::json{{"error", "internal error"}});
  });
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, nlohmann::json{{"status", "ok"}});
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const auto lease = pool_->Acquire();
    if (!lease.ok()) {
      ReplyError(res, lease.status());
      return;
    }
    // The cache is optional: its state is reported, never a reason to be unready.
    Reply(res, 200, nlohmann::json{{"status", "ready"}, {"cache_failures", cache_->failures()}});
  });

  s.Get("/api/v1/failures", [this](const httplib::Request& req, httplib::Response& res) {
    const auto q = ParseListQuery(req.params);
    if (!q.ok()) {
      ReplyError(res, q.status());
      return;
    }
    const std::string key = ListCacheKey(*q);
    if (auto cached = cache_->Get(key)) {
      res.set_header("X-Cache", "hit");
      Reply(res, 200, *cached);
      return;
    }
    const auto rows = repo_->List(*q);
    if (!rows.ok()) {
      ReplyError(res, rows.status());
      return;
    }
    nlohmann::json items = nlohmann::json::array();
    for (const Failure& f : *rows) items.push_back(FailureToJson(f));
    const nlohmann::json body{{"items", items}, {"count", rows->size()}};
    cache_->Set(key, body);
    res.set_header("X-Cache", "miss");
    Reply(res, 200, body);
  });

  s.Get(R"(/api/v1/failures/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string text = req.matches[1];
    int64_t id = 0;
    const auto parsed = std::from_chars(text.data(), text.data() + text.size(), id);
    if (parsed.ec != std::errc() || parsed.ptr != text.data() + text.size() || id <= 0) {
      ReplyError(res, absl::InvalidArgumentError("id: a positive integer"));
      return;
    }
    const std::string key = ItemCacheKey(id);
    if (auto cached = cache_->Get(key)) {
      res.set_header("X-Cache", "hit");
      Reply(res, 200, *cached);
      return;
    }
    const auto f = repo_->Get(id);
    if (!f.ok()) {
      ReplyError(res, f.status());
      return;
    }
    const nlohmann::json body = FailureToJson(*f);
    cache_->Set(key, body);
    res.set_header("X-Cache", "miss");
    Reply(res, 200, body);
  });

  s.Post("/api/v1/failures", [this](const httplib::Request& req, httplib::Response& res) {
    const auto f = ParseNewFailure(req.body);
    if (!f.ok()) {
      ReplyError(res, f.status());
      return;
    }
    const auto created = repo_->Insert(*f);
    if (!created.ok()) {
      ReplyError(res, created.status());
      return;
    }
    // Lists may now be stale; the new item is cached for its first readers.
    cache_->ClearPattern(kListKeyPattern);
    const nlohmann::json body = FailureToJson(*created);
    cache_->Set(ItemCacheKey(created->id), body);
    res.set_header("Location", "/api/v1/failures/" + std::to_string(created->id));
    Reply(res, 201, body);
  });
}

}  // namespace kpiscale::examples
