// The lookup's choice as a pure function: what is tried in which order, and why every other
// save of the scope (and, with a survey, of the stanza elsewhere) was passed over.
#include "policy/policy.hpp"
#include "store/selection.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <map>

using namespace ephemera;

namespace {

const store::Scope k_scope{"acme/widget", "helios", "cargo", 2};

struct Save {
  Save(std::string k, std::string b, int64_t at, bool t = true, std::string o = "")
      : key(std::move(k)), branch(std::move(b)), stored(at), trusted(t), origin(std::move(o)) {}
  std::string key;
  std::string branch;
  int64_t stored;
  bool trusted;
  std::string origin;
};

store::Manifest manifest(const Save& s, int serial) {
  store::Manifest m;
  m.repository = k_scope.repository;
  m.target = k_scope.target;
  m.name = k_scope.name;
  m.epoch = k_scope.epoch;
  m.key = s.key;
  m.branch = s.branch;
  m.trusted = s.trusted;
  m.origin = s.origin;
  m.stored = s.stored;
  m.created = fmt::format("2026-11-24T16:40:{:02}.000000Z", serial);
  m.object = store::manifest_key(k_scope, s.key, fmt::format("S{:02}", serial));
  m.archive = store::own_archive(m.object);
  return m;
}

std::vector<store::Manifest> saves(const std::vector<Save>& list) {
  std::vector<store::Manifest> out;
  for (size_t i = 0; i < list.size(); ++i) {
    out.push_back(manifest(list[i], static_cast<int>(i)));
  }
  return out;
}

store::LookupRequest request(const std::string& key, std::vector<std::string> prefixes = {},
                             const std::string& branch = "feature") {
  store::LookupRequest r;
  r.repository = k_scope.repository;
  r.target = k_scope.target;
  r.name = k_scope.name;
  r.epoch = k_scope.epoch;
  r.steps = policy::lookup_steps(key, prefixes);
  r.branch = branch;
  return r;
}

// "<step> <key> <branch>" for each candidate, in order.
std::vector<std::string> tried(const store::LookupResult& found) {
  std::vector<std::string> out;
  for (const auto& c : found.candidates) {
    out.push_back(fmt::format("{} {} {}", c.step.prefix ? "prefix:" + c.step.value : "exact",
                              c.manifest.key, c.manifest.branch));
  }
  return out;
}

// Key -> why it was passed over.
std::map<std::string, store::PassedOver> passed(const store::LookupResult& found) {
  std::map<std::string, store::PassedOver> out;
  for (const auto& p : found.passed_over) {
    out.emplace(p.key +
                    (p.manifest ? "" : "@" + p.scope.target + "/e" + std::to_string(p.scope.epoch)),
                p.reason);
  }
  return out;
}

using Tried = std::vector<std::string>;
using Passed = std::map<std::string, store::PassedOver>;

} // namespace

TEST_CASE("lookup: steps in the policy's order, own branch first, newest first, each once",
          "[store]") {
  auto all = saves({{"cargo-1", "main", 100},
                    {"cargo-1", "feature", 90},
                    {"cargo-1", "other", 110},
                    {"cargo-0", "feature", 50},
                    {"cargo-x", "main", 120},
                    {"npm", "feature", 200}});
  auto r = request("cargo-1", {"cargo-", "cargo-0"});
  r.max_candidates = 10;
  auto found = store::choose(r, all, {});
  CHECK(tried(found) == Tried{"exact cargo-1 feature", "exact cargo-1 other", "exact cargo-1 main",
                              "prefix:cargo- cargo-0 feature", "prefix:cargo- cargo-x main"});
  CHECK(found.candidates.front().own_branch);
  CHECK_FALSE(found.candidates[1].own_branch);
  CHECK(passed(found) == Passed{{"npm", store::PassedOver::other_key}});

  r.max_candidates = 3; // what a restore tries, and no more
  found = store::choose(r, all, {});
  CHECK(found.candidates.size() == 3);
  CHECK(passed(found) == Passed{{"cargo-0", store::PassedOver::over_limit},
                                {"cargo-x", store::PassedOver::over_limit},
                                {"npm", store::PassedOver::other_key}});
}

TEST_CASE("lookup: a miss says why each save of the scope was passed over", "[store]") {
  store::Invalidation marker{
      k_scope.repository,           "", "cargo", "poisoned", "2026-11-24T16:40:30.000000Z",
      "v1/_invalidations/x/S.json", 150};
  auto all = saves({{"k", "main", 100},                // before the marker
                    {"k", "main", 160, false, "pr/7"}, // untrusted, of another origin
                    {"k", "fork", 170, false, ""},     // untrusted, of no origin
                    {"other", "feature", 180}});       // another key
  auto trusted = store::choose(request("k"), all, {marker});
  CHECK(trusted.candidates.empty());
  std::map<std::string, store::PassedOver> by_object;
  for (const auto& p : trusted.passed_over) {
    REQUIRE(p.manifest);
    by_object.emplace(p.manifest->branch + "/" + p.key, p.reason);
    CHECK_FALSE(p.why.empty());
  }
  CHECK(by_object == Passed{{"main/k", store::PassedOver::invalidated},
                            {"fork/k", store::PassedOver::untrusted},
                            {"feature/other", store::PassedOver::other_key}});
  REQUIRE(trusted.passed_over.size() == 4); // main/k twice: invalidated, and untrusted
  CHECK(trusted.passed_over.front().why == "invalidated at 2026-11-24T16:40:30.000000Z: poisoned");

  auto r = request("k");
  r.trusted = false;
  r.origin = "pr/8";
  auto fork = store::choose(r, all, {marker});
  CHECK(fork.candidates.empty());
  size_t other_origin = 0;
  for (const auto& p : fork.passed_over) {
    other_origin += p.reason == store::PassedOver::other_origin ? 1 : 0;
  }
  CHECK(other_origin == 2);
  r.origin = "pr/7";
  CHECK(tried(store::choose(r, all, {marker})) == Tried{"exact k main"});

  // share = "branch": only the job's own branch.
  auto own = request("other", {}, "main");
  own.own_branch_only = true;
  auto found = store::choose(own, all, {});
  CHECK(found.candidates.empty());
  CHECK(passed(found).at("other") == store::PassedOver::other_branch);
}

