#include "session/cas_transfer.hpp"

#include "store/keys.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <optional>

namespace ephemera::session {

namespace {

// Indexes a save loads to find a base it may build on, at most: each is a small object, and
// past a few refused or unreadable ones a full save costs less than looking further.
constexpr int k_max_bases_tried = 4;

// The content-addressed saves of scope that may take part in a choice (signed where signing is
// on), newest first.
std::vector<store::Manifest> saves_of_scope(store::Catalog& catalog, const cas::Scope& scope) {
  std::vector<store::Manifest> out;
  for (auto& m :
       catalog.valid_saves(catalog.stanza_saves(scope.repository, scope.target, scope.name))) {
    if (m.content == store::k_content_cas &&
        store::cas_scope_id(m.repository, m.target, m.name, m.trusted, m.origin) == scope.id()) {
      out.push_back(std::move(m));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const store::Manifest& a, const store::Manifest& b) {
    return a.later_than(b);
  });
  return out;
}

// Why a save may not build on index (loaded from key), as this job's restores found it: the
// index itself was refused, or it uses a pack whose stored bytes were. Empty when it may.
std::string why_not_base(const std::vector<StateDir::CasRefusal>& refused, const std::string& key,
                         const cas::Index* index) {
  for (const auto& r : refused) {
    if (r.key == key) {
      return fmt::format("its restore was refused here ({})", util::printable(r.reason));
    }
  }
  if (index == nullptr) {
    return "";
  }
  for (const auto& p : index->packs) {
    std::string id = cas::hex(p.id);
    for (const auto& r : refused) {
      if (!r.pack.empty() && r.pack == id) {
        return fmt::format("it uses pack {}, whose restore was refused here ({})", id,
                           util::printable(r.reason));
      }
    }
  }
  return "";
}

} // namespace

bool saves_content_addressed() {
  const char* format = std::getenv("EPHEMERA_FORMAT");
  return format == nullptr || std::string_view(format) != "archive";
}

cas::Scope save_scope(const store::Manifest& partial) {
  return {partial.repository, partial.target, partial.name, partial.trusted,
          partial.trusted ? "" : partial.origin};
}

archive::UnpackResult restore_content_addressed(store::Catalog& catalog, const store::Manifest& m,
                                                const archive::UnpackOptions& options,
                                                StateDir& state, const std::string& stanza,
                                                uint64_t& fetched) {
  cas::Scope scope{m.repository, m.target, m.name, m.trusted, m.trusted ? "" : m.origin};
  cas::RestoreOptions o;
  o.unpack = options;
  cas::SeenFiles seen;
  o.record = &seen;
  cas::RestoreResult r;
  try {
    cas::Index index =
        cas::load_index(catalog.backend(), scope, m.archive, m.sha256, m.compressed_size);
    r = cas::restore(catalog.backend(), scope, index, o);
  } catch (const util::ArchiveError& e) {
    // Refused for what the store holds: the save that follows builds neither on this index nor
    // on anything using the pack refused.
    const auto* pack = dynamic_cast<const cas::PackRefused*>(&e);
    state.add_cas_refusal(
        stanza, {scope.id(), m.archive, pack != nullptr ? cas::hex(pack->pack()) : "", e.what()});
    throw;
  }
  fetched = r.fetched_bytes + m.compressed_size;
  state.save_cas_base(stanza,
                      {scope.id(), m.archive, m.sha256, m.compressed_size, cas::encode_seen(seen)});
  return r.unpacked;
}

cas::SaveResult save_content_addressed(store::Catalog& catalog, const cas::Scope& scope,
                                       const std::vector<archive::PackItem>& items, int level,
                                       StateDir& state, const std::string& stanza,
                                       const archive::ProgressFn& progress,
                                       std::vector<std::string>& warnings,
                                       std::vector<std::string>& passed_over) {
  std::vector<StateDir::CasRefusal> refused;
  for (auto& r : state.cas_refusals(stanza)) {
    if (r.scope == scope.id()) {
      refused.push_back(std::move(r));
    }
  }
  std::optional<cas::Index> base;
  cas::SeenFiles seen;
  auto pass_over = [&](const std::string& what, const std::string& why) {
    passed_over.push_back(
        fmt::format("the base {} was passed over: {}", util::printable(what), why));
    warnings.push_back(passed_over.back());
    util::log::warn("save '{}': {}", stanza, warnings.back());
  };
  // Loads the index at key as the base, unless this job refused it or a pack it uses.
  int tried = 0;
  auto take = [&](const std::string& key, const std::string& sha256, uint64_t size) {
    if (auto why = why_not_base(refused, key, nullptr); !why.empty()) {
      pass_over(key, why);
      return false;
    }
    ++tried;
    try {
      base = cas::load_index(catalog.backend(), scope, key, sha256, size);
    } catch (const std::exception& e) {
      pass_over(key, e.what());
      return false;
    }
    if (auto why = why_not_base(refused, key, &*base); !why.empty()) {
      base.reset();
      pass_over(key, why);
      return false;
    }
    return true;
  };
  // The index this job's restore recorded, else the newest save of the scope this job may
  // build on.
  std::string recorded_key;
  if (auto recorded = state.load_cas_base(stanza); recorded && recorded->scope == scope.id()) {
    recorded_key = recorded->key;
    if (take(recorded->key, recorded->sha256, recorded->size) && !recorded->seen.empty()) {
      try {
        seen = cas::parse_seen(recorded->seen);
      } catch (const std::exception& e) {
        util::log::warn("save '{}': the record of the files restored is not used: {}", stanza,
                        util::printable(e.what()));
      }
    }
  }
  if (!base) {
    for (const auto& m : saves_of_scope(catalog, scope)) {
      if (tried >= k_max_bases_tried ||
          (m.archive != recorded_key && take(m.archive, m.sha256, m.compressed_size))) {
        break;
      }
    }
  }
  if (!base && !passed_over.empty()) {
    warnings.back() += "; saving in full";
  }
  cas::SaveOptions o;
  o.pack.level = level;
  o.pack.temp_dir = state.scratch();
  for (const auto& r : refused) {
    if (!r.pack.empty()) {
      o.pack.avoid.push_back(r.pack);
    }
  }
  o.seen = &seen;
  o.progress = progress;
  return cas::save(catalog.backend(), scope, items, base ? &*base : nullptr, o);
}

} // namespace ephemera::session
