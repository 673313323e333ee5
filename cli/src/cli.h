#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace kpiscale::cli {

/// Runs the `kpiscale` command with `args` (without the program name), writing to `out`/`err`.
/// Returns the process exit status. Thread-safety: not thread-safe (CLI11 parse state).
int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// main(): Run over argv with std::cout/std::cerr.
int Main(int argc, char** argv);

}  // namespace kpiscale::cli
