#include "helpers.hpp"
#include "policy/policy.hpp"
#include "store/catalog.hpp"
#include "store/gc.hpp"
#include "store/s3.hpp"
#include "store/url.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <thread>

using namespace ephemera;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using test::EnvVar;
using test::file_with;

store::Manifest partial(const std::string& key, const std::string& branch, const fs::path& file,
                        bool trusted = true, int64_t epoch = 1) {
  store::Manifest m;
  m.repository = "acme/widget";
  m.target = "helios";
  m.name = "cargo";
  m.epoch = epoch;
  m.key = key;
  m.branch = branch;
  m.trusted = trusted;
  m.job_id = "job-" + key + "-" + branch;
  m.compressed_size = fs::file_size(file);
  m.sha256 = util::sha256_file_hex(file);
  return m;
}

store::LookupRequest request(const std::string& key, const std::string& branch,
                             std::vector<std::string> prefixes = {}) {
  store::LookupRequest r;
  r.repository = "acme/widget";
  r.target = "helios";
  r.name = "cargo";
  r.epoch = 1;
  r.steps = policy::lookup_steps(key, prefixes);
  r.branch = branch;
  return r;
}

// The candidate a restore tries first, if any.
std::optional<store::Candidate> first_of(store::Catalog& catalog, const store::LookupRequest& r) {
  auto found = catalog.lookup(r).candidates;
  if (found.empty()) {
    return std::nullopt;
  }
  return found.front();
}

// Where publish() puts the manifest of minimal_manifest().
const std::string k_minimal_object = "v1/r/~/n/e0/k/20261124T164000.123456Z-0a1b2c3d.json";

// The least a manifest needs to be read back from k_minimal_object.
store::Manifest minimal_manifest() {
  store::Manifest m;
  m.repository = "r";
  m.name = "n";
  m.key = "k";
  m.archive = "v1/r/~/n/e0/k/20261124T164000.123456Z-0a1b2c3d.tar.zst";
  m.compressed_size = 1;
  m.sha256 = std::string(64, 'a');
  m.created = "2026-11-24T16:40:00.123456Z";
  return m;
}

} // namespace

