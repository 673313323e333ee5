#include "kpiscale/sidecar/routes.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace kpiscale::sidecar {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::Parse(std::string_view text) {
  RouteTable table;
  table.names_.clear();
  int line_no = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    const std::size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    Route route;
    const std::size_t space = line.find(' ');
    std::string_view path = line;
    if (space != std::string_view::npos) {
      route.method = std::string(line.substr(0, space));
      path = Trim(line.substr(space + 1));
    }
    if (path.empty() || path.front() != '/' || path.find(' ') != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "routes line ", line_no, ": a template starts with '/': ", std::string(line)));
    }
    for (std::string_view seg : SplitPath(path)) {
      if (route.prefix) {
        return absl::InvalidArgumentError(
            absl::StrCat("routes line ", line_no, ": '*' must be the last segment"));
      }
      if (seg == "*") {
        route.prefix = true;
      } else {
        route.segments.emplace_back(seg);
      }
    }
    if (table.routes_.size() >= kMaxRoutes) {
      return absl::InvalidArgumentError(absl::StrCat("routes: more than ", kMaxRoutes,
                                                     " templates (the label must stay bounded)"));
    }
    table.routes_.push_back(std::move(route));
    table.names_.emplace_back(line);
  }
  table.names_.emplace_back("other");
  return table;
}

absl::StatusOr<RouteTable> RouteTable::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("routes file ", path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str());
}

std::size_t RouteTable::Match(std::string_view method, std::string_view target) const {
  if (routes_.empty()) return 0;
  const std::size_t q = target.find_first_of("?#");
  const std::vector<std::string_view> segs = SplitPath(target.substr(0, q));
  for (std::size_t r = 0; r < routes_.size(); ++r) {
    const Route& route = routes_[r];
    if (!route.method.empty() && route.method != method) continue;
    if (route.prefix ? segs.size() < route.segments.size() : segs.size() != route.segments.size()) {
      continue;
    }
    bool ok = true;
    for (std::size_t i = 0; i < route.segments.size() && ok; ++i) {
      const std::string& t = route.segments[i];
      const bool param = t.size() >= 2 && t.front() == '{' && t.back() == '}';
      ok = param ? !segs[i].empty() : segs[i] == t;
    }
    if (ok) return r;
  }
  return routes_.size();
}

}  // namespace kpiscale::sidecar
