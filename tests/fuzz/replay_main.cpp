// A standalone main() for the fuzz harnesses when they are built without libFuzzer (g++, the
// normal and AddressSanitizer builds): it runs LLVMFuzzerTestOneInput once over every file
// under the directories (or files) it is given, so each CTest `fuzz.<name>` replays the checked-in
// corpus, crashers included, on every build. It finds nothing new; scripts/fuzz does that.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// Every regular file under `arg` (or `arg` itself), sorted so runs are reproducible.
std::vector<std::filesystem::path> inputs_of(const std::filesystem::path& arg) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  if (std::filesystem::is_directory(arg, ec)) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(arg, ec)) {
      if (e.is_regular_file()) out.push_back(e.path());
    }
  } else if (std::filesystem::is_regular_file(arg, ec)) {
    out.push_back(arg);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t ran = 0;
  for (int i = 1; i < argc; ++i) {
    for (const auto& path : inputs_of(argv[i])) {
      std::ifstream in(path, std::ios::binary);
      if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
        return 1;
      }
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // Printed before the run: when a harness aborts, the last line names the input.
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
      // A copy in a buffer of exactly its size, as libFuzzer passes it, so ASan sees overreads.
      std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
      LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
      ++ran;
    }
  }
  // No input at all means a wrong corpus path, not a pass.
  if (ran == 0) {
    std::fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  std::printf("replay: %zu inputs, no failure\n", ran);
  return 0;
}