TEST_CASE("presigned links match AWS's published SigV4 example", "[store]") {
  // https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
  auto url = store::presign_get("https://examplebucket.s3.amazonaws.com", "examplebucket.s3.amazonaws.com",
                                "/test.txt", "us-east-1", "AKIAIOSFODNN7EXAMPLE",
                                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "", "20130524T000000Z", 86400s);
  CHECK(url ==
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  auto with_token = store::presign_get("https://h", "h", "/k", "us-east-1", "AK", "SK", "tok/en+",
                                       "20130524T000000Z", 60s);
  CHECK_THAT(with_token, Catch::Contains("X-Amz-Security-Token=tok%2Fen%2B"));
}

TEST_CASE("retry delays grow, are capped, jittered, and yield to Retry-After", "[store]") {
  CHECK(store::retry_delay(1, 1.0, std::nullopt) == 200ms);
  CHECK(store::retry_delay(2, 1.0, std::nullopt) == 400ms);
  CHECK(store::retry_delay(3, 1.0, std::nullopt) == 800ms);
  CHECK(store::retry_delay(3, 0.0, std::nullopt) == 400ms); // jitter halves at most
  CHECK(store::retry_delay(30, 1.0, std::nullopt) == 10000ms);
  CHECK(store::retry_delay(1, 7.0, std::nullopt) == 200ms);  // jitter is clamped
  CHECK(store::retry_delay(1, 0.5, std::optional<std::chrono::seconds>(3s)) == 3000ms);
  CHECK(store::retry_delay(1, 0.5, std::optional<std::chrono::seconds>(3600s)) == 60000ms);
}

TEST_CASE("object names: sanitised components and URI encoding", "[store]") {
  CHECK(store::sanitise("acme/widget") == "acme~2Fwidget");
  CHECK(store::sanitise("cargo-1.85_x") == "cargo-1.85_x");
  CHECK(store::sanitise("") == "~");
  CHECK(store::sanitise(".hidden") == "~2Ehidden");
  CHECK(store::sanitise("a~b") == "a~7Eb"); // '~' itself is escaped, so the mapping is one to one
  CHECK(store::sanitise("é") == "~C3~A9");
  CHECK(store::uri_encode("a b/c~d", true) == "a%20b/c~d");
  CHECK(store::uri_encode("a b/c", false) == "a%20b%2Fc");
}

TEST_CASE("S3 URLs: bucket, prefix, endpoint, region and addressing", "[store]") {
  EnvVar e("EPHEMERA_S3_ENDPOINT", nullptr), r("AWS_REGION", nullptr), d("AWS_DEFAULT_REGION", nullptr);
  auto aws = store::parse_s3_url("ci-cache/eph/jobs");
  CHECK(aws.bucket == "ci-cache");
  CHECK(aws.prefix == "eph/jobs/");
  CHECK(aws.region == "us-east-1");
  CHECK(aws.endpoint == "https://s3.us-east-1.amazonaws.com");
  CHECK_FALSE(aws.path_style); // AWS: virtual-hosted

  auto rgw = store::parse_s3_url("b?endpoint=http://127.0.0.1:7480&region=eu-1");
  CHECK(rgw.endpoint == "http://127.0.0.1:7480");
  CHECK(rgw.region == "eu-1");
  CHECK(rgw.prefix.empty());
  CHECK(rgw.path_style); // a custom endpoint: path-style

  auto host_only = store::parse_s3_url("b/p/?endpoint=minio.lan:9000&addressing=virtual");
  CHECK(host_only.endpoint == "https://minio.lan:9000");
  CHECK(host_only.prefix == "p/");
  CHECK_FALSE(host_only.path_style);

  {
    EnvVar env_endpoint("EPHEMERA_S3_ENDPOINT", "http://rgw:80"), env_region("AWS_REGION", "auto");
    auto from_env = store::parse_s3_url("b");
    CHECK(from_env.endpoint == "http://rgw:80");
    CHECK(from_env.region == "auto");
  }
  CHECK_THROWS_AS(store::parse_s3_url(""), util::InputError);
  CHECK_THROWS_WITH(store::parse_s3_url("b?addressing=dns"), Catch::Contains("use path or virtual"));
}

TEST_CASE("store URLs choose a backend or say what is wrong", "[store]") {
  util::TempDir dir;
  CHECK_NOTHROW(store::open_backend(dir.path().string()));
  CHECK_NOTHROW(store::open_backend("file://" + dir.path().string()));
  CHECK_THROWS_WITH(store::open_backend("gs://bucket"), Catch::Contains("s3://bucket/prefix"));
  CHECK_THROWS_AS(store::open_backend(""), util::InputError);
  EnvVar ak("AWS_ACCESS_KEY_ID", nullptr), sk("AWS_SECRET_ACCESS_KEY", nullptr);
  CHECK_THROWS_WITH(store::open_backend("s3://bucket"), Catch::Contains("AWS_ACCESS_KEY_ID"));
  CHECK(store::redact_url("s3://user:secret@host/b") == "s3://host/b");
}

TEST_CASE("lookup: exact key, then prefixes; own branch first; newest wins; untrusted stays in its origin",
          "[store]") {
  util::TempDir dir;
  EnvVar no_key("EPHEMERA_SIGNING_KEY", nullptr);
  store::Catalog cat(store::open_backend((dir.path() / "store").string()), std::nullopt);
  auto a = file_with(dir.path() / "a", "archive bytes");

  CHECK_FALSE(first_of(cat, request("cargo-1", "main")));
  cat.publish(partial("cargo-1", "feature", a), a);
  std::this_thread::sleep_for(2ms);
  cat.publish(partial("cargo-1", "other", a), a);
  std::this_thread::sleep_for(2ms);
  cat.publish(partial("cargo-0", "main", a), a);

  auto own = first_of(cat, request("cargo-1", "feature"));
  REQUIRE(own);
  CHECK_FALSE(own->step.prefix);
  CHECK(own->step.value == "cargo-1");
  CHECK(own->own_branch);
  CHECK(own->manifest.branch == "feature");

  auto newest = first_of(cat, request("cargo-1", "third"));
  REQUIRE(newest);
  CHECK(newest->manifest.branch == "other");
  CHECK_FALSE(newest->own_branch);

  auto prefix = first_of(cat, request("cargo-2", "main", {"cargo-"}));
  REQUIRE(prefix);
  CHECK(prefix->step.prefix);
  CHECK(prefix->step.value == "cargo-");
  CHECK(prefix->manifest.branch == "main"); // own branch first, even though older

  auto wrong_epoch = request("cargo-1", "feature");
  wrong_epoch.epoch = 2;
  CHECK_FALSE(first_of(cat, wrong_epoch));

  auto fork = partial("fork", "fork-branch", a, false);
  fork.origin = "pr/42";
  cat.publish(fork, a);
  CHECK_FALSE(first_of(cat, request("fork", "main")));
  CHECK_FALSE(first_of(cat, request("fork", "fork-branch")));
  auto same_origin = request("fork", "other-branch");
  same_origin.trusted = false;
  same_origin.origin = "pr/42";
  CHECK(first_of(cat, same_origin));

  cat.invalidate("acme/widget", "", "cargo", "poisoned");
  CHECK_FALSE(first_of(cat, request("cargo-1", "feature")));
  std::this_thread::sleep_for(2ms);
  cat.publish(partial("cargo-1", "feature", a), a); // saves after the marker are visible
  CHECK(first_of(cat, request("cargo-1", "feature")));
}

TEST_CASE("signed manifests: a forged or unsigned manifest is never restored", "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  auto a = file_with(dir.path() / "a", "archive bytes");
  store::Catalog signer(store::open_backend(url), std::string("s3cret"));
  auto m = signer.publish(partial("k", "feature", a), a);
  CHECK(first_of(signer, request("k", "other")));

  // A job without the key writes a manifest of its own: unsigned, then forged.
  store::Catalog forger(store::open_backend(url), std::nullopt);
  std::this_thread::sleep_for(2ms);
  auto forged = forger.publish(partial("k", "evil", a), a);
  auto found = first_of(signer, request("k", "other"));
  REQUIRE(found);
  CHECK(found->manifest.branch == "feature");

  auto j = forged.to_json();
  j["signature"] = std::string(64, 'a');
  fs::path object = fs::path(url) / forged.object;
  std::ofstream(object) << j.dump();
  found = first_of(signer, request("k", "evil"));
  REQUIRE(found);
  CHECK(found->manifest.branch == "feature");
}

TEST_CASE("downloads check size and digest and leave nothing on a mismatch", "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  auto a = file_with(dir.path() / "a", "archive bytes");
  store::Catalog cat(store::open_backend(url), std::nullopt);
  auto m = cat.publish(partial("k", "b", a), a);
  cat.download(m, dir.path() / "ok");
  CHECK(util::read_file(dir.path() / "ok") == "archive bytes");

  std::ofstream(fs::path(url) / m.archive, std::ios::binary) << "archive bytez"; // same size, other bytes
  CHECK_THROWS_AS(cat.download(m, dir.path() / "bad"), util::StoreError);
  CHECK_FALSE(fs::exists(dir.path() / "bad"));
  std::ofstream(fs::path(url) / m.archive, std::ios::binary) << "short";
  CHECK_THROWS_AS(cat.download(m, dir.path() / "bad"), util::StoreError);
  CHECK_FALSE(fs::exists(dir.path() / "bad"));
}

TEST_CASE("a local archive is opened where it lies: a regular file of the manifest's size", "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  auto a = file_with(dir.path() / "a", "archive bytes");
  store::Catalog cat(store::open_backend(url), std::nullopt);
  auto m = cat.publish(partial("k", "b", a), a);
  int fd = cat.open_verified(m);
  REQUIRE(fd >= 0);
  // Replaced by a new file renamed over its name (how the store writes): the descriptor
  // still reads the bytes it opened, from the start.
  auto other = file_with(dir.path() / "other", "archive bytez");
  fs::rename(other, fs::path(url) / m.archive);
  char buf[32] = {};
  CHECK(::read(fd, buf, sizeof buf) == 13);
  CHECK(std::string(buf) == "archive bytes");
  ::close(fd);
  // Bytes of the right size are opened (the unpacker hashes what it reads); another size,
  // a symlink, a fifo (whose open would block) or a missing file are refused up front.
  fd = cat.open_verified(m);
  CHECK(fd >= 0);
  ::close(fd);
  std::ofstream(fs::path(url) / m.archive, std::ios::binary) << "short";
  CHECK_THROWS_WITH(cat.open_verified(m), Catch::Contains("the manifest says 13"));
  fs::remove(fs::path(url) / m.archive);
  fs::create_symlink(dir.path() / "a", fs::path(url) / m.archive);
  CHECK_THROWS_WITH(cat.open_verified(m), Catch::Contains("symlink"));
  fs::remove(fs::path(url) / m.archive);
  REQUIRE(::mkfifo((fs::path(url) / m.archive).c_str(), 0600) == 0);
  CHECK_THROWS_WITH(cat.open_verified(m), Catch::Contains("not a regular file"));
  fs::remove(fs::path(url) / m.archive);
  CHECK_THROWS_AS(cat.open_verified(m), util::StoreError);
}

TEST_CASE("manifests that are not ours are refused with a reason", "[store]") {
  using nlohmann::json;
  CHECK_THROWS_AS(store::Manifest::from_json(json::array(), k_minimal_object), util::StoreError);
  CHECK_THROWS_AS(store::Manifest::from_json(json{{"format", "something/9"}}, k_minimal_object),
                  util::StoreError);
  auto m = minimal_manifest();
  auto back = store::Manifest::from_json(m.to_json(), k_minimal_object);
  CHECK(back.archive == m.archive);
  CHECK(back.object == k_minimal_object);
  auto bad = m.to_json();
  bad["sha256"] = 12;
  CHECK_THROWS_AS(store::Manifest::from_json(bad, k_minimal_object), util::StoreError);
}

TEST_CASE("skewed writers: the store's clock orders saves and measures ages", "[store]") {
  // The store received `behind` last (its writer's clock is 3 h slow) and `ahead` before
  // it (its writer's clock is 3 h fast). Both arrived within the last minute.
  double now = *store::parse_rfc3339("2026-11-24T12:00:00.000000Z");
  auto mk = [](const std::string& id, const std::string& created, int64_t stored) {
    store::Manifest m;
    m.repository = "r";
    m.target = "t";
    m.name = "n";
    m.epoch = 1;
    m.key = "k";
    m.branch = "b";
    m.created = created;
    m.stored = stored;
    m.object = id + ".json";
    m.archive = id + ".tar.zst";
    m.compressed_size = 10;
    return m;
  };
  auto ahead = mk("ahead", "2026-11-24T14:59:20.000000Z", static_cast<int64_t>(now) - 40);
  auto behind = mk("behind", "2026-11-24T08:59:50.000000Z", static_cast<int64_t>(now) - 10);
  CHECK(behind.later_than(ahead));
  CHECK_FALSE(ahead.later_than(behind));
  // Within one second of the store's clock, the writers' times decide.
  auto same = mk("same", "2026-11-24T08:59:51.000000Z", behind.stored);
  CHECK(same.later_than(behind));

  // keep 1 drops the earlier save, never the one just made by a slow clock; nothing is
  // older than the grace period by the store's clock, so nothing else goes.
  store::GcOptions o;
  o.keep = 1;
  o.max_age = 3600.0;
  o.grace = 0;
  store::GcInventory gc_input;
  gc_input.saves = {ahead, behind};
  for (const auto& m : gc_input.saves) {
    gc_input.listing.push_back({m.object, 1, m.stored});
    gc_input.listing.push_back({m.archive, 10, m.stored});
  }
  auto plan = store::plan_gc(gc_input, o, now).actions;
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].subject == "ahead.json");
  o.grace = 3600;
  CHECK(store::plan_gc(gc_input, o, now).actions.empty());

  // An invalidation stored after a save covers it whatever the writer's clock said.
  store::Invalidation inv{"r", "", "", "", "2026-11-24T11:59:55.000000Z", "inv.json", static_cast<int64_t>(now) - 5};
  CHECK(inv.covers(ahead));
  CHECK(inv.covers(behind));
  inv.stored = static_cast<int64_t>(now) - 20; // between the two
  CHECK(inv.covers(ahead));
  CHECK_FALSE(inv.covers(behind));
}

