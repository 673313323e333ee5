#include "kpiscale/adapter/server.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "api/json_util.h"
#include "kpiscale/adapter/api.h"
#include "kpiscale/adapter/auth.h"
#include "kpiscale/adapter/auth/cert_reloader.h"
#include "kpiscale/adapter/auth/setup.h"
#include "kpiscale/adapter/auth/stats.h"
#include "kpiscale/adapter/health.h"
#include "kpiscale/adapter/ingest.h"
#include "kpiscale/adapter/stats.h"
#include "kpiscale/adapter/window_store.h"
#include "kpiscale/adapter/written_metrics.h"
#include "kpiscale/common/http_util.h"
#include "kpiscale/common/logging.h"
#include "kpiscale/common/process_metrics.h"
#include "kpiscale/common/status.h"

namespace kpiscale::adapter {
namespace {

bool IsHealthPath(std::string_view path) {
  for (std::string_view p : {"/healthz", "/livez", "/readyz"}) {
    if (path == p ||
        (path.size() > p.size() && path.substr(0, p.size()) == p && path[p.size()] == '/')) {
      return true;
    }
  }
  return false;
}

std::string LowerAscii(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// TLS 1.2+ (or 1.3 only), and for TLS 1.2 only suites with forward secrecy and AEAD (the TLS 1.3
// suites are all modern). Shared by the API and the ingest listener.
void ConfigureServingTls(SSL_CTX* ctx, const std::string& min_version) {
  SSL_CTX_set_min_proto_version(ctx,
                                min_version == "VersionTLS13" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(ctx,
                          "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                          "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                          "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
}

class AdapterServerImpl final : public AdapterServer {
 public:
  AdapterServerImpl(const AdapterConfig& config, const common::Clock& clock)
      : config_(config), clock_(clock) {}

  ~AdapterServerImpl() override { Shutdown(); }

  absl::Status Init() {
    auto log = common::Logger(common::loggers::kAdapterApi);
    registry_ = std::make_shared<prometheus::Registry>();
    KPISCALE_ASSIGN_OR_RETURN(metrics_, AdapterMetrics::Create(registry_));
    StoreOptions so;
    so.window_ms = config_.window_ms;
    so.stale_after_ms = config_.stale_after_ms;
    so.max_pods = config_.max_pods;
    KPISCALE_ASSIGN_OR_RETURN(store_, CreateMemoryWindowStore(so));

    // Authentication/authorization (engineer security): allow-all in --local, else delegated.
    KPISCALE_ASSIGN_OR_RETURN(auth_, auth::BuildAuth(config_, clock_));
    if (config_.local) {
      log->warn("msg=local_mode detail={}",
                common::LogfmtValue("--local: loopback only, no authentication or authorization, "
                                    "self-signed certificate, ingest without a token"));
    }

    health_.Add("ping", HealthChecks::kAll, [] { return absl::OkStatus(); });
    health_.Add("log", HealthChecks::kAll, [] { return absl::OkStatus(); });
    health_.Add("ingest-listener", HealthChecks::kAll, [this] {
      return ingest_thread_ ? absl::OkStatus() : absl::UnavailableError("ingest not listening");
    });
    health_.Add("window-store-ready", HealthChecks::kReadyz | HealthChecks::kHealthz,
                [this] { return store_ ? absl::OkStatus() : absl::UnavailableError("no store"); });
    health_.Add("shutdown", HealthChecks::kReadyz, [this] {
      return draining_.load() ? absl::UnavailableError("process is shutting down")
                              : absl::OkStatus();
    });

    ApiOptions api_options;
    api_options.enable_write_metrics = config_.enable_write_metrics;
    api_options.version = KPISCALE_VERSION;
    api_ = std::make_unique<ApiHandler>(*store_, written_, health_, clock_, api_options);
    IngestOptions io;
    io.limits.max_body_bytes = config_.max_body_bytes;
    io.limits.max_windows = config_.max_windows_per_batch;
    io.max_in_flight = config_.max_ingest_in_flight;
    ingest_ = std::make_unique<IngestHandler>(*store_, clock_, io, metrics_.get());

    // TLS serving certificate.
    std::string cert = config_.tls_cert_file;
    std::string key = config_.tls_private_key_file;
    if (cert.empty()) {
      cert = (std::filesystem::path(config_.cert_dir) / "apiserver.crt").string();
      key = (std::filesystem::path(config_.cert_dir) / "apiserver.key").string();
      if (config_.local) {
        KPISCALE_RETURN_IF_ERROR(EnsureSelfSignedCertificate(cert, key, {config_.bind_address}));
      } else if (!std::filesystem::exists(cert) || !std::filesystem::exists(key)) {
        // Issue 4: self-signed only in --local; in a cluster the aggregator must be able to
        // verify us against the APIService caBundle.
        return absl::FailedPreconditionError(absl::StrCat(
            "no serving certificate: give --tls-cert-file/--tls-private-key-file or put "
            "apiserver.crt/apiserver.key in --cert-dir ",
            config_.cert_dir, " (a self-signed pair is generated only in --local)"));
      }
    }
    api_server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    if (!api_server_->is_valid()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load the serving certificate ", cert, " / ", key));
    }
    SSL_CTX* ctx = api_server_->ssl_context();
    ConfigureServingTls(ctx, config_.tls_min_version);
    // Request, do not require, a client certificate and accept any chain in the handshake: each
    // authenticator verifies it against its own CA, so a bad certificate gets 401 (as in
    // Kubernetes) instead of a failed handshake.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    // cert-manager rotates the files in place: serve their current content.
    KPISCALE_ASSIGN_OR_RETURN(cert_reloader_, auth::CertReloader::Install(ctx, cert, key));

    auto api_handler = [this](const httplib::Request& req, httplib::Response& res) {
      ServeApi(req, res);
    };
    api_server_->Get(".*", api_handler);
    api_server_->Post(".*", api_handler);
    api_server_->Put(".*", api_handler);
    api_server_->Patch(".*", api_handler);
    api_server_->Delete(".*", api_handler);
    api_server_->Options(".*", api_handler);
    api_server_->set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          res.status = 500;
          res.set_content(internal::StatusBody(500, "InternalError",
                                               "Internal error occurred: unexpected exception"),
                          "application/json");
        });
    api_server_->set_keep_alive_timeout(30);

    // Ingest carries bearer tokens, so outside --local it is TLS with the same serving
    // certificate (and rotation) as the API; sidecars authenticate with the token, not a client
    // certificate. --local keeps plain HTTP on loopback for the demo and tests.
    if (config_.local) {
      ingest_server_ = std::make_unique<httplib::Server>();
    } else {
      auto tls = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
      if (!tls->is_valid()) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot load the serving certificate ", cert, " / ", key));
      }
      ConfigureServingTls(tls->ssl_context(), config_.tls_min_version);
      SSL_CTX_set_verify(tls->ssl_context(), SSL_VERIFY_NONE, nullptr);
      KPISCALE_ASSIGN_OR_RETURN(ingest_cert_reloader_,
                                auth::CertReloader::Install(tls->ssl_context(), cert, key));
      ingest_server_ = std::move(tls);
    }
    ingest_server_->set_payload_max_length(config_.max_body_bytes);
    ingest_server_->Post("/v1/reports",
                         [this](const httplib::Request& req, httplib::Response& res) {
                           if (!AuthorizeIngest(req, res)) return;
                           auto r = ingest_->Handle(req.get_header_value("Content-Type"), req.body);
                           res.status = r.status;
                           if (r.retry_after_seconds) {
                             res.set_header("Retry-After", std::to_string(*r.retry_after_seconds));
                           }
                           res.set_content(r.body, "application/json");
                         });
    metrics_server_ = std::make_unique<httplib::Server>();
    common::ProcessCollector::Options po;
    po.component = "adapter";
    process_ = std::make_shared<common::ProcessCollector>(po);
    auth_metrics_ = auth::NewAuthStatsCollector(auth_.stats);
    common::ServeMetrics(*metrics_server_, {registry_, process_, auth_metrics_});

    KPISCALE_ASSIGN_OR_RETURN(
        ingest_thread_,
        common::ServerThread::Start(*ingest_server_, config_.bind_address, config_.ingest_port));
    KPISCALE_ASSIGN_OR_RETURN(
        metrics_thread_,
        common::ServerThread::Start(*metrics_server_, config_.bind_address, config_.metrics_port));
    KPISCALE_ASSIGN_OR_RETURN(
        api_thread_,
        common::ServerThread::Start(*api_server_, config_.bind_address, config_.secure_port));
    housekeeping_ = std::thread([this] { Housekeeping(); });
    log->info("msg=listening secure_port={} ingest_port={} metrics_port={}", secure_port(),
              ingest_port(), metrics_port());
    return absl::OkStatus();
  }

  int secure_port() const override { return api_thread_ ? api_thread_->port() : 0; }
  int ingest_port() const override { return ingest_thread_ ? ingest_thread_->port() : 0; }
  int metrics_port() const override { return metrics_thread_ ? metrics_thread_->port() : 0; }

  void Shutdown() override {
    std::call_once(shutdown_once_, [this] {
      draining_ = true;
      // The API first (in-flight reads finish), then ingest, then our own metrics.
      if (api_thread_) api_thread_->Stop();
      if (ingest_thread_) ingest_thread_->Stop();
      if (metrics_thread_) metrics_thread_->Stop();
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_all();
      if (housekeeping_.joinable()) housekeeping_.join();
    });
  }

 private:
  void Housekeeping() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      store_->Sweep(clock_.NowUnixMillis());
      const auto stats = store_->Stats();
      metrics_->SetStored(static_cast<double>(stats.pods), static_cast<double>(stats.windows));
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    }
  }

