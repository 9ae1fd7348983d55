#include "archive/archive.hpp"
#include "rules/walk.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tuple>
#include <type_traits>
#include <unistd.h>

using namespace ephemera;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

std::string read(const fs::path& p) { return util::read_file(p); }

struct Hostile {
  std::string name;
  int type = AE_IFREG;
  std::string data;
  std::string link;      // symlink target
  std::string hardlink;
  int perm = 0644;
  int64_t declared = -1; // header size; -1: data.size()
};

Hostile reg(std::string name, std::string data, int perm = 0644) {
  Hostile h;
  h.name = std::move(name);
  h.data = std::move(data);
  h.perm = perm;
  return h;
}

Hostile node(std::string name, int type) {
  Hostile h;
  h.name = std::move(name);
  h.type = type;
  return h;
}

Hostile sym(std::string name, std::string target) {
  Hostile h = node(std::move(name), AE_IFLNK);
  h.link = std::move(target);
  return h;
}

Hostile hard(std::string name, std::string target) {
  Hostile h = reg(std::move(name), "");
  h.hardlink = std::move(target);
  return h;
}

// Builds a tar.zst by hand, so tests can say things ephemera itself never writes.
fs::path build(const fs::path& out, const std::vector<Hostile>& entries) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax(a);
  archive_write_add_filter_zstd(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (const auto& h : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, h.name.c_str());
    archive_entry_set_filetype(e, static_cast<unsigned>(h.type));
    archive_entry_set_perm(e, static_cast<mode_t>(h.perm));
    if (!h.link.empty()) {
      archive_entry_set_symlink(e, h.link.c_str());
    }
    if (!h.hardlink.empty()) {
      archive_entry_set_hardlink(e, h.hardlink.c_str());
    }
    if (h.type == AE_IFREG && h.hardlink.empty()) {
      archive_entry_set_size(e, h.declared >= 0 ? h.declared : static_cast<int64_t>(h.data.size()));
    }
    archive_write_header(a, e);
    if (!h.data.empty()) {
      archive_write_data(a, h.data.data(), h.data.size());
    }
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Admits "work/<anything but 'secret'>" below dest; refuses the rest.
ephemera::archive::UnpackOptions options(const fs::path& archive_file, const fs::path& dest,
                                         uint64_t max = 1 << 20) {
  ephemera::archive::UnpackOptions o;
  o.expected_sha256 = util::sha256_file_hex(archive_file);
  o.expected_size = fs::file_size(archive_file);
  o.max_unpacked_bytes = max;
  o.resolve = [dest](std::string_view name,
                     ephemera::archive::EntryType) -> std::optional<ephemera::archive::Destination> {
    if (name.rfind("work/", 0) != 0 || name.find("secret") != std::string_view::npos) {
      return std::nullopt;
    }
    return ephemera::archive::Destination{dest, std::string(name.substr(5))};
  };
  return o;
}

// Every path below dir with its content, for "nothing changed" checks.
std::string snapshot(const fs::path& dir) {
  std::string out;
  if (!fs::exists(dir)) {
    return out;
  }
  std::vector<std::string> lines;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    std::string line = fs::relative(it->path(), dir).string();
    if (it->is_symlink()) {
      line += " -> " + fs::read_symlink(it->path()).string();
    } else if (it->is_regular_file()) {
      line += " = " + read(it->path());
    }
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& l : lines) {
    out += l + "\n";
  }
  return out;
}

ephemera::archive::PackItem item_of(const fs::path& src, const std::string& name) {
  struct stat st {};
  REQUIRE(::lstat(src.c_str(), &st) == 0);
  ephemera::archive::PackItem i;
  i.name = name;
  i.source = src;
  i.type = S_ISDIR(st.st_mode)   ? ephemera::archive::EntryType::directory
           : S_ISLNK(st.st_mode) ? ephemera::archive::EntryType::symlink
                                 : ephemera::archive::EntryType::file;
  i.size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  i.mode = st.st_mode & 07777;
  i.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  i.dev = st.st_dev;
  i.ino = st.st_ino;
  i.nlink = st.st_nlink;
  if (S_ISLNK(st.st_mode)) {
    i.link_target = fs::read_symlink(src).string();
  }
  return i;
}

} // namespace

TEST_CASE("round trip: contents, modes, nanosecond mtimes, links, odd names", "[archive]") {
  util::TempDir dir;
  auto src = dir.path() / "src";
  write(src / "a.txt", "alpha");
  write(src / "sub/b.bin", std::string("\0\1\2\3", 4));
  write(src / "sp ace\nnew\xff", "odd");
  write(src / "zero", "");
  fs::create_directories(src / "empty");
  fs::create_symlink("a.txt", src / "link");
  fs::create_symlink("/nowhere", src / "dangling");
  ::link((src / "a.txt").c_str(), (src / "hard").c_str());
  ::chmod((src / "sub/b.bin").c_str(), 0750);
  ::chmod((src / "a.txt").c_str(), 04755); // set-uid is never stored
  struct timespec t[2] = {{1600000000, 123456789}, {1600000000, 123456789}};
  ::utimensat(AT_FDCWD, (src / "zero").c_str(), t, 0);
  std::vector<ephemera::archive::PackItem> items;
  for (const char* n : {"a.txt", "dangling", "empty", "hard", "link", "sp ace\nnew\xff", "sub", "sub/b.bin", "zero"}) {
    items.push_back(item_of(src / n, std::string("work/") + n));
  }
  auto out = dir.path() / "a.tar.zst";
  auto packed = ephemera::archive::pack(items, out, {});
  CHECK(packed.sha256 == util::sha256_file_hex(out));
  CHECK(packed.compressed_bytes == fs::file_size(out));
  CHECK(packed.files == 5); // the hard link is stored as a link to a.txt, not as a sixth file
  CHECK(packed.symlinks == 2);
  CHECK(packed.directories == 2);

  auto dest = dir.path() / "dest";
  auto o = options(out, dest);
  o.max_unpacked_bytes = packed.unpacked_bytes;
  auto r = ephemera::archive::unpack(out, o);
  CHECK(r.files == 5);
  CHECK(read(dest / "a.txt") == "alpha");
  CHECK(read(dest / "sub/b.bin") == std::string("\0\1\2\3", 4));
  CHECK(read(dest / "sp ace\nnew\xff") == "odd");
  CHECK(fs::read_symlink(dest / "link") == "a.txt");
  CHECK(fs::read_symlink(dest / "dangling") == "/nowhere");
  CHECK(fs::is_directory(dest / "empty"));
  struct stat a {}, h {}, b {}, z {};
  ::stat((dest / "a.txt").c_str(), &a);
  ::stat((dest / "hard").c_str(), &h);
  ::stat((dest / "sub/b.bin").c_str(), &b);
  ::stat((dest / "zero").c_str(), &z);
  CHECK(a.st_ino == h.st_ino); // hard links stay links
  CHECK((a.st_mode & 07777) == 0755);
  CHECK((b.st_mode & 07777) == 0750);
  CHECK(z.st_mtim.tv_sec == 1600000000);
  CHECK(z.st_mtim.tv_nsec == 123456789);
}

