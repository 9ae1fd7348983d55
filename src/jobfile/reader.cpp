// Reads a job file and its sibling persist file into a JobSpec: one walk over the parsed
// TOML tables, every value kept with its file:line:col. The stanza's value checks live in
// stanza_check.cpp and the text checks in toml_text.cpp; this file stays long because it
// names every key the job TOML has, each with its position and its message.

#include "jobfile/reader.hpp"

#include "jobfile/frontmatter.hpp"
#include "jobfile/stanza_check.hpp"
#include "jobfile/toml_text.hpp"
#include "presets/expand.hpp"
#include "rules/rules.hpp"
#include "util/fs.hpp"
#include "util/units.hpp"

#include <fmt/format.h>
#include <toml.hpp>

#include <algorithm>
#include <set>
#include <sstream>

namespace ephemera::jobfile {

namespace fs = std::filesystem;
using util::Diagnostic;
using util::Position;
using util::Severity;

fs::path sibling_persist_file(const fs::path& job_file) {
  fs::path dir = job_file.parent_path();
  fs::path stem = job_file.stem();
  return (dir.has_parent_path() ? dir.parent_path() : fs::path()) / "persist" /
         stem.concat(".toml");
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    prev[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

} // namespace

std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_d = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    bool prefix = c.size() >= 4 && word.size() >= 4 &&
                  (c.rfind(word, 0) == 0 || std::string(word).rfind(c, 0) == 0);
    if (prefix) {
      d = std::min<size_t>(d, 1);
    }
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

namespace {

const std::vector<std::string> k_persist_keys = {"name",      "rules",     "epoch",
                                                 "cache_key", "key_files", "restore_keys",
                                                 "restore",   "save",      "restore_on_protected",
                                                 "share",     "max_size",  "level",
                                                 "preset"};

// Keys buildomat knows at the top level (accepted and left alone).
const std::vector<std::string> k_global_keys = {
    "name",    "variety",      "enable",       "target",     "output_rules", "rust_toolchain",
    "publish", "dependencies", "access_repos", "skip_clone", "persist"};

// One source file being validated: how to turn toml11 positions into the author's.
// toml11 computes a value's line by counting newlines from the start of the file, so
// asking it for every value's position makes loading quadratic in the file's size; the
// line starts of the parsed text are indexed once here instead.
class Source {
public:
  Source(std::string file, std::optional<Frontmatter> fm, std::string text)
      : m_file(std::move(file)), m_fm(std::move(fm)), m_text(std::move(text)) {
    m_line_starts.push_back(0);
    for (size_t i = 0; i < m_text.size(); ++i) {
      if (m_text[i] == '\n') {
        m_line_starts.push_back(i + 1);
      }
    }
  }

  const std::string& file() const { return m_file; }
  const std::string& text() const { return m_text; }

  Position at(int line, int column) const {
    if (m_fm) {
      return m_fm->map(m_file, line, column);
    }
    return {m_file, line, column};
  }

  Position at(const toml::value& v) const {
    auto [line, column] = line_column(v);
    return at(line, column);
  }

  // The position of `key` on the line of its value (toml11 keeps no key positions).
  Position key_at(const toml::value& v, const std::string& key) const {
    auto [line, column] = line_column(v);
    std::string_view text = line_text(line);
    auto col = text.find(key);
    if (col == std::string_view::npos || static_cast<int>(col) + 1 > column) {
      return at(line, column);
    }
    return at(line, static_cast<int>(col) + 1);
  }

  // 1-based line and byte column of a byte offset in the text.
  std::pair<int, int> line_column(size_t offset) const {
    auto it = std::upper_bound(m_line_starts.begin(), m_line_starts.end(), offset);
    size_t line = static_cast<size_t>(it - m_line_starts.begin());
    return {static_cast<int>(line), static_cast<int>(offset - m_line_starts[line - 1]) + 1};
  }

private:
  std::pair<int, int> line_column(const toml::value& v) const {
    const auto* region = dynamic_cast<const toml::detail::region*>(toml::detail::get_region(v));
    if (region == nullptr || !region->is_ok() ||
        region->end() - region->begin() != static_cast<std::ptrdiff_t>(m_text.size())) {
      auto loc = v.location(); // no region of this text: rare, so toml11's slow count is fine
      return {static_cast<int>(loc.line()), static_cast<int>(loc.column())};
    }
    return line_column(static_cast<size_t>(region->first() - region->begin()));
  }

  std::string_view line_text(int line) const {
    if (line < 1 || static_cast<size_t>(line) > m_line_starts.size()) {
      return {};
    }
    size_t start = m_line_starts[static_cast<size_t>(line) - 1];
    size_t end = m_text.find('\n', start);
    return std::string_view(m_text).substr(start, end == std::string::npos ? end : end - start);
  }

  std::string m_file;
  std::optional<Frontmatter> m_fm;
  std::string m_text;
  std::vector<size_t> m_line_starts;
};

class Validator {
public:
  explicit Validator(std::vector<Diagnostic>& out) : m_out(out) {}

  std::vector<Diagnostic>& diagnostics() { return m_out; }

  void error(Position pos, std::string message) {
    m_out.push_back({Severity::error, std::move(pos), std::move(message)});
  }
  void warning(Position pos, std::string message) {
    m_out.push_back({Severity::warning, std::move(pos), std::move(message)});
  }

  static const char* type_name(const toml::value& v) {
    switch (v.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    default:
      return "a date or time";
    }
  }

  std::optional<std::string> string(const Source& src, const toml::value& v,
                                    const std::string& path) {
    if (!v.is_string()) {
      error(src.at(v), fmt::format("{} must be a string, not {}", path, type_name(v)));
      return std::nullopt;
    }
    return v.as_string().str;
  }

  std::optional<bool> boolean(const Source& src, const toml::value& v, const std::string& path) {
    if (!v.is_boolean()) {
      error(src.at(v), fmt::format("{} must be true or false, not {}", path, type_name(v)));
      return std::nullopt;
    }
    return v.as_boolean();
  }

  std::vector<Located<std::string>> strings(const Source& src, const toml::value& v,
                                            const std::string& path) {
    std::vector<Located<std::string>> out;
    if (!v.is_array()) {
      error(src.at(v), fmt::format("{} must be an array of strings, not {}", path, type_name(v)));
      return out;
    }
    size_t i = 0;
    for (const auto& item : v.as_array()) {
      auto s = string(src, item, fmt::format("{}[{}]", path, i++));
      if (s) {
        out.push_back({*s, src.at(item)});
      }
    }
    return out;
  }

private:
  std::vector<Diagnostic>& m_out;
};

PersistSpec validate_stanza(Validator& val, const Source& src, const toml::value& table,
                            size_t index) {
  PersistSpec s;
  s.pos = src.at(table);
  s.source_file = src.file();
  std::string base = fmt::format("persist[{}]", index);
  StanzaCheck check(val.diagnostics());
  const auto& t = table.as_table();
  bool have_name = false, have_rules = false, have_epoch = false;
  for (const auto& [key, v] : t) {
    std::string path = base + "." + key;
    if (key == "name") {
      if (auto n = val.string(src, v, path)) {
        have_name = true;
        s.name = {*n, src.at(v)};
        check.name({path, src.at(v)}, *n);
      } else {
        have_name = true;
      }
    } else if (key == "rules") {
      have_rules = true;
      s.rules = val.strings(src, v, path);
      if (v.is_array()) {
        auto parsed = check.rules({path, src.at(v)}, s.rules,
                                  [&path](size_t i) { return fmt::format("{}[{}]", path, i); });
        s.parsed_rules = parsed.value_or(std::vector<rules::Rule>{});
      }
    } else if (key == "epoch") {
      have_epoch = true;
      if (!v.is_integer()) {
        val.error(src.at(v),
                  fmt::format("{} must be an integer >= 0, not {}", path, Validator::type_name(v)));
      } else {
        s.epoch = {v.as_integer(), src.at(v)};
        check.epoch({path, src.at(v)}, s.epoch.value);
      }
    } else if (key == "cache_key") {
      if (auto k = val.string(src, v, path)) {
        s.cache_key = {*k, src.at(v)};
        check.cache_key({path, src.at(v)}, *k);
      }
    } else if (key == "key_files") {
      s.key_files = val.strings(src, v, path);
      bool include = false;
      for (const auto& f : s.key_files) {
        check.key_file({path, f.pos}, f.value);
        include = include || f.value.empty() || f.value[0] != '!';
      }
      if (!s.key_files.empty() && !include) {
        val.error(src.at(v), fmt::format("{} has only '!' patterns: they exclude from nothing; "
                                         "name the files to hash",
                                         path));
      }
    } else if (key == "restore_keys") {
      s.restore_keys = val.strings(src, v, path);
      for (const auto& k : s.restore_keys) {
        check.restore_key({path, k.pos}, k.value);
      }
    } else if (key == "restore" || key == "save" || key == "restore_on_protected") {
      if (auto b = val.boolean(src, v, path)) {
        (key == "restore" ? s.restore : key == "save" ? s.save : s.restore_on_protected) = *b;
      }
    } else if (key == "share") {
      if (auto sh = val.string(src, v, path)) {
        if (*sh == "repository") {
          s.share = Share::repository;
        } else if (*sh == "branch") {
          s.share = Share::branch;
        } else {
          val.error(src.at(v),
                    fmt::format("{} must be \"repository\" or \"branch\", not \"{}\"", path, *sh));
        }
      }
    } else if (key == "max_size") {
      std::optional<uint64_t> size;
      if (v.is_integer() && v.as_integer() > 0) {
        size = static_cast<uint64_t>(v.as_integer());
      } else if (v.is_string()) {
        size = util::parse_size(v.as_string().str);
      }
      if (!size || *size == 0) {
        val.error(src.at(v), fmt::format("{} must be a size such as \"4GiB\", \"500MB\" or a "
                                         "positive number of bytes",
                                         path));
      } else {
        s.max_size = size;
      }
    } else if (key == "preset") {
      if (auto n = val.string(src, v, path)) {
        s.preset = {*n, src.at(v)};
        if (n->empty()) {
          val.error(src.at(v),
                    fmt::format("{} must name a preset; `ephemera presets` lists them", path));
        }
      }
    } else if (key == "level") {
      if (!v.is_integer() || v.as_integer() < 1 || v.as_integer() > 19) {
        val.error(src.at(v), fmt::format("{} must be a zstd level, an integer from 1 to 19", path));
      } else {
        s.level = static_cast<int>(v.as_integer());
      }
    } else {
      std::string hint;
      if (std::find(k_global_keys.begin(), k_global_keys.end(), key) != k_global_keys.end()) {
        hint = fmt::format("; '{}' is a top-level key that landed in [[persist]] because it comes "
                           "after the table header: move it above the first [...]",
                           key);
      } else if (auto c = closest(key, k_persist_keys)) {
        hint = fmt::format("; did you mean '{}'?", *c);
      }
      val.error(src.key_at(v, key),
                fmt::format("{}: unknown key '{}' in [[persist]]{}", base, key, hint));
    }
  }
  if (!s.preset.value.empty()) {
    if (const auto* preset = presets::find(s.preset.value)) {
      std::set<std::string> given;
      for (const auto& [key, v] : t) {
        given.insert(key);
      }
      presets::apply(s, *preset, given);
      have_name = have_rules = true;
    } else {
      have_name = have_rules = true; // the preset is what is missing, not these
      auto c = closest(s.preset.value, presets::names());
      val.error(s.preset.pos, fmt::format("{}.preset: no preset '{}'{}; `ephemera presets` lists "
                                          "them",
                                          base, s.preset.value,
                                          c ? fmt::format(" (did you mean '{}'?)", *c) : ""));
    }
  }
  if (!have_name) {
    val.error(s.pos, fmt::format("{}.name is required", base));
  }
  if (!have_rules) {
    val.error(s.pos, fmt::format("{}.rules is required: which files to keep", base));
  }
  if (!have_epoch) {
    val.error(s.pos, fmt::format("{}.epoch is required: an integer you bump to throw every old "
                                 "archive of this stanza away (start with epoch = 1)",
                                 base));
  }
  return s;
}

std::optional<toml::value> parse_toml(const Source& src, const std::string& text,
                                      std::vector<Diagnostic>& diags) {
  // TOML is UTF-8: say where it is not, rather than letting bytes through.
  if (auto bad = first_invalid_utf8(text)) {
    diags.push_back({Severity::error, src.at(bad->line, bad->column),
                     fmt::format("byte 0x{:02x} is not UTF-8: TOML must be UTF-8", bad->byte)});
    return std::nullopt;
  }
  if (auto at = too_deep(text)) {
    auto [l, c] = src.line_column(*at);
    diags.push_back({Severity::error, src.at(l, c),
                     fmt::format("TOML nested deeper than {} levels (arrays, inline tables, dotted "
                                 "keys): refused before parsing",
                                 k_max_toml_nesting)});
    return std::nullopt;
  }
  std::istringstream in(text);
  try {
    return toml::parse(in, src.file());
  } catch (const toml::exception& e) {
    auto loc = e.location();
    diags.push_back({Severity::error,
                     src.at(static_cast<int>(loc.line()), static_cast<int>(loc.column())),
                     toml_message(e.what())});
  } catch (const std::exception& e) {
    diags.push_back({Severity::error, src.at(0, 0), toml_message(e.what())});
  }
  return std::nullopt;
}

void lint_tables(Validator& val, const Source& src, const toml::value& root) {
  static const std::vector<std::string> k_top_only = {
      "variety",        "enable",     "target",      "output_rules",
      "rust_toolchain", "skip_clone", "access_repos"};
  for (const auto& [name, v] : root.as_table()) {
    std::vector<const toml::value*> tables;
    if (v.is_table()) {
      tables.push_back(&v);
    } else if (v.is_array()) {
      for (const auto& item : v.as_array()) {
        if (item.is_table()) {
          tables.push_back(&item);
        }
      }
    }
    if (name == "persist") {
      continue; // validated with errors
    }
    for (const auto* t : tables) {
      for (const auto& [key, kv] : t->as_table()) {
        if (std::find(k_top_only.begin(), k_top_only.end(), key) != k_top_only.end()) {
          val.warning(src.key_at(kv, key),
                      fmt::format("'{}' is written after the table header [{}], so TOML puts it "
                                  "inside that table, not at the top level: move it above the "
                                  "first [...]",
                                  key, name));
        }
      }
    }
  }
}

void read_globals(Validator& val, const Source& src, const toml::value& root, JobSpec& job) {
  const auto& t = root.as_table();
  auto find = [&](const char* key) -> const toml::value* {
    auto it = t.find(key);
    return it == t.end() ? nullptr : &it->second;
  };
  Position top{src.file(), 0, 0};
  if (const auto* v = find("name")) {
    job.name = val.string(src, *v, "name").value_or("");
  } else {
    val.error(src.at(1, 0), "name is required (a string naming the job)");
  }
  if (const auto* v = find("variety")) {
    job.variety = val.string(src, *v, "variety").value_or("");
  } else {
    val.error(src.at(1, 0), "variety is required (buildomat's job variety, e.g. \"basic\")");
  }
  if (const auto* v = find("enable")) {
    job.enable = val.boolean(src, *v, "enable").value_or(true);
  }
  for (const char* wrong : {"enabled", "disable", "disabled"}) {
    if (const auto* v = find(wrong)) {
      val.error(src.key_at(*v, wrong),
                fmt::format("'{}' is not a job key: use 'enable = {}' to {} the job", wrong,
                            std::string(wrong) == "enabled" ? "true|false" : "false",
                            std::string(wrong) == "enabled" ? "enable or disable" : "disable"));
    }
  }
  if (const auto* v = find("target")) {
    if (auto s = val.string(src, *v, "target")) {
      job.target = *s;
    }
  }
}

std::vector<PersistSpec> read_stanzas(Validator& val, const Source& src, const toml::value& root,
                                      size_t first_index) {
  std::vector<PersistSpec> out;
  const auto& t = root.as_table();
  auto it = t.find("persist");
  if (it == t.end()) {
    return out;
  }
  if (!it->second.is_array()) {
    val.error(src.at(it->second),
              "persist must be an array of tables: write [[persist]], not [persist]");
    return out;
  }
  size_t i = first_index;
  for (const auto& item : it->second.as_array()) {
    if (!item.is_table()) {
      val.error(src.at(item), fmt::format("persist[{}] must be a table ([[persist]])", i));
    } else {
      out.push_back(validate_stanza(val, src, item, i));
    }
    ++i;
  }
  return out;
}

struct Loaded {
  std::optional<toml::value> root;
  Source source;
};

// A job file is a few kilobytes (a script's code can be long, its frontmatter is not);
// this bounds what a hostile one can make the agent read and parse. A fifo or a device
// (/dev/zero) as a job file is refused before anything is read.
constexpr uint64_t k_max_job_file_bytes = 16 << 20;

// follow_symlinks: whether a symlink as the file itself is read (the job file and a
// --persist file are named by the agent; the sibling persist file is found in the job's
// own tree, where a symlink could point at any file the agent can read).
Loaded load_toml(const fs::path& path, bool script, bool follow_symlinks,
                 std::vector<Diagnostic>& diags) {
  std::string file = path.string();
  std::optional<std::string> text;
  try {
    text = util::read_regular_file_if_exists(path, k_max_job_file_bytes, follow_symlinks);
  } catch (const util::Error& e) {
    throw util::InputError({file, 0, 0}, e.what());
  }
  if (!text) {
    throw util::InputError({file, 0, 0}, "no such file");
  }
  if (text->empty()) {
    throw util::InputError({file, 1, 1}, "the file is empty");
  }
  if (!script) {
    if (text->back() != '\n') {
      text->push_back('\n'); // as toml11 does, so its offsets and ours agree
    }
    Source src(file, std::nullopt, std::move(*text));
    auto root = parse_toml(src, src.text(), diags);
    return {std::move(root), std::move(src)};
  }
  auto fm = extract_frontmatter(file, *text);
  diags.insert(diags.end(), fm.warnings.begin(), fm.warnings.end());
  std::string toml = fm.toml + "\n";
  Source src(file, std::move(fm), std::move(toml));
  auto root = parse_toml(src, src.text(), diags);
  return {std::move(root), std::move(src)};
}

bool is_script(const fs::path& p) {
  return p.extension() == ".sh";
}

} // namespace

JobSpec load_job(const fs::path& job_file, const std::optional<fs::path>& persist_file) {
  std::vector<Diagnostic> diags;
  JobSpec job;
  job.file = job_file.string();
  if (!is_script(job_file) && job_file.extension() != ".toml") {
    throw util::InputError(
        {job.file, 0, 0},
        "not a job file: give a buildomat job script (*.sh) or a TOML file (*.toml)");
  }
  Validator val(diags);
  auto main = load_toml(job_file, is_script(job_file), true, diags);
  if (main.root) {
    read_globals(val, main.source, *main.root, job);
    lint_tables(val, main.source, *main.root);
    job.persist = read_stanzas(val, main.source, *main.root, 0);
  }
  fs::path sibling = persist_file ? *persist_file : sibling_persist_file(job_file);
  bool explicit_file = persist_file.has_value();
  std::error_code ec;
  if (explicit_file || fs::exists(fs::symlink_status(sibling, ec))) {
    job.persist_file = sibling.string();
    if (sibling.extension() != ".toml") {
      diags.push_back({Severity::error, {sibling.string(), 0, 0}, "a persist file must be *.toml"});
    } else {
      auto extra = load_toml(sibling, false, explicit_file, diags);
      if (extra.root) {
        for (const auto& [key, v] : extra.root->as_table()) {
          if (key != "persist") {
            val.error(extra.source.key_at(v, key),
                      fmt::format("'{}' does not belong in a persist file: it holds only "
                                  "[[persist]] tables",
                                  key));
          }
        }
        auto more = read_stanzas(val, extra.source, *extra.root, job.persist.size());
        job.persist.insert(job.persist.end(), more.begin(), more.end());
      }
    }
  }
  std::set<std::string> seen;
  for (const auto& s : job.persist) {
    if (!s.name.value.empty() && !seen.insert(s.name.value).second) {
      val.error(s.name.pos, fmt::format("persist name '{}' is used twice: names must be unique "
                                        "across the job file and its persist file",
                                        s.name.value));
    }
  }
  bool failed = std::any_of(diags.begin(), diags.end(),
                            [](const Diagnostic& d) { return d.severity == Severity::error; });
  if (failed) {
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.pos.file, a.pos.line, a.pos.column) <
             std::tie(b.pos.file, b.pos.line, b.pos.column);
    });
    throw util::InputError(std::move(diags));
  }
  job.warnings = std::move(diags);
  return job;
}

} // namespace ephemera::jobfile