  // POST /v1/reports: a bearer token (TokenReview, audience --ingest-token-audience) whose
  // service account's namespace (and pod, when the token names one) matches the batch's pod.
  bool AuthorizeIngest(const httplib::Request& req, httplib::Response& res) {
    if (!auth_.ingest) return true;
    static auto log = common::Logger(common::loggers::kAdapterIngest);
    // Counted by reason in the authenticator (kpiscale_adapter_ingest_auth_rejections_total).
    auto refuse = [&](int code, const absl::Status& st) {
      // Bounded: a sender retrying with a bad token must not flood the log.
      KPISCALE_LOG_EVERY_N(log, spdlog::level::warn, 100, "msg=ingest_refused code={} err={}", code,
                           common::LogfmtValue(std::string(st.message())));
      res.status = code;
      res.set_content(internal::StatusBody(code,
                                           code == 401   ? "Unauthorized"
                                           : code == 403 ? "Forbidden"
                                                         : "ServiceUnavailable",
                                           std::string(st.message())),
                      "application/json");
      return false;
    };
    auto id = auth_.ingest->Authenticate(req.get_header_value("Authorization"));
    if (!id.ok()) {
      const int code = absl::IsUnavailable(id.status())        ? 503
                       : absl::IsPermissionDenied(id.status()) ? 403
                                                               : 401;
      return refuse(code, id.status());
    }
    kpiscale::v1::ReportBatch batch;
    // An unparsable body is refused by the ingest handler with its own 400.
    if (!batch.ParseFromString(req.body)) return true;
    if (auto st = auth_.ingest->Admit(*id, batch.pod().namespace_(), batch.pod().pod_name());
        !st.ok()) {
      return refuse(403, st);
    }
    return true;
  }

