#pragma once
// A kube-apiserver test double (header-only, for tests): HTTPS with its own CA, bearer-token
// authentication of the caller (401 Status for a bad token, as the real API), TokenReview and
// SubjectAccessReview (authentication.k8s.io/v1, authorization.k8s.io/v1: 201 Created, the
// request echoed with a status), and the kube-system/extension-apiserver-authentication
// ConfigMap (GET; resourceVersion bumps on every change, so re-GET notices rotation). Counts
// requests so tests can assert cache hits. Also: PKI helpers over the `openssl` command.
// Thread-safety: setters and counters may be used while serving.

// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kpiscale/common/http_util.h"

namespace kpiscale::testing {

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

/// A CA or a certificate signed by one, written as <dir>/<name>.crt and .key.
struct Pem {
  std::string cert;  // path
  std::string key;   // path
  std::string CertPem() const { return ReadAll(cert); }
};

/// Runs a shell command; false on a non-zero exit.
inline bool Run(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

/// A self-signed CA (EC P-256). Empty paths on failure.
inline Pem MakeCa(const std::string& dir, const std::string& name) {
  Pem p{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  if (!Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
           "-subj '/CN=" +
           name + "' -keyout " + p.key + " -out " + p.cert +
           " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign")) {
    return {};
  }
  return p;
}

/// A leaf signed by `ca`: subject CN=cn plus one O= per organization; `server` adds the
/// serverAuth usage and SAN 127.0.0.1/localhost, otherwise clientAuth.
inline Pem MakeCert(const std::string& dir, const std::string& name, const Pem& ca,
                    const std::string& cn, const std::vector<std::string>& orgs, bool server) {
  Pem p{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  std::string subj;
  for (const auto& o : orgs) subj += "/O=" + o;
  subj += "/CN=" + cn;
  const std::string ext = dir + "/" + name + ".ext";
  WriteAll(ext, server ? "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       : "extendedKeyUsage=clientAuth\n");
  const std::string csr = dir + "/" + name + ".csr";
  if (!Run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '" +
           subj + "' -keyout " + p.key + " -out " + csr) ||
      !Run("openssl x509 -req -in " + csr + " -CA " + ca.cert + " -CAkey " + ca.key +
           " -CAcreateserial -days 2 -extfile " + ext + " -out " + p.cert)) {
    return {};
  }
  return p;
}

/// A rule of the double's authorizer: every field matches exactly, or "*" matches anything.
struct AccessRule {
  std::string subject;  // user name or "group:<name>"
  std::string verb = "*";
  std::string api_group = "*";
  std::string resource = "*";  // "pods/m" matches resource pods, subresource m; "*" anything
  std::string ns = "*";
  std::string name = "*";
  std::string path;  // non-resource rule when set ("*" suffix = prefix)
};

/// A token the double's TokenReview knows.
struct TokenUser {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  std::map<std::string, std::vector<std::string>> extra;
  std::vector<std::string> audiences;  // empty: the API server's default audience
};

class KubeApiserverDouble {
 public:
  /// Generates the serving PKI in `dir` and starts serving on 127.0.0.1 (ephemeral port).
  /// `caller_token` is the only credential the double accepts from its clients (the adapter).
  KubeApiserverDouble(const std::string& dir, std::string caller_token)
      : dir_(dir), caller_token_(std::move(caller_token)) {
    ca_ = MakeCa(dir, "kube-ca");
    serving_ = MakeCert(dir, "kube-apiserver", ca_, "kube-apiserver", {}, true);
    server_ = std::make_unique<httplib::SSLServer>(serving_.cert.c_str(), serving_.key.c_str());
    server_->Get("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   if (!Authorized(req, res)) return;
                   ++configmap_gets;
                   std::lock_guard lock(mu_);
                   if (!configmap_data_) {
                     Status(res, 404, "NotFound",
                            "configmaps \"extension-apiserver-authentication\" not found");
                     return;
                   }
                   nlohmann::json cm = {{"apiVersion", "v1"},
                                        {"kind", "ConfigMap"},
                                        {"metadata",
                                         {{"name", "extension-apiserver-authentication"},
                                          {"namespace", "kube-system"},
                                          {"resourceVersion", std::to_string(resource_version_)}}},
                                        {"data", *configmap_data_}};
                   res.status = 200;
                   res.set_content(cm.dump(), "application/json");
                 });
    server_->Post("/apis/authentication.k8s.io/v1/tokenreviews",
                  [this](const httplib::Request& req, httplib::Response& res) {
                    if (!Authorized(req, res)) return;
                    ++token_reviews;
                    TokenReview(req, res);
                  });
    server_->Post("/apis/authorization.k8s.io/v1/subjectaccessreviews",
                  [this](const httplib::Request& req, httplib::Response& res) {
                    if (!Authorized(req, res)) return;
                    ++access_reviews;
                    AccessReview(req, res);
                  });
    auto t = common::ServerThread::Start(*server_, "127.0.0.1", 0);
    if (t.ok()) thread_ = std::move(*t);
  }
  ~KubeApiserverDouble() { Stop(); }

  bool ok() const { return thread_ != nullptr && !ca_.cert.empty() && !serving_.cert.empty(); }
  int port() const { return port_ ? port_ : (thread_ ? thread_->port() : 0); }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port()); }
  const Pem& ca() const { return ca_; }
  /// Stops serving: the port refuses connections from now on (the API is down).
  void Stop() {
    if (thread_) {
      port_ = thread_->port();
      thread_->Stop();
    }
  }

