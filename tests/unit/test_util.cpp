#include "util/budget.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "util/temp_name.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

using namespace ephemera::util;

TEST_CASE("sha256 of known inputs", "[util]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("hmac-sha256 matches RFC 4231 case 2", "[util]") {
  CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("atomic write replaces content and leaves no temporary file", "[util]") {
  TempDir dir;
  auto path = dir.path() / "f";
  write_file_atomic(path, "one");
  write_file_atomic(path, "two");
  CHECK(read_file(path) == "two");
  int entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
  }
  CHECK(entries == 1);
  CHECK_FALSE(read_file_if_exists(dir.path() / "missing").has_value());
  CHECK_THROWS_AS(read_file(dir.path() / "missing"), Error);
}

TEST_CASE("diagnostics print gcc style", "[util]") {
  Diagnostic d{Severity::error, {"build.sh", 14, 9}, "persist[1].epoch must be an integer >= 0"};
  CHECK(d.str() == "build.sh:14:9: error: persist[1].epoch must be an integer >= 0");
  CHECK(rebase("/scratch", "/home/x") == "/scratch/home/x");
  CHECK(rebase("/", "/home/x") == "/home/x");
}

TEST_CASE("temporary names: one fixed-length shape, unique, recognised exactly", "[util]") {
  auto a = temp_name_beside("/w/target/blob");
  auto b = temp_name_beside("/w/target/blob");
  CHECK(a != b);
  CHECK(a.parent_path() == "/w/target");
  CHECK(is_temp_name(a.filename().string()));
  // Whatever the target's length: a name at the file system's limit still has one.
  CHECK(temp_name_beside(std::string(255, 'n')).string().size() == temp_name().size());
  CHECK(temp_name().size() == 35);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string n = temp_name();
    CHECK(is_temp_name(n));
    seen.insert(n);
  }
  CHECK(seen.size() == 1000);
  for (const char* lookalike :
       {"", ".ephemera-", ".ephemera-0123456789abcdef-0123456",
        ".ephemera-0123456789abcdef-012345678",
        ".ephemera-0123456789ABCDEF-01234567", ".ephemera-0123456789abcdef_01234567",
        "x.ephemera-0123456789abcdef-0123456", "ephemera-0123456789abcdef-012345678",
        ".ephemera-0123456789abcdeg-01234567", "a.json.tmp.1.0123456789abcdef", "x.tmp.y.json"}) {
    INFO(lookalike);
    CHECK_FALSE(is_temp_name(lookalike));
  }
  CHECK(is_temp_name(".ephemera-0123456789abcdef-01234567"));
}

TEST_CASE("an atomic write of a name at the file system's limit succeeds", "[util]") {
  TempDir dir;
  std::string name(255, 'n');
  write_file_atomic(dir.path() / name, "long");
  CHECK(read_file(dir.path() / name) == "long");
  auto d = Dir::open(dir.path(), false);
  d.write(name, "longer");
  CHECK(d.read(name, 100) == std::optional<std::string>("longer"));
  CHECK(d.list() == std::vector<std::string>{name});
}

TEST_CASE("printable escapes what could move a terminal or forge a log line", "[util]") {
  CHECK(printable("plain text, ünïcode") == "plain text, ünïcode");
  CHECK(printable("a\nephemera: restored") == "a\\nephemera: restored");
  CHECK(printable("\x1b[2J\t\r\x7f\\") == "\\x1b[2J\\t\\r\\x7f\\\\");
  CHECK(printable(std::string_view("n\0ul", 4)) == "n\\x00ul");
}

