// The store's layout, once: every object key the catalog writes or reads (a save's manifest
// and archive, an invalidation marker, a clock probe) and every prefix it lists is built
// here, and a listed key is parsed back here. The layout is a contract with every store
// already written: a change to it is a new "v2/" root, never an edit of this one.
//
//   v1/<repository>/<target>/<name>/e<epoch>/<key>/<stamp>.json     a save's manifest
//   v1/<repository>/<target>/<name>/e<epoch>/<key>/<stamp>.tar.zst  its archive
//   v1/_invalidations/<repository>/<stamp>.json                      an operator's marker
//   v1/_clock/<16 lowercase hex digits>                              a probe of the store's clock
//   v1/<repository>/<target>/<name>/e<epoch>/<key>/<stamp>.used/<day>     a trusted job's use of
//   v1/<repository>/<target>/<name>/e<epoch>/<key>/<stamp>.used/<day>-u   the save, an untrusted
//                                                                    job's (usage.hpp)
//   v1/_events/<repository>/<target>/<day>/<stamp>.event             a phase's event record
//                                                                    (events.hpp)
//   cas1/...                                 content-addressed saves' packs and indexes (below)
//
// <day> is a UTC day, YYYYMMDD (utc_day).
// Each <component> is sanitise()d; <stamp> is new_stamp()'s.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ephemera::store {

// Object path component for a repository, target, name or key: bytes outside
// [A-Za-z0-9._-] and a leading '.' become "~XX" (upper-case hex); "" becomes "~". One to
// one: '~' itself is escaped.
std::string sanitise(std::string_view component);
// The component sanitise() made `folder` from; nullopt for a folder it never makes (any
// other spelling of a byte, a plain byte escaped, lower-case hex).
std::optional<std::string> unsanitise(std::string_view folder);

// Where a save lies: its stanza's scope. Keys are compared as the fields are, unsanitised.
struct Scope {
  std::string repository;
  std::string target;
  std::string name;
  int64_t epoch = 0;
  bool operator==(const Scope& other) const = default;
};

// "v1/": every object the catalog makes lies below it.
std::string layout_root();
// A name for a new save's or marker's objects: `created` (RFC 3339) without '-' and ':',
// then 8 random hex digits, so saves of one key in the same microsecond do not collide.
std::string new_stamp(const std::string& created);

// v1/<repository>/<target>/<name>/e<epoch>/: the folder a lookup of that scope lists.
std::string scope_prefix(const Scope& scope);
// The scope's folder for one key: scope_prefix(scope) + <key>/.
std::string key_folder(const Scope& scope, std::string_view key);
std::string manifest_key(const Scope& scope, std::string_view key, std::string_view stamp);
std::string archive_key(const Scope& scope, std::string_view key, std::string_view stamp);
// What ls lists: every save (""), or those of one repository, target, name, as far as they
// are given; a later one without the earlier ones is ignored.
std::string saves_prefix(std::string_view repository = "", std::string_view target = "",
                         std::string_view name = "");

// v1/<repository>/<target>/<name>/: every save of one stanza, whatever its epoch; an empty
// target is the folder of saves without one (unlike saves_prefix, where "" is any).
std::string stanza_prefix(std::string_view repository, std::string_view target,
                          std::string_view name);

// The archive object that belongs to a manifest object by name ("<stamp>.json" ->
// "<stamp>.tar.zst"); "" when the key is not a manifest's name. And back.
std::string own_archive(std::string_view manifest_object);
std::string own_manifest(std::string_view archive_object);

std::string marker_key(std::string_view repository, std::string_view stamp);
// The markers of one repository, or ("") of all.
std::string markers_prefix(std::string_view repository = "");
std::string clock_probe_key(uint64_t random);

// "20261201": the UTC day of a time (seconds since the epoch).
std::string utc_day(double seconds);
// The use marker of the save whose manifest lies at manifest_object (a KeyKind::manifest
// key with a scope), for `day` and the restoring job's trust; "" for any other key.
std::string use_marker_key(std::string_view manifest_object, std::string_view day, bool trusted);
std::string event_key(std::string_view repository, std::string_view target, std::string_view day,
                      std::string_view stamp);
// The event records of one repository, or ("") of all.
std::string events_prefix(std::string_view repository = "");
// Content-addressed saves share packs within one scope: one stanza at one trust level,
// "repo/target/name/trusted" or ".../untrusted/<origin>", each component sanitised. Its
// objects lie below cas_prefix (outside v1/, which the single archives keep):
//   cas1/<scope id>/packs/<sha256 of the pack>.pack
//   cas1/<scope id>/index/<sha256 of the index>.idx
std::string cas_scope_id(std::string_view repository, std::string_view target,
                         std::string_view name, bool trusted, std::string_view origin);
// "cas1/" + scope_id + "/"
std::string cas_prefix(std::string_view scope_id);
// cas_prefix + "index/<sha256>.idx"
std::string cas_index_key(std::string_view scope_id, std::string_view sha256);
// "cas1/": every content-addressed object lies below it.
std::string cas_root();

// A content-addressed object where a save puts one: cas_prefix(scope id) + "packs/<64 lower
// hex>.pack" or + "index/<64 lower hex>.idx", with a scope id exactly as cas_scope_id writes
// it (every component a folder sanitise() makes). nullopt for any other key, so that nothing
// gc does to content-addressed objects reaches a key it did not parse.
struct CasKey {
  bool index = false;   // an index; else a pack
  std::string scope_id; // as cas_scope_id made it
  std::string repository, target, name;
  bool trusted = true;
  std::string origin; // untrusted: the origin its folder names
  std::string sha256; // the object's name
};
std::optional<CasKey> parse_cas_key(std::string_view key);

enum class KeyKind {
  manifest,    // <anything>.json outside the markers' folder: the catalog reads it as one
  archive,     // <anything>.tar.zst outside the markers' folder
  marker,      // v1/_invalidations/<repository>/<stamp>.json
  clock_probe, // v1/_clock/<16 hex>
  use_marker,  // <a manifest key without .json>.used/<day>[-u]
  event,       // v1/_events/<repository>/<target>/<day>/<stamp>.event
  other,
};

struct ParsedKey {
  KeyKind kind = KeyKind::other;
  // A manifest or archive where publish() puts one (seven components, each a folder
  // sanitise() makes, e<epoch> canonical): its scope, key and stamp. Unset elsewhere.
  std::optional<Scope> scope;
  std::string key;
  std::string stamp;
  // A marker: the repository its folder names (unset when the folder is not sanitise()'s).
  // An event record: likewise, and its target in `key`.
  std::optional<std::string> repository;
  // A use marker: the manifest object it marks, and whether an untrusted job wrote it. A use
  // marker or an event record: the day its name says.
  std::string manifest;
  bool trusted = true;
  std::string day;
};

// What an object key is in the layout. Total: any string is parsed (kind other at worst).
ParsedKey parse_key(std::string_view key);

} // namespace ephemera::store