TEST_CASE("what an unpack reports writing is what lstat finds after it", "[archive]") {
  util::TempDir dir;
  auto src = dir.path() / "src";
  write(src / "a.txt", "alpha");
  write(src / "sub/wide", "open to all");
  write(src / "sub/sticky", "odd bits");
  write(src / "zero", "");
  fs::create_directories(src / "empty");
  fs::create_symlink("a.txt", src / "link");
  ::link((src / "a.txt").c_str(), (src / "hard").c_str());
  ::chmod((src / "sub/wide").c_str(), 0666); // more than the umask lets a file be created with
  ::chmod((src / "sub/sticky").c_str(), 01640);
  ::chmod((src / "empty").c_str(), 0700);
  struct timespec t[2] = {{1500000000, 5}, {1500000000, 5}};
  ::utimensat(AT_FDCWD, (src / "empty").c_str(), t, 0);
  std::vector<ephemera::archive::PackItem> items;
  for (const char* n :
       {"a.txt", "empty", "hard", "link", "sub", "sub/sticky", "sub/wide", "zero"}) {
    items.push_back(item_of(src / n, std::string("work/") + n));
  }
  auto out = dir.path() / "a.tar.zst";
  auto packed = ephemera::archive::pack(items, out, {});
  auto dest = dir.path() / "dest";
  auto o = options(out, dest);
  std::vector<std::tuple<std::string, ephemera::archive::EntryType, uint64_t, uint32_t, int64_t,
                         std::string, std::string>>
      told;
  o.written = [&](const ephemera::archive::Written& w) {
    told.emplace_back(std::string(w.name), w.type, w.size, w.mode, w.mtime_ns,
                      std::string(w.link_target), std::string(w.hardlink));
  };
  mode_t old = ::umask(022);
  ephemera::archive::unpack(out, o);
  ::umask(old);
  REQUIRE(told.size() == items.size());
  for (const auto& [name, type, size, mode, mtime_ns, link, hardlink] : told) {
    INFO(name);
    struct stat st {};
    REQUIRE(::lstat((dest / name.substr(5)).c_str(), &st) == 0);
    if (!hardlink.empty()) {
      CHECK(hardlink == "work/a.txt");
      continue;
    }
    CHECK(mode == (st.st_mode & 07777));
    CHECK(mtime_ns == static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
    CHECK(type == (S_ISDIR(st.st_mode)   ? ephemera::archive::EntryType::directory
                   : S_ISLNK(st.st_mode) ? ephemera::archive::EntryType::symlink
                                         : ephemera::archive::EntryType::file));
    if (type == ephemera::archive::EntryType::file) {
      CHECK(size == static_cast<uint64_t>(st.st_size));
    }
    if (type == ephemera::archive::EntryType::symlink) {
      CHECK(link == fs::read_symlink(dest / name.substr(5)).string());
    }
    const std::string& entry = name; // a structured binding is not captured by clang 14
    const auto& i =
        *std::find_if(items.begin(), items.end(), [&](const auto& x) { return x.name == entry; });
    CHECK(mtime_ns == i.mtime_ns);
  }
}

TEST_CASE("a walked entry packs as the walk typed it and unpacks reporting that type",
          "[archive]") {
  // One entry type for the walk and the archive: the walk's type is the item's, unconverted.
  static_assert(std::is_same_v<rules::EntryType, ephemera::archive::EntryType>);
  util::TempDir dir;
  auto work = dir.path() / "work";
  write(work / "t/a.txt", "a");
  fs::create_symlink("a.txt", work / "t/l");
  fs::create_directories(work / "t/d");
  rules::Anchors anchors;
  anchors.home = "/home/none";
  anchors.work = work.string();
  auto walked = rules::walk(rules::RuleSet::compile({rules::parse_rule("t")}), anchors);
  std::vector<ephemera::archive::PackItem> items;
  std::map<std::string, ephemera::archive::EntryType> walked_types;
  for (const auto& e : walked.entries) {
    auto i = item_of(work / e.rel, "work/" + e.rel);
    i.type = e.type;
    items.push_back(i);
    walked_types.emplace(i.name, e.type);
  }
  REQUIRE(walked_types.size() == 4);
  auto out = dir.path() / "a.tar.zst";
  ephemera::archive::pack(items, out, {});
  auto o = options(out, dir.path() / "dest");
  std::map<std::string, ephemera::archive::EntryType> told;
  o.written = [&](const ephemera::archive::Written& w) {
    told.emplace(std::string(w.name), w.type);
  };
  ephemera::archive::unpack(out, o);
  CHECK(told == walked_types);
  CHECK(told["work/t/l"] == rules::EntryType::symlink);
  CHECK(told["work/t/d"] == rules::EntryType::directory);
}

TEST_CASE("GNU tar and zstd read what ephemera packs", "[archive]") {
  util::TempDir dir;
  auto src = dir.path() / "src";
  write(src / "x/y.txt", "interop");
  fs::create_symlink("y.txt", src / "x/l");
  auto out = dir.path() / "a.tar.zst";
  ephemera::archive::pack({item_of(src / "x", "work/x"), item_of(src / "x/y.txt", "work/x/y.txt"),
                           item_of(src / "x/l", "work/x/l")},
                          out, {});
  auto dest = dir.path() / "gnu";
  fs::create_directories(dest);
  std::string cmd = "zstd -dc '" + out.string() + "' | tar -x -C '" + dest.string() + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(read(dest / "work/x/y.txt") == "interop");
  CHECK(fs::read_symlink(dest / "work/x/l") == "y.txt");
}

TEST_CASE("a file that changes during a save fails it, unless its rule says '%'", "[archive]") {
  util::TempDir dir;
  auto f = dir.path() / "f";
  write(f, "before");
  auto item = item_of(f, "work/f");
  write(f, "after, and longer"); // changed since the walk
  auto out = dir.path() / "a.tar.zst";
  CHECK_THROWS_WITH(ephemera::archive::pack({item}, out, {}),
                    Catch::Contains("changed while it was being saved"));
  CHECK_FALSE(fs::exists(out)); // nothing torn is left behind
  item.may_change = true;
  CHECK_NOTHROW(ephemera::archive::pack({item}, out, {}));

  auto gone = item_of(f, "work/f");
  fs::remove(f);
  CHECK_THROWS_WITH(ephemera::archive::pack({gone}, out, {}), Catch::Contains("disappeared"));
  gone.may_change = true;
  auto r = ephemera::archive::pack({gone}, out, {});
  CHECK(r.files == 0);
}

TEST_CASE("a walked file swapped for a fifo, a device or a link is never opened by the save",
          "[archive]") {
  util::TempDir dir;
  auto f = dir.path() / "f";
  write(f, "walked");
  auto item = item_of(f, "work/f");
  auto out = dir.path() / "a.tar.zst";
  // A fifo nobody writes would block an open for reading forever; /dev/zero never ends.
  fs::remove(f);
  REQUIRE(::mkfifo(f.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(ephemera::archive::pack({item}, out, {}),
                    Catch::Contains("replaced by something that is not a regular file"));
  CHECK_FALSE(fs::exists(out));
  fs::remove(f);
  fs::create_symlink("/dev/zero", f);
  CHECK_THROWS_WITH(ephemera::archive::pack({item}, out, {}),
                    Catch::Contains("replaced by something that is not a regular file"));
  // '%': no longer a regular file is as good as gone, and skipped like a vanished one.
  item.may_change = true;
  auto r = ephemera::archive::pack({item}, out, {});
  CHECK(r.files == 0);
}

TEST_CASE("hostile archives are refused and the destination is as before", "[archive]") {
  struct Case {
    const char* what;
    std::vector<Hostile> entries;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"dot-dot", {reg("work/ok", "fine"), reg("work/../escape", "x")}, "'..'"},
      {"absolute", {reg("/work/abs", "x")}, "absolute"},
      {"outside the rules", {reg("work/ok", "fine"), reg("home/.bashrc", "x")}, "rules"},
      {"secret by rule", {reg("work/secret", "x")}, "rules"},
      {"through a symlink", {sym("work/l", "/etc"), reg("work/l/passwd", "x")}, "symlink"},
      {"device node", {node("work/dev", AE_IFCHR)}, "device"},
      {"fifo", {node("work/fifo", AE_IFIFO)}, "fifo"},
      {"setuid", {reg("work/suid", "x", 04755)}, "set-user-id"},
      {"setgid", {reg("work/sgid", "x", 02755)}, "set-user-id"},
      {"bomb", {reg("work/big", std::string(5000, 'z'))}, "more"},
      {"hard link out", {hard("work/h", "etc/passwd")}, "hard link"},
      {"twice", {reg("work/d", "1"), reg("work/d", "2")}, "twice"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    util::TempDir dir;
    auto dest = dir.path() / "dest";
    write(dest / "existing", "keep me");
    write(dest / "ok", "old");
    auto before = snapshot(dir.path() / "dest");
    auto file = build(dir.path() / "h.tar.zst", c.entries);
    auto o = options(file, dest, 4096);
    CHECK_THROWS_WITH(ephemera::archive::unpack(file, o), Catch::Contains(c.message));
    CHECK(snapshot(dest) == before);
    CHECK_FALSE(fs::exists(dir.path() / "escape"));
  }
}

TEST_CASE("an existing symlink in the destination is never followed", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  auto outside = dir.path() / "outside";
  fs::create_directories(outside);
  fs::create_directories(dest);
  fs::create_symlink(outside, dest / "l");
  auto file = build(dir.path() / "h.tar.zst", {reg("work/l/x", "x")});
  CHECK_THROWS_WITH(ephemera::archive::unpack(file, options(file, dest)),
                    Catch::Contains("symlink"));
  CHECK(fs::is_empty(outside));
}

TEST_CASE("a digest mismatch, a truncated stream or a flipped byte writes nothing", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  auto file = build(dir.path() / "ok.tar.zst",
                    {reg("work/a", std::string(100000, 'a')), reg("work/b", "b")});
  auto good = options(file, dest);

  auto wrong = good;
  wrong.expected_sha256 = std::string(64, '0');
  CHECK_THROWS_WITH(ephemera::archive::unpack(file, wrong), Catch::Contains("digest mismatch"));
  CHECK_FALSE(fs::exists(dest));

  auto bytes = read(file);
  auto flipped = dir.path() / "flipped.tar.zst";
  std::string f = bytes;
  f[f.size() / 2] = static_cast<char>(f[f.size() / 2] ^ 0x40);
  write(flipped, f);
  CHECK_THROWS_WITH(ephemera::archive::unpack(flipped, good), Catch::Contains("digest mismatch"));
  CHECK_FALSE(fs::exists(dest));

  // Even with the digest of the damaged file (a manifest that lies), nothing lands.
  auto truncated = dir.path() / "truncated.tar.zst";
  write(truncated, bytes.substr(0, bytes.size() / 2));
  auto lying = options(truncated, dest);
  CHECK_THROWS_AS(ephemera::archive::unpack(truncated, lying), util::ArchiveError);
  CHECK(snapshot(dest).empty());
  CHECK_THROWS_AS(ephemera::archive::unpack(flipped, options(flipped, dest)), util::ArchiveError);
  CHECK(snapshot(dest).empty());

  CHECK_NOTHROW(ephemera::archive::unpack(file, good));
  CHECK(read(dest / "b") == "b");
}

TEST_CASE("a restore that fails part-way removes what it wrote and keeps what was there", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  write(dest / "a", "old a");
  auto file = build(dir.path() / "h.tar.zst", {reg("work/a", "new a"),
                                                reg("work/new/deep/file", "n"),
                                                reg("work/z", "x", 04644)});
  auto before = snapshot(dest);
  CHECK_THROWS(ephemera::archive::unpack(file, options(file, dest)));
  CHECK(snapshot(dest) == before);
  CHECK(read(dest / "a") == "old a");
}

TEST_CASE("a 2 GiB sparse file and a 0-byte file round trip (sizes past 2^31)", "[archive]") {
  util::TempDir dir;
  auto src = dir.path() / "src";
  fs::create_directories(src);
  const uint64_t size = (2ULL << 30) + 4097;
  {
    std::ofstream f(src / "sparse", std::ios::binary);
    f << "head";
    f.seekp(static_cast<std::streamoff>(size - 4));
    f << "tail";
  }
  write(src / "empty", "");
  REQUIRE(fs::file_size(src / "sparse") == size);
  auto out = dir.path() / "a.tar.zst";
  auto packed = ephemera::archive::pack(
      {item_of(src / "empty", "work/empty"), item_of(src / "sparse", "work/sparse")}, out, {});
  CHECK(packed.unpacked_bytes == size);
  CHECK(packed.compressed_bytes < (1u << 20)); // zeros compress

  auto dest = dir.path() / "dest";
  auto o = options(out, dest, size);
  auto r = ephemera::archive::unpack(out, o);
  CHECK(r.bytes == size);
  REQUIRE(fs::file_size(dest / "sparse") == size);
  struct stat st {};
  ::stat((dest / "sparse").c_str(), &st);
  CHECK(static_cast<uint64_t>(st.st_blocks) * 512 < (1u << 20)); // zeros came back as holes
  std::ifstream in(dest / "sparse", std::ios::binary);
  char buf[4];
  in.read(buf, 4);
  CHECK(std::string(buf, 4) == "head");
  in.seekg(static_cast<std::streamoff>(size - 4));
  in.read(buf, 4);
  CHECK(std::string(buf, 4) == "tail");
  CHECK(fs::file_size(dest / "empty") == 0);

  // One byte short of the declared total is refused.
  auto tight = options(out, dir.path() / "tight", size - 1);
  CHECK_THROWS_WITH(ephemera::archive::unpack(out, tight), Catch::Contains("more"));
  CHECK_FALSE(fs::exists(dir.path() / "tight" / "sparse"));
}

TEST_CASE("a new directory tree appears whole or not at all", "[archive]") {
  // New directories are filled under a temporary name and renamed into place at the end;
  // a refusal after many files of a new tree leaves no trace of it.
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  write(dest / "existing", "keep me");
  auto before = snapshot(dest);
  std::vector<Hostile> entries = {node("work/new", AE_IFDIR)};
  for (int i = 0; i < 300; ++i) {
    entries.push_back(reg("work/new/d" + std::to_string(i % 7) + "/f" + std::to_string(i), std::string(i * 50, 'x')));
  }
  entries.push_back(reg("work/new/big", std::string(3 << 20, 'b'))); // written inline, not queued
  entries.push_back(reg("work/other/x", "x"));
  entries.push_back(reg("work/../escape", "x"));
  auto file = build(dir.path() / "h.tar.zst", entries);
  CHECK_THROWS_WITH(ephemera::archive::unpack(file, options(file, dest, 64 << 20)),
                    Catch::Contains("'..'"));
  CHECK(snapshot(dest) == before);

  entries.pop_back();
  auto good = build(dir.path() / "g.tar.zst", entries);
  auto r = ephemera::archive::unpack(good, options(good, dest, 64 << 20));
  CHECK(r.files == 302);
  CHECK(read(dest / "new/d3/f10") == std::string(500, 'x'));
  CHECK(fs::file_size(dest / "new/big") == (3u << 20));
  CHECK(read(dest / "other/x") == "x");
  CHECK(read(dest / "existing") == "keep me");
  CHECK((fs::status(dest / "new/d3").permissions() & fs::perms::all) == (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec));
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("a killed unpack's staging is swept from its journal, and nothing else", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  // The job's own files, some named like temporary files, in directories the restore
  // writes into: none of them is the unpacker's.
  write(dest / "t/x.tmp.123.0123456789abcdef", "mine");
  write(dest / "new.tmp.999999.0123456789abcdef/half", "mine too");
  write(dest / "t/old", "old");
  auto journal = dir.path() / "journal";
  auto file = build(dir.path() / "a.tar.zst", {reg("work/t/old", "new"), reg("work/t/x.tmp.123.0123456789abcdef", "restored"),
                                                reg("work/new/x", "x"), reg("work/t/big", std::string(2 << 20, 'b')),
                                                reg("work/t/stop", "s")});
  auto o = options(file, dest, 4 << 20);
  o.journal = journal;
  // Killed (here: _exit in a child) after staging three entries, before commit or rollback.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto inner = o.resolve;
    o.resolve = [&](std::string_view name, ephemera::archive::EntryType type) {
      if (name == "work/t/stop") {
        ::_exit(0);
      }
      return inner(name, type);
    };
    try {
      ephemera::archive::unpack(file, o);
    } catch (...) {
    }
    ::_exit(1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  size_t staged = 0;
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    staged += e.path().filename().string().rfind(".ephemera-", 0) == 0 ? 1 : 0;
  }
  REQUIRE(staged >= 2); // in t/ (the large file, made at once) and beside new/
  REQUIRE(fs::exists(journal));

  // Only directories the rules reach are swept.
  auto copy = dir.path() / "journal.copy";
  fs::copy_file(journal, copy);
  CHECK(ephemera::archive::sweep_staged(copy, [](const std::string&, const std::string&) { return false; }) == 0);
  CHECK_FALSE(fs::exists(copy));
  size_t still = 0;
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    still += e.path().filename().string().rfind(".ephemera-", 0) == 0 ? 1 : 0;
  }
  CHECK(still == staged);
  CHECK(ephemera::archive::sweep_staged(journal, [&](const std::string& base, const std::string& rel) {
          return base == dest.string() && (rel.empty() || rel == "t");
        }) >= 2);
  CHECK_FALSE(fs::exists(journal));
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    CHECK(e.path().filename().string().rfind(".ephemera-", 0) != 0);
  }
  CHECK(read(dest / "t/x.tmp.123.0123456789abcdef") == "mine");
  CHECK(read(dest / "new.tmp.999999.0123456789abcdef/half") == "mine too");
  CHECK(read(dest / "t/old") == "old");

  // A whole unpack restores the look-alike name and leaves no journal.
  CHECK_NOTHROW(ephemera::archive::unpack(file, o));
  CHECK(read(dest / "t/x.tmp.123.0123456789abcdef") == "restored");
  CHECK(read(dest / "new.tmp.999999.0123456789abcdef/half") == "mine too");
  CHECK_FALSE(fs::exists(journal));
}

TEST_CASE("a journal rewritten by the job removes nothing outside the stanza's own staging", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  write(dest / "keep", "k");
  write(dest / ".ephemera-0123456789abcdef-00000000", "looks staged");
  fs::create_directories(dir.path() / "real");
  fs::create_symlink(dir.path() / "real", dest / "link");
  write(dir.path() / "real/.ephemera-0123456789abcdef-00000001", "behind a symlink");
  auto journal = dir.path() / "journal";
  std::string j;
  for (const auto& [rel, name] : std::vector<std::pair<std::string, std::string>>{
           {"", "keep"}, {"", "../dest"}, {"link", ".ephemera-0123456789abcdef-00000001"},
           {"../dest", ".ephemera-0123456789abcdef-00000000"}}) {
    j += dest.string() + '\0' + rel + '\0' + name + '\0';
  }
  write(journal, j);
  auto all = [](const std::string&, const std::string&) { return true; };
  CHECK(ephemera::archive::sweep_staged(journal, all) == 0);
  CHECK(read(dest / "keep") == "k");
  CHECK(fs::exists(dir.path() / "real/.ephemera-0123456789abcdef-00000001"));
  CHECK(fs::exists(dest / ".ephemera-0123456789abcdef-00000000"));
  // A symlink or fifo where the journal should be is no journal.
  fs::create_symlink(dest / "keep", journal);
  CHECK(ephemera::archive::sweep_staged(journal, all) == 0);
  CHECK(read(dest / "keep") == "k");
}

TEST_CASE("a name near the limit is restored into an existing directory", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  write(dest / "d/other", "o");
  std::string longest(250, 'n');
  write(dest / "d" / longest, "old");
  auto file = build(dir.path() / "a.tar.zst", {reg("work/d/" + longest, "new"), reg("work/d/" + std::string(255, 'm'), "max")});
  CHECK_NOTHROW(ephemera::archive::unpack(file, options(file, dest)));
  CHECK(read(dest / "d" / longest) == "new");
  CHECK(read(dest / "d" / std::string(255, 'm')) == "max");
}

TEST_CASE("inside a new tree, a file where the archive then has a directory is refused", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  fs::create_directories(dest);
  auto file = build(dir.path() / "a.tar.zst", {reg("work/n/x", "x"), reg("work/n/x/y", "y")});
  CHECK_THROWS_WITH(ephemera::archive::unpack(file, options(file, dest)),
                    Catch::Contains("where it has a directory"));
  CHECK(fs::is_empty(dest));
  auto file2 = build(dir.path() / "b.tar.zst", {node("work/n/x", AE_IFDIR), reg("work/n/x", "x")});
  CHECK_THROWS(ephemera::archive::unpack(file2, options(file2, dest)));
  CHECK(fs::is_empty(dest));
}

TEST_CASE("a restore over an existing tree replaces files and adds new directories", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  write(dest / "t/old", "old");
  write(dest / "t/keep", "keep");
  auto file = build(dir.path() / "a.tar.zst",
                    {reg("work/t/old", "new"), reg("work/t/sub/deep/f", "f"), hard("work/t/sub/h", "work/t/old"),
                     sym("work/t/l", "old")});
  ephemera::archive::unpack(file, options(file, dest));
  CHECK(read(dest / "t/old") == "new");
  CHECK(read(dest / "t/keep") == "keep");
  CHECK(read(dest / "t/sub/deep/f") == "f");
  CHECK(read(dest / "t/sub/h") == "new");
  CHECK(fs::equivalent(dest / "t/sub/h", dest / "t/old"));
  CHECK(fs::read_symlink(dest / "t/l") == "old");
  for (const auto& e : fs::recursive_directory_iterator(dest)) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("many small files, more than the writer holds at once, round trip whole", "[archive]") {
  // Files up to 1 MiB are queued in a 16 MiB ring for the writer thread; 40 MiB of them
  // in odd sizes make it wrap many times, with larger files (written by the reader) and a
  // hard link (which waits for the writer) in between.
  util::TempDir dir;
  auto src = dir.path() / "src";
  fs::create_directories(src);
  auto content = [](size_t index, size_t size) {
    std::string s(size, '\0');
    for (size_t i = 0; i < size; ++i) {
      s[i] = static_cast<char>((index * 131 + i * 7 + i / 4096) & 0xff);
    }
    return s;
  };
  std::vector<size_t> sizes;
  for (size_t i = 0; i < 90; ++i) {
    sizes.push_back(i % 17 == 0 ? (1 << 20) + 1 + i : i % 5 == 0 ? (1 << 20) : (i * 104729) % (900 << 10));
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    write(src / fmt::format("f{:03}", i), content(i, sizes[i]));
  }
  ::link((src / "f003").c_str(), (src / "g-link").c_str()); // after every f: the writer is busy
  std::vector<ephemera::archive::PackItem> items;
  for (const auto& e : fs::directory_iterator(src)) {
    items.push_back(item_of(e.path(), "work/" + e.path().filename().string()));
  }
  std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  auto out = dir.path() / "many.tar.zst";
  auto packed = ephemera::archive::pack(items, out, {});
  auto dest = dir.path() / "dest";
  auto o = options(out, dest, packed.unpacked_bytes);
  auto r = ephemera::archive::unpack(out, o);
  CHECK(r.files == sizes.size() + 1);
  for (size_t i = 0; i < sizes.size(); ++i) {
    std::string name = fmt::format("f{:03}", i);
    INFO(name);
    REQUIRE(fs::file_size(dest / name) == sizes[i]);
    CHECK(read(dest / name) == content(i, sizes[i]));
  }
  struct stat a {}, h {};
  ::stat((dest / "f003").c_str(), &a);
  ::stat((dest / "g-link").c_str(), &h);
  CHECK(a.st_ino == h.st_ino);
}

TEST_CASE("an archive that is not a regular file is refused before a byte is read", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  auto good = build(dir.path() / "a.tar.zst", {reg("work/a", "a")});
  auto o = options(good, dest);
  // A fifo with no writer would block a plain open or read forever; /dev/zero never ends.
  auto fifo = dir.path() / "fifo.tar.zst";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(ephemera::archive::unpack(fifo, o), Catch::Contains("not a regular file"));
  CHECK_THROWS_WITH(ephemera::archive::unpack("/dev/zero", o), Catch::Contains("not a regular file"));
  // A symlink to a good archive is not followed either.
  fs::create_symlink(good, dir.path() / "link.tar.zst");
  CHECK_THROWS_WITH(ephemera::archive::unpack(dir.path() / "link.tar.zst", o), Catch::Contains("symlink"));
  int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  REQUIRE(zero >= 0);
  util::Fd guard(zero);
  CHECK_THROWS_WITH(ephemera::archive::unpack_fd(zero, o), Catch::Contains("not a regular file"));
  // A size other than the manifest's is refused before reading too.
  auto longer = o;
  longer.expected_size += 1;
  CHECK_THROWS_WITH(ephemera::archive::unpack(good, longer), Catch::Contains("the manifest says"));
  CHECK_FALSE(fs::exists(dest));
  CHECK_NOTHROW(ephemera::archive::unpack(good, o));
  CHECK(read(dest / "a") == "a");
}

namespace {

// Two archives of one size (a file of random bytes each, which zstd stores as they are),
// with different names and contents: one can be swapped for the other in place.
std::pair<fs::path, fs::path> twins(const fs::path& dir) {
  std::string r1(3 << 20, '\0');
  std::string r2(3 << 20, '\0');
  uint64_t x = 88172645463325252ULL;
  for (size_t i = 0; i < r1.size(); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    r1[i] = static_cast<char>(x);
    r2[i] = static_cast<char>(x >> 32);
  }
  auto a = build(dir / "a.tar.zst", {reg("work/one", "1"), reg("work/good", r1)});
  auto b = build(dir / "b.tar.zst", {reg("work/one", "1"), reg("work/evil", r2)});
  REQUIRE(fs::file_size(a) == fs::file_size(b));
  return {a, b};
}

void overwrite(const fs::path& file, const std::string& bytes) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC); // in place: the same inode
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

} // namespace

TEST_CASE("bytes that are not the manifest's are never committed, even if they come later", "[archive]") {
  util::TempDir dir;
  auto [a, b] = twins(dir.path());
  auto dest = dir.path() / "dest";
  write(dest / "one", "old");
  auto before = snapshot(dest);
  auto o = options(a, dest, 8 << 20);
  const std::string evil = read(b);

  // Checked, then rewritten in place before the unpack reads it (what a store writer or the
  // job, which can write the state dir a download lands in, can do between two reads).
  int fd = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  util::Fd guard(fd);
  overwrite(a, evil);
  CHECK_THROWS_WITH(ephemera::archive::unpack_fd(fd, o), Catch::Contains("digest mismatch"));
  CHECK(snapshot(dest) == before);

  // Rewritten while it is being unpacked: the first block is read, then the rest changes.
  // A plain variable, not a structured binding: clang 14 (the sanitizer tree's) cannot
  // capture those in a lambda.
  fs::path a2 = twins(dir.path()).first;
  auto o2 = options(a2, dest, 8 << 20);
  bool swapped = false;
  o2.resolve = [&, inner = o2.resolve](std::string_view name, ephemera::archive::EntryType type) {
    if (!swapped) {
      overwrite(a2, evil);
      swapped = true;
    }
    return inner(name, type);
  };
  CHECK_THROWS_WITH(ephemera::archive::unpack(a2, o2), Catch::Contains("digest mismatch"));
  CHECK(swapped);
  CHECK(snapshot(dest) == before);
  CHECK_FALSE(fs::exists(dest / "evil"));
  CHECK_FALSE(fs::exists(dest / "good"));

  // Untouched, it unpacks.
  auto [a3, b3] = twins(dir.path());
  (void)b3;
  CHECK_NOTHROW(ephemera::archive::unpack(a3, options(a3, dest, 8 << 20)));
  CHECK(fs::file_size(dest / "good") == (3u << 20));
}

TEST_CASE("a directory swapped for a symlink during the unpack never redirects a write", "[archive]") {
  // The job runs beside its own in-job restore: it may replace a directory the restore
  // already checked with a link to elsewhere before the commit.
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  auto outside = dir.path() / "outside";
  fs::create_directories(dest / "t/sub");
  fs::create_directories(outside);
  ::chmod(outside.c_str(), 0755);
  Hostile sub = node("work/t/sub", AE_IFDIR);
  sub.perm = 0700;
  auto file = build(dir.path() / "a.tar.zst", {sub, reg("work/t/sub/f", "f"), reg("work/t/sub/g", "g"),
                                                reg("work/t/last", "l")});
  auto o = options(file, dest);
  auto inner = o.resolve;
  o.resolve = [&](std::string_view name, ephemera::archive::EntryType type) {
    if (name == "work/t/sub/g") {
      fs::rename(dest / "t/sub", dest / "t/moved");
      fs::create_symlink(outside, dest / "t/sub");
    }
    return inner(name, type);
  };
  try {
    ephemera::archive::unpack(file, o);
  } catch (const util::ArchiveError&) {
    // Refusing is as good as writing into the directory that was checked.
  }
  CHECK(fs::is_empty(outside));
  struct stat st {};
  ::stat(outside.c_str(), &st);
  CHECK((st.st_mode & 07777) == 0755);
}

namespace {

// An entry for EntryUnpack with its content given in pieces.
struct Streamed {
  std::string name;
  ephemera::archive::EntryType type = ephemera::archive::EntryType::file;
  uint32_t mode = 0644;
  int64_t mtime_ns = 1700000000123456789;
  std::vector<std::string> pieces;
  int64_t declared = -1; // size; -1: the pieces' total
  std::string link;
  std::string hardlink;
};

Streamed sfile(std::string name, std::vector<std::string> pieces, uint32_t mode = 0644) {
  Streamed s;
  s.name = std::move(name);
  s.pieces = std::move(pieces);
  s.mode = mode;
  return s;
}

Streamed sdir(std::string name) {
  Streamed s;
  s.name = std::move(name);
  s.type = ephemera::archive::EntryType::directory;
  s.mode = 0755;
  return s;
}

Streamed slink(std::string name, std::string target) {
  Streamed s;
  s.name = std::move(name);
  s.type = ephemera::archive::EntryType::symlink;
  s.mode = 0777;
  s.link = std::move(target);
  return s;
}

// options() without an archive: the same rules, nothing to hash.
ephemera::archive::UnpackOptions stream_options(const fs::path& dest, uint64_t max) {
  util::TempDir none;
  write(none.path() / "a", "");
  auto o = options(none.path() / "a", dest, max);
  o.expected_sha256.clear();
  o.expected_size = 0;
  return o;
}

ephemera::archive::UnpackResult stream_all(const std::vector<Streamed>& entries,
                                           const ephemera::archive::UnpackOptions& o) {
  ephemera::archive::EntryUnpack unpack(o);
  for (const auto& s : entries) {
    uint64_t total = 0;
    for (const auto& p : s.pieces) {
      total += p.size();
    }
    ephemera::archive::StreamEntry e{s.name, s.type, s.mode, s.mtime_ns,
                                     s.declared >= 0 ? static_cast<uint64_t>(s.declared) : total,
                                     s.link, s.hardlink};
    size_t next = 0;
    unpack.add(e, [&]() -> std::string_view {
      return next < s.pieces.size() ? std::string_view(s.pieces[next++]) : std::string_view();
    });
  }
  return unpack.commit();
}

} // namespace

TEST_CASE("streamed entries round trip: contents in pieces, modes, mtimes, links", "[archive]") {
  util::TempDir dir;
  auto dest = dir.path() / "dest";
  write(dest / "old", "was here");
  Streamed before_1970 = sfile("work/d/old-time", {"x"});
  before_1970.mtime_ns = -1500000000; // 1969-12-31T23:59:58.5Z
  Streamed big = sfile("work/d/big", {std::string(3 << 20, 'a'), std::string(1 << 20, 'b')}, 0600);
  auto o = stream_options(dest, 64 << 20);
  auto r = stream_all({sdir("work/d"), sfile("work/d/a", {"he", "llo"}, 0755), big, before_1970,
                       sfile("work/d/empty", {}), slink("work/d/l", "a")},
                      o);
  CHECK(r.files == 4);
  CHECK(r.directories == 1);
  CHECK(r.symlinks == 1);
  CHECK(r.bytes == (4u << 20) + 6);
  CHECK(read(dest / "d/a") == "hello");
  CHECK(read(dest / "d/big") == std::string(3 << 20, 'a') + std::string(1 << 20, 'b'));
  CHECK(read(dest / "d/empty").empty());
  CHECK(fs::read_symlink(dest / "d/l") == "a");
  CHECK(read(dest / "old") == "was here");
  struct stat st {};
  REQUIRE(::stat((dest / "d/a").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(st.st_mtim.tv_sec == 1700000000);
  CHECK(st.st_mtim.tv_nsec == 123456789);
  REQUIRE(::stat((dest / "d/old-time").c_str(), &st) == 0);
  CHECK(st.st_mtim.tv_sec == -2);
  CHECK(st.st_mtim.tv_nsec == 500000000);
  REQUIRE(::stat((dest / "d/big").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("streamed entries pass the archive's checks; a refused one leaves nothing", "[archive]") {
  struct Case {
    const char* what;
    std::vector<Streamed> entries;
    const char* message;
  };
  Streamed short_file = sfile("work/short", {"abc"});
  short_file.declared = 5;
  Streamed long_file = sfile("work/long", {"abc", "def"});
  long_file.declared = 4;
  Streamed longer_after = sfile("work/after", {"abcd", "e"});
  longer_after.declared = 4;
  const std::vector<Case> cases = {
      {"dot-dot", {sfile("work/ok", {"fine"}), sfile("work/../escape", {"x"})}, "'..'"},
      {"absolute", {sfile("/work/abs", {"x"})}, "absolute"},
      {"outside the rules", {sfile("work/ok", {"fine"}), sfile("home/.bashrc", {"x"})}, "rules"},
      {"secret by rule", {sfile("work/secret", {"x"})}, "rules"},
      {"through a symlink", {slink("work/l", "/etc"), sfile("work/l/passwd", {"x"})}, "symlink"},
      {"setuid", {sfile("work/suid", {"x"}, 04755)}, "set-user-id"},
      {"setgid", {sfile("work/sgid", {"x"}, 02755)}, "set-user-id"},
      {"bomb", {sfile("work/big", {std::string(5000, 'z')})}, "more"},
      {"twice", {sfile("work/d", {"1"}), sfile("work/d", {"2"})}, "twice"},
      {"short content", {sfile("work/ok", {"fine"}), short_file}, "ends after 3 of the 5"},
      {"long content", {long_file}, "more bytes than its entry declares"},
      {"content after the end", {longer_after}, "more bytes than its entry declares"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    util::TempDir dir;
    auto dest = dir.path() / "dest";
    write(dest / "existing", "keep me");
    write(dest / "ok", "old");
    auto before = snapshot(dest);
    auto o = stream_options(dest, 4096);
    CHECK_THROWS_WITH(stream_all(c.entries, o), Catch::Contains(c.message));
    CHECK(snapshot(dest) == before);
    CHECK_FALSE(fs::exists(dir.path() / "escape"));
    auto left = snapshot(dir.path());
    CHECK(left.find(".ephemera") == std::string::npos);
  }
}

namespace {

// Streamed entries through a TarWriter into a file; the compressed bytes written.
uint64_t tar_all(const std::vector<Streamed>& entries, const fs::path& file) {
  util::Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  REQUIRE(fd.fd >= 0);
  ephemera::archive::TarWriter tar(fd.fd, 3);
  for (const auto& s : entries) {
    uint64_t total = 0;
    for (const auto& p : s.pieces) {
      total += p.size();
    }
    ephemera::archive::StreamEntry e{s.name, s.type, s.mode, s.mtime_ns,
                                     s.declared >= 0 ? static_cast<uint64_t>(s.declared) : total,
                                     s.link, s.hardlink};
    size_t next = 0;
    tar.add(e, [&]() -> std::string_view {
      return next < s.pieces.size() ? std::string_view(s.pieces[next++]) : std::string_view();
    });
  }
  return tar.finish();
}

} // namespace

TEST_CASE("a tar writer's archive unpacks to its entries: pieces, modes, mtimes, links",
          "[archive]") {
  util::TempDir dir;
  auto file = dir.path() / "x.tar.zst";
  Streamed before_1970 = sfile("work/d/old-time", {"x"});
  before_1970.mtime_ns = -1500000000;
  Streamed d = sdir("work/d");
  d.mode = 0700;
  uint64_t written =
      tar_all({d, sfile("work/d/a", {"he", "llo"}, 0751), before_1970, sfile("work/d/empty", {}),
               slink("work/d/l", "a"), sfile("work/big", {std::string(3 << 20, 'q')}, 0600)},
              file);
  CHECK(written == fs::file_size(file));
  auto dest = dir.path() / "dest";
  auto r = ephemera::archive::unpack(file, options(file, dest, 8 << 20));
  CHECK(r.files == 4);
  CHECK(r.symlinks == 1);
  CHECK(r.directories == 1);
  CHECK(read(dest / "d/a") == "hello");
  CHECK(read(dest / "big") == std::string(3 << 20, 'q'));
  CHECK(fs::read_symlink(dest / "d/l") == "a");
  struct stat st {};
  REQUIRE(::stat((dest / "d/a").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0751);
  CHECK(st.st_mtim.tv_sec == 1700000000);
  CHECK(st.st_mtim.tv_nsec == 123456789);
  REQUIRE(::stat((dest / "d/old-time").c_str(), &st) == 0);
  CHECK(st.st_mtim.tv_sec == -2);
  CHECK(st.st_mtim.tv_nsec == 500000000);
  REQUIRE(::stat((dest / "d").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
}

TEST_CASE("a tar writer refuses what a restore would refuse for its shape", "[archive]") {
  struct Case {
    const char* what;
    std::vector<Streamed> entries;
    const char* message;
  };
  Streamed short_file = sfile("work/short", {"abc"});
  short_file.declared = 5;
  Streamed long_file = sfile("work/long", {"abc", "def"});
  long_file.declared = 4;
  const std::vector<Case> cases = {
      {"dot-dot", {sfile("work/../escape", {"x"})}, "'..'"},
      {"absolute", {sfile("/work/abs", {"x"})}, "absolute"},
      {"through a symlink", {slink("work/l", "/etc"), sfile("work/l/passwd", {"x"})}, "symlink"},
      {"setuid", {sfile("work/suid", {"x"}, 04755)}, "set-user-id"},
      {"twice", {sfile("work/d", {"1"}), sfile("work/d", {"2"})}, "twice"},
      {"short content", {short_file}, "ends after 3 of the 5"},
      {"long content", {long_file}, "more bytes than its entry declares"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    util::TempDir dir;
    CHECK_THROWS_WITH(tar_all(c.entries, dir.path() / "x.tar.zst"), Catch::Contains(c.message));
  }
}
