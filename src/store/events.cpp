#include "store/events.hpp"

#include "store/backend.hpp"
#include "store/keys.hpp"
#include "store/manifest.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

namespace ephemera::store {

using nlohmann::json;

namespace {

[[noreturn]] void wrong(std::string_view field, std::string_view what) {
  throw util::Error(fmt::format("'{}' {}", field, what));
}

const json& field(const json& j, const char* name) {
  if (!j.contains(name)) {
    wrong(name, "is missing");
  }
  return j.at(name);
}

std::string text(const json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_string()) {
    wrong(name, "is not a string");
  }
  auto s = v.get<std::string>();
  if (s.size() > 1024) {
    wrong(name, "is longer than 1024 bytes");
  }
  return s;
}

uint64_t count(const json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_number_unsigned()) {
    wrong(name, "is not an integer >= 0");
  }
  return v.get<uint64_t>();
}

double duration(const json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 ||
      v.get<double>() > 1e7) {
    wrong(name, "is not a number of seconds >= 0");
  }
  return v.get<double>();
}

bool flag(const json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_boolean()) {
    wrong(name, "is not true or false");
  }
  return v.get<bool>();
}

} // namespace

json Event::to_json() const {
  json stanzas_json = json::array();
  for (const auto& s : stanzas) {
    stanzas_json.push_back({{"name", s.name},
                            {"result", s.result},
                            {"step", s.step},
                            {"moved", s.moved},
                            {"stored", s.stored},
                            {"seconds", s.seconds},
                            {"budget", s.budget}});
  }
  return json{{"format", format},       {"phase", phase},     {"repository", repository},
              {"target", target},       {"job_id", job_id},   {"branch", branch},
              {"trusted", trusted},     {"created", created}, {"seconds", seconds},
              {"stanzas", stanzas_json}};
}

Event Event::from_json(const json& j) {
  if (!j.is_object()) {
    throw util::Error("not a JSON object");
  }
  Event e;
  e.format = text(j, "format");
  if (e.format != k_event_format) {
    wrong("format", fmt::format("is not {}", k_event_format));
  }
  e.phase = text(j, "phase");
  if (e.phase != "pre" && e.phase != "post" && e.phase != "restore" && e.phase != "persist") {
    wrong("phase", "is not pre, post, restore or persist");
  }
  e.repository = text(j, "repository");
  e.target = text(j, "target");
  e.job_id = text(j, "job_id");
  e.branch = text(j, "branch");
  e.trusted = flag(j, "trusted");
  e.created = text(j, "created");
  if (!parse_rfc3339(e.created)) {
    wrong("created", "is not an RFC 3339 UTC time");
  }
  e.seconds = duration(j, "seconds");
  const auto& list = field(j, "stanzas");
  if (!list.is_array() || list.size() > k_max_event_stanzas) {
    wrong("stanzas", fmt::format("is not an array of at most {}", k_max_event_stanzas));
  }
  for (const auto& s : list) {
    if (!s.is_object()) {
      wrong("stanzas", "holds something that is not an object");
    }
    EventStanza st;
    st.name = text(s, "name");
    st.result = text(s, "result");
    st.step = text(s, "step");
    st.moved = count(s, "moved");
    st.stored = count(s, "stored");
    st.seconds = duration(s, "seconds");
    st.budget = flag(s, "budget");
    e.stanzas.push_back(std::move(st));
  }
  return e;
}

std::optional<std::string> event_day(std::string_view key) {
  auto p = parse_key(key);
  if (p.kind != KeyKind::event) {
    return std::nullopt;
  }
  return p.day;
}

void write_event(Backend& backend, const Event& e) {
  Event bounded = e;
  if (bounded.stanzas.size() > k_max_event_stanzas) {
    bounded.stanzas.resize(k_max_event_stanzas);
  }
  std::string body = bounded.to_json().dump();
  if (body.size() > k_max_event_bytes) {
    throw util::Error(fmt::format("the event record is {} bytes, over the {} a record may be",
                                  body.size(), k_max_event_bytes));
  }
  auto t = parse_rfc3339(e.created);
  if (!t) {
    throw util::Error(
        fmt::format("an event record's time '{}' is not RFC 3339", util::printable(e.created)));
  }
  StringSource source(std::move(body));
  backend.put(event_key(e.repository, e.target, utc_day(*t), new_stamp(e.created)), source);
}

EventsRead read_events(Backend& backend, const std::string& repository, double since,
                       size_t max_records) {
  EventsRead out;
  std::string first_day = utc_day(since);
  std::vector<ObjectInfo> wanted;
  for (auto& o : backend.list(events_prefix(repository))) {
    if (auto day = event_day(o.key); day && *day >= first_day) {
      wanted.push_back(std::move(o));
    }
  }
  // The newest days first, when there are more than may be read.
  if (wanted.size() > max_records) {
    std::stable_sort(wanted.begin(), wanted.end(), [](const ObjectInfo& a, const ObjectInfo& b) {
      return *event_day(a.key) > *event_day(b.key);
    });
    wanted.resize(max_records);
    out.truncated = true;
  }
  for (const auto& o : wanted) {
    auto skip = [&](const std::string& why) {
      ++out.skipped;
      util::log::warn("skipping the event record {}: {}", util::printable(backend.url(o.key)),
                      util::printable(why));
    };
    StringSink sink(k_max_event_bytes);
    try {
      backend.get(o.key, sink);
    } catch (const util::StoreError& e) {
      if (e.kind() == util::StoreErrorKind::not_found) {
        continue; // aged out since the listing
      }
      if (e.kind() != util::StoreErrorKind::permanent) {
        throw;
      }
      skip(e.what());
      continue;
    }
    auto j = json::parse(sink.data(), nullptr, false);
    if (j.is_discarded()) {
      skip("not JSON");
      continue;
    }
    try {
      auto e = Event::from_json(j);
      auto t = parse_rfc3339(e.created);
      auto where = parse_key(o.key);
      if (where.repository != e.repository || where.key != e.target) {
        skip(fmt::format("it says repository '{}' target '{}', and lies elsewhere",
                         e.repository.substr(0, 200), e.target.substr(0, 200)));
        continue;
      }
      if (*t < since) {
        continue;
      }
      out.events.push_back(std::move(e));
    } catch (const util::Error& e) {
      skip(e.what());
    }
  }
  return out;
}

std::map<StatsKey, StanzaStats> add_up(const std::vector<Event>& events) {
  std::map<StatsKey, StanzaStats> out;
  for (const auto& e : events) {
    bool restoring = e.phase == "pre" || e.phase == "restore";
    for (const auto& s : e.stanzas) {
      auto& st = out[{e.repository, e.target, s.name}];
      if (restoring) {
        st.exact += s.result == "hit" && s.step == "exact";
        st.prefix += s.result == "hit" && s.step == "prefix";
        st.misses += s.result == "miss";
        st.pre_seconds += s.seconds;
      } else {
        st.saves += s.result == "saved";
        st.unchanged += s.result == "unchanged";
        st.post_seconds += s.seconds;
      }
      st.failed += s.result == "failed";
      st.budget += s.budget;
      st.moved += s.moved;
      st.stored += s.stored;
    }
  }
  return out;
}

} // namespace ephemera::store
