#include "rules/rules.hpp"

#include "util/sha256.hpp"

#include <fmt/format.h>
#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cctype>

namespace ephemera::rules {

const char* folder(Anchor anchor) {
  switch (anchor) {
  case Anchor::root:
    return "root";
  case Anchor::home:
    return "home";
  case Anchor::work:
    return "work";
  }
  return "work";
}

RuleError::RuleError(std::string rule, size_t offset, std::string reason)
    : util::Error(fmt::format("rule '{}': {} (at offset {})", rule, reason, offset)),
      m_rule(std::move(rule)), m_offset(offset), m_reason(std::move(reason)) {}

namespace {

bool is_meta(char c) {
  return c == '*' || c == '?' || c == '[';
}

std::string hex_byte(unsigned char c) {
  return fmt::format("\\x{:02x}", c);
}

std::string literal(unsigned char c) {
  if (std::isalnum(c) != 0 || c == '_' || c == '-') {
    return std::string(1, static_cast<char>(c));
  }
  return hex_byte(c);
}

// Parses a class starting at text[i] == '['; returns the regex and moves i past ']'.
// Classes never match '/'.
std::string class_regex(const std::string& rule, std::string_view text, size_t& i, size_t base) {
  size_t open = i;
  ++i;
  bool negate = false;
  if (i < text.size() && text[i] == '!') {
    negate = true;
    ++i;
  }
  std::bitset<256> set;
  bool first = true;
  bool any = false;
  while (true) {
    if (i >= text.size()) {
      throw RuleError(rule, base + open, "unclosed '[': a class needs its ']'");
    }
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ']' && !first) {
      ++i;
      break;
    }
    first = false;
    if (c == '/') {
      throw RuleError(rule, base + i, "'/' cannot appear inside a '[...]' class");
    }
    if (i + 2 < text.size() && text[i + 1] == '-' && text[i + 2] != ']') {
      unsigned char hi = static_cast<unsigned char>(text[i + 2]);
      if (hi < c) {
        throw RuleError(rule, base + i,
                        fmt::format("range '{}-{}' is reversed", char(c), char(hi)));
      }
      for (unsigned v = c; v <= hi; ++v) {
        set.set(v);
      }
      i += 3;
    } else {
      set.set(c);
      ++i;
    }
    any = true;
  }
  if (!any) {
    throw RuleError(rule, base + open, "empty '[]' class");
  }
  if (negate) {
    set.flip();
  }
  set.reset('/');
  if (set.none()) {
    throw RuleError(rule, base + open, "the class matches no character");
  }
  std::string out = "[";
  for (unsigned v = 0; v < 256;) {
    if (!set.test(v)) {
      ++v;
      continue;
    }
    unsigned start = v;
    while (v + 1 < 256 && set.test(v + 1)) {
      ++v;
    }
    out += hex_byte(static_cast<unsigned char>(start));
    if (v > start) {
      out += "-" + hex_byte(static_cast<unsigned char>(v));
    }
    ++v;
  }
  return out + "]";
}

// One path component (not "**") as a regex; base is its offset in the rule.
std::string component_regex(const std::string& rule, std::string_view comp, size_t base) {
  std::string out;
  for (size_t i = 0; i < comp.size();) {
    char c = comp[i];
    if (c == '*') {
      if (i + 1 < comp.size() && comp[i + 1] == '*') {
        throw RuleError(rule, base + i, "'**' must be a whole path component, as in 'a/**/b'");
      }
      out += "[^/]*";
      ++i;
    } else if (c == '?') {
      out += "[^/]";
      ++i;
    } else if (c == '[') {
      out += class_regex(rule, comp, i, base);
    } else {
      out += literal(static_cast<unsigned char>(c));
      ++i;
    }
  }
  return out;
}

struct Component {
  std::string_view text;
  size_t offset;
};

std::vector<Component> split(std::string_view pattern, size_t base) {
  std::vector<Component> out;
  if (pattern.empty()) {
    return out;
  }
  size_t start = 0;
  while (true) {
    size_t end = pattern.find('/', start);
    size_t len = (end == std::string_view::npos ? pattern.size() : end) - start;
    out.push_back({pattern.substr(start, len), base + start});
    if (end == std::string_view::npos) {
      break;
    }
    start = end + 1;
  }
  return out;
}

// Regex of the first n components; "" for n == 0.
std::string join_regex(const std::string& rule, const std::vector<Component>& comps, size_t n) {
  std::string s;
  bool need_sep = false;
  for (size_t i = 0; i < n; ++i) {
    if (comps[i].text == "**") {
      bool last = i + 1 == comps.size();
      if (last) {
        s += need_sep ? "/.+" : ".+";
      } else {
        s += need_sep ? "/(?:[^/]+/)*" : "(?:[^/]+/)*";
      }
      need_sep = false;
    } else {
      if (need_sep) {
        s += "/";
      }
      s += component_regex(rule, comps[i].text, comps[i].offset);
      need_sep = true;
    }
  }
  return s;
}

size_t anchor_length(const Rule& r, std::string_view body) {
  (void)r;
  if (!body.empty() && body[0] == '/') {
    return 1;
  }
  if (body.size() >= 2 && body[0] == '~' && body[1] == '/') {
    return 2;
  }
  if (body == "~") {
    return 1;
  }
  return 0;
}

void check_components(const std::string& rule, const std::vector<Component>& comps) {
  for (size_t i = 0; i < comps.size(); ++i) {
    const auto& c = comps[i];
    if (c.text.empty()) {
      if (i + 1 == comps.size()) {
        continue; // a trailing '/' is allowed
      }
      throw RuleError(rule, c.offset, "empty path component ('//')");
    }
    if (c.text == "..") {
      throw RuleError(rule, c.offset,
                      "'..' is not allowed: rules cannot climb out of their anchor");
    }
    if (c.text == ".") {
      throw RuleError(rule, c.offset, "'.' components are not allowed");
    }
    if (c.text != "**" && c.text.find("**") != std::string_view::npos) {
      throw RuleError(rule, c.offset + c.text.find("**"),
                      "'**' must be a whole path component, as in 'a/**/b'");
    }
  }
}

} // namespace

