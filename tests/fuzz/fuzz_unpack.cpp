// Archive extraction with confinement: whatever the bytes (the digest matches, as a
// manifest that lies would claim), unpack either succeeds inside the destination or
// throws ArchiveError; nothing is ever written beside the destination, and a refused
// archive leaves the destination empty; no staging name and no journal outlive an unpack.
#include "archive/archive.hpp"
#include "util/error.hpp"
#include "util/sha256.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path base = fs::path("/dev/shm") / ("ephemera-fuzz-unpack-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "dest");
  fs::path file = base / "a.tar.zst";
  std::string bytes(reinterpret_cast<const char*>(data), size);
  std::ofstream(file, std::ios::binary) << bytes;
  ephemera::archive::UnpackOptions o;
  o.expected_sha256 = ephemera::util::sha256_hex(bytes);
  o.expected_size = bytes.size();
  o.max_unpacked_bytes = 1 << 20;
  o.journal = base / "journal"; // must be gone afterwards, whatever happened
  fs::path dest = base / "dest";
  o.resolve = [dest](std::string_view name,
                     ephemera::archive::EntryType) -> std::optional<ephemera::archive::Destination> {
    if (name.substr(0, 5) != "work/" || name.find("secret") != std::string_view::npos) {
      return std::nullopt;
    }
    return ephemera::archive::Destination{dest, std::string(name.substr(5))};
  };
  bool refused = false;
  try {
    ephemera::archive::unpack(file, o);
  } catch (const ephemera::util::ArchiveError&) {
    refused = true;
  }
  for (const auto& e : fs::directory_iterator(base)) {
    auto n = e.path().filename();
    if (n != "dest" && n != "a.tar.zst") {
      __builtin_trap(); // something was written beside the destination
    }
  }
  for (auto it = fs::recursive_directory_iterator(dest); it != fs::recursive_directory_iterator(); ++it) {
    if (refused) {
      __builtin_trap(); // a refused archive left something behind
    }
    if (it->path().filename().string().find("secret") != std::string::npos) {
      __builtin_trap(); // an entry the rules refuse was written
    }
    if (it->path().filename().string().rfind(".ephemera-", 0) == 0) {
      __builtin_trap(); // a staging name outlived the unpack
    }
  }
  fs::remove_all(base);
  return 0;
}