TEST_CASE("a manifest whose signature is not a string is refused, not a crash", "[store]") {
  auto m = minimal_manifest();
  auto j = m.to_json();
  j["signature"] = 5;
  CHECK_THROWS_AS(store::Manifest::from_json(j, k_minimal_object), util::StoreError);
  j.erase("signature");
  CHECK(store::Manifest::from_json(j, k_minimal_object).signature.empty());
}

TEST_CASE("object keys with empty, '.' or '..' components or control bytes are refused", "[store]") {
  CHECK(store::valid_key("v1/repo/~/name/e1/key/20261201T000000.000000Z-0a1b2c3d.tar.zst"));
  CHECK(store::valid_key("v1/_invalidations/r/x.json"));
  for (const std::string& bad : std::vector<std::string>{"", "/v1/x", "v1//x", "v1/x/", "v1/../x", "v1/./x", "..", ".", "v1/x\n",
                          std::string("v1/\0x", 5), std::string(1025, 'a')}) {
    INFO(bad);
    CHECK_FALSE(store::valid_key(bad));
    CHECK_THROWS_AS(store::check_key(bad), util::StoreError);
  }
  CHECK(store::valid_key("v1/..x/x..y/.hidden"));
}

TEST_CASE("forged manifests are refused where they are read, saying what is wrong", "[store]") {
  using nlohmann::json;
  const std::string dir = "v1/r/~/n/e0/k/";
  struct Case {
    const char* what;
    const char* field;           // set to value; nullptr: the manifest as it is
    json value;
    std::string object;          // where it lies; "" : k_minimal_object
    const char* reason;
  };
  const std::vector<Case> cases{
      {"absolute archive", "archive", "/etc/passwd", "", "is not its own object"},
      {"archive with ..", "archive", dir + "../../../../../../etc/passwd", "", "is not its own object"},
      {"another scope's archive", "archive", "v1/r/~/other/e0/k/20261124T164000.123456Z-0a1b2c3d.tar.zst",
       "", "is not its own object"},
      {"another save's archive", "archive", dir + "20250101T000000.000000Z-ffffffff.tar.zst", "",
       "is not its own object"},
      {"archive of another kind", "archive", dir + "20261124T164000.123456Z-0a1b2c3d.json", "",
       "is not its own object"},
      {"negative size", "compressed_size", -1, "", "not a whole number"},
      {"fractional size", "compressed_size", 1.5, "", "not a whole number"},
      {"size past 2^64", "compressed_size", json::parse("18446744073709551616"), "", "not a whole number"},
      {"size as a string", "compressed_size", "12", "", "not a whole number"},
      {"size 0", "compressed_size", 0, "", "'compressed_size' is 0"},
      {"negative unpacked bytes", "unpacked_bytes", -5, "", "not a whole number"},
      {"fractional file count", "files", 2.5, "", "not a whole number"},
      {"negative epoch", "epoch", -1, "", "not a whole number"},
      {"epoch written as a float", "epoch", 0.0, "", "not a whole number"},
      {"epoch past int64", "epoch", json::parse("9223372036854775808"), "", "not a whole number"},
      {"epoch not the path's", "epoch", 1, "", "belongs in 'v1/r/~/n/e1/k/'"},
      {"repository not the path's", "repository", "s", "", "belongs in 'v1/s/~/n/e0/k/'"},
      {"target not the path's", "target", "t", "", "belongs in 'v1/r/t/n/e0/k/'"},
      {"name not the path's", "name", "m", "", "belongs in 'v1/r/~/m/e0/k/'"},
      {"key not the path's", "key", "j", "", "belongs in 'v1/r/~/n/e0/j/'"},
      {"a deeper object", nullptr, nullptr, dir + "sub/20261124T164000.123456Z-0a1b2c3d.json", "belongs in"},
      {"an empty stamp", nullptr, nullptr, dir + ".json", "belongs in"},
      {"an object not .json", nullptr, nullptr, dir + "20261124T164000.123456Z-0a1b2c3d.txt", "belongs in"},
      {"an object with ..", nullptr, nullptr, dir + "../k/x.json", "'..' path component"},
      {"a created time of another shape", "created", "2026-11-24T16:40:00Z", "", "created time"},
      {"an upper-case digest", "sha256", std::string(64, 'A'), "", "malformed sha256"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto j = minimal_manifest().to_json();
    if (c.field != nullptr) {
      j[c.field] = c.value;
    }
    CHECK_THROWS_WITH(store::Manifest::from_json(j, c.object.empty() ? k_minimal_object : c.object),
                      Catch::Contains(c.reason));
  }
  // The same manifest, valid where it lies, with large and zero counts that are real.
  auto j = minimal_manifest().to_json();
  j["unpacked_bytes"] = 0;
  j["files"] = 0;
  j["compressed_size"] = json::parse("18446744073709551615");
  auto m = store::Manifest::from_json(j, k_minimal_object);
  CHECK(m.compressed_size == UINT64_MAX);
  j["epoch"] = 7;
  j["archive"] = "v1/r/~/n/e7/k/x.tar.zst";
  CHECK(store::Manifest::from_json(j, "v1/r/~/n/e7/k/x.json").epoch == 7);
}

TEST_CASE("a manifest naming a file outside its own archive is never listed or restored", "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  EnvVar no_key("EPHEMERA_SIGNING_KEY", nullptr);
  store::Catalog cat(store::open_backend(url), std::nullopt);
  auto a = file_with(dir.path() / "a", "archive bytes");
  auto m = cat.publish(partial("k", "feature", a), a);
  // Beside it, forgeries that name a file outside the store, by its absolute path and by
  // '..', with that file's true size and digest, and one that names the real save's archive.
  auto victim = file_with(dir.path() / "victim", "the victim's bytes");
  std::string stem = m.object.substr(0, m.object.size() - 5);
  std::vector<std::string> archives{victim.string(), "../../../../../../../../victim", m.archive};
  for (size_t i = 0; i < archives.size(); ++i) {
    auto j = m.to_json();
    j["archive"] = archives[i];
    j["compressed_size"] = archives[i] == m.archive ? fs::file_size(a) : fs::file_size(victim);
    j["sha256"] = archives[i] == m.archive ? m.sha256 : util::sha256_file_hex(victim);
    j["created"] = "2099-01-01T00:00:00.000000Z"; // newer than the real save
    j["branch"] = "evil";
    std::ofstream(fs::path(url) / (stem + "-forged" + std::to_string(i) + ".json")) << j.dump();
  }
  auto listed = cat.list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].object == m.object);
  auto found = first_of(cat, request("k", "evil"));
  REQUIRE(found);
  CHECK(found->manifest.object == m.object);
  CHECK(fs::exists(victim));
}

