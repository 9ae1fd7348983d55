#pragma once

#include "store/backend.hpp"
#include "store/signer.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Everything above the backends, once: the layout, manifests, lookup, signing,
// invalidation. Each save is an immutable archive object plus a small JSON manifest
// written last, so readers never see a torn entry and concurrent saves need no lock.
namespace ephemera::store {

inline constexpr const char* k_manifest_format = "ephemera-manifest/1";
inline constexpr const char* k_invalidation_format = "ephemera-invalidation/1";

class Selection;

struct Manifest {
  std::string format = k_manifest_format;
  std::string repository;
  std::string target;
  std::string name;
  int64_t epoch = 0;
  std::string key;
  std::string archive; // object key of the archive
  uint64_t compressed_size = 0;
  std::string sha256;
  uint64_t unpacked_bytes = 0;
  uint64_t files = 0;
  std::string created; // RFC 3339 UTC, microseconds
  std::string job_id;
  std::string commit;
  std::string branch;
  std::string event;
  bool trusted = true;
  // The untrusted job's origin (fork repository or pull request, as the agent named it); only
  // untrusted jobs of the same origin restore an untrusted save. In the JSON (and so in what
  // is signed) only when not empty, so manifests written before it still verify.
  std::string origin;
  std::vector<std::string> rules;
  std::string tool_version;
  std::string signature; // HMAC-SHA256 hex or "ed25519:" hex when signing is on
  std::string object;    // where this manifest was read from (not stored)
  int64_t stored = 0;    // the store's own time of that object, seconds (not stored)

  // Saved after other, by the store's clock first: writers' clocks may disagree, the
  // store's is one clock. `created` (the writer's) breaks ties within a second.
  bool later_than(const Manifest& other) const {
    return stored != other.stored ? stored > other.stored : created > other.created;
  }

  nlohmann::json to_json(bool with_signature = true) const;
  // The manifest read from the object key it lies at, which becomes its `object`. Throws
  // util::StoreError(permanent) naming what is wrong: a missing or mistyped field, a number
  // that is negative, fractional or out of range, a compressed_size of 0, or a manifest not
  // valid where it lies (its repository, target, name, epoch and key are not those of its
  // object path, or its archive is not its own object name: <stamp>.json -> <stamp>.tar.zst).
  static Manifest from_json(const nlohmann::json& j, const std::string& object);
};

struct Invalidation {
  std::string repository;
  std::string target; // "" : every target
  std::string name;   // "" : every stanza
  std::string reason;
  std::string created;
  std::string object;
  int64_t stored = 0; // the store's time of the marker (0: unknown)
  // Of the scope, and saved before the marker, by the store's clock where both are known.
  bool covers(const Manifest& m) const;
};

struct LookupRequest {
  std::string repository, target, name;
  int64_t epoch = 0;
  std::string key;
  std::vector<std::string> restore_keys;
  std::string branch;
  bool own_branch_only = false;
  // The restoring job: a trusted one never gets an untrusted save; an untrusted one gets
  // trusted saves and the untrusted saves of its own (non-empty) origin.
  bool trusted = true;
  std::string origin;
  // How many candidates a lookup gives at most: a restore passes over a missing, corrupt or
  // refused archive to the next one, and a store full of forgeries must not make it slow.
  size_t max_candidates = 3;
};

struct LookupResult {
  Manifest manifest;
  std::string step; // "exact" or "prefix:<prefix>"
  bool own_branch = false;
};

// Why a manifest is or is not restorable now.
struct Visibility {
  bool restorable = true;
  std::string why; // superseded, invalidated, untrusted, ...
};

class Catalog {
public:
  // HMAC-SHA256 under signing_key when it is given (EPHEMERA_SIGNING_KEY).
  Catalog(std::unique_ptr<Backend> backend, std::optional<std::string> signing_key);
  // Signed and checked by signer (nullptr: signing is off). A signer that cannot sign (an
  // Ed25519 public key) leaves what this catalog writes unsigned, for the broker to sign.
  Catalog(std::unique_ptr<Backend> backend, std::shared_ptr<const Signer> signer);
  ~Catalog();

  // Uploads the archive as an immutable object, then writes the manifest last.
  // partial carries everything but archive, compressed_size (checked), created, signature.
  // progress, when given, is told the bytes uploaded so far (from the thread that reads them).
  Manifest publish(const Manifest& partial, const std::filesystem::path& archive_file,
                   const TransferProgress& progress = {});

