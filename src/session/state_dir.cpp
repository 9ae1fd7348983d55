#include "session/state_dir.hpp"

#include "jobfile/stanza_check.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstdint>

namespace ephemera::session {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A file of the state dir is a few hundred bytes (a report some kilobytes per stanza):
// these bound what a hostile job can make pre and post read.
constexpr uint64_t k_max_state_file_bytes = 1 << 20;

// A job id as one safe file name: bytes other than [A-Za-z0-9._-] become '_', and so do
// leading dots ('.' and '..' must never name the parent of the state dirs, nor a hidden
// name); an id changed that way, or too long for a file name, gets a digest of the
// original so two ids never share a state dir.
std::string state_dir_name(const std::string& id) {
  std::string out = id;
  for (auto& ch : out) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') {
      ch = '_';
    }
  }
  for (size_t i = 0; i < out.size() && out[i] == '.'; ++i) {
    out[i] = '_';
  }
  constexpr size_t k_max = 100;
  if (out != id || out.size() > k_max) {
    out = fmt::format("{}-{}", out.substr(0, k_max), util::sha256_hex(id).substr(0, 16));
  }
  return out;
}

// A state-dir file name for a stanza (names are checked, but nominations come from the
// job: never let one name a path).
std::string state_file_name(const std::string& name) {
  return jobfile::valid_stanza_name(name) ? name + ".json"
                                          : "_" + util::sha256_hex(name).substr(0, 16) + ".json";
}

// The journal's file name for a stanza: its name (a stanza name is a plain file name),
// or a digest of anything that is not.
std::string journal_name(const std::string& stanza) {
  return jobfile::valid_stanza_name(stanza) ? stanza : util::sha256_hex(stanza).substr(0, 16);
}

// A nomination as nominate() wrote it, checked as a stanza, or why it is not one.
std::optional<Stanza> nomination_from_json(const std::string& text, const std::string& file_name,
                                           std::string& why) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = "not a JSON object";
    return std::nullopt;
  }
  jobfile::PersistSpec s;
  for (const auto& [key, v] : j.items()) {
    if (key == "name" && v.is_string()) {
      s.name.value = v.get<std::string>();
    } else if (key == "rules" && v.is_array()) {
      for (const auto& r : v) {
        if (!r.is_string()) {
          why = "rules must be strings";
          return std::nullopt;
        }
        s.rules.push_back({r.get<std::string>(), {}});
      }
    } else if (key == "epoch" && v.is_number_integer()) {
      s.epoch.value =
          v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX ? -1 : v.get<int64_t>();
    } else if (key == "cache_key" && v.is_string()) {
      s.cache_key.value = v.get<std::string>();
    } else {
      bool known = key == "name" || key == "rules" || key == "epoch" || key == "cache_key";
      why = known ? fmt::format("'{}' has the wrong type", key)
                  : fmt::format("'{}' is not a field of a nomination", key);
      return std::nullopt;
    }
  }
  if (!j.contains("name") || !j.contains("rules") || !j.contains("epoch")) {
    why = "name, rules and epoch are required";
    return std::nullopt;
  }
  std::vector<util::Diagnostic> problems;
  jobfile::StanzaCheck check(problems);
  check.name({"name", {}}, s.name.value);
  auto parsed =
      check.rules({"rules", {}}, s.rules, [](size_t i) { return fmt::format("rules[{}]", i); });
  check.epoch({"epoch", {}}, s.epoch.value);
  check.cache_key({"cache_key", {}}, s.cache_key.value);
  if (check.failed()) {
    why = problems.front().message;
    return std::nullopt;
  }
  if (state_file_name(s.name.value) != file_name) {
    why = fmt::format("it names '{}', not the stanza its file is named after", s.name.value);
    return std::nullopt;
  }
  s.parsed_rules = std::move(*parsed);
  return Stanza(std::move(s), Origin::in_job);
}

} // namespace

fs::path default_state_dir(const fs::path& root, const std::string& job_id,
                           const std::string& workdir) {
  std::string id =
      job_id.empty() ? "w" + util::sha256_hex(workdir).substr(0, 16) : state_dir_name(job_id);
  return util::rebase(root, fs::path("/tmp/ephemera-state") / id);
}

fs::path StateDir::scratch() {
  try {
    return util::Dir::open(m_path, true).sub("tmp", true).path();
  } catch (const std::exception& e) {
    m_problem(fmt::format("{} (staging in the system's temporary directory instead)",
                          util::printable(e.what())));
    return fs::temp_directory_path();
  }
}