  /// Writes a kubeconfig (CA data inline, the given token) and returns its path.
  std::string WriteKubeconfig(const std::string& name, const std::string& token) const {
    const std::string path = dir_ + "/" + name;
    std::ostringstream y;
    y << "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: double\n"
         "  cluster:\n    server: "
      << url() << "\n    certificate-authority: " << ca_.cert
      << "\ncontexts:\n- name: test\n  context:\n    cluster: double\n    user: adapter\n"
         "users:\n- name: adapter\n  user:\n    token: "
      << token << "\n";
    WriteAll(path, y.str());
    return path;
  }

  void SetConfigMap(std::map<std::string, std::string> data) {
    std::lock_guard lock(mu_);
    configmap_data_ = std::move(data);
    ++resource_version_;
  }
  void AddToken(const std::string& token, TokenUser user) {
    std::lock_guard lock(mu_);
    tokens_[token] = std::move(user);
  }
  void Allow(AccessRule rule) {
    std::lock_guard lock(mu_);
    rules_.push_back(std::move(rule));
  }
  /// The last SubjectAccessReview spec received (JSON).
  nlohmann::json last_access_review() const {
    std::lock_guard lock(mu_);
    return last_sar_;
  }

  std::atomic<int> token_reviews{0};
  std::atomic<int> access_reviews{0};
  std::atomic<int> configmap_gets{0};
  std::atomic<int> unauthorized{0};

 private:
  static void Status(httplib::Response& res, int code, const std::string& reason,
                     const std::string& message) {
    nlohmann::json s = {
        {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
        {"status", "Failure"}, {"message", message}, {"reason", reason},
        {"code", code}};
    res.status = code;
    res.set_content(s.dump(), "application/json");
  }

  bool Authorized(const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer " + caller_token_) {
      ++unauthorized;
      Status(res, 401, "Unauthorized", "Unauthorized");
      return false;
    }
    return true;
  }

