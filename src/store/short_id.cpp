#include "store/short_id.hpp"

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ephemera::store {

namespace {

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return c >= 'A' && c <= 'F' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  return out;
}

} // namespace

std::string long_id(const Manifest& m) {
  return util::sha256_hex(m.object);
}

std::string short_id(const Manifest& m) {
  return short_id(m.object);
}

std::string short_id(const std::string& manifest_object) {
  return util::sha256_hex(manifest_object).substr(0, k_short_id_length);
}

std::vector<const Manifest*> find_saves(const std::vector<Manifest>& all, std::string_view id,
                                        const std::vector<std::string>& links) {
  std::vector<const Manifest*> out;
  bool hex = is_hex(id);
  std::string want = hex ? lower(id) : std::string(id);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& m = all[i];
    bool named = m.object == id || m.archive == id || (i < links.size() && links[i] == id) ||
                 (hex && want.size() >= 4 && long_id(m).rfind(want, 0) == 0) ||
                 (hex && want.size() >= 8 && m.sha256.rfind(want, 0) == 0);
    if (named) {
      out.push_back(&m);
    }
  }
  return out;
}

const Manifest& one_save(const std::vector<Manifest>& all, std::string_view id,
                         const std::string& where, const std::vector<std::string>& links) {
  auto found = find_saves(all, id, links);
  std::string shown = util::printable(id);
  if (found.empty()) {
    throw util::InputError(fmt::format(
        "no save '{}' in {}: give the id 'ephemera ls' prints (4 hex or more), a SHA-256 prefix "
        "(8+ hex), an object key or a link",
        shown, where));
  }
  if (found.size() > 1) {
    std::string list;
    for (const auto* m : found) {
      list += fmt::format("\n  {} {}/{}/{}/e{} key '{}' created {}", short_id(*m),
                          util::printable(m->repository), util::printable(m->target),
                          util::printable(m->name), m->epoch, util::printable(m->key),
                          util::printable(m->created));
    }
    throw util::InputError(
        fmt::format("'{}' names {} saves: give more of the id{}", shown, found.size(), list));
  }
  return *found.front();
}

} // namespace ephemera::store