fs::path StateDir::journal(const std::string& stanza) const {
  return m_path / "staging" / (journal_name(stanza) + ".journal");
}

void StateDir::save_fingerprint(const std::string& name, const std::string& key,
                                const std::string& print) {
  try {
    util::Dir::open(m_path, true)
        .sub("fingerprints", true)
        .write(state_file_name(name), json{{"key", key}, {"fingerprint", print}}.dump() + "\n");
  } catch (const std::exception& e) {
    m_problem(fmt::format("restored '{}', but unable to record what was restored: {}; post "
                          "will save it even if nothing changed",
                          name, util::printable(e.what())));
  }
}

std::optional<std::pair<std::string, std::string>>
StateDir::load_fingerprint(const std::string& name) {
  std::string file = state_file_name(name);
  try {
    auto dir = util::Dir::open_if_exists(m_path);
    auto sub = dir ? dir->sub_if_exists("fingerprints") : std::nullopt;
    auto text = sub ? sub->read(file, k_max_state_file_bytes) : std::nullopt;
    if (!text) {
      return std::nullopt;
    }
    auto j = json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("key") && j["key"].is_string() && j.contains("fingerprint") &&
        j["fingerprint"].is_string()) {
      return std::make_pair(j["key"].get<std::string>(), j["fingerprint"].get<std::string>());
    }
    m_problem(fmt::format("{}: not a fingerprint ephemera wrote: ignored, '{}' is saved as if "
                          "it changed",
                          util::printable((sub->path() / file).string()), name));
  } catch (const std::exception& e) {
    m_problem(fmt::format("{}: ignored, '{}' is saved as if it changed", util::printable(e.what()),
                          name));
  }
  return std::nullopt;
}

void StateDir::save_cas_base(const std::string& name, const CasBase& base) {
  try {
    auto dir = util::Dir::open(m_path, true).sub("cas", true);
    std::string file = state_file_name(name);
    // The record first: a base without its record only makes the save read every file.
    dir.write(file + ".seen", base.seen);
    dir.write(file, json{{"scope", base.scope},
                         {"key", base.key},
                         {"sha256", base.sha256},
                         {"size", base.size}}
                        .dump() +
                        "\n");
  } catch (const std::exception& e) {
    m_problem(fmt::format("restored '{}', but unable to record its index: {}; post saves it "
                          "without a base",
                          name, util::printable(e.what())));
  }
}

std::optional<StateDir::CasBase> StateDir::load_cas_base(const std::string& name) {
  std::string file = state_file_name(name);
  try {
    auto dir = util::Dir::open_if_exists(m_path);
    auto sub = dir ? dir->sub_if_exists("cas") : std::nullopt;
    auto text = sub ? sub->read(file, k_max_state_file_bytes) : std::nullopt;
    if (!text) {
      return std::nullopt;
    }
    auto j = json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("scope") || !j["scope"].is_string() || !j.contains("key") ||
        !j["key"].is_string() || !j.contains("sha256") || !j["sha256"].is_string() ||
        !j.contains("size") || !j["size"].is_number_unsigned()) {
      m_problem(fmt::format("{}: not a record ephemera wrote: ignored, '{}' is saved without a "
                            "base",
                            util::printable((sub->path() / file).string()), name));
      return std::nullopt;
    }
    CasBase b;
    b.scope = j["scope"].get<std::string>();
    b.key = j["key"].get<std::string>();
    b.sha256 = j["sha256"].get<std::string>();
    b.size = j["size"].get<uint64_t>();
    // As large as the record of a state of the most entries the index format allows.
    b.seen = sub->read(file + ".seen", 512ULL << 20).value_or("");
    return b;
  } catch (const std::exception& e) {
    m_problem(fmt::format("{}: ignored, '{}' is saved without a base", util::printable(e.what()),
                          name));
  }
  return std::nullopt;
}