  void TokenReview(const httplib::Request& req, httplib::Response& res) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.contains("spec") || !j["spec"].contains("token")) {
      Status(res, 400, "BadRequest", "TokenReview: spec.token is required");
      return;
    }
    const std::string token = j["spec"]["token"].get<std::string>();
    std::vector<std::string> want;
    if (j["spec"].contains("audiences"))
      want = j["spec"]["audiences"].get<std::vector<std::string>>();
    nlohmann::json status = {{"user", nlohmann::json::object()}};
    std::lock_guard lock(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) {
      status["error"] = "[invalid bearer token, token lookup failed]";
    } else {
      const auto& u = it->second;
      const std::vector<std::string> has =
          u.audiences.empty() ? std::vector<std::string>{"https://kubernetes.default.svc"}
                              : u.audiences;
      std::vector<std::string> match;
      for (const auto& a : (want.empty() ? has : want)) {
        if (std::find(has.begin(), has.end(), a) != has.end()) match.push_back(a);
      }
      if (match.empty()) {
        status["error"] =
            "[invalid bearer token, token audiences is invalid for the target audiences]";
      } else {
        status["authenticated"] = true;
        status["audiences"] = match;
        nlohmann::json ju = {{"username", u.username}, {"uid", u.uid}, {"groups", u.groups}};
        if (!u.extra.empty()) ju["extra"] = u.extra;
        status["user"] = ju;
      }
    }
    j["metadata"] = {{"creationTimestamp", nullptr}};
    j["status"] = status;
    res.status = 201;
    res.set_content(j.dump(), "application/json");
  }

  static bool Match(const std::string& rule, const std::string& value) {
    return rule == "*" || rule == value;
  }

  void AccessReview(const httplib::Request& req, httplib::Response& res) {
    auto j = nlohmann::json::parse(req.body, nullptr, false);
    if (j.is_discarded() || !j.contains("spec")) {
      Status(res, 400, "BadRequest", "SubjectAccessReview: spec is required");
      return;
    }
    const auto& spec = j["spec"];
    const std::string user = spec.value("user", "");
    std::set<std::string> subjects{user};
    if (spec.contains("groups")) {
      for (const auto& g : spec["groups"]) subjects.insert("group:" + g.get<std::string>());
    }
    bool allowed = false;
    std::lock_guard lock(mu_);
    last_sar_ = spec;
    for (const auto& r : rules_) {
      if (!subjects.count(r.subject)) continue;
      if (spec.contains("nonResourceAttributes")) {
        const auto& n = spec["nonResourceAttributes"];
        const std::string path = n.value("path", "");
        if (!r.path.empty() && Match(r.verb, n.value("verb", "")) &&
            (r.path == path || (r.path.back() == '*' && path.compare(0, r.path.size() - 1, r.path,
                                                                     0, r.path.size() - 1) == 0))) {
          allowed = true;
        }
        continue;
      }
      if (!r.path.empty() || !spec.contains("resourceAttributes")) continue;
      const auto& a = spec["resourceAttributes"];
      std::string resource = a.value("resource", "");
      if (!a.value("subresource", "").empty()) resource += "/" + a.value("subresource", "");
      if (Match(r.verb, a.value("verb", "")) && Match(r.api_group, a.value("group", "")) &&
          Match(r.resource, resource) && Match(r.ns, a.value("namespace", "")) &&
          Match(r.name, a.value("name", ""))) {
        allowed = true;
      }
    }
    j["metadata"] = {{"creationTimestamp", nullptr}};
    j["status"] = allowed
                      ? nlohmann::json{{"allowed", true}, {"reason", "RBAC: allowed by test rule"}}
                      : nlohmann::json{{"allowed", false}};
    res.status = 201;
    res.set_content(j.dump(), "application/json");
  }

  std::string dir_;
  std::string caller_token_;
  Pem ca_;
  Pem serving_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::unique_ptr<common::ServerThread> thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::optional<std::map<std::string, std::string>> configmap_data_;
  int resource_version_ = 100;
  std::map<std::string, TokenUser> tokens_;
  std::vector<AccessRule> rules_;
  nlohmann::json last_sar_;
};

}  // namespace kpiscale::testing