TEST_CASE("a signed manifest copied into another epoch's or repository's prefix is refused", "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  auto a = file_with(dir.path() / "a", "archive bytes");
  store::Catalog cat(store::open_backend(url), std::string("s3cret"));
  auto m = cat.publish(partial("k", "feature", a), a);
  REQUIRE(first_of(cat, request("k", "feature")));
  // A store writer copies the manifest (signature and all) and its archive into the prefix
  // of epoch 2, which an epoch bump was meant to empty, and of another repository.
  auto copy = [&](const std::string& from, const std::string& to) {
    for (const auto& key : {m.object, m.archive}) {
      REQUIRE(key.rfind(from, 0) == 0);
      auto dest = fs::path(url) / (to + key.substr(from.size()));
      fs::create_directories(dest.parent_path());
      fs::copy_file(fs::path(url) / key, dest);
    }
  };
  copy("v1/acme~2Fwidget/helios/cargo/e1/", "v1/acme~2Fwidget/helios/cargo/e2/");
  copy("v1/acme~2Fwidget/", "v1/other~2Frepo/");
  auto next_epoch = request("k", "feature");
  next_epoch.epoch = 2;
  CHECK_FALSE(first_of(cat, next_epoch));
  auto other_repo = request("k", "feature");
  other_repo.repository = "other/repo";
  CHECK_FALSE(first_of(cat, other_repo));
  CHECK(cat.list("other/repo").empty());
}

