#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

// Rules and keys per ecosystem, as data (README "Presets"): `preset = "NAME"` in a
// [[persist]] stanza takes every field of the preset that the stanza does not set itself.
namespace ephemera::presets {

// A program a preset runs to learn a toolchain's version, hashed into the key. Only these
// fixed programs are ever run, found on the agent's own PATH (see probe.hpp); nothing the
// job file names is.
struct Probe {
  std::string_view program; // a bare name, looked up on the agent's PATH
  std::vector<std::string_view> args;
};

// What a preset derives from the job's tree when a hook uses the stanza (resolve.hpp).
enum class Derived {
  none,
  // cargo-deps: the workspace's own packages, read from Cargo.lock, are excluded from the
  // target/ rules, which take every package's artifacts.
  cargo_workspace_excludes,
};

struct Preset {
  std::string_view name;
  std::string_view summary; // what it keeps, one line
  std::vector<std::string> rules;
  std::string_view cache_key;
  std::vector<std::string_view> key_files;
  std::vector<std::string_view> restore_keys;
  std::optional<int> level;
  std::vector<Probe> probes;
  Derived derived = Derived::none;
  // PersistSpec::content_addressed: the tool names its entries by their content and
  // touches those it uses (ccache, go's build cache).
  bool content_addressed = false;
  std::string_view note; // how to use it, for `ephemera presets`
};

// Every preset, sorted by name.
const std::vector<Preset>& all();

// The preset of that name; nullptr when there is none.
const Preset* find(std::string_view name);

// The names, sorted, for "did you mean" and error messages.
std::vector<std::string> names();

// cargo's metadata hash after a unit's name in target/ (16 hex digits) as a glob: exactly
// 16 characters, so that W-<hash> never matches another package's X-<hash>.
std::string cargo_hash_glob();

// "rustc -vV"
std::string command_line(const Probe& probe);

// The expansion as lines of TOML-like text ("rules = [...]", "cache_key = ...", the
// probes and derived rules as comments), for `ephemera presets` and README.
std::vector<std::string> describe(const Preset& preset);

} // namespace ephemera::presets
