#pragma once

#include "policy/policy.hpp"
#include "store/backend.hpp"
#include "store/keys.hpp"
#include "store/manifest.hpp"
#include "store/signer.hpp"

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

class Selection;

struct LookupRequest {
  std::string repository, target, name;
  int64_t epoch = 0;
  // What to look for, in order: policy::lookup_steps (the exact key, then each restore_keys
  // prefix). The order of the steps is the policy's; the order within a step the selection's.
  std::vector<policy::LookupStep> steps;
  std::string branch;
  bool own_branch_only = false;
  // The restoring job: a trusted one never gets an untrusted save; an untrusted one gets
  // trusted saves and the untrusted saves of its own (non-empty) origin.
  bool trusted = true;
  std::string origin;
  // The restoring stanza's rules: a save made with rules that admit other paths is passed
  // over (other_rules) instead of having its entries refused. rules_digest is theirs
  // (rules::rules_digest); a save that records none (made before saves recorded it) is
  // judged by the rule texts it lists, compared with `rules` as a set. Empty: not compared.
  std::string rules_digest;
  std::vector<std::string> rules;
  // How many candidates a lookup gives at most: a restore passes over a missing, corrupt or
  // refused archive to the next one, and a store full of forgeries must not make it slow.
  size_t max_candidates = 3;
  // Also say what the stanza has outside the scope searched (other targets, other epochs),
  // from the names of their objects: one listing of the repository's folder instead of the
  // scope's. Their manifests are not read, so nothing but their place is known of them.
  bool survey = false;
};

// A save a restore may try, and how it matched.
struct Candidate {
  Manifest manifest;
  policy::LookupStep step; // the request's step that took it: the exact key, or a prefix
  bool own_branch = false; // saved from the restoring job's branch
};

// Why a save that exists was not a candidate.
enum class PassedOver {
  refused,      // unsigned or badly signed, and signing is on
  untrusted,    // an untrusted save, and the restoring job is trusted
  other_origin, // an untrusted save of another origin than the restoring job's (or of none)
  other_branch, // share = "branch", and it was saved from another branch
  invalidated,  // an operator's marker hides it
  other_rules,  // saved with rules that admit other paths than the restoring stanza's
  other_key,    // no step of the request matches its key
  over_limit,   // it matched, but max_candidates were taken before it
  older_epoch,  // (survey) of an epoch below the one looked for
  newer_epoch,  // (survey) of an epoch above the one looked for
  other_target, // (survey) of the same name under another target
};

// One save that exists and why the lookup passed over it.
struct PassedOverSave {
  PassedOver reason = PassedOver::other_key;
  std::string object; // its manifest object
  Scope scope;        // where it lies
  std::string key;
  std::optional<Manifest> manifest; // when it was read: the saves of the scope searched
  std::string why;                  // for people, escaped: "invalidated at ...: poisoned"
};

struct LookupResult {
  std::string scope;                       // the folder searched: keys.hpp's scope_prefix
  std::vector<Candidate> candidates;       // in the order a restore tries them; empty: a miss
  std::vector<PassedOverSave> passed_over; // in key order
  std::vector<std::string> use_markers;    // the scope's use markers the listing holds
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
  // Writes the manifest of a content-addressed save whose packs and index are stored:
  // partial carries everything but created and signature; content is k_content_cas and
  // archive, sha256 and compressed_size are the index's (archive its cas_index_key).
  Manifest publish_index(const Manifest& partial);

  // The restorable saves of the request's scope in the order a restore tries them, and the
  // others with why each was passed over (selection.hpp's choose; badly signed ones here).
  LookupResult lookup(const LookupRequest& request);

  // Records that a restore used m, from a job of this trust: today's use marker (usage.hpp),
  // written only when `listed` (the lookup's listing, LookupResult::use_markers) does not hold
  // it yet, so a restore costs at most one small request and later ones that day none. Never
  // throws and never blocks past the time budget: a failure is a warning.
  void mark_used(const Manifest& m, bool trusted, const std::vector<std::string>& listed);

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

  // Where the save's archive object lies: for a content-addressed save its index, which
  // `ephemera export` takes to write the save as one archive.
  std::string link(const Manifest& manifest) const;
  // A time-limited HTTPS link to the archive object, where the backend presigns; none for a
  // content-addressed save, whose index alone is not an archive anyone can unpack.
  std::optional<std::string> presigned_link(const Manifest& manifest) const;

  // Every manifest in the store (optionally of one repository/target/name), sorted by scope,
  // key and age. Unreadable manifests are skipped with a warning; signatures are not checked
  // here (see valid_saves and visibility), so that ls can show a forgery for what it is.
  std::vector<Manifest> list(const std::string& repository = "", const std::string& target = "",
                             const std::string& name = "");
  // Every manifest of one stanza (keys.hpp's stanza_prefix: the target "" is that of saves
  // without one), read as list reads them, in no particular order.
  std::vector<Manifest> stanza_saves(const std::string& repository, const std::string& target,
                                     const std::string& name);
  // Those of `all` that may take part in any choice: signed when signing is on (where they
  // lie was checked as they were read).
  std::vector<Manifest> valid_saves(const std::vector<Manifest>& all) const;
  // Why m may take no part ("unsigned, and signing is on", "bad signature"); "" if it may.
  std::string why_refused(const Manifest& m) const;
  // Records an invalidation of the scope; archives created before it become invisible. The
  // marker is signed when signing is on. Throws util::Error when repository is empty (a
  // marker of no repository would hide nothing).
  // key and branch narrow it to the saves of that key or branch ("": any).
  Invalidation invalidate(const std::string& repository, const std::string& target,
                          const std::string& name, const std::string& reason,
                          const std::string& key = "", const std::string& branch = "");
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
  // The store's clock now (the time it gives a new object), for ages that must not depend
  // on this machine's clock; this machine's when the store cannot say.
  double store_now();

  Backend& backend() { return *m_backend; }
  bool signing() const { return m_signer != nullptr; }
  // Whether m's signature is good; true when signing is off.
  bool signature_ok(const Manifest& m) const;

private:
  // The manifests among the listed objects, read; those that cannot be are skipped with a
  // warning.
  std::vector<Manifest> read_manifests(const std::vector<ObjectInfo>& listing);
  // Throws StoreError(permanent) when an archive's size or SHA-256 is not its manifest's.
  void check_archive(const Manifest& m, uint64_t bytes, const std::string& digest) const;

  std::unique_ptr<Backend> m_backend;
  std::shared_ptr<const Signer> m_signer;
};

} // namespace ephemera::store
