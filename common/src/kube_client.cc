#include "kpiscale/common/kube_client.h"

#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "kpiscale/common/logging.h"

namespace kpiscale::common {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Resolve(const std::filesystem::path& base, const std::string& p) {
  if (p.empty() || std::filesystem::path(p).is_absolute()) return p;
  return (base / p).string();
}

// `<key>-data` (base64) wins over `<key>` (a file path), as in client-go.
absl::StatusOr<std::string> DataOrFile(const YAML::Node& node, const std::string& key,
                                       const std::filesystem::path& base) {
  if (const auto data = node[key + "-data"]; data && data.IsScalar()) {
    std::string decoded;
    if (!absl::Base64Unescape(data.as<std::string>(), &decoded)) {
      return absl::InvalidArgumentError(absl::StrCat(key, "-data is not base64"));
    }
    return decoded;
  }
  if (const auto file = node[key]; file && file.IsScalar()) {
    return ReadFile(Resolve(base, file.as<std::string>()));
  }
  return std::string();
}

const YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const char* field) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item[field];
  }
  return YAML::Node();
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

}  // namespace

std::string KubeConfig::Describe() const {
  std::string auth = "none";
  if (!token.empty()) auth = "token";
  if (!token_file.empty()) auth = "token-file";
  if (!client_cert_pem.empty()) auth = "client-certificate";
  return absl::StrCat("server=", server, " ca=",
                      insecure_skip_tls_verify ? "insecure"
                      : ca_pem.empty()         ? "system"
                                               : "pinned",
                      " auth=", auth);
}

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": ", e.what()));
  }
  const auto base = std::filesystem::path(path).parent_path();
  std::string ctx_name = context;
  if (ctx_name.empty() && root["current-context"]) {
    ctx_name = root["current-context"].as<std::string>();
  }
  if (ctx_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": no current-context"));
  }
  try {
    const YAML::Node ctx = FindNamed(root["contexts"], ctx_name, "context");
    if (!ctx || !ctx.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path, ": context ", ctx_name, " not found"));
    }
    const std::string cluster_name = ctx["cluster"] ? ctx["cluster"].as<std::string>() : "";
    const std::string user_name = ctx["user"] ? ctx["user"].as<std::string>() : "";
    const YAML::Node cluster = FindNamed(root["clusters"], cluster_name, "cluster");
    if (!cluster || !cluster.IsMap() || !cluster["server"]) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path, ": cluster ", cluster_name, " has no server"));
    }
    KubeConfig c;
    c.server = cluster["server"].as<std::string>();
    if (cluster["insecure-skip-tls-verify"]) {
      c.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>();
    }
    auto ca = DataOrFile(cluster, "certificate-authority", base);
    if (!ca.ok()) return ca.status();
    c.ca_pem = *ca;
    const YAML::Node user = FindNamed(root["users"], user_name, "user");
    if (user && user.IsMap()) {
      if (user["token"]) c.token = user["token"].as<std::string>();
      if (user["tokenFile"]) c.token_file = Resolve(base, user["tokenFile"].as<std::string>());
      auto cert = DataOrFile(user, "client-certificate", base);
      if (!cert.ok()) return cert.status();
      auto key = DataOrFile(user, "client-key", base);
      if (!key.ok()) return key.status();
      c.client_cert_pem = *cert;
      c.client_key_pem = *key;
      if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": user ", user_name,
                                                       " needs both client certificate and key"));
      }
    }
    return c;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": ", e.what()));
  }
}

absl::StatusOr<KubeConfig> LoadInClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return absl::FailedPreconditionError(
        "not in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no kubeconfig given");
  }
  KubeConfig c;
  const std::string h = host;
  c.server =
      absl::StrCat("https://", h.find(':') != std::string::npos ? "[" + h + "]" : h, ":", port);
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *ca;
  c.token_file = sa_dir + "/token";
  if (!std::filesystem::exists(c.token_file)) {
    return absl::NotFoundError(absl::StrCat("no service-account token at ", c.token_file));
  }
  return c;
}

