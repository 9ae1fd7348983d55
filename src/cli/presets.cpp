// presets: list the presets a [[persist]] stanza can name, with their expansions.
#include "presets/presets.hpp"

#include "cli/commands.hpp"
#include "cli/preset_view.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>

namespace ephemera::cli {

namespace {

using nlohmann::json;

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

json strings(const std::vector<jobfile::Located<std::string>>& items) {
  json out = json::array();
  for (const auto& i : items) {
    out.push_back(i.value);
  }
  return out;
}

json preset_to_json(const presets::Preset& p) {
  json probes = json::array();
  for (const auto& probe : p.probes) {
    probes.push_back(presets::command_line(probe));
  }
  return json{{"name", p.name},
              {"summary", p.summary},
              {"rules", p.rules},
              {"cache_key", p.cache_key},
              {"key_files", p.key_files},
              {"restore_keys", p.restore_keys},
              {"level", p.level ? json(*p.level) : json(nullptr)},
              {"probes", probes},
              {"derived_rules", p.derived == presets::Derived::cargo_workspace_excludes
                                    ? json("cargo workspace excludes")
                                    : json(nullptr)},
              {"content_addressed", p.content_addressed},
              {"note", p.note}};
}

int run_presets(const Globals& g) {
  if (g.json) {
    json out = json::array();
    for (const auto& p : presets::all()) {
      out.push_back(preset_to_json(p));
    }
    std::printf("%s\n", out.dump(2).c_str());
    return k_exit_ok;
  }
  for (const auto& p : presets::all()) {
    std::printf("%.*s: %.*s\n", static_cast<int>(p.name.size()), p.name.data(),
                static_cast<int>(p.summary.size()), p.summary.data());
    for (const auto& line : presets::describe(p)) {
      std::printf("  %s\n", line.c_str());
    }
    if (!p.note.empty()) {
      std::printf("  # %.*s\n", static_cast<int>(p.note.size()), p.note.data());
    }
  }
  return k_exit_ok;
}

} // namespace

std::vector<std::string> preset_lines(const jobfile::PersistSpec& s) {
  std::vector<std::string> out;
  if (s.preset.value.empty()) {
    return out;
  }
  auto list = [](const std::vector<jobfile::Located<std::string>>& items) {
    std::string text = "[";
    for (size_t i = 0; i < items.size(); ++i) {
      text += fmt::format("{}\"{}\"", i == 0 ? "" : ", ", items[i].value);
    }
    return text + "]";
  };
  out.push_back(fmt::format("preset {} (explicit keys override it):", s.preset.value));
  out.push_back(fmt::format("  rules = {}", list(s.rules)));
  if (s.derived_rules && s.probe_outputs.empty()) {
    out.push_back("  # and the workspace's packages of Cargo.lock excluded, when a hook runs");
  }
  out.push_back(fmt::format("  cache_key = \"{}\"", s.cache_key.value));
  out.push_back(fmt::format("  key_files = {}", list(s.key_files)));
  out.push_back(fmt::format("  restore_keys = {}", list(s.restore_keys)));
  if (s.level) {
    out.push_back(fmt::format("  level = {}", *s.level));
  }
  if (const auto* p = presets::find(s.preset.value)) {
    for (const auto& probe : p->probes) {
      std::string cmd = presets::command_line(probe);
      std::string answer = "run by pre and post";
      for (const auto& [c, output] : s.probe_outputs) {
        if (c == cmd) {
          answer = output.empty() ? "no answer: not in the key" : "'" + first_line(output) + "'";
        }
      }
      out.push_back(fmt::format("  # key also hashes `{}`: {}", cmd, answer));
    }
  }
  if (s.content_addressed) {
    out.push_back("  # \"nothing changed\" ignores mtimes and directories");
  }
  return out;
}

json preset_json(const jobfile::PersistSpec& s) {
  if (s.preset.value.empty()) {
    return nullptr;
  }
  json probes = json::object();
  for (const auto& [c, output] : s.probe_outputs) {
    probes[c] = first_line(output);
  }
  return json{{"name", s.preset.value},
              {"rules", strings(s.rules)},
              {"cache_key", s.cache_key.value},
              {"key_files", strings(s.key_files)},
              {"restore_keys", strings(s.restore_keys)},
              {"level", s.level ? json(*s.level) : json(nullptr)},
              {"probes", probes},
              {"content_addressed", s.content_addressed}};
}

void add_presets(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand("presets", "List the presets a [[persist]] stanza can name, with "
                                           "what each expands to");
  sub.callback([&g, &action] { action = [&g] { return run_presets(g); }; });
}

} // namespace ephemera::cli