TEST_CASE("lookup gives the candidates in the order a restore tries them, each once, at most three",
          "[store]") {
  util::TempDir dir;
  EnvVar no_key("EPHEMERA_SIGNING_KEY", nullptr);
  store::Catalog cat(store::open_backend((dir.path() / "store").string()), std::nullopt);
  auto a = file_with(dir.path() / "a", "archive bytes");
  for (const auto& [key, branch] : std::vector<std::pair<std::string, std::string>>{
           {"cargo-1", "other"}, {"cargo-1", "feature"}, {"cargo-1", "third"}, {"cargo-0", "feature"}}) {
    cat.publish(partial(key, branch, a), a);
    std::this_thread::sleep_for(2ms);
  }
  auto r = request("cargo-1", "feature", {"cargo-"});
  r.max_candidates = 10;
  auto found = cat.lookup(r).candidates;
  std::vector<std::string> order;
  for (const auto& c : found) {
    order.push_back((c.step.prefix ? "prefix:" + c.step.value : "exact") + " " + c.manifest.key +
                    " " + c.manifest.branch + (c.own_branch ? " own" : ""));
  }
  CHECK(order == std::vector<std::string>{"exact cargo-1 feature own", "exact cargo-1 third",
                                          "exact cargo-1 other", "prefix:cargo- cargo-0 feature own"});
  CHECK(cat.lookup(request("cargo-1", "feature", {"cargo-"})).candidates.size() == 3);
  CHECK(cat.lookup(request("cargo-9", "feature")).candidates.empty());
}

