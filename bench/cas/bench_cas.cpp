// What bench/incremental.sh times against today's single archive: a content-addressed save
// of a directory (against the index of the previous one), and a verified restore of it.
//
//   bench_cas save STORE DIR [BASE]     walk DIR (rule "DIR" relative to its parent), save it;
//                                       BASE is "key sha256 size" of the previous index
//   bench_cas restore STORE INDEX DEST  INDEX as "key sha256 size"; restore below DEST
//   bench_cas fetch STORE INDEX         download every pack of INDEX whole, keep nothing: the
//                                       download alone of what a restore of it reads
//   bench_cas mirror STORE INDEX DEST   copy INDEX and its packs into the store DEST (a
//                                       directory), for a restore of the same bytes locally
// Prints one line of key=value figures. EPHEMERA_CAS_SIZES="whole,min,avg,max" (bytes)
// overrides the chunk sizes, for measuring them. EPHEMERA_CAS_SEEN=FILE: the record of the
// files a restore wrote or a save read (cas::SeenFiles), written by both and read by a save,
// as the state dir would keep it between a job's restore and its save.
#include "cas/cas.hpp"
#include "rules/rules.hpp"
#include "rules/walk.hpp"
#include "store/url.hpp"
#include "util/fs.hpp"
#include "util/memory.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <sstream>
#include <string>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

const cas::Scope k_scope{"bench", "bench", "bench", true, ""};

std::vector<archive::PackItem> walk(const fs::path& dir) {
  rules::Anchors anchors;
  anchors.work = dir.parent_path().string();
  anchors.home = anchors.work;
  auto set = rules::RuleSet::compile({rules::parse_rule(dir.filename().string())});
  auto walked = rules::walk(set, anchors);
  std::string host = anchors.host_path(rules::Anchor::work, "");
  if (host.back() != '/') {
    host += '/';
  }
  std::vector<archive::PackItem> items;
  for (const auto& e : walked.entries) {
    archive::PackItem i;
    i.name = "work/" + e.rel;
    i.source = host + e.rel;
    i.type = e.type;
    i.size = e.size;
    i.mode = e.mode;
    i.mtime_ns = e.mtime_ns;
    i.link_target = e.link_target;
    items.push_back(std::move(i));
  }
  return items;
}

cas::Index load(store::Backend& b, const std::string& spec) {
  std::istringstream in(spec);
  std::string key, sha;
  uint64_t size = 0;
  in >> key >> sha >> size;
  return cas::load_index(b, k_scope, key, sha, size);
}

} // namespace

int main(int argc, char** argv) {
  util::tune_allocator();
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_cas save STORE DIR [BASE] | restore STORE INDEX DEST\n");
    return 2;
  }
  try {
    std::string verb = argv[1];
    auto backend = store::open_backend(argv[2]);
    if (verb == "save") {
      cas::SaveOptions o;
      if (const char* s = std::getenv("EPHEMERA_CAS_SIZES")) {
        std::sscanf(s, "%zu,%zu,%zu,%zu", &o.sizes.whole_below, &o.sizes.min, &o.sizes.avg,
                    &o.sizes.max);
      }
      std::optional<cas::Index> base;
      if (argc > 4) {
        base = load(*backend, argv[4]);
      }
      const char* seen_file = std::getenv("EPHEMERA_CAS_SEEN");
      cas::SeenFiles seen, record;
      if (seen_file != nullptr) {
        if (auto bytes = util::read_file_if_exists(seen_file)) {
          seen = cas::parse_seen(*bytes);
        }
        o.seen = &seen;
        o.record = &record;
      }
      auto items = walk(fs::absolute(argv[3]).lexically_normal());
      auto r = cas::save(*backend, k_scope, items, base ? &*base : nullptr, o);
      if (seen_file != nullptr) {
        util::write_file_atomic(seen_file, cas::encode_seen(record));
      }
      std::printf("index='%s %s %llu' uploaded=%llu packs=%u pack_bytes=%llu index_bytes=%llu "
                  "new_bytes=%llu bytes=%llu files=%llu files_read=%llu seconds=%.3f\n",
                  r.index_key.c_str(), r.index_sha256.c_str(),
                  static_cast<unsigned long long>(r.index_bytes),
                  static_cast<unsigned long long>(r.uploaded()), r.packs,
                  static_cast<unsigned long long>(r.pack_bytes),
                  static_cast<unsigned long long>(r.index_bytes),
                  static_cast<unsigned long long>(r.new_bytes),
                  static_cast<unsigned long long>(r.unpacked_bytes),
                  static_cast<unsigned long long>(r.files),
                  static_cast<unsigned long long>(r.files_read), r.seconds);
    } else if (verb == "fetch" || verb == "mirror") {
      auto index = load(*backend, argv[3]);
      std::unique_ptr<store::Backend> dest;
      std::string index_key;
      if (verb == "mirror") {
        if (argc < 5) {
          std::fprintf(stderr, "usage: bench_cas mirror STORE INDEX DEST\n");
          return 2;
        }
        dest = store::open_backend(argv[4]);
        std::istringstream in(argv[3]);
        in >> index_key;
        store::StringSink sink;
        backend->get(index_key, sink);
        store::StringSource source(sink.data());
        dest->put(index_key, source);
      }
      uint64_t bytes = 0;
      for (const auto& p : index.packs) {
        std::string key = cas::pack_key(k_scope.prefix() + "packs/", p.id);
        store::StringSink sink(p.size);
        store::SizedSink sized(sink, p.size);
        backend->get(key, sized);
        bytes += sink.data().size();
        if (dest) {
          store::StringSource source(sink.data());
          dest->put(key, source);
        }
      }
      std::printf("packs=%zu fetched=%llu\n", index.packs.size(),
                  static_cast<unsigned long long>(bytes));
    } else if (verb == "restore") {
      auto index = load(*backend, argv[3]);
      fs::path dest = fs::absolute(argv[4]);
      cas::RestoreOptions o;
      o.unpack.max_unpacked_bytes = ~0ULL;
      o.unpack.resolve = [dest](std::string_view name,
                                archive::EntryType) -> std::optional<archive::Destination> {
        if (name.substr(0, 5) != "work/") {
          return std::nullopt;
        }
        return archive::Destination{dest, std::string(name.substr(5))};
      };
      const char* seen_file = std::getenv("EPHEMERA_CAS_SEEN");
      cas::SeenFiles record;
      if (seen_file != nullptr) {
        o.record = &record;
      }
      auto r = cas::restore(*backend, k_scope, index, o);
      if (seen_file != nullptr) {
        util::write_file_atomic(seen_file, cas::encode_seen(record));
      }
      std::printf("files=%llu bytes=%llu fetched=%llu\n",
                  static_cast<unsigned long long>(r.unpacked.files),
                  static_cast<unsigned long long>(r.unpacked.bytes),
                  static_cast<unsigned long long>(r.fetched_bytes));
    } else {
      std::fprintf(stderr, "unknown verb %s\n", verb.c_str());
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cas: %s\n", e.what());
    return 1;
  }
  return 0;
}
