#include "presets/expand.hpp"

#include "presets/probe.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <toml.hpp>

#include <algorithm>
#include <sstream>

namespace ephemera::presets {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t k_max_lock_bytes = 16 << 20;
constexpr size_t k_max_workspace_packages = 1000;

std::vector<jobfile::Located<std::string>> located(const auto& items, const util::Position& at) {
  std::vector<jobfile::Located<std::string>> out;
  for (const auto& i : items) {
    out.push_back({std::string(i), at});
  }
  return out;
}

} // namespace

void apply(jobfile::PersistSpec& s, const Preset& p, const std::set<std::string>& given) {
  const auto at = s.preset.pos;
  auto absent = [&](const char* key) { return given.count(key) == 0; };
  if (absent("name")) {
    s.name = {std::string(p.name), at};
  }
  if (absent("rules")) {
    s.rules = located(p.rules, at);
    s.derived_rules = p.derived != Derived::none;
  }
  if (absent("cache_key")) {
    s.cache_key = {std::string(p.cache_key), at};
  }
  if (absent("key_files")) {
    s.key_files = located(p.key_files, at);
    s.preset_key_files = true;
  }
  if (absent("restore_keys")) {
    s.restore_keys = located(p.restore_keys, at);
  }
  if (absent("level") && p.level) {
    s.level = p.level;
  }
  s.content_addressed = p.content_addressed;
}

std::vector<std::string> cargo_workspace_packages(const std::string& text,
                                                  const std::string& name) {
  std::istringstream in(text);
  toml::value lock;
  try {
    lock = toml::parse(in, name);
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw util::Error(fmt::format("{}: not TOML: {}", name, what.substr(0, what.find('\n'))));
  }
  std::vector<std::string> out;
  if (!lock.is_table() || !lock.contains("package") || !lock.at("package").is_array()) {
    return out;
  }
  for (const auto& pkg : lock.at("package").as_array()) {
    if (pkg.is_table() && !pkg.contains("source") && pkg.contains("name") &&
        pkg.at("name").is_string()) {
      out.push_back(pkg.at("name").as_string().str);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> cargo_excludes(const std::string& package) {
  std::string lib = package;
  std::replace(lib.begin(), lib.end(), '-', '_');
  const std::string h = cargo_hash_glob();
  return {"!target/**/.fingerprint/" + package + "-" + h, "!target/**/build/" + package + "-" + h,
          "!target/**/deps/lib" + lib + "-" + h + ".*", "!target/**/deps/" + lib + "-" + h + ".d"};
}

jobfile::PersistSpec derive_rules(jobfile::PersistSpec s, const rules::Anchors& anchors) {
  const Preset* p = s.preset.value.empty() ? nullptr : find(s.preset.value);
  if (p == nullptr) {
    return s;
  }
  if (s.derived_rules && p->derived == Derived::cargo_workspace_excludes) {
    fs::path visible = fs::path(anchors.work) / "Cargo.lock";
    try {
      auto text = util::read_regular_file_if_exists(util::rebase(anchors.root, visible),
                                                    k_max_lock_bytes, true);
      auto packages =
          text ? cargo_workspace_packages(*text, visible.string()) : std::vector<std::string>{};
      // Four rules a package: a lock file of the job's making must not make the rule set,
      // compiled for every pre and post, as large as it likes.
      if (packages.size() > k_max_workspace_packages) {
        throw util::Error(fmt::format("{} lists {} workspace packages, more than {}",
                                      visible.string(), packages.size(), k_max_workspace_packages));
      }
      for (const auto& pkg : packages) {
        // A name that is not a package name cannot be made into a rule: the rules
        // would not parse, and cargo would not have written it.
        bool plain = !pkg.empty() && std::all_of(pkg.begin(), pkg.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        });
        if (!plain) {
          util::log::warn("persist '{}': {}: package name '{}' skipped", s.name.value,
                          util::printable(visible.string()), util::printable(pkg));
          continue;
        }
        for (auto& r : cargo_excludes(pkg)) {
          s.rules.push_back(jobfile::Located<std::string>{std::move(r), s.preset.pos});
        }
      }
    } catch (const std::exception& e) {
      util::log::warn("persist '{}': the workspace's packages are not excluded: {}", s.name.value,
                      util::printable(e.what()));
    }
  }
  return s;
}

jobfile::PersistSpec resolve(jobfile::PersistSpec stanza, const rules::Anchors& anchors) {
  auto s = derive_rules(std::move(stanza), anchors);
  const Preset* p = s.preset.value.empty() ? nullptr : find(s.preset.value);
  if (p == nullptr) {
    return s;
  }
  std::vector<fs::path> job_dirs{util::rebase(anchors.root, anchors.home),
                                 util::rebase(anchors.root, anchors.work)};
  for (const auto& probe : p->probes) {
    auto r = run_probe(probe, job_dirs);
    if (!r.problem.empty()) {
      util::log::warn("persist '{}': the key holds no toolchain version of `{}`: {}", s.name.value,
                      command_line(probe), util::printable(r.problem));
    }
    s.probe_outputs.emplace_back(command_line(probe), std::move(r.output));
  }
  return s;
}

} // namespace ephemera::presets
