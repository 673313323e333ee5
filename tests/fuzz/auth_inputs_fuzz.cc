// Fuzzes the adapter's auth inputs. The first byte picks the target, the rest is the input:
//   0: AttributesFor(method, path) -> SubjectAccessReviewJson and ForbiddenMessage (any path
//      bytes, also invalid UTF-8): the review body is a JSON object naming the path/resource;
//   1: BearerToken(header): the token is a trimmed substring of the header;
//   2: ParseAuthenticationConfigMap(json) + ApplyOverrides: never throws, header names lower-case;
//   3: TokenReviewer::Review(token) against an unreachable API: never crashes, never OK.
// gcc -O2 reports a false -Wnull-dereference inside nlohmann::json's inlined accessors.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "kpiscale/adapter/auth.h"
#include "kpiscale/adapter/auth/delegated.h"
#include "kpiscale/common/clock.h"

namespace {

using namespace kpiscale;  // NOLINT

void Check(bool ok) {
  if (!ok) std::abort();
}

void Attributes(std::string_view path) {
  static const char* kMethods[] = {"GET", "POST", "DELETE", "PATCH"};
  const adapter::UserInfo user{"fuzz", "", {"system:authenticated"}, {{"k", {"v"}}}};
  const auto a = adapter::AttributesFor(kMethods[path.size() % 4], path, user);
  const auto j = nlohmann::json::parse(adapter::auth::SubjectAccessReviewJson(a), nullptr, false);
  Check(j.is_object() && j.contains("spec") && j["spec"]["user"] == "fuzz");
  Check(j["spec"].contains("resourceAttributes") != j["spec"].contains("nonResourceAttributes"));
  Check(!adapter::auth::ForbiddenMessage(a).empty());
}

void Bearer(std::string_view header) {
  const std::string_view token = adapter::auth::BearerToken(header);
  if (token.empty()) return;
  Check(token.data() >= header.data() &&
        token.data() + token.size() <= header.data() + header.size());
  Check(token.front() != ' ' && token.back() != ' ');
}

void ConfigMap(const std::string& json) {
  std::string rv;
  auto s = adapter::auth::ParseAuthenticationConfigMap(json, &rv);
  if (!s.ok()) return;
  Check(adapter::auth::ApplyOverrides({}, &*s).ok());
  for (const auto* list : {&s->username_headers, &s->group_headers, &s->extra_prefixes}) {
    for (const auto& h : *list) {
      for (char c : h) Check(!(c >= 'A' && c <= 'Z'));
    }
  }
}

void Review(const std::string& token) {
  static auto reviewer = [] {
    common::KubeConfig c;
    c.server = "https://127.0.0.1:1";  // nothing listens: every review that is sent fails fast
    common::KubeClient::Options o;
    o.max_attempts = 1;
    o.timeout = std::chrono::milliseconds(200);
    std::shared_ptr<common::KubeClient> client =
        std::move(common::KubeClient::Create(c, o)).value();
    return std::make_unique<adapter::auth::TokenReviewer>(
        client, std::vector<std::string>{"kpiscale"}, std::chrono::seconds(10), common::RealClock(),
        nullptr);
  }();
  Check(!reviewer->Review(token).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      Attributes(input);
      break;
    case 1:
      Bearer(input);
      break;
    case 2:
      ConfigMap(input);
      break;
    default:
      // Only malformed tokens (rejected before any network call) keep the replay fast.
      if (input.find_first_of(std::string("\0 \x7f\xff", 4)) != std::string::npos) Review(input);
      break;
  }
  return 0;
}