  void ServeApi(const httplib::Request& req, httplib::Response& res) {
    static auto log = common::Logger(common::loggers::kAdapterApi);
    const auto start = clock_.SteadyNow();
    ApiResponse out;
    const std::string path = req.path;
    bool authorized = true;
    if (!IsHealthPath(path)) {
      AuthRequest ar;
      ar.method = req.method;
      ar.path = path;
      ar.remote_addr = req.remote_addr;
      ar.ssl = req.ssl;
      for (const auto& [k, v] : req.headers) ar.headers.emplace_back(LowerAscii(k), v);
      auto user = auth_.authenticator->Authenticate(ar);
      if (!user.ok() && absl::IsUnavailable(user.status())) {
        authorized = false;
        out.status = 503;
        out.body = internal::StatusBody(503, "ServiceUnavailable",
                                        "authentication is unavailable: the Kubernetes API "
                                        "cannot review the token");
      } else if (!user.ok()) {
        authorized = false;
        out.status = 401;
        out.body = internal::StatusBody(401, "Unauthorized", "Unauthorized");
        if (log->should_log(spdlog::level::debug)) {
          log->debug("msg=unauthenticated err={}",
                     common::LogfmtValue(std::string(user.status().message())));
        }
      } else {
        UserInfo u =
            user->value_or(UserInfo{"system:anonymous", "", {"system:unauthenticated"}, {}});
        const RequestAttributes attributes = AttributesFor(req.method, path, u);
        auto decision = auth_.authorizer->Authorize(attributes);
        if (!decision.ok() && absl::IsUnavailable(decision.status())) {
          authorized = false;
          out.status = 503;
          out.body = internal::StatusBody(503, "ServiceUnavailable",
                                          "authorization is unavailable: the Kubernetes API "
                                          "cannot review the access");
        } else if (!decision.ok()) {
          authorized = false;
          out.status = 500;
          out.body = internal::StatusBody(
              500, "InternalError",
              absl::StrCat("Internal error occurred: ", decision.status().message()));
        } else if (*decision != Decision::kAllow) {
          authorized = false;
          out.status = 403;
          out.body = internal::StatusBody(403, "Forbidden", auth::ForbiddenMessage(attributes));
        }
      }
    }
    if (authorized) {
      ApiRequest ar;
      ar.method = req.method;
      ar.target = req.target.empty() ? req.path : req.target;
      ar.accept = req.get_header_value("Accept");
      ar.body = req.body;
      out = api_->Handle(ar);
    }
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_content(out.body, out.content_type);
    const double seconds = std::chrono::duration<double>(clock_.SteadyNow() - start).count();
    if (!out.group.empty()) {
      metrics_->RecordRequest(out.group, out.version, out.verb.empty() ? "get" : out.verb,
                              out.status, seconds);
      const int64_t now = clock_.NowUnixMillis();
      for (int64_t ts : out.item_timestamps_ms) {
        metrics_->RecordFreshness(static_cast<double>(now - ts) / 1000.0);
      }
    }
    if (log->should_log(spdlog::level::debug)) {
      log->debug("msg=request method={} target={} code={} seconds={:.6f}", req.method,
                 common::LogfmtValue(req.target), out.status, seconds);
    }
  }

