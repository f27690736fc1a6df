// Replays a fuzz corpus without libFuzzer: every file in the given folders (or files) is fed
// to LLVMFuzzerTestOneInput once. Used by ordinary (and sanitizer) builds in CI.
//   replay [--min-accepted N] DIR|FILE...
// --min-accepted: the target counts inputs it fully accepted (a valid seed decrypted, a valid
// request parsed) in MultiendFuzzAccepted(); fewer than N fails the replay, so a corpus whose
// seeds stopped being valid (and so exercise nothing past the first check) is noticed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" std::size_t MultiendFuzzAccepted() __attribute__((weak));

int main(int argc, char** argv) {
  std::size_t n = 0;
  long min_accepted = -1;
  int first = 1;
  if (argc > 2 && std::string_view(argv[1]) == "--min-accepted") {
    min_accepted = std::atol(argv[2]);
    first = 3;
  }
  for (int i = first; i < argc; ++i) {
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(argv[i])) {
      for (const auto& e : std::filesystem::directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.emplace_back(argv[i]);
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++n;
    }
  }
  std::printf("replayed %zu inputs\n", n);
  if (min_accepted >= 0) {
    const std::size_t ok = MultiendFuzzAccepted ? MultiendFuzzAccepted() : 0;
    std::printf("%zu accepted (at least %ld wanted)\n", ok, min_accepted);
    if (ok < static_cast<std::size_t>(min_accepted)) return 1;
  }
  return n > 0 ? 0 : 1;
}
