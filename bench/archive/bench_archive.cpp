// What bench/pack.sh times against GNU tar | zstd: ephemera's own walk + pack, and
// verify + unpack, on a directory, without a store in between.
//
//   bench_archive pack DIR OUT.tar.zst [LEVEL]   walk DIR (rule "DIR" relative to its parent), pack
//   bench_archive unpack IN.tar.zst DEST         verify the digest, unpack every entry below DEST
#include "archive/archive.hpp"
#include "rules/rules.hpp"
#include "rules/walk.hpp"
#include "session/layout.hpp"
#include "util/fs.hpp"
#include "util/memory.hpp"
#include "util/sha256.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

using namespace ephemera;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  util::tune_allocator(); // as ephemera's main does
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_archive pack DIR OUT [LEVEL] | unpack IN DEST\n");
    return 2;
  }
  try {
    std::string verb = argv[1];
    if (verb == "pack") {
      fs::path dir = fs::absolute(argv[2]).lexically_normal();
      rules::Anchors anchors;
      anchors.work = dir.parent_path().string();
      anchors.home = anchors.work;
      auto set = rules::RuleSet::compile({rules::parse_rule(dir.filename().string())});
      auto walked = rules::walk(set, anchors);
      auto items = session::pack_items(walked, set, anchors); // as a save makes them
      archive::PackOptions o;
      if (argc > 4) {
        o.level = std::atoi(argv[4]);
      }
      auto r = archive::pack(items, argv[3], o);
      util::write_file_atomic(std::string(argv[3]) + ".sha256", r.sha256 + "\n");
      std::printf("%llu files %llu bytes -> %llu compressed in %.2f s\n",
                  static_cast<unsigned long long>(r.files), static_cast<unsigned long long>(r.unpacked_bytes),
                  static_cast<unsigned long long>(r.compressed_bytes), r.seconds);
    } else if (verb == "unpack") {
      fs::path dest = fs::absolute(argv[3]);
      archive::UnpackOptions o;
      // The digest pack wrote beside the archive, as a restore has it from the manifest.
      auto sidecar = util::read_file_if_exists(std::string(argv[2]) + ".sha256");
      o.expected_sha256 = sidecar ? sidecar->substr(0, 64) : util::sha256_file_hex(argv[2]);
      o.expected_size = fs::file_size(argv[2]);
      o.max_unpacked_bytes = ~0ULL;
      o.resolve = [dest](std::string_view name, archive::EntryType) -> std::optional<archive::Destination> {
        if (name.substr(0, 5) != "work/") {
          return std::nullopt;
        }
        return archive::Destination{dest, std::string(name.substr(5))};
      };
      auto r = archive::unpack(argv[2], o);
      std::printf("%llu files %llu bytes\n", static_cast<unsigned long long>(r.files),
                  static_cast<unsigned long long>(r.bytes));
    } else {
      std::fprintf(stderr, "unknown verb %s\n", verb.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_archive: %s\n", e.what());
    return 1;
  }
  return 0;
}
