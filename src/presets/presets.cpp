#include "presets/presets.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ephemera::presets {

namespace {

std::vector<Preset> make_all() {
  const std::string h = cargo_hash_glob();
  std::vector<Preset> out;
  {
    Preset p;
    p.name = "cargo-deps";
    p.summary = "the third-party part of target/: .fingerprint/, build/ and deps/ of registry "
                "and git packages";
    p.rules = {"target/**/.fingerprint/*-" + h, "target/**/build/*-" + h,
               "target/**/deps/lib*-" + h + ".*", "target/**/deps/*-" + h + ".d"};
    p.cache_key = "cargo-deps";
    p.key_files = {"Cargo.lock", "rust-toolchain.toml", "rust-toolchain"};
    p.restore_keys = {"cargo-deps-"};
    p.probes = {Probe{"rustc", {"-vV"}}};
    p.derived = Derived::cargo_workspace_excludes;
    p.note = "the workspace's own packages (Cargo.lock entries without a source) are excluded, "
             "so editing them changes nothing saved; target/ of the working directory";
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "cargo-registry";
    p.summary = "cargo's downloaded registry index and crates and git databases, without the "
                "unpacked sources cargo recreates";
    p.rules = {"~/.cargo/registry/index", "~/.cargo/registry/cache", "~/.cargo/git/db"};
    p.cache_key = "cargo-registry";
    p.key_files = {"Cargo.lock"};
    p.restore_keys = {"cargo-registry-"};
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "ccache";
    p.summary = "ccache's cache directory, without its statistics and temporary files";
    p.rules = {"~/.cache/ccache", "!~/.cache/ccache/**/stats", "!~/.cache/ccache/tmp",
               "!~/.cache/ccache/lock"};
    p.cache_key = "ccache";
    p.restore_keys = {"ccache-"};
    p.level = 1;
    p.probes = {Probe{"cc", {"--version"}}, Probe{"c++", {"--version"}}};
    p.content_addressed = true;
    p.note = "ccache touches every hit, so only a new or evicted entry makes a save; its "
             "entries are compressed already (level 1); CCACHE_DIR must be ~/.cache/ccache";
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "go";
    p.summary = "Go's module cache and build cache";
    p.rules = {"~/go/pkg/mod", "~/.cache/go-build"};
    p.cache_key = "go";
    p.key_files = {"go.sum"};
    p.restore_keys = {"go-"};
    p.content_addressed = true;
    p.note = "the defaults of GOMODCACHE ($GOPATH/pkg/mod, GOPATH ~/go) and GOCACHE; go "
             "touches build-cache entries it uses";
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "gradle";
    p.summary = "Gradle's dependency caches and wrapper distributions, without lock files";
    p.rules = {"~/.gradle/caches", "~/.gradle/wrapper", "!~/.gradle/caches/**/*.lock",
               "!~/.gradle/caches/**/gc.properties", "!~/.gradle/caches/*/plugin-resolution"};
    p.cache_key = "gradle";
    p.key_files = {"gradle/wrapper/gradle-wrapper.properties",
                   "gradle/libs.versions.toml",
                   "settings.gradle",
                   "settings.gradle.kts",
                   "build.gradle",
                   "build.gradle.kts"};
    p.restore_keys = {"gradle-"};
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "maven";
    p.summary = "Maven's local repository, without failed-download markers";
    p.rules = {"~/.m2/repository", "!~/.m2/repository/**/*.lastUpdated",
               "!~/.m2/repository/**/resolver-status.properties"};
    p.cache_key = "maven";
    p.key_files = {"pom.xml"};
    p.restore_keys = {"maven-"};
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "node-modules";
    p.summary = "the working directory's node_modules, without tools' caches in it";
    p.rules = {"node_modules", "!node_modules/.cache"};
    p.cache_key = "node-modules";
    p.key_files = {"package-lock.json"};
    p.note = "exact key only; `npm ci` deletes node_modules first, so restoring it before "
             "`npm ci` only costs time: run `npm ci` only when `ephemera status` says miss, or "
             "use the npm preset";
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "npm";
    p.summary = "npm's content-addressed cache (~/.npm/_cacache)";
    p.rules = {"~/.npm/_cacache"};
    p.cache_key = "npm";
    p.key_files = {"package-lock.json"};
    p.restore_keys = {"npm-"};
    p.level = 1;
    p.note = "tarballs are compressed already (level 1); with `npm ci --prefer-offline` "
             "a warm job fetches nothing";
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "pip";
    p.summary = "pip's wheel and HTTP cache";
    p.rules = {"~/.cache/pip", "!~/.cache/pip/selfcheck"};
    p.cache_key = "pip";
    p.key_files = {"requirements.txt", "requirements-dev.txt", "constraints.txt", "pyproject.toml"};
    p.restore_keys = {"pip-"};
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "pnpm";
    p.summary = "pnpm's content-addressable store";
    p.rules = {"~/.local/share/pnpm/store"};
    p.cache_key = "pnpm";
    p.key_files = {"pnpm-lock.yaml"};
    p.restore_keys = {"pnpm-"};
    out.push_back(std::move(p));
  }
  {
    Preset p;
    p.name = "yarn";
    p.summary = "Yarn's caches: classic's ~/.cache/yarn and Berry's global ~/.yarn/berry/cache";
    p.rules = {"~/.cache/yarn", "~/.yarn/berry/cache"};
    p.cache_key = "yarn";
    p.key_files = {"yarn.lock"};
    p.restore_keys = {"yarn-"};
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(),
            [](const Preset& a, const Preset& b) { return a.name < b.name; });
  return out;
}

std::string quoted_list(const auto& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += fmt::format("{}\"{}\"", i == 0 ? "" : ", ", items[i]);
  }
  return out + "]";
}

} // namespace

std::string cargo_hash_glob() {
  return std::string(16, '?');
}

const std::vector<Preset>& all() {
  static const std::vector<Preset> presets = make_all();
  return presets;
}

const Preset* find(std::string_view name) {
  for (const auto& p : all()) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& p : all()) {
    out.emplace_back(p.name);
  }
  return out;
}

std::string command_line(const Probe& probe) {
  std::string out(probe.program);
  for (auto a : probe.args) {
    out += " ";
    out += a;
  }
  return out;
}

std::vector<std::string> describe(const Preset& p) {
  std::vector<std::string> out;
  out.push_back(fmt::format("rules = {}", quoted_list(p.rules)));
  if (p.derived == Derived::cargo_workspace_excludes) {
    out.push_back("# and, for each workspace package W of Cargo.lock (lib name L, '-' as '_'):");
    out.push_back("#   !target/**/.fingerprint/W-<hash>, !target/**/build/W-<hash>,");
    out.push_back("#   !target/**/deps/libL-<hash>.*, !target/**/deps/L-<hash>.d");
  }
  out.push_back(fmt::format("cache_key = \"{}\"", p.cache_key));
  if (!p.key_files.empty()) {
    out.push_back(fmt::format("key_files = {}", quoted_list(p.key_files)));
  }
  for (const auto& probe : p.probes) {
    out.push_back(fmt::format("# and the output of `{}` in the key", command_line(probe)));
  }
  if (!p.restore_keys.empty()) {
    out.push_back(fmt::format("restore_keys = {}", quoted_list(p.restore_keys)));
  }
  if (p.level) {
    out.push_back(fmt::format("level = {}", *p.level));
  }
  if (p.content_addressed) {
    out.push_back("# \"nothing changed\" ignores mtimes and directories");
  }
  return out;
}

} // namespace ephemera::presets
