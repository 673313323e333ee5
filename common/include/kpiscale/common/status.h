#pragma once

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

/// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define KPISCALE_RETURN_IF_ERROR(expr)                          \
  do {                                                          \
    if (absl::Status kpiscale_st = (expr); !kpiscale_st.ok()) { \
      return kpiscale_st;                                       \
    }                                                           \
  } while (false)

#define KPISCALE_STATUS_CONCAT_INNER(a, b) a##b
#define KPISCALE_STATUS_CONCAT(a, b) KPISCALE_STATUS_CONCAT_INNER(a, b)

/// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the
/// value into `lhs` (which may be a declaration such as `auto x`).
#define KPISCALE_ASSIGN_OR_RETURN(lhs, rexpr) \
  KPISCALE_ASSIGN_OR_RETURN_IMPL(KPISCALE_STATUS_CONCAT(kpiscale_sor_, __LINE__), lhs, rexpr)

#define KPISCALE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                   \
  if (!tmp.ok()) {                                      \
    return std::move(tmp).status();                     \
  }                                                     \
  lhs = std::move(tmp).value()

/// Always-on check for unrecoverable start-up states; prints and aborts.
#define KPISCALE_CHECK(cond)                                                                   \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "KPISCALE_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)

/// Debug-only invariant check.
#ifdef NDEBUG
#define KPISCALE_ASSERT(cond) \
  do {                        \
  } while (false)
#else
#define KPISCALE_ASSERT(cond) KPISCALE_CHECK(cond)
#endif

namespace kpiscale::common {

/// The HTTP status code a Status maps to at an API boundary (house style rule 4).
int HttpCodeFor(const absl::Status& status);

}  // namespace kpiscale::common
