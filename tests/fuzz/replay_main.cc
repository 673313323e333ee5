// Replays a fuzz target over its seed corpus and a fixed number of deterministic mutations of the
// seeds, so that every build (including ASan+UBSan with gcc) exercises the target without
// libFuzzer. Usage: <binary> CORPUS_DIR [MUTATIONS]
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> ReadCorpus(const std::filesystem::path& dir) {
  std::vector<std::string> seeds;
  if (!std::filesystem::is_directory(dir)) return seeds;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    seeds.push_back(std::move(bytes).str());
  }
  return seeds;
}

// One random edit: flip, insert, erase, duplicate a slice, or splice with another seed.
std::string Mutate(const std::vector<std::string>& seeds, std::mt19937_64& rng) {
  std::string input = seeds[rng() % seeds.size()];
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = input.empty() ? 0 : rng() % (input.size() + 1);
    switch (rng() % 6) {
      case 0:
        if (!input.empty()) input[pos % input.size()] ^= static_cast<char>(1u << (rng() % 8));
        break;
      case 1:
        input.insert(pos, 1, static_cast<char>(rng() % 256));
        break;
      case 2:
        if (!input.empty()) input.erase(pos % input.size(), 1 + rng() % 4);
        break;
      case 3:
        if (!input.empty()) {
          const std::size_t from = rng() % input.size();
          input.insert(pos, input.substr(from, 1 + rng() % 16));
        }
        break;
      case 4: {
        const std::string& other = seeds[rng() % seeds.size()];
        if (!other.empty()) input.insert(pos, other.substr(rng() % other.size(), 1 + rng() % 32));
        break;
      }
      default:
        if (!input.empty()) input[pos % input.size()] = "\0\xff:=,()!\r\n "[rng() % 12];
        break;
    }
  }
  return input;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> seeds = ReadCorpus(argv[1]);
  if (seeds.empty()) {
    std::fprintf(stderr, "no seeds in %s\n", argv[1]);
    return 2;
  }
  const long mutations = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 10000;
  for (const std::string& seed : seeds) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
  }
  std::mt19937_64 rng(0x6b706973);
  for (long i = 0; i < mutations; ++i) {
    const std::string input = Mutate(seeds, rng);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  }
  std::printf("replayed %zu seeds and %ld mutations\n", seeds.size(), mutations);
  return 0;
}
