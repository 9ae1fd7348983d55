#include "archive/unpack_checks.hpp"

#include "util/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fmt/format.h>

namespace ephemera::archive::detail {

void refuse(std::string_view name, const std::string& why) {
  throw util::ArchiveError(fmt::format("refused entry '{}': {}", name, why));
}

bool safe_name(std::string_view name) {
  if (name.empty() || name.front() == '/') {
    return false;
  }
  size_t start = 0;
  while (true) {
    size_t end = name.find('/', start);
    auto part =
        name.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part == "." || part == "..") {
      return false;
    }
    if (end == std::string_view::npos) {
      return true;
    }
    start = end + 1;
  }
}

Header header_of(archive_entry* e) {
  Header h;
  const char* name = archive_entry_pathname(e);
  h.name = name != nullptr ? name : "";
  h.hardlink = archive_entry_hardlink(e);
  mode_t type = archive_entry_filetype(e);
  if (h.hardlink != nullptr || type == AE_IFREG) {
    h.type = EntryType::file;
  } else if (type == AE_IFDIR) {
    h.type = EntryType::directory;
  } else if (type == AE_IFLNK) {
    h.type = EntryType::symlink;
  }
  h.perm = static_cast<uint32_t>(archive_entry_perm(e));
  h.sec = archive_entry_mtime(e);
  h.nsec = archive_entry_mtime_nsec(e);
  return h;
}

Accepted EntryChecks::check(const Header& h) {
  Accepted out;
  std::string& name = out.name;
  name = h.name;
  while (name.size() > 1 && name.back() == '/') {
    name.pop_back();
  }
  if (!safe_name(name)) {
    refuse(name, "an absolute path, an empty component or '..'");
  }
  out.hardlink = h.hardlink;
  if (!h.type) {
    refuse(name, "device nodes, fifos and sockets are never restored");
  }
  out.type = *h.type;
  out.mode = h.perm;
  if ((out.mode & 06000) != 0) {
    refuse(name, "set-user-id and set-group-id bits are never restored");
  }
  if (!m_symlinks.empty()) {
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      if (m_symlinks.count(name.substr(0, slash)) != 0) {
        refuse(name, "it would be written through a symlink of the same archive");
      }
    }
  }
  auto dest = m_resolve(name, out.type);
  if (!dest) {
    refuse(name, "not a path the stanza's rules admit");
  }
  if (!safe_name(dest->rel)) {
    refuse(name, "its destination is not a plain relative path");
  }
  out.base = dest->base.string();
  while (out.base.size() > 1 && out.base.back() == '/') {
    out.base.pop_back();
  }
  out.rel = std::move(dest->rel);
  out.final = out.base + "/" + out.rel;
  if (!m_finals.insert(out.final).second) {
    refuse(name, "the archive holds it twice");
  }
  if (out.type == EntryType::symlink) {
    m_symlinks.insert(name); // a later entry below it is refused
  }
  out.sec = h.sec;
  out.nsec = h.nsec;
  return out;
}

} // namespace ephemera::archive::detail
