// What the content-addressed unit tests share: files written for a test, bytes of a given
// compressibility, and a directory's entries as a save's walk hands them to the packer.
#pragma once

#include "archive/archive.hpp"
#include "cas/cas.hpp"
#include "store/manifest.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace ephemera::test {

// Calls of a test's store in flight: now, and the most there were at once. A call counts
// from enter() until the guard it returns goes.
struct InFlight {
  std::atomic<int> now{0};
  std::atomic<int> most{0};
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { --n; }
  };
  [[nodiscard]] Leave enter() {
    int n = ++now;
    int seen = most.load();
    while (n > seen && !most.compare_exchange_weak(seen, n)) {
    }
    return Leave{now};
  }
};

// p holding exactly content (truncated first), its directories made.
inline void write(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
}

// n bytes from seed, each one of the first `alphabet` byte values: 256 does not compress
// (what a size-bound test needs), 64 compresses somewhat but not trivially.
inline std::string random_bytes(size_t n, uint64_t seed, unsigned alphabet = 256) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) {
    c = static_cast<char>(rng() % alphabet);
  }
  return s;
}

// The manifest a job's post writes for save r of scope under key, on a pull request's
// branch "feature", before the catalog publishes it.
inline store::Manifest manifest_of(const cas::SaveResult& r, const cas::Scope& scope,
                                   const std::string& key) {
  store::Manifest m;
  m.repository = scope.repository;
  m.target = scope.target;
  m.name = scope.name;
  m.epoch = 1;
  m.key = key;
  m.branch = "feature";
  m.event = "pull_request";
  m.trusted = scope.trusted;
  m.origin = scope.origin;
  m.content = store::k_content_cas;
  m.archive = r.index_key;
  m.sha256 = r.index_sha256;
  m.compressed_size = r.index_bytes;
  m.unpacked_bytes = r.unpacked_bytes;
  m.files = r.files;
  return m;
}

// Every entry below dir as a save gets it: names "work/<rel>", with type, mode, mtime, link
// target and the identity (device, inode, links) hard links are found by.
inline std::vector<archive::PackItem> items_of(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<archive::PackItem> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st {};
    REQUIRE(::lstat(it->path().c_str(), &st) == 0);
    archive::PackItem i;
    i.name = "work/" + it->path().lexically_relative(dir).string();
    i.source = it->path().string();
    i.type = S_ISDIR(st.st_mode)   ? archive::EntryType::directory
             : S_ISLNK(st.st_mode) ? archive::EntryType::symlink
                                   : archive::EntryType::file;
    i.size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
    i.mode = st.st_mode & 07777;
    i.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    i.dev = st.st_dev;
    i.ino = st.st_ino;
    i.nlink = st.st_nlink;
    if (S_ISLNK(st.st_mode)) {
      i.link_target = fs::read_symlink(it->path()).string();
    }
    out.push_back(i);
  }
  return out;
}

} // namespace ephemera::test
