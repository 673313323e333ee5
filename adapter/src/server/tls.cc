#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "kpiscale/adapter/server.h"

namespace kpiscale::adapter {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

absl::Status AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return absl::InternalError(absl::StrCat("bad extension ", value));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return absl::InternalError("X509_add_ext failed");
  return absl::OkStatus();
}

}  // namespace

absl::Status EnsureSelfSignedCertificate(const std::string& cert_path, const std::string& key_path,
                                         const std::vector<std::string>& hosts) {
  std::error_code ec;
  if (std::filesystem::exists(cert_path, ec) && std::filesystem::exists(key_path, ec)) {
    return absl::OkStatus();
  }
  for (const auto& p : {cert_path, key_path}) {
    const auto dir = std::filesystem::path(p).parent_path();
    if (!dir.empty()) {
      std::filesystem::create_directories(dir, ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
      }
    }
  }
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(EVP_EC_gen("P-256"));
  if (!key) return absl::InternalError("EC key generation failed");
  std::unique_ptr<X509, X509Deleter> cert(X509_new());
  if (!cert) return absl::InternalError("X509_new failed");
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  serial_bytes[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  const std::string cn = absl::StrCat("localhost@", std::time(nullptr));
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san = "DNS:localhost,IP:127.0.0.1,IP:::1";
  for (const auto& h : hosts) {
    if (h.empty() || h == "localhost" || h == "127.0.0.1") continue;
    const bool ip = h.find_first_not_of("0123456789.:") == std::string::npos;
    absl::StrAppend(&san, ",", ip ? "IP:" : "DNS:", h);
  }
  if (auto st = AddExtension(cert.get(), NID_subject_alt_name, san); !st.ok()) return st;
  if (auto st = AddExtension(cert.get(), NID_basic_constraints, "critical,CA:FALSE"); !st.ok()) {
    return st;
  }
  if (auto st = AddExtension(cert.get(), NID_key_usage, "critical,digitalSignature"); !st.ok()) {
    return st;
  }
  if (auto st = AddExtension(cert.get(), NID_ext_key_usage, "serverAuth"); !st.ok()) return st;
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) {
    return absl::InternalError("X509_sign failed");
  }
  {
    const std::string tmp = key_path + ".tmp";
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "w"));
    if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
    ::chmod(tmp.c_str(), 0600);
    if (PEM_write_PrivateKey(f.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
      return absl::InternalError("PEM_write_PrivateKey failed");
    }
    f.reset();
    std::filesystem::rename(tmp, key_path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", key_path));
  }
  {
    const std::string tmp = cert_path + ".tmp";
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(tmp.c_str(), "w"));
    if (!f) return absl::UnavailableError(absl::StrCat("cannot write ", tmp));
    if (PEM_write_X509(f.get(), cert.get()) != 1) {
      return absl::InternalError("PEM_write_X509 failed");
    }
    f.reset();
    std::filesystem::rename(tmp, cert_path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", cert_path));
  }
  return absl::OkStatus();
}

}  // namespace kpiscale::adapter
