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
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
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
                   res.status = 200;
                   res.set_content(ConfigMapJson().dump(), "application/json");
                 });
    server_->Get("/api/v1/namespaces/kube-system/configmaps", [this](const httplib::Request& req,
                                                                     httplib::Response& res) {
      if (!Authorized(req, res)) return;
      const std::string watch = req.get_param_value("watch");
      if (watch == "1" || watch == "true") {
        Watch(req, res);
        return;
      }
      ++configmap_gets;
      std::lock_guard lock(mu_);
      nlohmann::json items = nlohmann::json::array();
      if (configmap_data_ && SelectsOurs(req)) items.push_back(ConfigMapJson());
      nlohmann::json list = {{"kind", "ConfigMapList"},
                             {"apiVersion", "v1"},
                             {"metadata", {{"resourceVersion", std::to_string(resource_version_)}}},
                             {"items", items}};
      res.status = 200;
      res.set_content(list.dump(), "application/json");
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
  KubeApiserverDouble(const KubeApiserverDouble&) = delete;
  KubeApiserverDouble& operator=(const KubeApiserverDouble&) = delete;

  bool ok() const { return thread_ != nullptr && !ca_.cert.empty() && !serving_.cert.empty(); }
  int port() const { return port_ ? port_ : (thread_ ? thread_->port() : 0); }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port()); }
  const Pem& ca() const { return ca_; }
  /// Stops serving: the port refuses connections from now on (the API is down).
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
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

  /// Creates or changes the ConfigMap (ADDED or MODIFIED, delivered to open watches).
  void SetConfigMap(std::map<std::string, std::string> data) {
    std::lock_guard lock(mu_);
    const bool existed = configmap_data_.has_value();
    configmap_data_ = std::move(data);
    ++resource_version_;
    events_.push_back({resource_version_, existed ? "MODIFIED" : "ADDED", ConfigMapJson()});
    cv_.notify_all();
  }
  /// Deletes the ConfigMap (a DELETED event carrying the last state).
  void DeleteConfigMap() {
    std::lock_guard lock(mu_);
    if (!configmap_data_) return;
    ++resource_version_;
    nlohmann::json last = ConfigMapJson();
    configmap_data_.reset();
    events_.push_back({resource_version_, "DELETED", last});
    cv_.notify_all();
  }
  /// Ends every open watch stream (as an apiserver restart or a load balancer would).
  void DropWatches() {
    std::lock_guard lock(mu_);
    ++drop_generation_;
    cv_.notify_all();
  }
  /// The ConfigMap changes and etcd compacts past the change before any watch delivered it:
  /// open watches get 410 Gone (reason Expired) in an ERROR event instead of the change and end,
  /// and so does every later watch from an older resourceVersion.
  void ChangeConfigMapAndCompact(std::map<std::string, std::string> data) {
    std::lock_guard lock(mu_);
    configmap_data_ = std::move(data);
    ++resource_version_;
    events_.push_back({resource_version_, "MODIFIED", ConfigMapJson()});
    compacted_rv_ = resource_version_;
    cv_.notify_all();
  }
  /// Sends `line` (plus a newline) as it is on every open watch: malformed-event tests.
  void SendRawWatchLine(std::string line) {
    std::lock_guard lock(mu_);
    raw_lines_.push_back(std::move(line) + "\n");
    cv_.notify_all();
  }
  /// Sends a BOOKMARK (current resourceVersion) on every watch that allowed bookmarks.
  void SendBookmark() {
    std::lock_guard lock(mu_);
    ++bookmark_generation_;
    cv_.notify_all();
  }
  int resource_version() const {
    std::lock_guard lock(mu_);
    return resource_version_;
  }
  /// Watches currently streaming.
  int open_watches() const {
    std::lock_guard lock(mu_);
    return open_watches_;
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
  std::atomic<int> configmap_gets{0};  // GETs and lists
  std::atomic<int> watches{0};         // watch requests (including ones answered 410)
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

  // The object as the API serves it (mu_ held).
  nlohmann::json ConfigMapJson() const {
    return {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata",
         {{"name", "extension-apiserver-authentication"},
          {"namespace", "kube-system"},
          {"uid", "5b1d7c3e-0000-4000-8000-000000000001"},
          {"resourceVersion", std::to_string(resource_version_)}}},
        {"data", configmap_data_ ? nlohmann::json(*configmap_data_) : nlohmann::json::object()}};
  }

  static bool SelectsOurs(const httplib::Request& req) {
    const std::string fs = req.get_param_value("fieldSelector");
    return fs.empty() || fs == "metadata.name=extension-apiserver-authentication" ||
           fs == "metadata.name==extension-apiserver-authentication";
  }

  static std::string Line(const std::string& type, const nlohmann::json& object) {
    return nlohmann::json{{"type", type}, {"object", object}}.dump() + "\n";
  }

  struct WatchState {
    int sent_rv = 0;
    int generation = 0;
    int bookmarks = 0;
    bool bookmarks_allowed = false;
    bool selects = true;
    bool opened = false;
    std::size_t raw_sent = 0;
    std::chrono::steady_clock::time_point deadline;
  };

  // GET ...?watch=1: as kube-apiserver does, 200 with a chunked stream of JSON event lines.
  void Watch(const httplib::Request& req, httplib::Response& res) {
    ++watches;
    auto st = std::make_shared<WatchState>();
    int seconds = 1800;
    if (req.has_param("timeoutSeconds")) {
      seconds = std::atoi(req.get_param_value("timeoutSeconds").c_str());
    }
    st->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    st->bookmarks_allowed = req.get_param_value("allowWatchBookmarks") == "true";
    st->selects = SelectsOurs(req);
    const std::string rv = req.get_param_value("resourceVersion");
    {
      std::lock_guard lock(mu_);
      st->generation = drop_generation_;
      st->raw_sent = raw_lines_.size();
      st->bookmarks = bookmark_generation_;
      if (rv.empty() || rv == "0") {
        // "Any" resourceVersion: the current state as synthetic ADDED events, then changes.
        st->sent_rv = -resource_version_;  // negative: send the synthetic ADDED first
      } else {
        st->sent_rv = std::atoi(rv.c_str());
      }
    }
    res.status = 200;
    res.set_chunked_content_provider(
        "application/json",
        [this, st](std::size_t, httplib::DataSink& sink) {
          std::string out;
          bool end = false;
          {
            std::unique_lock lock(mu_);
            if (!st->opened) {
              st->opened = true;
              ++open_watches_;
            }
            if (st->sent_rv < 0) {
              st->sent_rv = -st->sent_rv;
              if (configmap_data_ && st->selects) out += Line("ADDED", ConfigMapJson());
            }
            auto ready = [&] {
              return stopping_ || drop_generation_ != st->generation ||
                     std::chrono::steady_clock::now() >= st->deadline ||
                     (st->bookmarks_allowed && bookmark_generation_ != st->bookmarks) ||
                     st->raw_sent < raw_lines_.size() ||
                     (!events_.empty() && events_.back().rv > st->sent_rv);
            };
            // Short waits: the server checks for shutdown between calls.
            if (out.empty()) cv_.wait_for(lock, std::chrono::milliseconds(50), ready);
            // Checked on every call, before any event: a compaction past what this watch has
            // seen ends it, whether it just started or was open.
            if (st->sent_rv < compacted_rv_) {
              nlohmann::json status = {
                  {"kind", "Status"},
                  {"apiVersion", "v1"},
                  {"metadata", nlohmann::json::object()},
                  {"status", "Failure"},
                  {"message", "too old resource version: " + std::to_string(st->sent_rv) + " (" +
                                  std::to_string(compacted_rv_) + ")"},
                  {"reason", "Expired"},
                  {"code", 410}};
              out = Line("ERROR", status);
              end = true;
            } else if (stopping_ || drop_generation_ != st->generation ||
                       std::chrono::steady_clock::now() >= st->deadline) {
              end = true;
            } else {
              for (const auto& e : events_) {
                if (e.rv > st->sent_rv && st->selects) out += Line(e.type, e.object);
              }
              for (; st->raw_sent < raw_lines_.size(); ++st->raw_sent)
                out += raw_lines_[st->raw_sent];
              if (!events_.empty()) st->sent_rv = std::max(st->sent_rv, events_.back().rv);
              if (st->bookmarks_allowed && bookmark_generation_ != st->bookmarks) {
                st->bookmarks = bookmark_generation_;
                out +=
                    Line("BOOKMARK",
                         {{"kind", "ConfigMap"},
                          {"apiVersion", "v1"},
                          {"metadata", {{"resourceVersion", std::to_string(resource_version_)}}}});
                st->sent_rv = std::max(st->sent_rv, resource_version_);
              }
            }
          }
          if (!out.empty()) sink.write(out.data(), out.size());
          if (end) sink.done();
          return true;
        },
        [this, st](bool) {
          std::lock_guard lock(mu_);
          if (st->opened) --open_watches_;
        });
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
  struct Event {
    int rv;
    std::string type;
    nlohmann::json object;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::optional<std::map<std::string, std::string>> configmap_data_;
  int resource_version_ = 100;
  std::vector<Event> events_;
  std::vector<std::string> raw_lines_;
  int compacted_rv_ = 0;
  int drop_generation_ = 0;
  int bookmark_generation_ = 0;
  int open_watches_ = 0;
  std::map<std::string, TokenUser> tokens_;
  std::vector<AccessRule> rules_;
  nlohmann::json last_sar_;
};

}  // namespace kpiscale::testing