Rule parse_rule(std::string_view text) {
  Rule r;
  r.text = std::string(text);
  size_t i = 0;
  if (i < text.size() && text[i] == '!') {
    r.exclude = true;
    ++i;
    if (i < text.size() && (text[i] == '=' || text[i] == '%' || text[i] == '!')) {
      throw RuleError(r.text, i,
                      "'!' combines with nothing: an exclusion cannot also be '=' or '%'");
    }
  } else {
    while (i < text.size() && (text[i] == '=' || text[i] == '%')) {
      bool& flag = text[i] == '=' ? r.must_match : r.may_change;
      if (flag) {
        throw RuleError(r.text, i, fmt::format("'{}' given twice", text[i]));
      }
      flag = true;
      ++i;
    }
    if (i < text.size() && text[i] == '!') {
      throw RuleError(r.text, i, "'!' must come first and combines with nothing");
    }
  }
  std::string_view body = text.substr(i);
  if (body.empty()) {
    throw RuleError(r.text, i, "empty rule: give a path or a glob pattern");
  }
  if (body[0] == '~' && body != "~" && (body.size() < 2 || body[1] != '/')) {
    throw RuleError(r.text, i, "'~' must be followed by '/' ('~user' is not supported)");
  }
  size_t alen = anchor_length(r, body);
  r.anchor = alen == 0 ? Anchor::work : body[0] == '/' ? Anchor::root : Anchor::home;
  std::string_view pattern = body.substr(alen);
  while (r.anchor == Anchor::root && !pattern.empty() && pattern[0] == '/') {
    throw RuleError(r.text, i + alen, "empty path component ('//')");
  }
  auto comps = split(pattern, i + alen);
  check_components(r.text, comps);
  if (!comps.empty() && comps.back().text.empty()) {
    pattern.remove_suffix(1);
    comps.pop_back();
  }
  r.pattern = std::string(pattern);
  join_regex(r.text, comps, comps.size()); // validates classes
  return r;
}

std::string rules_digest(const std::vector<Rule>& rules) {
  std::vector<std::string> lines;
  for (const auto& r : rules) {
    // Length-prefixed, so no pattern's bytes can pass for another rule's.
    lines.push_back(fmt::format("{} {} {}:{}", r.exclude ? '-' : '+', folder(r.anchor),
                                r.pattern.size(), r.pattern));
  }
  std::sort(lines.begin(), lines.end());
  lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
  util::Sha256 sha;
  sha.update("ephemera-rules/1\n");
  for (const auto& l : lines) {
    sha.update(l);
    sha.update("\n");
  }
  return sha.finish_hex();
}

std::string pattern_regex(std::string_view pattern) {
  std::string rule(pattern);
  auto comps = split(pattern, 0);
  return join_regex(rule, comps, comps.size());
}

namespace {

RE2::Options re2_options() {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1); // names are bytes, whatever their encoding
  o.set_log_errors(false);
  o.set_dot_nl(true);
  o.set_max_mem(64 << 20);
  return o;
}

class Matcher {
public:
  Matcher() : m_set(re2_options(), RE2::ANCHOR_BOTH) {}
  void add(const std::string& regex, size_t id) {
    std::string error;
    if (m_set.Add(regex, &error) < 0) {
      throw util::Error(fmt::format("internal: rule regex '{}' rejected: {}", regex, error));
    }
    m_ids.push_back(id);
  }
  void compile() {
    if (!m_ids.empty() && !m_set.Compile()) {
      throw util::Error("the rules are too large to compile");
    }
  }
  std::vector<size_t> match(std::string_view s) const {
    std::vector<size_t> out;
    if (m_ids.empty()) {
      return out;
    }
    std::vector<int> hits;
    if (m_set.Match(s, &hits)) {
      for (int h : hits) {
        out.push_back(m_ids[static_cast<size_t>(h)]);
      }
      std::sort(out.begin(), out.end());
    }
    return out;
  }
  bool any(std::string_view s) const { return !m_ids.empty() && m_set.Match(s, nullptr); }

private:
  RE2::Set m_set;
  std::vector<size_t> m_ids;
};