TEST_CASE("open_regular refuses fifos, devices and (unless told) symlinks without blocking",
          "[util]") {
  TempDir dir;
  auto fifo = dir.path() / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(open_regular(fifo, true), Catch::Contains("a fifo"));
  CHECK_THROWS_WITH(open_regular("/dev/zero", true), Catch::Contains("a character device"));
  CHECK(open_regular(dir.path() / "absent", true) == -1);
  write_file_atomic(dir.path() / "file", "abc");
  std::filesystem::create_symlink(dir.path() / "file", dir.path() / "link");
  CHECK_THROWS_WITH(open_regular(dir.path() / "link", false), Catch::Contains("a symbolic link"));
  int fd = open_regular(dir.path() / "link", true);
  REQUIRE(fd >= 0);
  ::close(fd);
  CHECK(read_regular_file_if_exists(dir.path() / "file", 3, false) == std::optional<std::string>("abc"));
  CHECK_THROWS_WITH(read_regular_file_if_exists(dir.path() / "file", 2, false),
                    Catch::Contains("larger than 2 bytes"));

  // The errno form, which the store and the unpacker use, makes the same check.
  struct stat st {};
  CHECK(open_regular(fifo, st) == -1);
  CHECK(errno == EINVAL);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(open_regular("/dev/zero", st) == -1);
  CHECK(errno == EINVAL);
  CHECK(open_regular(dir.path() / "link", st) == -1);
  CHECK(errno == ELOOP);
  CHECK(open_regular(dir.path() / "absent", st) == -1);
  CHECK(errno == ENOENT);
  fd = open_regular(dir.path() / "file", st);
  REQUIRE(fd >= 0);
  CHECK(st.st_size == 3);
  CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) == 0);
  ::close(fd);
}

TEST_CASE("a Dir never reads or writes through a symlink planted in it", "[util]") {
  TempDir dir;
  TempDir elsewhere;
  write_file_atomic(elsewhere.path() / "secret", "secret");
  auto d = Dir::open(dir.path() / "state", true);
  std::filesystem::create_symlink(elsewhere.path() / "secret", d.path() / "report.json");
  CHECK_THROWS_WITH(d.read("report.json", 100), Catch::Contains("a symbolic link"));
  d.write("report.json", "new");
  CHECK(read_file(elsewhere.path() / "secret") == "secret");
  CHECK(d.read("report.json", 100) == std::optional<std::string>("new"));
  std::filesystem::create_directory_symlink(elsewhere.path(), d.path() / "sub");
  CHECK_THROWS_WITH(d.sub("sub", true), Catch::Contains("a symbolic link"));
  CHECK_THROWS_WITH(Dir::open(d.path() / "sub", false), Catch::Contains("a symbolic link"));
  CHECK_THROWS(d.read("../x", 100));
  CHECK(d.list() == std::vector<std::string>{"report.json", "sub"});
}

TEST_CASE("write_all and read_full at an offset leave the file position alone", "[util]") {
  TempDir dir;
  auto path = dir.path() / "f";
  write_file_atomic(path, "0123456789");
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  Fd guard(fd);
  REQUIRE(::lseek(fd, 2, SEEK_SET) == 2);
  CHECK(write_all(fd, "abc", 5));
  CHECK(::lseek(fd, 0, SEEK_CUR) == 2);
  CHECK(read_file(path) == "01234abc89");
  // Past the end, larger than any one write the kernel takes from a pipe or a page cache.
  std::string big(3 << 20, 'x');
  big.back() = 'y';
  CHECK(write_all(fd, big, 10));
  CHECK(::lseek(fd, 0, SEEK_CUR) == 2);
  std::string back(big.size() + 1, '\0');
  CHECK(read_full(fd, back.data(), back.size(), 9) == static_cast<ssize_t>(big.size() + 1));
  CHECK(back == "9" + big);
  CHECK(::lseek(fd, 0, SEEK_CUR) == 2);
  // Without an offset: at the file position, which moves.
  CHECK(write_all(fd, "Z"));
  CHECK(::lseek(fd, 0, SEEK_CUR) == 3);
  CHECK(read_file(path).substr(0, 4) == "01Z3");
  CHECK_FALSE(write_all(-1, "x", 0));
  CHECK(errno == EBADF);
}

TEST_CASE("a time budget runs out and says which one it was", "[util][budget]") {
  budget::clear();
  CHECK_FALSE(budget::left().has_value());
  CHECK_NOTHROW(budget::check("unpacking")); // no budget: nothing ever runs out
  budget::start(30, "--budget 30s");
  REQUIRE(budget::left().has_value());
  CHECK(budget::left()->count() > 29000);
  CHECK_NOTHROW(budget::check("unpacking"));
  budget::start(0.001, "EPHEMERA_BUDGET 1ms");
  ::usleep(5000);
  CHECK(budget::passed());
  CHECK(budget::left()->count() == 0);
  try {
    budget::check("unpacking");
    FAIL("no BudgetExceeded");
  } catch (const BudgetExceeded& e) {
    CHECK(std::string(e.what()) ==
          "unpacking: out of time: the time budget of 0.001 s (EPHEMERA_BUDGET 1ms) ran out");
  }
  budget::clear();
  CHECK_NOTHROW(budget::check("unpacking"));
}
