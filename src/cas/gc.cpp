#include "cas/gc.hpp"

#include <set>
#include <tuple>

namespace ephemera::cas {

namespace {

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

} // namespace

GcResult collect(store::Backend& backend, const Scope& scope, const std::vector<Index>& live,
                 const std::vector<std::string>& live_keys, int64_t now, int64_t grace_seconds) {
  GcResult result;
  std::set<std::string> referenced;
  std::string packs = scope.prefix() + "packs/";
  for (const Index& index : live) {
    for (const PackRef& p : index.packs) {
      referenced.insert(pack_key(packs, p.id));
    }
  }
  result.live_packs = referenced.size();
  std::set<std::string> live_index(live_keys.begin(), live_keys.end());
  auto sweep = [&](const std::string& prefix, std::string_view tail,
                   const std::set<std::string>& keep) {
    for (const auto& o : backend.list(prefix)) {
      if (!ends_with(o.key, tail) || keep.count(o.key) != 0) {
        continue;
      }
      if (now - o.mtime < grace_seconds) {
        ++result.kept_young;
        continue;
      }
      backend.remove(o.key);
      result.removed.push_back(o.key);
      result.removed_bytes += o.size;
    }
  };
  // Indexes first: a pack is never gone while an index that names it is still there.
  sweep(scope.prefix() + "index/", ".idx", live_index);
  sweep(packs, ".pack", referenced);
  // Pieces of uploads a killed save left (a local store's temporary files, S3's unfinished
  // multipart uploads).
  if (auto* cleaner = backend.leftover_cleaner()) {
    for (const auto& l : cleaner->leftovers(scope.prefix())) {
      if (now - l.mtime >= grace_seconds) {
        cleaner->remove_leftover(l);
        result.removed.push_back(l.name());
        result.removed_bytes += l.size;
      }
    }
  }
  return result;
}

bool should_rebase(const Index& base, uint64_t pack_bytes) {
  std::set<std::tuple<uint32_t, uint32_t, uint32_t>> used;
  uint64_t live = 0;
  for (const Entry& e : base.entries) {
    for (const ChunkRef& c : e.chunks) {
      if (used.emplace(c.pack, c.frame, c.offset).second) {
        live += c.length;
      }
    }
  }
  uint64_t held = 0;
  for (const PackRef& p : base.packs) {
    for (const Frame& f : p.frames) {
      held += f.size;
    }
  }
  uint64_t full_packs = pack_bytes == 0 ? 1 : (live + pack_bytes - 1) / pack_bytes;
  return live * 2 < held || base.packs.size() > full_packs + 8;
}

} // namespace ephemera::cas