  AdapterConfig config_;
  const common::Clock& clock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<common::ProcessCollector> process_;
  std::shared_ptr<prometheus::Collectable> auth_metrics_;
  std::unique_ptr<AdapterMetrics> metrics_;
  WindowStorePtr store_;
  WrittenMetrics written_;
  HealthChecks health_;
  auth::AuthComponents auth_;
  std::unique_ptr<auth::CertReloader> cert_reloader_;         // outlives api_server_'s handshakes
  std::unique_ptr<auth::CertReloader> ingest_cert_reloader_;  // and ingest_server_'s
  std::unique_ptr<ApiHandler> api_;
  std::unique_ptr<IngestHandler> ingest_;
  std::unique_ptr<httplib::SSLServer> api_server_;
  std::unique_ptr<httplib::Server> ingest_server_;  // an SSLServer outside --local
  std::unique_ptr<httplib::Server> metrics_server_;
  std::unique_ptr<common::ServerThread> api_thread_;
  std::unique_ptr<common::ServerThread> ingest_thread_;
  std::unique_ptr<common::ServerThread> metrics_thread_;
  std::atomic<bool> draining_{false};
  std::once_flag shutdown_once_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread housekeeping_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AdapterServer>> AdapterServer::Start(const AdapterConfig& config,
                                                                    const common::Clock& clock) {
  KPISCALE_RETURN_IF_ERROR(config.Validate());
  auto server = std::make_unique<AdapterServerImpl>(config, clock);
  KPISCALE_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<AdapterServer>(std::move(server));
}

}  // namespace kpiscale::adapter
