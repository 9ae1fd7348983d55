#pragma once

#include "archive/archive.hpp"
#include "cas/cas.hpp"
#include "session/state_dir.hpp"
#include "store/catalog.hpp"

#include <cstdint>
#include <string>
#include <vector>

// Content-addressed saves and restores of one stanza (src/cas) as the session runs them: the
// scope of a save, its base, and what a restore leaves in the state dir for the save.
namespace ephemera::session {

// Whether post saves content-addressed (the default, on every store and through a broker):
// not where the agent's environment says EPHEMERA_FORMAT=archive.
bool saves_content_addressed();

// The scope a save of this job's stanza shares packs in: its repository, target and name
// at the job's trust level (an untrusted job's, bound to its origin).
cas::Scope save_scope(const store::Manifest& partial);

// Restores the content-addressed save m: its index loaded for the manifest's own scope and
// held to the manifest's size and SHA-256 (signed with it), every chunk verified before it
// is staged, everything committed at once or nothing (options as for archive::unpack;
// expected_sha256 and expected_size are not used). Records in state the index and the files
// written, for the save's base; or, when it refuses the save for its content
// (util::ArchiveError), the refusal and the pack it names (cas::PackRefused). fetched: the
// compressed bytes read from packs. Throws util::Error, util::ArchiveError or util::StoreError.
archive::UnpackResult restore_content_addressed(store::Catalog& catalog, const store::Manifest& m,
                                                const archive::UnpackOptions& options,
                                                StateDir& state, const std::string& stanza,
                                                uint64_t& fetched);

// Saves items as a new state of scope and returns what it stored (the index is written, no
// manifest yet). The base: the index this job's restore recorded, when it is of this scope,
// else the newest content-addressed save of the scope in the store, else the next older (a few
// indexes are tried at most), else none (a full save). Passed over, each said in
// passed_over and warnings: a base that cannot be read, and one this job may not build on
// because its restore here refused it for its content, or refused a pack it uses (a save
// references its base's packs without reading them, so building on it would carry the bad
// bytes into every later save of the scope). A new pack never takes the name of a pack
// refused here (PackOptions::avoid). A base this job did not restore (pre was skipped, or
// found no candidate of its key) is held to its packs' existence and sizes only (cas::save,
// after the index is written), not read: reading every pack a save reuses costs what a
// restore does, and a cheaper sample (a frame of each) is evaded by bytes chosen to keep it.
// Such a save may reference a bad pack; the next job's restore refuses it, records that pack,
// and that job's save builds on nothing using it: the scope heals one job later. Throws like
// cas::save.
cas::SaveResult save_content_addressed(store::Catalog& catalog, const cas::Scope& scope,
                                       const std::vector<archive::PackItem>& items, int level,
                                       StateDir& state, const std::string& stanza,
                                       const archive::ProgressFn& progress,
                                       std::vector<std::string>& warnings,
                                       std::vector<std::string>& passed_over);

} // namespace ephemera::session
