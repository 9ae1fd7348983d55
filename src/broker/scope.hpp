#pragma once

#include "broker/token.hpp"
#include "store/catalog.hpp"

#include <string>
#include <string_view>
#include <vector>

// What a token may do to which object key: pure functions of (claims, key, manifest), so the
// broker's whole policy is tested table-driven. Keys are read with the layout the catalog
// writes (catalog.hpp): a save is v1/<repository>/<target>/<name>/e<epoch>/<key>/<stamp>.json
// and its archive <stamp>.tar.zst; markers lie in v1/_invalidations/<repository>/; the
// content-addressed layout (cas/cas.hpp) is cas1/<repository>/<target>/<name>/trusted/ or
// .../untrusted/<origin>/, then packs/<sha256>.pack or index/<sha256>.idx. A key of any other
// shape is the operator's alone.
namespace ephemera::broker {

enum class KeyKind { manifest, archive, marker, cas, other };

struct ParsedKey {
  KeyKind kind = KeyKind::other;
  std::string repository; // the sanitised folder of the repository (store::sanitise)
  std::string target;     // likewise, for saves
  std::string manifest;   // for a manifest itself, for an archive the manifest it belongs to
  // Content-addressed objects: the trust folder they lie in, the sanitised origin of an
  // untrusted one, and the SHA-256 (lowercase hex) their name says their bytes have.
  bool trusted = true;
  std::string origin;
  std::string sha256;
};

// The key's kind and scope. Does not check the key itself (store::check_key does).
ParsedKey parse_key(std::string_view key);

enum class Op { read, list, write, remove };
const char* to_string(Op op);

struct Verdict {
  bool allowed = false;
  // A read refused because the save is not the token's to see answers 404, as if it were
  // absent: a restore passes over it, and its existence is not disclosed.
  bool hide = false;
  std::string why; // of a refusal
};

// Where nothing of the object has to be read yet: scope of the key (or of the prefix, for
// list) against the token's repository and target, and for writes whether the job may save
// at all. Content-addressed objects carry their trust in their path: a job writes only its
// own trust folder (trusted, or untrusted/<its origin>), and reads trusted ones and, when
// untrusted, those of its origin (others are hidden). An operator's token may do anything. A
// manifest or archive read that this allows still needs may_read on the save's manifest.
Verdict authorize(const Claims& claims, Op op, std::string_view key,
                  const std::vector<std::string>& protected_branches);

// Why the job may save nothing ("" when it may): the context is unknown, a push to a
// protected branch, an untrusted job without an origin.
std::string why_no_save(const Claims& claims, const std::vector<std::string>& protected_branches);

// Whether the token may read the save m: an operator, a trusted save, or an untrusted save
// of an untrusted job of the same (non-empty) origin. Never an untrusted save into a trusted
// job.
Verdict may_read(const Claims& claims, const store::Manifest& m);

// Why the manifest m (read from what the job sent, where it is to lie) is not the job's own
// save ("" when it is): its repository, target, branch, event, trust, origin and job id must
// be the token's, and its created time within a few minutes of now (seconds since the epoch).
std::string why_not_own(const Claims& claims, const store::Manifest& m, double now);

} // namespace ephemera::broker