  // The restorable saves in the order a restore tries them, at most max_candidates: the
  // exact key, then each restore_keys prefix; within each step the job's own branch first,
  // then any branch, newest first; each save once. Untrusted saves only for untrusted jobs of
  // their origin; invalidated, badly signed or out-of-scope ones never. Empty on a miss.
  std::vector<LookupResult> lookup(const LookupRequest& request);

  // Downloads the archive to dest, hashing on the way; throws StoreError on a digest mismatch
  // or a size other than the manifest's (dest is then removed).
  // progress, when given, is told the bytes received so far.
  void download(const Manifest& manifest, const std::filesystem::path& dest,
                const TransferProgress& progress = {});
  // For a store on this machine: the archive opened where it lies (a regular file, never
  // through a symlink, never a fifo or device) and its size checked against the manifest
  // before a byte is read; returned at offset 0. Its digest is NOT checked here: a writer
  // of the store's directory could rewrite the bytes between a check and a second read, so
  // archive::unpack_fd hashes exactly the bytes it unpacks and commits nothing on a
  // mismatch. -1 for a remote store. Throws StoreError (not_found, or permanent for a size
  // other than the manifest's or a file that is not a regular one).
  int open_verified(const Manifest& manifest);

  std::string link(const Manifest& manifest) const;
  std::optional<std::string> presigned_link(const Manifest& manifest) const;

  // Every manifest in the store (optionally of one repository/target/name), sorted by scope,
  // key and age. Unreadable manifests are skipped with a warning; signatures are not checked
  // here (see valid_saves and visibility), so that ls can show a forgery for what it is.
  std::vector<Manifest> list(const std::string& repository = "", const std::string& target = "",
                             const std::string& name = "");
  // Those of `all` that may take part in any choice: signed when signing is on (where they
  // lie was checked as they were read).
  std::vector<Manifest> valid_saves(const std::vector<Manifest>& all) const;
  // Why m may take no part ("unsigned, and signing is on", "bad signature"); "" if it may.
  std::string why_refused(const Manifest& m) const;
  // Records an invalidation of the scope; archives created before it become invisible. The
  // marker is signed when signing is on. Throws util::Error when repository is empty (a
  // marker of no repository would hide nothing).
  Invalidation invalidate(const std::string& repository, const std::string& target,
                          const std::string& name, const std::string& reason);
  // The markers that count (of one repository, or all): each lies below its own repository's
  // folder and, when signing is on, is signed. Others are skipped with a warning.
  std::vector<Invalidation> invalidations(const std::string& repository = "");
  // Whether m would be chosen by a lookup of its own scope and key from a trusted job on
  // another branch, and if not, why. `selection` is built from valid_saves of the same list.
  Visibility visibility(const Manifest& m, const Selection& selection) const;
  // The same, building the selection from all and invalidations (for one manifest).
  Visibility visibility(const Manifest& m, const std::vector<Manifest>& all,
                        const std::vector<Invalidation>& invalidations) const;

  // Removes a save: its manifest first (so readers stop finding it), then its archive when it
  // is the manifest's own (a manifest never makes this delete another save's archive).
  void remove(const Manifest& m);
  // Archive objects that belong to no manifest object (selection.hpp, orphan_archives), and
  // the leftovers of interrupted writes.
  std::vector<ObjectInfo> orphans(const std::vector<Manifest>& all);
  // The store's clock now (the time it gives a new object), for ages that must not depend
  // on this machine's clock; this machine's when the store cannot say.
  double store_now();

  Backend& backend() { return *m_backend; }
  bool signing() const { return m_signer != nullptr; }
  // Whether m's signature is good; true when signing is off.
  bool signature_ok(const Manifest& m) const;

private:
  std::vector<Manifest> manifests_under(const std::string& prefix);
  // Throws StoreError(permanent) when an archive's size or SHA-256 is not its manifest's.
  void check_archive(const Manifest& m, uint64_t bytes, const std::string& digest) const;

  std::unique_ptr<Backend> m_backend;
  std::shared_ptr<const Signer> m_signer;
};

// What a manifest's signature covers, and a marker's (every field it is read by, and its
// format, so that no other signed object can pass for one).
std::string manifest_payload(const Manifest& m);
std::string marker_payload(const Invalidation& inv);

// Object path component for a repository, target, name or key: bytes outside
// [A-Za-z0-9._-] and a leading '.' become "~XX"; "" becomes "~".
std::string sanitise(std::string_view component);
// RFC 3339 UTC with microseconds, e.g. 2026-11-24T16:40:00.123456Z.
std::string rfc3339_now();
// Seconds since the epoch of an RFC 3339 UTC time made by rfc3339_now; nullopt if malformed.
std::optional<double> parse_rfc3339(const std::string& text);

} // namespace ephemera::store