absl::StatusOr<KubeConfig> LoadKubeConfigOrInCluster(const std::string& kubeconfig_path) {
  if (!kubeconfig_path.empty()) return LoadKubeconfig(kubeconfig_path);
  return LoadInClusterConfig();
}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(KubeConfig config, Options options) {
  absl::string_view s = config.server;
  if (!absl::ConsumePrefix(&s, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("Kubernetes API server ", config.server, ": want https://host[:port]"));
  }
  if (const auto slash = s.find('/'); slash != absl::string_view::npos) s = s.substr(0, slash);
  std::string host(s);
  int port = 443;
  const auto colon = s.rfind(':');
  const auto bracket = s.rfind(']');
  if (colon != absl::string_view::npos && (bracket == absl::string_view::npos || colon > bracket)) {
    if (!absl::SimpleAtoi(s.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in ", config.server));
    }
    host = std::string(s.substr(0, colon));
  }
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (options.max_attempts < 1) options.max_attempts = 1;
  return std::unique_ptr<KubeClient>(new KubeClient(std::move(config), options, host, port));
}

absl::StatusOr<KubeResponse> KubeClient::Get(const std::string& path) {
  return Do("GET", path, "");
}

absl::StatusOr<KubeResponse> KubeClient::Post(const std::string& path,
                                              const std::string& json_body) {
  return Do("POST", path, json_body);
}

namespace {

using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;

// The client certificate and key of the kubeconfig (null when it has none) and the current
// bearer token (re-read from token_file: projected tokens rotate).
absl::Status Credentials(const KubeConfig& config, X509Ptr* cert, KeyPtr* key, std::string* token) {
  if (!config.client_cert_pem.empty()) {
    BIO* cb = BIO_new_mem_buf(config.client_cert_pem.data(),
                              static_cast<int>(config.client_cert_pem.size()));
    cert->reset(PEM_read_bio_X509(cb, nullptr, nullptr, nullptr));
    BIO_free(cb);
    BIO* kb = BIO_new_mem_buf(config.client_key_pem.data(),
                              static_cast<int>(config.client_key_pem.size()));
    key->reset(PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr));
    BIO_free(kb);
    if (!*cert || !*key) {
      return absl::InvalidArgumentError("cannot parse the kubeconfig client certificate/key");
    }
  }
  *token = config.token;
  if (!config.token_file.empty()) {
    auto t = ReadFile(config.token_file);
    if (!t.ok()) return absl::UnavailableError(t.status().message());
    *token = std::string(absl::StripAsciiWhitespace(*t));
  }
  return absl::OkStatus();
}

absl::Status ConfigureTls(const KubeConfig& config, httplib::SSLClient& cli) {
  if (config.insecure_skip_tls_verify) {
    cli.enable_server_certificate_verification(false);
    return absl::OkStatus();
  }
  if (config.ca_pem.empty()) return absl::OkStatus();
  X509_STORE* store = X509_STORE_new();
  BIO* bio = BIO_new_mem_buf(config.ca_pem.data(), static_cast<int>(config.ca_pem.size()));
  int added = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    added += X509_STORE_add_cert(store, x);
    X509_free(x);
  }
  BIO_free(bio);
  if (added == 0) {
    X509_STORE_free(store);
    return absl::InvalidArgumentError("the Kubernetes API CA bundle holds no certificate");
  }
  cli.set_ca_cert_store(store);  // takes ownership
  return absl::OkStatus();
}

void SetTimeouts(httplib::SSLClient& cli, std::chrono::milliseconds connect,
                 std::chrono::milliseconds io) {
  auto split = [](std::chrono::milliseconds d) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
    return std::make_pair(
        static_cast<time_t>(secs.count()),
        static_cast<time_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(d - secs).count()));
  };
  const auto c = split(connect);
  const auto i = split(io);
  cli.set_connection_timeout(c.first, c.second);
  cli.set_read_timeout(i.first, i.second);
  cli.set_write_timeout(c.first, c.second);
}

}  // namespace

void StreamCanceller::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (active_ != nullptr) active_->stop();
}

bool StreamCanceller::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

