#pragma once

#include "rules/rules.hpp"
#include "util/entry_type.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ephemera::rules {

// Where the anchors are.
struct Anchors {
  std::filesystem::path root = "/"; // --root on the host: absolute paths are re-based under it
  std::string home;                 // job-visible absolute $HOME
  std::string work;                 // job-visible absolute working directory

  std::filesystem::path host(Anchor a) const; // the anchor's directory on the host
  std::string visible(Anchor a) const;        // the anchor's job-visible absolute path
  // An entry's path on the host. Entries do not carry it: tens of thousands of them are
  // walked for every post, and each string kept is memory the kernel must fault in.
  std::string host_path(Anchor a, const std::string& rel) const;
  std::string visible_path(Anchor a, const std::string& rel) const; // job-visible, absolute
};

// The archive's own type (archive::EntryType is the same).
using util::EntryType;

struct Entry {
  Anchor anchor = Anchor::work;
  std::string rel; // anchor-relative, bytes as on disk
  EntryType type = EntryType::file;
  uint64_t size = 0;
  uint32_t mode = 0;
  int64_t mtime_ns = 0;
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t nlink = 0;
  std::string link_target;
  size_t rule = 0; // the selecting include rule
};

struct WalkResult {
  std::vector<Entry> entries;    // sorted by job-visible path, each once
  std::vector<size_t> rule_hits; // per rule: entries it matched (files and links)
  std::vector<std::string> warnings;
};

// Walks from each rule's literal prefix, never into a directory no rule can match below,
// never following symlinks. Reports regular files, symlinks and selected directories.
WalkResult walk(const RuleSet& rules, const Anchors& anchors);

// The walk's order: by job-visible path, each path of an anchor once.
void sort_entries(std::vector<Entry>& entries, const Anchors& anchors);

} // namespace ephemera::rules