constexpr size_t k_anchors = 3;

} // namespace

struct RuleSet::Impl {
  std::vector<Rule> rules;
  // Per anchor: the path or a parent matches (include / exclude); a path could lead to a match.
  std::array<Matcher, k_anchors> include;
  std::array<Matcher, k_anchors> exclude;
  std::array<Matcher, k_anchors> prefix;
  // Directories a '!' rule empties entirely ("!x/**", "!x/**/*"): never descended into.
  std::array<Matcher, k_anchors> emptied;
  std::vector<std::pair<Anchor, std::string>> starts;
};

RuleSet::RuleSet() : m_impl(std::make_unique<Impl>()) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

namespace {

// Regex matching the path itself or anything below it.
std::string self_or_below(const std::string& re) {
  return re.empty() ? ".*" : "(?:" + re + ")(?:/.*)?";
}

// Regex matching every directory from which a match of comps can still be reached.
std::string reachable(const std::string& rule, const std::vector<Component>& comps) {
  std::vector<std::string> alts{""};
  for (size_t j = 1; j <= comps.size(); ++j) {
    if (comps[j - 1].text == "**") {
      std::string head = join_regex(rule, comps, j - 1);
      alts.push_back(head.empty() ? ".*" : head + "(?:/.*)?");
      break;
    }
    alts.push_back(j == comps.size() ? self_or_below(join_regex(rule, comps, j))
                                     : join_regex(rule, comps, j));
  }
  std::string out;
  for (const auto& a : alts) {
    out += (out.empty() ? "(?:" : "|(?:") + a + ")";
  }
  return out;
}

std::string literal_prefix(const std::vector<Component>& comps) {
  std::string out;
  for (const auto& c : comps) {
    if (c.text == "**" ||
        std::any_of(c.text.begin(), c.text.end(), [](char ch) { return is_meta(ch); })) {
      break;
    }
    out += out.empty() ? "" : "/";
    out += c.text;
  }
  return out;
}

} // namespace

RuleSet RuleSet::compile(std::vector<Rule> rules) {
  RuleSet set;
  auto& impl = *set.m_impl;
  impl.rules = std::move(rules);
  std::vector<std::pair<Anchor, std::string>> starts;
  for (size_t i = 0; i < impl.rules.size(); ++i) {
    const auto& r = impl.rules[i];
    auto a = static_cast<size_t>(r.anchor);
    auto comps = split(r.pattern, 0);
    std::string re = join_regex(r.text, comps, comps.size());
    if (r.exclude) {
      impl.exclude[a].add(self_or_below(re), i);
      size_t n = comps.size();
      if (n >= 1 && comps[n - 1].text == "**") {
        impl.emptied[a].add(self_or_below(join_regex(r.text, comps, n - 1)), i);
      } else if (n >= 2 && comps[n - 2].text == "**" && comps[n - 1].text == "*") {
        impl.emptied[a].add(self_or_below(join_regex(r.text, comps, n - 2)), i);
      }
    } else {
      impl.include[a].add(self_or_below(re), i);
      impl.prefix[a].add(reachable(r.text, comps), i);
      starts.emplace_back(r.anchor, literal_prefix(comps));
    }
  }
  for (size_t a = 0; a < k_anchors; ++a) {
    impl.include[a].compile();
    impl.exclude[a].compile();
    impl.prefix[a].compile();
    impl.emptied[a].compile();
  }
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  // Drop a start below another start of the same anchor: its directory is walked already.
  for (const auto& s : starts) {
    bool covered = std::any_of(impl.starts.begin(), impl.starts.end(), [&](const auto& t) {
      return t.first == s.first && (t.second.empty() || s.second == t.second ||
                                    (s.second.size() > t.second.size() &&
                                     s.second.compare(0, t.second.size(), t.second) == 0 &&
                                     s.second[t.second.size()] == '/'));
    });
    if (!covered) {
      impl.starts.push_back(s);
    }
  }
  return set;
}

std::vector<size_t> RuleSet::matching_includes(Anchor anchor, std::string_view rel) const {
  return m_impl->include[static_cast<size_t>(anchor)].match(rel);
}

std::optional<size_t> RuleSet::selects(Anchor anchor, std::string_view rel) const {
  auto a = static_cast<size_t>(anchor);
  auto hits = m_impl->include[a].match(rel);
  if (hits.empty() || m_impl->exclude[a].any(rel)) {
    return std::nullopt;
  }
  return hits.front();
}

bool RuleSet::may_contain(Anchor anchor, std::string_view rel_dir) const {
  auto a = static_cast<size_t>(anchor);
  if (m_impl->exclude[a].any(rel_dir) || m_impl->emptied[a].any(rel_dir)) {
    return false;
  }
  return m_impl->prefix[a].any(rel_dir);
}

const std::vector<Rule>& RuleSet::rules() const {
  return m_impl->rules;
}

std::vector<std::pair<Anchor, std::string>> RuleSet::starts() const {
  return m_impl->starts;
}

} // namespace ephemera::rules