absl::StatusOr<KubeResponse> KubeClient::Do(const std::string& method, const std::string& path,
                                            const std::string& body) {
  static auto log = Logger("kube_client");
  X509Ptr cert;
  KeyPtr key;
  std::string token;
  if (auto st = Credentials(config_, &cert, &key, &token); !st.ok()) return st;
  auto backoff = options_.initial_backoff;
  std::string last_error;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    httplib::SSLClient cli(host_, port_, cert.get(), key.get());
    if (auto st = ConfigureTls(config_, cli); !st.ok()) return st;
    SetTimeouts(cli, options_.timeout, options_.timeout);
    httplib::Headers headers{{"Accept", "application/json"}, {"User-Agent", "kpiscale-adapter"}};
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    httplib::Result res = method == "POST"
                              ? cli.Post(path.c_str(), headers, body, "application/json")
                              : cli.Get(path.c_str(), headers);
    if (res) {
      if (res->status != 429 && res->status < 500) {
        return KubeResponse{res->status, res->body};
      }
      last_error = absl::StrCat("HTTP ", res->status);
    } else {
      last_error = httplib::to_string(res.error());
    }
    // The path and the error only: never headers or bodies, which may hold tokens.
    // Bounded: with the API down every request that needs a review fails here.
    KPISCALE_LOG_EVERY_N(log, spdlog::level::warn, 20,
                         "msg=kube_api_attempt_failed method={} path={} attempt={} error={}",
                         method, LogfmtValue(path), attempt, LogfmtValue(last_error));
    if (attempt < options_.max_attempts) {
      std::this_thread::sleep_for(backoff);  // backoff between attempts, not synchronization
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  return absl::UnavailableError(
      absl::StrCat("Kubernetes API ", config_.server, " ", method, " ", path, ": ", last_error));
}

absl::StatusOr<KubeResponse> KubeClient::Stream(
    const std::string& path, const std::function<bool(std::string_view)>& on_line,
    std::chrono::milliseconds idle_timeout, StreamCanceller* canceller) {
  constexpr std::size_t kMaxLine = 16u << 20;
  constexpr std::size_t kMaxErrorBody = 64u << 10;
  X509Ptr cert;
  KeyPtr key;
  std::string token;
  if (auto st = Credentials(config_, &cert, &key, &token); !st.ok()) return st;
  httplib::SSLClient cli(host_, port_, cert.get(), key.get());
  if (auto st = ConfigureTls(config_, cli); !st.ok()) return st;
  SetTimeouts(cli, options_.timeout, idle_timeout);
  httplib::Headers headers{{"Accept", "application/json"}, {"User-Agent", "kpiscale-adapter"}};
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  if (canceller != nullptr) {
    std::lock_guard lock(canceller->mu_);
    if (canceller->cancelled_) return absl::CancelledError("stream cancelled");
    canceller->active_ = &cli;
  }
  int status = 0;
  std::string pending;  // a partial line, or the body of a non-200 answer
  bool too_long = false;
  bool stopped = false;
  httplib::Result res = cli.Get(
      path.c_str(), headers,
      [&](const httplib::Response& r) {
        status = r.status;
        // A Cancel() that raced the connect could not shut the socket down yet.
        return canceller == nullptr || !canceller->cancelled();
      },
      [&](const char* data, std::size_t n) {
        if (canceller != nullptr && canceller->cancelled()) return false;
        if (status != 200) {
          pending.append(data,
                         std::min(n, kMaxErrorBody - std::min(kMaxErrorBody, pending.size())));
          return true;
        }
        pending.append(data, n);
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos;
             start = nl + 1) {
          if (!on_line(std::string_view(pending).substr(start, nl - start))) {
            stopped = true;
            return false;
          }
        }
        pending.erase(0, start);
        if (pending.size() > kMaxLine) {
          too_long = true;
          return false;
        }
        return true;
      });
  bool cancelled = false;
  if (canceller != nullptr) {
    std::lock_guard lock(canceller->mu_);
    canceller->active_ = nullptr;
    cancelled = canceller->cancelled_;
  }
  if (cancelled) return absl::CancelledError("stream cancelled");
  if (too_long) return absl::ResourceExhaustedError("watch event over 16 MiB");
  if (stopped) return KubeResponse{status, ""};
  if (!res) {
    // The stream may end with an error after a good start (the server went away): the caller
    // learns it here; what arrived was already delivered.
    return absl::UnavailableError(absl::StrCat("Kubernetes API ", config_.server, " GET ", path,
                                               ": ", httplib::to_string(res.error())));
  }
  if (status == 200 && !pending.empty()) on_line(pending);  // a last line without a newline
  return KubeResponse{status, status == 200 ? std::string() : pending};
}

}  // namespace kpiscale::common
