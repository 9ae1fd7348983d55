#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

// What each stanza is worth, across the fleet: pre, post and the in-job commands each append
// one small event record to the store after their work, in their job's own scope, and
// `ephemera stats` adds them up. A record is a claim of whoever could write it (any store
// writer without a broker): it can skew the figures, never a restore, a save or a deletion.
namespace ephemera::store {

inline constexpr const char* k_event_format = "ephemera-event/1";
// The most a record may be, and the most stanzas it may tell of: what stats reads into
// memory, and what a writer sends.
constexpr uint64_t k_max_event_bytes = 64 << 10;
constexpr size_t k_max_event_stanzas = 256;

// One stanza in one phase, as its report entry ended.
struct EventStanza {
  std::string name;
  std::string result;  // the report's word: hit, miss, saved, unchanged, skipped, failed, ...
  std::string step;    // hit: "exact" or "prefix"; else ""
  uint64_t moved = 0;  // bytes downloaded (a hit) or uploaded (a save), compressed
  uint64_t stored = 0; // bytes a save added to the store, compressed
  double seconds = 0;
  bool budget = false; // a restore the time budget stopped
};

struct Event {
  std::string format = k_event_format;
  std::string phase; // pre, post, restore, persist
  std::string repository;
  std::string target;
  std::string job_id;
  std::string branch;
  bool trusted = true;
  std::string created; // RFC 3339 UTC
  double seconds = 0;  // the whole phase
  std::vector<EventStanza> stanzas;

  nlohmann::json to_json() const;
  // Strict: every field present with its type, the format this one, a known phase, numbers
  // neither negative nor fractional where they count bytes, at most k_max_event_stanzas.
  // Throws util::Error saying which field is wrong.
  static Event from_json(const nlohmann::json& j);
};

// The UTC day (YYYYMMDD) an event record's key says it was written, or nullopt when the
// key is not a record's (keys.hpp: event_key). For stats' --since without reading it.
std::optional<std::string> event_day(std::string_view key);

class Backend;

// Writes e (at most k_max_event_stanzas of its stanzas) at keys.hpp's event_key, under its
// repository, target and the day of its created time, with a new stamp.
// Throws StoreError as the backend does.
void write_event(Backend& backend, const Event& e);

struct EventsRead {
  std::vector<Event> events;
  size_t skipped = 0;     // malformed or out of place, each warned about by its object
  bool truncated = false; // more records than max_records: the newest days were read
};
// The records of one repository ("" all) from `since` (seconds since the epoch) on: listed
// (by day, from the key, so older days are not read), read (at most k_max_event_bytes each)
// and parsed strictly. A record that is malformed, names another repository or target than
// the folder it lies in, or is older than since is skipped with a warning naming its object.
// Throws StoreError when a listing or read fails but for a missing or oversized object.
EventsRead read_events(Backend& backend, const std::string& repository, double since,
                       size_t max_records);

// Per stanza (repository, target, name), what stats shows.
struct StanzaStats {
  uint64_t exact = 0, prefix = 0, misses = 0; // restores, by pre and in-job
  uint64_t saves = 0, unchanged = 0;
  uint64_t failed = 0; // restores or saves that hit a cache problem
  uint64_t budget = 0; // restores the time budget stopped (counted in misses too)
  uint64_t stored = 0; // bytes saved
  uint64_t moved = 0;  // bytes downloaded and uploaded
  double pre_seconds = 0, post_seconds = 0; // restores (pre and in-job), saves (post, persist)
};
using StatsKey = std::tuple<std::string, std::string, std::string>; // repository, target, name
std::map<StatsKey, StanzaStats> add_up(const std::vector<Event>& events);

} // namespace ephemera::store
