#include "cas/gc.hpp"

#include "store/keys.hpp"
#include "store/manifest.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>

namespace ephemera::cas {

namespace {

// Indexes no manifest names that gc reads in one scope (a save in progress writes one): a
// store writer who plants more only keeps that scope's packs, never makes gc read without end.
constexpr size_t k_max_unnamed_reads = 32;
constexpr uint64_t k_max_unnamed_bytes = 256ULL << 20;

Scope scope_of(const store::CasKey& k) {
  return {k.repository, k.target, k.name, k.trusted, k.trusted ? "" : k.origin};
}

// The pack keys of the index at key, read and checked against sha256 and size; throws
// util::Error saying why it cannot be read, StoreError(transient...) when the store failed.
std::vector<std::string> read_one(store::Backend& backend, const Scope& scope,
                                  const std::string& key, const std::string& sha256,
                                  uint64_t size) {
  try {
    return pack_keys(scope, load_index(backend, scope, key, sha256, size));
  } catch (const util::StoreError& e) {
    if (e.kind() == util::StoreErrorKind::not_found ||
        e.kind() == util::StoreErrorKind::permanent) {
      throw util::Error(e.what());
    }
    throw;
  }
}

} // namespace

std::vector<std::string> pack_keys(const Scope& scope, const Index& index) {
  std::vector<std::string> out;
  out.reserve(index.packs.size());
  std::string packs = scope.prefix() + "packs/";
  for (const PackRef& p : index.packs) {
    out.push_back(pack_key(packs, p.id));
  }
  return out;
}

void read_indexes(store::Backend& backend, store::GcInventory& inventory, double now,
                  double grace_seconds) {
  std::map<std::string, const store::ObjectInfo*> listed;
  for (const auto& o : inventory.cas_listing) {
    if (auto k = store::parse_cas_key(o.key); k && k->index) {
      listed.emplace(o.key, &o);
    }
  }
  auto read = [&](const std::string& key, const Scope& scope, const std::string& sha256,
                  uint64_t size) {
    store::GcInventory::Content c;
    try {
      c.packs = read_one(backend, scope, key, sha256, size);
    } catch (const util::StoreError&) {
      throw;
    } catch (const util::Error& e) {
      c.why = e.what();
      util::log::warn("gc: index {} could not be read: {}; no pack of its scope is deleted",
                      util::printable(key), c.why);
    }
    inventory.indexes[key] = std::move(c);
  };
  std::vector<const store::Manifest*> manifests;
  for (const auto& m : inventory.saves) {
    manifests.push_back(&m);
  }
  for (const auto& r : inventory.refused) {
    manifests.push_back(&r.manifest);
  }
  for (const auto* m : manifests) {
    if (m->content != store::k_content_cas || listed.count(m->archive) == 0 ||
        inventory.indexes.count(m->archive) != 0) {
      continue;
    }
    read(m->archive,
         Scope{m->repository, m->target, m->name, m->trusted, m->trusted ? "" : m->origin},
         m->sha256, m->compressed_size);
  }
  std::map<std::string, std::pair<size_t, uint64_t>> spent; // per scope: indexes, bytes
  for (const auto& [key, o] : listed) {
    if (inventory.indexes.count(key) != 0 || now - static_cast<double>(o->mtime) >= grace_seconds) {
      continue;
    }
    auto k = store::parse_cas_key(key);
    auto& [reads, bytes] = spent[k->scope_id];
    if (reads >= k_max_unnamed_reads || o->size > k_max_unnamed_bytes - bytes) {
      inventory.indexes[key].why =
          fmt::format("not read: more than {} indexes or {} bytes no manifest names in its scope",
                      k_max_unnamed_reads, k_max_unnamed_bytes);
      continue;
    }
    ++reads;
    bytes += std::min(o->size, k_max_index_object);
    read(key, scope_of(*k), k->sha256, o->size);
  }
}

PackRecheck::PackRecheck(store::Backend& backend, const store::GcInventory& inventory)
    : m_backend(backend) {
  for (const auto& o : inventory.cas_listing) {
    m_known.emplace(o.key, true);
  }
}

bool PackRecheck::operator()(const std::string& key) {
  auto k = store::parse_cas_key(key);
  if (!k || k->index) {
    return false;
  }
  Scope scope = scope_of(*k);
  for (const auto& o : m_backend.list(scope.prefix() + "index/")) {
    auto ik = store::parse_cas_key(o.key);
    if (!ik || !ik->index || ik->scope_id != k->scope_id || m_known.count(o.key) != 0) {
      continue;
    }
    auto it = m_read.find(o.key);
    if (it == m_read.end() && m_read.size() >= k_max_unnamed_reads) {
      return false; // more new indexes than a gc reads: the pack is not proven dead
    }
    if (it == m_read.end()) {
      std::optional<std::vector<std::string>> packs;
      try {
        packs = read_one(m_backend, scope, o.key, ik->sha256, o.size);
      } catch (const util::StoreError&) {
        throw;
      } catch (const util::Error& e) {
        util::log::warn("gc: index {}, written while gc ran, could not be read: {}; no pack of "
                        "its scope is deleted",
                        util::printable(o.key), e.what());
      }
      it = m_read.emplace(o.key, std::move(packs)).first;
    }
    if (!it->second ||
        std::find(it->second->begin(), it->second->end(), key) != it->second->end()) {
      return false;
    }
  }
  return true;
}

std::vector<std::pair<std::string, uint64_t>> held_objects(store::Backend& backend,
                                                           const store::Manifest& m) {
  std::vector<std::pair<std::string, uint64_t>> out{{m.archive, m.compressed_size}};
  if (m.content != store::k_content_cas) {
    return out;
  }
  Scope scope{m.repository, m.target, m.name, m.trusted, m.trusted ? "" : m.origin};
  try {
    Index index = load_index(backend, scope, m.archive, m.sha256, m.compressed_size);
    std::string packs = scope.prefix() + "packs/";
    for (const PackRef& p : index.packs) {
      out.emplace_back(pack_key(packs, p.id), p.size);
    }
  } catch (const util::StoreError& e) {
    if (e.kind() != util::StoreErrorKind::not_found &&
        e.kind() != util::StoreErrorKind::permanent) {
      throw;
    }
    util::log::warn("index {} could not be read: {}; its packs are not counted",
                    util::printable(m.archive), e.what());
  } catch (const util::Error& e) {
    util::log::warn("index {} could not be read: {}; its packs are not counted",
                    util::printable(m.archive), e.what());
  }
  return out;
}

void HeldBytes::add(const std::vector<std::pair<std::string, uint64_t>>& objects) {
  for (const auto& [key, size] : objects) {
    if (m_objects.emplace(key, size).second) {
      m_bytes = size > UINT64_MAX - m_bytes ? UINT64_MAX : m_bytes + size;
    }
  }
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