TEST_CASE("untrusted saves reach only untrusted jobs of their own origin, whatever the branch",
          "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  store::Catalog cat(store::open_backend(url), std::string("s3cret"));
  auto a = file_with(dir.path() / "a", "archive bytes");
  cat.publish(partial("k", "main", a), a); // trusted, the oldest
  std::this_thread::sleep_for(2ms);
  // A fork's pull request from a branch it named 'main', and one that gave no origin.
  auto fork = partial("k", "main", a, false);
  fork.origin = "pr/42";
  auto forked = cat.publish(fork, a);
  std::this_thread::sleep_for(2ms);
  cat.publish(partial("k", "main", a, false), a);

  auto job = [&](bool trusted, const std::string& origin) {
    auto r = request("k", "main");
    r.trusted = trusted;
    r.origin = origin;
    std::vector<std::string> out;
    for (const auto& c : cat.lookup(r).candidates) {
      out.push_back(c.manifest.trusted ? "trusted" : "untrusted " + c.manifest.origin);
    }
    return out;
  };
  using list = std::vector<std::string>;
  CHECK(job(true, "") == list{"trusted"});
  CHECK(job(true, "pr/42") == list{"trusted"}); // a trusted job never, origin or not
  CHECK(job(false, "pr/42") == list{"untrusted pr/42", "trusted"});
  CHECK(job(false, "pr/43") == list{"trusted"});
  CHECK(job(false, "") == list{"trusted"});

  // The origin is signed: rewritten or dropped, the manifest no longer verifies.
  auto j = forked.to_json();
  CHECK(j["origin"] == "pr/42");
  j["origin"] = "pr/43";
  std::ofstream(fs::path(url) / forked.object) << j.dump();
  CHECK(job(false, "pr/43") == list{"trusted"});
  j.erase("origin");
  std::ofstream(fs::path(url) / forked.object) << j.dump();
  CHECK(job(false, "") == list{"trusted"});
  // A manifest without an origin reads back as one with none, and one with it keeps it.
  auto m = minimal_manifest();
  CHECK_FALSE(m.to_json().contains("origin"));
  m.origin = "fork/widget";
  CHECK(store::Manifest::from_json(m.to_json(), k_minimal_object).origin == "fork/widget");
}

