#include "policy/policy.hpp"

#include <catch2/catch.hpp>

using namespace ephemera;
using policy::Context;
using policy::Event;
using policy::Outcome;

namespace {

Context ctx(Event event, std::string branch, bool trusted = true) {
  Context c;
  c.repository = "oxidecomputer/omicron";
  c.branch = std::move(branch);
  c.event = event;
  c.trusted = trusted;
  return c;
}

} // namespace

TEST_CASE("the policy table of README's Policy section, row by row", "[policy]") {
  struct Row {
    const char* what;
    Event event;
    const char* branch;
    bool restore_on_protected;
    Outcome outcome;
    bool restore;
    bool save;
    const char* reason_part;
  };
  const Row rows[] = {
      {"PR success", Event::pull_request, "feature", false, Outcome::success, true, true, "succeeded"},
      {"PR failure", Event::pull_request, "feature", false, Outcome::failure, true, false, "failed"},
      {"PR cancelled", Event::pull_request, "feature", false, Outcome::cancelled, true, false,
       "cancelled"},
      {"push unprotected success", Event::push, "topic/x", false, Outcome::success, true, true,
       "succeeded"},
      {"push unprotected failure", Event::push, "topic/x", false, Outcome::failure, true, false,
       "failed"},
      {"push main", Event::push, "main", false, Outcome::success, false, false, "protected"},
      {"push master", Event::push, "master", false, Outcome::success, false, false, "protected"},
      {"push main, restore_on_protected", Event::push, "main", true, Outcome::success, true, false,
       "protected"},
      {"PR from a branch named main", Event::pull_request, "main", false, Outcome::success, true,
       true, "succeeded"},
      {"no branch", Event::push, "", false, Outcome::success, true, false, "context unknown"},
      {"no event", Event::unknown, "feature", false, Outcome::success, true, false,
       "context unknown"},
      {"nothing known", Event::unknown, "", false, Outcome::success, true, false,
       "context unknown"},
  };
  jobfile::JobSpec job;
  for (const auto& row : rows) {
    INFO(row.what);
    jobfile::PersistSpec stanza;
    stanza.restore_on_protected = row.restore_on_protected;
    auto c = ctx(row.event, row.branch);
    auto r = policy::restore_decision(job, stanza, c);
    auto s = policy::save_decision(job, stanza, c, row.outcome);
    CHECK(r.act == row.restore);
    CHECK(s.act == row.save);
    CHECK_FALSE(r.reason.empty());
    CHECK_THAT(s.reason, Catch::Contains(row.reason_part));
  }
}

TEST_CASE("extra protected branches, stanza switches and disabled jobs", "[policy]") {
  jobfile::JobSpec job;
  jobfile::PersistSpec stanza;
  auto c = ctx(Event::push, "release/1.0");
  CHECK(policy::save_decision(job, stanza, c, Outcome::success).act);
  c.protected_branches.push_back("release/1.0");
  CHECK_FALSE(policy::save_decision(job, stanza, c, Outcome::success).act);
  CHECK_FALSE(policy::restore_decision(job, stanza, c).act);

  auto pr = ctx(Event::pull_request, "feature");
  stanza.save = false;
  CHECK_THAT(policy::save_decision(job, stanza, pr, Outcome::success).reason,
             Catch::Contains("save = false"));
  stanza.restore = false;
  CHECK_FALSE(policy::restore_decision(job, stanza, pr).act);
  // restore = false keeps the stanza out of pre only: the job may still ask for it...
  CHECK(policy::restore_decision(job, stanza, pr, policy::RestoreBy::job).act);
  // ...but the rest of the policy holds for it too.
  CHECK_FALSE(policy::restore_decision(job, stanza, c, policy::RestoreBy::job).act);

  jobfile::PersistSpec plain;
  job.enable = false;
  CHECK_FALSE(policy::restore_decision(job, plain, pr).act);
  CHECK_FALSE(policy::restore_decision(job, plain, pr, policy::RestoreBy::job).act);
  CHECK_FALSE(policy::save_decision(job, plain, pr, Outcome::success).act);
}

TEST_CASE("an untrusted job saves only with an origin, and the reason says so", "[policy]") {
  jobfile::JobSpec job;
  jobfile::PersistSpec stanza;
  auto fork = ctx(Event::pull_request, "fork", false);
  auto d = policy::save_decision(job, stanza, fork, Outcome::success);
  CHECK_FALSE(d.act);
  CHECK_THAT(d.reason, Catch::Contains("no origin") && Catch::Contains("--origin"));
  fork.origin = "pr/42";
  d = policy::save_decision(job, stanza, fork, Outcome::success);
  CHECK(d.act);
  CHECK_THAT(d.reason, Catch::Contains("untrusted") && Catch::Contains("origin 'pr/42'"));
  CHECK(policy::save_decision(job, stanza, ctx(Event::pull_request, "feature"), Outcome::success).act);
}

