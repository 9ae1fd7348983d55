#include "session/cas_transfer.hpp"

#include "store/keys.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <optional>

namespace ephemera::session {

namespace {

// The newest content-addressed save of scope that may take part in a choice (signed where
// signing is on), if any.
std::optional<store::Manifest> newest_of_scope(store::Catalog& catalog, const cas::Scope& scope) {
  std::optional<store::Manifest> best;
  for (auto& m :
       catalog.valid_saves(catalog.stanza_saves(scope.repository, scope.target, scope.name))) {
    if (m.content == store::k_content_cas &&
        store::cas_scope_id(m.repository, m.target, m.name, m.trusted, m.origin) == scope.id() &&
        (!best || m.later_than(*best))) {
      best = m;
    }
  }
  return best;
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
  cas::Index index =
      cas::load_index(catalog.backend(), scope, m.archive, m.sha256, m.compressed_size);
  cas::RestoreOptions o;
  o.unpack = options;
  cas::SeenFiles seen;
  o.record = &seen;
  auto r = cas::restore(catalog.backend(), scope, index, o);
  fetched = r.fetched_bytes + m.compressed_size;
  state.save_cas_base(stanza,
                      {scope.id(), m.archive, m.sha256, m.compressed_size, cas::encode_seen(seen)});
  return r.unpacked;
}

cas::SaveResult save_content_addressed(store::Catalog& catalog, const cas::Scope& scope,
                                       const std::vector<archive::PackItem>& items, int level,
                                       StateDir& state, const std::string& stanza,
                                       const archive::ProgressFn& progress,
                                       std::vector<std::string>& warnings) {
  std::optional<cas::Index> base;
  cas::SeenFiles seen;
  auto pass_over = [&](const std::string& what, const std::exception& e) {
    warnings.push_back(fmt::format("the base {} was passed over: {}; saving in full",
                                   util::printable(what), e.what()));
    util::log::warn("save '{}': {}", stanza, warnings.back());
  };
  if (auto recorded = state.load_cas_base(stanza); recorded && recorded->scope == scope.id()) {
    try {
      base = cas::load_index(catalog.backend(), scope, recorded->key, recorded->sha256,
                             recorded->size);
      if (!recorded->seen.empty()) {
        seen = cas::parse_seen(recorded->seen);
      }
    } catch (const std::exception& e) {
      base.reset();
      seen.clear();
      pass_over(recorded->key, e);
    }
  }
  if (!base) {
    if (auto m = newest_of_scope(catalog, scope)) {
      try {
        base = cas::load_index(catalog.backend(), scope, m->archive, m->sha256, m->compressed_size);
      } catch (const std::exception& e) {
        pass_over(m->archive, e);
      }
    }
  }
  cas::SaveOptions o;
  o.pack.level = level;
  o.pack.temp_dir = state.scratch();
  o.seen = &seen;
  o.progress = progress;
  return cas::save(catalog.backend(), scope, items, base ? &*base : nullptr, o);
}

} // namespace ephemera::session