TEST_CASE("lookup says what it passed over: badly signed saves, and with a survey other epochs",
          "[store]") {
  util::TempDir dir;
  auto url = (dir.path() / "store").string();
  auto a = file_with(dir.path() / "a", "archive bytes");
  store::Catalog signer(store::open_backend(url), std::string("s3cret"));
  store::Catalog forger(store::open_backend(url), std::nullopt);
  forger.publish(partial("k", "feature", a), a);
  signer.publish(partial("k", "feature", a, true, 2), a);

  auto r = request("k", "feature");
  auto found = signer.lookup(r);
  CHECK(found.candidates.empty());
  CHECK(found.scope == "v1/acme~2Fwidget/helios/cargo/e1/");
  REQUIRE(found.passed_over.size() == 1);
  CHECK(found.passed_over[0].reason == store::PassedOver::refused);
  CHECK(found.passed_over[0].why == "unsigned, and signing is on");

  r.survey = true;
  found = signer.lookup(r);
  REQUIRE(found.passed_over.size() == 2);
  CHECK(found.passed_over[0].reason == store::PassedOver::refused);
  CHECK(found.passed_over[1].reason == store::PassedOver::newer_epoch);
  CHECK(found.passed_over[1].scope.epoch == 2);
  CHECK_FALSE(found.passed_over[1].manifest);
}

