#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace kpiscale::testing {

/// Output and exit status of one run of the `kpiscale` binary.
struct RunResult {
  int exit_code = -1;
  std::string out;
};

inline std::string KpiscaleBinary() { return std::string(KPISCALE_BINARY_DIR) + "/cli/kpiscale"; }

inline std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

/// Runs `kpiscale ARGS…` and collects stdout (stderr goes to `stderr_file` when given).
inline RunResult RunKpiscale(const std::vector<std::string>& args,
                             const std::string& stderr_file = "") {
  std::string cmd = Quote(KpiscaleBinary());
  for (const std::string& a : args) cmd += " " + Quote(a);
  cmd += stderr_file.empty() ? " 2>/dev/null" : " 2>" + Quote(stderr_file);
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// A temporary directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kpiscale-cli-test-XXXXXX";
    const char* d = mkdtemp(tmpl);
    path_ = d ? d : "";
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf " + Quote(path_)).c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace kpiscale::testing
