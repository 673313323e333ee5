#include "kpiscale/adapter/auth/cert_reloader.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "kpiscale/common/logging.h"

namespace kpiscale::adapter::auth {
namespace {

struct Pair {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
  STACK_OF(X509) * chain = nullptr;
  ~Pair() {
    X509_free(cert);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
  }
};

std::string FileStamp(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ":", st.st_ino);
}

std::shared_ptr<Pair> Load(const std::string& cert_path, const std::string& key_path) {
  auto p = std::make_shared<Pair>();
  FILE* f = std::fopen(cert_path.c_str(), "r");
  if (f == nullptr) return nullptr;
  p->cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  p->chain = sk_X509_new_null();
  while (X509* x = PEM_read_X509(f, nullptr, nullptr, nullptr)) sk_X509_push(p->chain, x);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "r");
  if (f == nullptr) return nullptr;
  p->key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (p->cert == nullptr || p->key == nullptr || X509_check_private_key(p->cert, p->key) != 1) {
    return nullptr;
  }
  return p;
}

class CertReloaderImpl final : public CertReloader {
 public:
  CertReloaderImpl(std::string cert, std::string key)
      : cert_path_(std::move(cert)), key_path_(std::move(key)) {}

  absl::Status Init() {
    stamp_ = FileStamp(cert_path_) + "|" + FileStamp(key_path_);
    current_ = Load(cert_path_, key_path_);
    if (!current_) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot load the serving certificate ", cert_path_, " / ", key_path_));
    }
    checked_ = std::chrono::steady_clock::now();
    return absl::OkStatus();
  }

  int reloads() const override { return reloads_.load(); }

  static int Callback(SSL* ssl, void* arg) {
    auto* self = static_cast<CertReloaderImpl*>(arg);
    const auto pair = self->Current();
    if (!pair) return 1;  // keep what the SSL_CTX has
    return SSL_use_cert_and_key(ssl, pair->cert, pair->key, pair->chain, 1) == 1 ? 1 : 0;
  }

 private:
  std::shared_ptr<Pair> Current() {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - checked_ >= std::chrono::seconds(1)) {
      checked_ = now;
      const std::string stamp = FileStamp(cert_path_) + "|" + FileStamp(key_path_);
      if (stamp != stamp_) {
        if (auto p = Load(cert_path_, key_path_)) {
          current_ = std::move(p);
          stamp_ = stamp;
          ++reloads_;
          common::Logger(common::loggers::kAdapterAuth)
              ->info("msg=serving_certificate_reloaded cert={}", common::LogfmtValue(cert_path_));
        }
        // else: half-written or mismatched; retried on a later handshake.
      }
    }
    return current_;
  }

  std::string cert_path_, key_path_;
  std::mutex mu_;
  std::string stamp_;
  std::chrono::steady_clock::time_point checked_;
  std::shared_ptr<Pair> current_;
  std::atomic<int> reloads_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<CertReloader>> CertReloader::Install(SSL_CTX* ctx,
                                                                    const std::string& cert_path,
                                                                    const std::string& key_path) {
  auto r = std::make_unique<CertReloaderImpl>(cert_path, key_path);
  if (auto st = r->Init(); !st.ok()) return st;
  SSL_CTX_set_cert_cb(ctx, &CertReloaderImpl::Callback, r.get());
  return std::unique_ptr<CertReloader>(std::move(r));
}

}  // namespace kpiscale::adapter::auth