TEST_CASE("protected branches match as refs and as names", "[policy]") {
  CHECK(policy::normalise_branch("refs/heads/main") == "main");
  CHECK(policy::normalise_branch("main") == "main");
  CHECK(policy::normalise_branch("refs/tags/v1") == "refs/tags/v1");
  CHECK(policy::is_protected(ctx(Event::push, "refs/heads/main")));
  CHECK(policy::is_protected(ctx(Event::push, "refs/heads/master")));
  auto extra = ctx(Event::push, "release");
  extra.protected_branches.push_back("refs/heads/release");
  CHECK(policy::is_protected(extra));
  CHECK_FALSE(policy::is_protected(ctx(Event::push, "refs/heads/feature")));
  jobfile::JobSpec job;
  jobfile::PersistSpec stanza;
  CHECK_FALSE(policy::save_decision(job, stanza, ctx(Event::push, "refs/heads/main"), Outcome::success).act);
}

TEST_CASE("trust switches take documented values only", "[policy]") {
  for (const char* yes : {"1", "true", "yes", "TRUE", "Yes"}) {
    INFO(yes);
    CHECK(policy::parse_switch(yes) == std::optional<bool>(true));
  }
  for (const char* no : {"", "0", "false", "no", "False"}) {
    INFO(no);
    CHECK(policy::parse_switch(no) == std::optional<bool>(false));
  }
  for (const char* bad : {"-1", "2", "on", "y", " 1", "untrusted"}) {
    INFO(bad);
    CHECK_FALSE(policy::parse_switch(bad));
  }
}

TEST_CASE("exit statuses map to outcomes", "[policy]") {
  CHECK(policy::outcome_from_status(0) == Outcome::success);
  CHECK(policy::outcome_from_status(1) == Outcome::failure);
  CHECK(policy::outcome_from_status(101) == Outcome::failure);
  CHECK(policy::outcome_from_status(130) == Outcome::cancelled);
  CHECK(policy::outcome_from_status(143) == Outcome::cancelled);
  CHECK(policy::outcome_from_status(137) == Outcome::cancelled);
  CHECK(policy::outcome_from_status(-1) == Outcome::cancelled);
}

TEST_CASE("events parse from the agent's spellings", "[policy]") {
  CHECK(policy::parse_event("push") == Event::push);
  CHECK(policy::parse_event("pull_request") == Event::pull_request);
  CHECK(policy::parse_event("pull-request") == Event::pull_request);
  CHECK_FALSE(policy::parse_event("merge_group").has_value());
  CHECK_FALSE(policy::parse_event("").has_value());
}

TEST_CASE("keys from cache_key and key_files", "[policy]") {
  CHECK(policy::compute_key("cargo", {}) == "cargo");
  CHECK(policy::compute_key("", {}) == "");

  auto k1 = policy::compute_key("cargo", {{"Cargo.lock", "a = 1\n"}});
  CHECK(k1.rfind("cargo-", 0) == 0);
  CHECK(k1.size() == std::string("cargo-").size() + 16);
  // Same inputs, same key; any change of bytes, path or presence changes it.
  CHECK(policy::compute_key("cargo", {{"Cargo.lock", "a = 1\n"}}) == k1);
  CHECK(policy::compute_key("cargo", {{"Cargo.lock", "a = 2\n"}}) != k1);
  CHECK(policy::compute_key("cargo", {{"sub/Cargo.lock", "a = 1\n"}}) != k1);
  auto missing = policy::compute_key("cargo", {{"Cargo.lock", std::nullopt}});
  CHECK(missing != k1);
  CHECK(policy::compute_key("cargo", {{"Cargo.lock", ""}}) != missing);
  // Field boundaries are unambiguous.
  CHECK(policy::compute_key("k", {{"ab", "c"}}) != policy::compute_key("k", {{"a", "bc"}}));
  // Without a cache_key the digest alone is the key.
  CHECK(policy::compute_key("", {{"Cargo.lock", "x"}}).size() == 16);
}

TEST_CASE("a key an operator names is one compute_key can make", "[policy]") {
  std::string longest(128, 'k');
  auto with_digest = policy::compute_key(longest, {{"Cargo.lock", "x"}});
  for (const auto& key : {std::string("cargo"), std::string(""), longest, with_digest,
                          policy::compute_key("", {{"Cargo.lock", "x"}})}) {
    CHECK(policy::possible_key(key));
  }
  for (const char* key : {"a/b", "a b", "a\nb", "k~2F", "..%"}) {
    CHECK_FALSE(policy::possible_key(key));
  }
  CHECK_FALSE(policy::possible_key(longest + "k"));
  // Past 128 bytes only a digest of lower-case hex may follow.
  CHECK_FALSE(policy::possible_key(longest + "-0123456789ABCDEF"));
  CHECK_FALSE(policy::possible_key(longest + "-0123456789abcde"));
}

TEST_CASE("restore order is the exact key, then each prefix", "[policy]") {
  auto steps = policy::lookup_steps("cargo-0123456789abcdef", {"cargo-", "cargo"});
  REQUIRE(steps.size() == 3);
  CHECK(steps[0].value == "cargo-0123456789abcdef");
  CHECK_FALSE(steps[0].prefix);
  CHECK(steps[1].value == "cargo-");
  CHECK(steps[1].prefix);
  CHECK(steps[2].value == "cargo");
}