TEST_CASE("lookup survey: the stanza's saves under other targets and epochs, by name", "[store]") {
  auto at = [](const std::string& target, int64_t epoch, const std::string& key) {
    store::Scope s{k_scope.repository, target, k_scope.name, epoch};
    return store::ObjectInfo{store::manifest_key(s, key, "S"), 10, 100};
  };
  std::vector<store::ObjectInfo> listing = {
      at("helios", 2, "searched"), // the scope searched: not the survey's
      at("helios", 1, "old"),
      at("helios", 3, "new"),
      at("", 2, "untargeted"),
      {store::own_archive(at("", 2, "x").key), 10, 100},    // an archive: no save by itself
      {"v1/acme~2Fwidget/helios/npm/e2/k/S.json", 10, 100}, // another stanza
      {"v1/other/helios/cargo/e2/k/S.json", 10, 100},       // another repository
  };
  auto found = store::survey(request("searched"), listing);
  CHECK(passed({"", {}, found, {}}) == Passed{{"old@helios/e1", store::PassedOver::older_epoch},
                                          {"new@helios/e3", store::PassedOver::newer_epoch},
                                          {"untargeted@/e2", store::PassedOver::other_target}});
  for (const auto& p : found) {
    CHECK_FALSE(p.manifest); // known by name only: nothing of it was read
    CHECK_FALSE(p.why.empty());
  }
}

TEST_CASE("a save made with other rules is passed over, not tried", "[store]") {
  auto all = saves({{"k", "feature", 10}, {"k", "feature", 20}, {"k", "feature", 30}});
  const std::string a(64, 'a'), b(64, 'b');
  all[0].rules_digest = a;
  all[1].rules_digest = b;
  all[2].rules = {"target", "cache"}; // made before saves recorded a digest
  auto r = request("k");
  r.rules_digest = a;
  r.rules = {"cache", "target"};
  auto out = store::choose(r, all, {});
  REQUIRE(out.candidates.size() == 2);
  CHECK(out.candidates[0].manifest.object == all[2].object); // the same rule texts, newest
  CHECK(out.candidates[1].manifest.object == all[0].object);
  REQUIRE(out.passed_over.size() == 1);
  CHECK(out.passed_over[0].reason == store::PassedOver::other_rules);
  CHECK(out.passed_over[0].why.find("saved with other rules") == 0);
  r.rules = {"target"}; // the old save's texts are no longer the stanza's
  CHECK(store::choose(r, all, {}).candidates.size() == 1);
  r.rules_digest.clear(); // not compared
  CHECK(store::choose(r, all, {}).candidates.size() == 3);
}

TEST_CASE("a marker narrowed to a key or a branch hides only those saves", "[store]") {
  auto all = saves({{"k", "feature", 10}, {"j", "feature", 20}, {"k", "other", 30}});
  store::Invalidation by_key{"acme/widget", "", "", "", "2026-11-24T16:41:00.000000Z", "", 100};
  by_key.key = "k";
  CHECK(by_key.covers(all[0]));
  CHECK_FALSE(by_key.covers(all[1]));
  CHECK(by_key.covers(all[2]));
  auto by_branch = by_key;
  by_branch.key.clear();
  by_branch.branch = "other";
  CHECK_FALSE(by_branch.covers(all[0]));
  CHECK(by_branch.covers(all[2]));
  // Signed with its narrowing: a marker whose key was rewritten is not the one signed.
  auto rewritten = by_key;
  rewritten.key = "j";
  CHECK(store::marker_payload(rewritten) != store::marker_payload(by_key));
  // A marker without them signs as it always did.
  CHECK(store::marker_payload(by_branch).find("\"key\"") == std::string::npos);
  auto out = store::choose(request("k"), all, {by_key});
  CHECK(out.candidates.empty());
  // The miss says what the marker narrowed to.
  auto invalidated = std::find_if(out.passed_over.begin(), out.passed_over.end(), [](auto& p) {
    return p.reason == store::PassedOver::invalidated;
  });
  REQUIRE(invalidated != out.passed_over.end());
  CHECK(invalidated->why == "invalidated at 2026-11-24T16:41:00.000000Z for key 'k'");
}