void StateDir::add_cas_refusal(const std::string& name, const CasRefusal& refusal) {
  auto all = cas_refusals(name);
  all.push_back(refusal);
  json list = json::array();
  for (size_t i = all.size() > k_max_cas_refusals ? all.size() - k_max_cas_refusals : 0;
       i < all.size(); ++i) {
    list.push_back({{"scope", all[i].scope},
                    {"key", all[i].key},
                    {"pack", all[i].pack},
                    {"reason", all[i].reason.substr(0, 1024)}});
  }
  try {
    util::Dir::open(m_path, true)
        .sub("cas", true)
        .write(state_file_name(name) + ".refused", list.dump() + "\n");
  } catch (const std::exception& e) {
    m_problem(fmt::format("unable to record that a restore of '{}' was refused: {}; post may "
                          "build on that save",
                          name, util::printable(e.what())));
  }
}

std::vector<StateDir::CasRefusal> StateDir::cas_refusals(const std::string& name) {
  std::string file = state_file_name(name) + ".refused";
  std::vector<CasRefusal> out;
  try {
    auto dir = util::Dir::open_if_exists(m_path);
    auto sub = dir ? dir->sub_if_exists("cas") : std::nullopt;
    auto text = sub ? sub->read(file, k_max_state_file_bytes) : std::nullopt;
    if (!text) {
      return out;
    }
    auto j = json::parse(*text, nullptr, false);
    auto text_at = [](const json& e, const char* k) { return e.contains(k) && e[k].is_string(); };
    bool bad = !j.is_array();
    for (const auto& e : bad ? json::array() : j) {
      if (!e.is_object() || !text_at(e, "scope") || !text_at(e, "key") || !text_at(e, "pack") ||
          !text_at(e, "reason")) {
        bad = true;
        continue;
      }
      out.push_back({e["scope"].get<std::string>(), e["key"].get<std::string>(),
                     e["pack"].get<std::string>(), e["reason"].get<std::string>()});
    }
    if (out.size() > k_max_cas_refusals) { // more than ephemera writes: the latest stand
      out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(k_max_cas_refusals));
      bad = true;
    }
    if (bad) {
      m_problem(fmt::format("{}: not (all) a record ephemera wrote: its other entries stand",
                            util::printable((sub->path() / file).string())));
    }
  } catch (const std::exception& e) {
    m_problem(fmt::format("{}: ignored", util::printable(e.what())));
  }
  return out;
}

std::optional<std::string> StateDir::nominate(const Stanza& stanza) {
  const auto& spec = stanza.spec();
  json rules = json::array();
  for (const auto& r : spec.rules) {
    rules.push_back(r.value);
  }
  json nomination{{"name", spec.name.value},
                  {"rules", rules},
                  {"epoch", spec.epoch.value},
                  {"cache_key", spec.cache_key.value}};
  try {
    util::Dir::open(m_path, true)
        .sub("nominated", true)
        .write(state_file_name(spec.name.value), nomination.dump(2) + "\n");
  } catch (const std::exception& e) {
    std::string why = util::printable(e.what());
    m_problem(fmt::format("persist '{}': unable to record the nomination: {}; post will not "
                          "save it",
                          spec.name.value, why));
    return why;
  }
  return std::nullopt;
}

std::vector<Stanza> StateDir::nominated() {
  std::vector<Stanza> out;
  std::optional<util::Dir> dir;
  std::vector<std::string> names;
  try {
    auto state = util::Dir::open_if_exists(m_path);
    dir = state ? state->sub_if_exists("nominated") : std::nullopt;
    names = dir ? dir->list() : names;
  } catch (const std::exception& e) {
    m_problem(fmt::format("nominations not read: {}", util::printable(e.what())));
    return out;
  }
  for (const auto& name : names) {
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) {
      continue; // not a nomination (one being written has a util::temp_name)
    }
    std::string shown = util::printable((dir->path() / name).string());
    try {
      std::string why;
      auto text = dir->read(name, k_max_state_file_bytes);
      auto s = text ? nomination_from_json(*text, name, why) : std::nullopt;
      if (s) {
        out.push_back(std::move(*s));
      } else if (text) {
        m_problem(
            fmt::format("{}: not a valid nomination ({}): skipped", shown, util::printable(why)));
      }
    } catch (const std::exception& e) {
      m_problem(fmt::format("{}: nomination skipped", util::printable(e.what())));
    }
  }
  return out;
}

void StateDir::append_report(const json& job, const std::string& store,
                             const std::vector<report::Entry>& entries) {
  try {
    if (auto discarded = report::append(m_path, job, store, entries)) {
      m_problem(*discarded);
    }
  } catch (const std::exception& e) {
    m_problem(fmt::format("unable to update the report: {} (the results above stand)",
                          util::printable(e.what())));
  }
}

} // namespace ephemera::session