TEST_CASE("S3 limits from the environment are whole numbers in range, or an error naming them",
          "[store]") {
  {
    EnvVar d("EPHEMERA_S3_DEADLINE", "7"), p("EPHEMERA_S3_PARALLEL", "8");
    auto c = store::parse_s3_url("b");
    CHECK(c.deadline == 7);
    CHECK(c.parallel == 8);
  }
  {
    EnvVar d("EPHEMERA_S3_DEADLINE", "");
    CHECK(store::parse_s3_url("b").deadline == 1800); // empty: the default
  }
  // Each was once read with atol: "10s" was 10, "abc" and "0" a deadline of one second.
  for (const char* bad : {"abc", "10s", "-1", "0", " 5", "+5", "1.5", "99999999999999999999"}) {
    CAPTURE(bad);
    EnvVar d("EPHEMERA_S3_DEADLINE", bad);
    CHECK_THROWS_AS(store::parse_s3_url("b"), util::InputError);
    CHECK_THROWS_WITH(store::parse_s3_url("b"),
                      Catch::Contains(std::string("EPHEMERA_S3_DEADLINE='") + bad + "'") &&
                          Catch::Contains("whole number of seconds from 1 to"));
  }
  for (const char* name : {"EPHEMERA_S3_STALL_SECONDS", "EPHEMERA_S3_TIMEOUT_SECONDS",
                           "EPHEMERA_S3_CONNECT_SECONDS", "EPHEMERA_S3_PARALLEL"}) {
    CAPTURE(name);
    EnvVar v(name, "garbage");
    CHECK_THROWS_WITH(store::parse_s3_url("b"), Catch::StartsWith(name));
  }
  {
    EnvVar p("EPHEMERA_S3_PARALLEL", "65");
    CHECK_THROWS_WITH(store::parse_s3_url("b"), Catch::Contains("from 1 to 64"));
  }
  EnvVar escaped("EPHEMERA_S3_DEADLINE", "5\n\x1b[2J");
  CHECK_THROWS_WITH(store::parse_s3_url("b"), !Catch::Contains("\n") && !Catch::Contains("\x1b"));
}

TEST_CASE("what a marker's signature covers stays the bytes it always was",
          "[store]") {
  // Markers already in stores were signed over exactly these bytes: any other
  // spelling would make every one of them a forgery.
  store::Invalidation inv{"acme/widget", "t", "n", "poisoned", "2026-11-24T16:40:00.123456Z",
                          "v1/_invalidations/acme~2Fwidget/x.json", 0};
  CHECK(store::marker_payload(inv) ==
        R"({"created":"2026-11-24T16:40:00.123456Z","format":"ephemera-invalidation/1",)"
        R"("name":"n","reason":"poisoned","repository":"acme/widget","target":"t"})");
  auto signed_json = inv.to_json("sig");
  CHECK(signed_json.at("signature") == "sig");
  signed_json.erase("signature");
  CHECK(signed_json.dump() == store::marker_payload(inv));
}
