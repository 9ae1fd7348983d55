#include "cli/named_save.hpp"

#include "store/keys.hpp"
#include "store/short_id.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>

namespace ephemera::cli {

namespace {

using nlohmann::json;

// A manifest file on this machine (a copy fetched from the store, a report's attachment):
// read as the store's are, where its own archive field says it lies, so a file that does
// not agree with itself is refused in the same words.
std::optional<store::Manifest> local_manifest(const std::string& arg) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(arg, ec)) {
    return std::nullopt;
  }
  auto text = util::read_regular_file_if_exists(arg, 1 << 20, true);
  if (!text) {
    return std::nullopt;
  }
  auto j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("archive") || !j["archive"].is_string()) {
    throw util::InputError(
        fmt::format("{}: not a manifest (JSON with an 'archive' field)", util::printable(arg)));
  }
  try {
    return store::Manifest::from_json(j, store::own_manifest(j["archive"].get<std::string>()));
  } catch (const util::Error& e) {
    throw util::InputError(fmt::format("{}: {}", util::printable(arg), e.what()));
  }
}

bool same_content(const store::Manifest& a, const store::Manifest& b) {
  return a.content == b.content && a.archive == b.archive && a.sha256 == b.sha256 &&
         a.compressed_size == b.compressed_size;
}

} // namespace

std::vector<std::string> links_of(store::Catalog& catalog,
                                  const std::vector<store::Manifest>& all) {
  std::vector<std::string> out;
  out.reserve(all.size());
  for (const auto& m : all) {
    out.push_back(catalog.link(m));
  }
  return out;
}

NamedSave find_named_save(store::Catalog& catalog, const std::string& id, const std::string& where,
                          bool same_content_is_one) {
  NamedSave out;
  auto local = local_manifest(id);
  if (local) {
    out.from_file = true;
    out.all = catalog.list(local->repository, local->target, local->name);
    auto it = std::find_if(out.all.begin(), out.all.end(),
                           [&](const store::Manifest& m) { return m.object == local->object; });
    out.in_store = it != out.all.end();
    local->stored = out.in_store ? it->stored : 0;
    if (out.in_store) {
      *it = *local; // judged as the file says, among the store's other saves
      out.at = static_cast<size_t>(it - out.all.begin());
    } else {
      out.all.push_back(*local);
      out.at = out.all.size() - 1;
    }
    return out;
  }
  out.all = catalog.list();
  auto links = links_of(catalog, out.all);
  auto found = store::find_saves(out.all, id, links);
  if (same_content_is_one && found.size() > 1 &&
      std::all_of(found.begin(), found.end(),
                  [&](const store::Manifest* m) { return same_content(*m, *found.front()); })) {
    // One that may take part in a choice, where there is one (a forgery may share the name).
    auto good = std::find_if(found.begin(), found.end(), [&](const store::Manifest* m) {
      return catalog.why_refused(*m).empty();
    });
    found = {good != found.end() ? *good : found.front()};
  }
  if (found.size() != 1) {
    store::one_save(out.all, id, where, links); // throws, saying why
  }
  out.at = static_cast<size_t>(found.front() - out.all.data());
  return out;
}

} // namespace ephemera::cli
