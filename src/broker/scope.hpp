#pragma once

#include "broker/token.hpp"
#include "store/catalog.hpp"
#include "store/events.hpp"

#include <string>
#include <string_view>
#include <vector>

// What a token may do to which object key: pure functions of (claims, key, manifest), so the
// broker's whole policy is tested table-driven. Keys of the v1/ layout are read by the store's
// own parser (store/keys.hpp): a save is v1/<repository>/<target>/<name>/e<epoch>/<key>/
// <stamp>.json, its archive <stamp>.tar.zst and the use markers of restores beside it
// <stamp>.used/<day>[-u]; invalidation markers lie in v1/_invalidations/<repository>/ and
// event records in v1/_events/<repository>/<target>/<day>/. The content-addressed layout
// (cas/cas.hpp) is cas1/<repository>/<target>/<name>/trusted/ or .../untrusted/<origin>/,
// then packs/<sha256>.pack or index/<sha256>.idx. A key of any other shape is the operator's
// alone.
namespace ephemera::broker {

enum class KeyKind { manifest, archive, marker, use_marker, event, cas, other };

struct ParsedKey {
  KeyKind kind = KeyKind::other;
  // The repository and target the key's folders name, as the fields are (unsanitised): of a
  // save's objects, a use marker, an event record, a content-addressed object; a marker's
  // repository only.
  std::string repository;
  std::string target;
  // For a manifest itself, for an archive or a use marker the manifest it belongs to.
  std::string manifest;
  // Content-addressed objects: the trust folder they lie in, the origin of an untrusted one,
  // and the SHA-256 (lowercase hex) their name says their bytes have. A use marker: whether
  // it is a trusted job's.
  bool trusted = true;
  std::string origin;
  std::string sha256;
  std::string day; // a use marker's or an event record's UTC day (YYYYMMDD)
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
// at all. A job writes a use marker of its own trust (a restore is a use whatever the job may
// save; the save it marks is checked with may_read) and an event record of its own repository
// and target (checked with why_not_own_event); it reads neither (no restore does).
// Content-addressed objects carry their trust in their path: a job writes only its own trust folder
// (trusted, or untrusted/<its origin>), and reads trusted ones and, when untrusted, those of its
// origin (others are hidden). An operator's token may do anything. A manifest or archive read that
// this allows still needs may_read on the save's manifest.
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

// Why a use marker p (KeyKind::use_marker) is not one the token may write now ("" when it
// is): it must be of the token's trust (an untrusted job's marker never counts for a trusted
// save: usage.hpp) and of today by the broker's clock, give or take the 10 minutes a
// client's clock may be off. Whether its save is one the token may read is may_read's.
std::string why_not_own_use(const Claims& claims, const ParsedKey& p, double now);

// Why the event record e, to lie at p (KeyKind::event), is not the token's own ("" when it
// is): its repository, target, branch, trust and job id must be the token's, its created
// time within 10 minutes of now and the day of p its created time's.
std::string why_not_own_event(const Claims& claims, const ParsedKey& p, const store::Event& e,
                              double now);

// What binds a multipart upload the broker started to the request that started it: an HMAC
// under the broker's secret (shared by every instance) over the token, the key, the store's
// upload id and the sizes, so that only that token completes or aborts exactly that upload.
std::string upload_ticket(std::string_view secret, std::string_view token, std::string_view key,
                          std::string_view upload, uint64_t size, uint64_t part_size);

// Whether a part's ETag, as a client reports it, may go into the store's completion request:
// at most 128 bytes of letters, digits, '-' and the double quotes S3 wraps it in (nothing that
// XML or a log line would read as anything else).
bool plain_etag(std::string_view etag);

} // namespace ephemera::broker
