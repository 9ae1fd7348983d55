// What a token may touch: scope of keys and listings, writes by context, reads by trust and
// origin, a manifest that must be the job's own; and the rate limit.
#include "broker/rate.hpp"
#include "broker/scope.hpp"
#include "store/keys.hpp"

#include <catch2/catch.hpp>

using namespace ephemera;
using broker::Claims;
using broker::Op;

namespace {

const std::vector<std::string> k_protected{"main", "master", "release"};
constexpr double k_now = 1795000000;

Claims job(bool trusted = true, std::string origin = "") {
  Claims c;
  c.repository = "acme/widget";
  c.target = "linux";
  c.branch = "feature";
  c.event = "pull_request";
  c.trusted = trusted;
  c.origin = std::move(origin);
  c.job_id = "job-1";
  return c;
}

const std::string k_dir = "v1/acme~2Fwidget/linux/deps/e1/deps/";
const std::string k_manifest = k_dir + "20261201T000000.000000Z-0000abcd.json";
const std::string k_archive = k_dir + "20261201T000000.000000Z-0000abcd.tar.zst";

bool allowed(const Claims& c, Op op, const std::string& key) {
  return broker::authorize(c, op, key, k_protected).allowed;
}

store::Manifest save_of(const Claims& c) {
  store::Manifest m;
  m.repository = c.repository;
  m.target = c.target;
  m.name = "deps";
  m.epoch = 1;
  m.key = "deps";
  m.branch = c.branch;
  m.event = c.event;
  m.trusted = c.trusted;
  m.origin = c.origin;
  m.job_id = c.job_id;
  m.created = "2026-11-18T11:06:40.000000Z"; // k_now
  return m;
}

} // namespace

TEST_CASE("keys parse into their kind and scope", "[broker]") {
  auto m = broker::parse_key(k_manifest);
  CHECK(m.kind == broker::KeyKind::manifest);
  CHECK(m.repository == "acme/widget");
  CHECK(m.target == "linux");
  auto a = broker::parse_key(k_archive);
  CHECK(a.kind == broker::KeyKind::archive);
  CHECK(a.manifest == k_manifest);
  CHECK(broker::parse_key("v1/_invalidations/acme~2Fwidget/x.json").kind ==
        broker::KeyKind::marker);
  for (std::string other : std::vector<std::string>{
           "v1/_clock/0123456789abcdef", "v1/acme~2Fwidget/linux/deps/e1/deps",
           "v1/acme~2Fwidget/linux/deps/ex/deps/s.json", "v1/_x/linux/deps/e1/deps/s.json",
           "v2/a/b/c/e1/d/s.json", "v1/acme~2Fwidget/linux/deps/e1/deps/.json", "cas/pack/abc",
           // Folders sanitise() never makes: one scope has one spelling.
           "v1/acme%2Fwidget/linux/deps/e1/deps/s.json",
           "v1/acme~2fwidget/linux/deps/e1/deps/s.json",
           "v1/acme~2Fwidget/linux/deps/e01/deps/s.json", "v1/_events/acme~2Fwidget/linux/x.event",
           k_dir + "s.used/2026120", k_dir + "s.used/20261201-x", k_dir + "a/s.used/20261201"}) {
    INFO(other);
    CHECK(broker::parse_key(other).kind == broker::KeyKind::other);
  }
}

TEST_CASE("a job's token reaches its own repository and target only", "[broker]") {
  auto c = job();
  CHECK(allowed(c, Op::read, k_manifest));
  CHECK(allowed(c, Op::read, k_archive));
  CHECK(allowed(c, Op::write, k_archive));
  CHECK(allowed(c, Op::list, "v1/acme~2Fwidget/linux/deps/e1/"));
  CHECK(allowed(c, Op::list, "v1/_invalidations/acme~2Fwidget/"));
  CHECK(allowed(c, Op::read, "v1/_invalidations/acme~2Fwidget/x.json"));
  // Another repository, another target, the whole store, the store's own objects.
  CHECK_FALSE(allowed(c, Op::read, "v1/acme~2Fother/linux/deps/e1/deps/s.json"));
  CHECK_FALSE(allowed(c, Op::write, "v1/acme~2Fother/linux/deps/e1/deps/s.tar.zst"));
  CHECK_FALSE(allowed(c, Op::read, "v1/acme~2Fwidget/illumos/deps/e1/deps/s.json"));
  CHECK_FALSE(allowed(c, Op::list, "v1/"));
  CHECK_FALSE(allowed(c, Op::list, "v1/acme~2Fwidget/"));
  CHECK_FALSE(allowed(c, Op::list, "v1/acme~2Fwidget/lin"));
  CHECK_FALSE(allowed(c, Op::list, "v1/_invalidations/"));
  CHECK_FALSE(allowed(c, Op::read, "v1/_invalidations/acme~2Fother/x.json"));
  CHECK_FALSE(allowed(c, Op::write, "v1/_invalidations/acme~2Fwidget/x.json"));
  CHECK_FALSE(allowed(c, Op::write, "v1/_clock/0123456789abcdef"));
  CHECK_FALSE(allowed(c, Op::read, "anything/else"));
  CHECK_FALSE(allowed(c, Op::remove, k_archive));
  // A repository whose sanitised name is a prefix of another's reaches only its own.
  auto prefix = job();
  prefix.repository = "acme/wid";
  CHECK_FALSE(allowed(prefix, Op::read, k_manifest));
}

TEST_CASE("an operator's token reaches everything", "[broker]") {
  Claims op;
  op.role = broker::Role::operator_;
  CHECK(allowed(op, Op::list, ""));
  CHECK(allowed(op, Op::remove, k_archive));
  CHECK(allowed(op, Op::write, "v1/_invalidations/acme~2Fwidget/x.json"));
  CHECK(allowed(op, Op::write, "v1/_clock/0123456789abcdef"));
}

TEST_CASE("writes only where the job may save", "[broker]") {
  auto push_main = job();
  push_main.branch = "main";
  push_main.event = "push";
  CHECK_FALSE(allowed(push_main, Op::write, k_archive));
  CHECK(allowed(push_main, Op::read, k_archive));
  auto refs = push_main;
  refs.branch = "refs/heads/release";
  CHECK_FALSE(allowed(refs, Op::write, k_archive));
  auto pr_main = push_main;
  pr_main.event = "pull_request";
  CHECK(allowed(pr_main, Op::write, k_archive));
  auto unknown = job();
  unknown.event = "";
  CHECK_FALSE(allowed(unknown, Op::write, k_archive));
  unknown = job();
  unknown.branch = "";
  CHECK_FALSE(allowed(unknown, Op::write, k_archive));
  CHECK_FALSE(allowed(job(false, ""), Op::write, k_archive));
  CHECK(allowed(job(false, "pr-7"), Op::write, k_archive));
}

TEST_CASE("untrusted saves reach untrusted jobs of their origin only", "[broker]") {
  auto trusted_save = save_of(job());
  auto fork_save = save_of(job(false, "pr-7"));
  CHECK(broker::may_read(job(), trusted_save).allowed);
  CHECK(broker::may_read(job(false, "pr-7"), trusted_save).allowed);
  CHECK(broker::may_read(job(false, "pr-7"), fork_save).allowed);
  auto v = broker::may_read(job(), fork_save);
  CHECK_FALSE(v.allowed);
  CHECK(v.hide);
  CHECK_FALSE(broker::may_read(job(false, "pr-8"), fork_save).allowed);
  auto no_origin = save_of(job(false, ""));
  CHECK_FALSE(broker::may_read(job(false, ""), no_origin).allowed);
}

TEST_CASE("a manifest written must be the job's own save", "[broker]") {
  auto c = job(false, "pr-7");
  CHECK(broker::why_not_own(c, save_of(c), k_now) == "");
  auto lie = [&](auto change) {
    auto m = save_of(c);
    change(m);
    return broker::why_not_own(c, m, k_now);
  };
  CHECK(lie([](store::Manifest& m) { m.trusted = true; }).find("trusted") != std::string::npos);
  CHECK(lie([](store::Manifest& m) { m.origin = "pr-8"; }).find("origin") != std::string::npos);
  CHECK(lie([](store::Manifest& m) { m.repository = "acme/other"; }) != "");
  CHECK(lie([](store::Manifest& m) { m.target = "illumos"; }) != "");
  CHECK(lie([](store::Manifest& m) { m.branch = "main"; }).find("branch") != std::string::npos);
  CHECK(lie([](store::Manifest& m) { m.event = "push"; }) != "");
  CHECK(lie([](store::Manifest& m) { m.job_id = "job-2"; }).find("job id") != std::string::npos);
  CHECK(lie([](store::Manifest& m) { m.created = "2030-01-01T00:00:00.000000Z"; }) != "");
  Claims op;
  op.role = broker::Role::operator_;
  CHECK(broker::why_not_own(op, save_of(c), k_now) != "");
}

TEST_CASE("the rate limit allows bursts, then the rate, per token", "[broker]") {
  broker::RateLimiter limiter(10, 20);
  int allowed_now = 0;
  for (int i = 0; i < 30; ++i) {
    allowed_now += limiter.take("a", 100.0) == 0 ? 1 : 0;
  }
  CHECK(allowed_now == 20);
  CHECK(limiter.take("a", 100.0) > 0);
  CHECK(limiter.take("b", 100.0) == 0);  // another token has its own bucket
  CHECK(limiter.take("a", 100.15) == 0); // 0.15 s at 10/s: one more
  CHECK(limiter.take("a", 100.15) > 0);
  broker::RateLimiter off(0, 0);
  CHECK(off.take("a", 1) == 0);
}

TEST_CASE("content-addressed objects: trust lies in the path", "[broker]") {
  const std::string hash(64, 'a');
  const std::string base = "cas1/acme~2Fwidget/linux/deps/";
  const std::string trusted_pack = base + "trusted/packs/" + hash + ".pack";
  const std::string pr7_index = base + "untrusted/pr-7/index/" + hash + ".idx";
  const std::string pr8_pack = base + "untrusted/pr-8/packs/" + hash + ".pack";
  auto p = broker::parse_key(pr7_index);
  CHECK(p.kind == broker::KeyKind::cas);
  CHECK_FALSE(p.trusted);
  CHECK(p.origin == "pr-7");
  CHECK(p.sha256 == hash);
  for (std::string bad :
       {base + "trusted/packs/" + hash + ".idx", base + "trusted/packs/abc.pack",
        base + "trusted/other/" + hash + ".pack", base + "untrusted/packs/" + hash + ".pack",
        base + "trusted/packs/" + std::string(64, 'A') + ".pack"}) {
    INFO(bad);
    CHECK(broker::parse_key(bad).kind == broker::KeyKind::other);
  }
  auto trusted = job(), fork = job(false, "pr-7");
  CHECK(allowed(trusted, Op::write, trusted_pack));
  CHECK(allowed(trusted, Op::read, trusted_pack));
  CHECK_FALSE(allowed(trusted, Op::write, pr7_index));
  auto hidden = broker::authorize(trusted, Op::read, pr7_index, k_protected);
  CHECK_FALSE(hidden.allowed);
  CHECK(hidden.hide);
  CHECK(allowed(fork, Op::read, trusted_pack));
  CHECK_FALSE(allowed(fork, Op::write, trusted_pack));
  CHECK(allowed(fork, Op::write, pr7_index));
  CHECK(allowed(fork, Op::read, pr7_index));
  CHECK_FALSE(allowed(fork, Op::read, pr8_pack));
  CHECK_FALSE(allowed(fork, Op::write, pr8_pack));
  CHECK(allowed(fork, Op::list, base + "untrusted/pr-7/index/"));
  CHECK_FALSE(
      allowed(fork, Op::write, "cas1/acme~2Fother/linux/deps/trusted/packs/" + hash + ".pack"));
  auto push_main = job();
  push_main.branch = "main";
  push_main.event = "push";
  CHECK_FALSE(allowed(push_main, Op::write, trusted_pack));
}

TEST_CASE("content-addressed keys: the broker reads them as the store's gc does", "[broker]") {
  // One parser (store::parse_cas_key): whatever gc would not touch as a pack or index, the
  // broker does not hand a job as one either, and the reverse.
  const std::string hash(64, 'b');
  const std::string id = store::cas_scope_id("acme/widget", "linux", "deps", false, "pr 7");
  for (const std::string& key : std::vector<std::string>{
           store::cas_index_key(id, hash), store::cas_prefix(id) + "packs/" + hash + ".pack",
           "cas1/acme~2Fwidget/linux/deps/trusted/index/" + hash + ".idx",
           "cas1/acme~2Fwidget/linux/deps/trusted/packs/" + hash + ".idx",
           "cas1/acme~2fwidget/linux/deps/trusted/packs/" + hash + ".pack",
           "cas1/acme~2Fwidget/linux/deps/trusted/extra/packs/" + hash + ".pack",
           "cas1/acme~2Fwidget/linux/deps/untrusted/index/" + hash + ".idx",
           "cas1/acme~2Fwidget/linux/deps/untrusted/~/index/" + hash + ".idx",
           "cas1/acme~2Fwidget/linux/deps/trusted/index/" + hash + "0.idx",
           "cas1/acme~2Fwidget/linux/deps/trusted/index/" + hash.substr(1) + "g.idx",
           "cas1//linux/deps/trusted/index/" + hash + ".idx", std::string("cas1/"),
           std::string("cas1")}) {
    INFO(key);
    auto store_key = store::parse_cas_key(key);
    auto p = broker::parse_key(key);
    REQUIRE((p.kind == broker::KeyKind::cas) == store_key.has_value());
    if (store_key) {
      CHECK(p.repository == store_key->repository);
      CHECK(p.target == store_key->target);
      CHECK(p.trusted == store_key->trusted);
      CHECK(p.origin == store_key->origin);
      CHECK(p.sha256 == store_key->sha256);
    }
  }
  auto p = broker::parse_key(store::cas_index_key(id, hash));
  CHECK(p.origin == "pr 7");
  CHECK(p.repository == "acme/widget");
}

TEST_CASE("use markers: of a save of the token's scope, of its own trust, today", "[broker]") {
  const std::string marker = k_dir + "20261201T000000.000000Z-0000abcd.used/20261118";
  const std::string untrusted_marker = marker + "-u";
  auto p = broker::parse_key(untrusted_marker);
  CHECK(p.kind == broker::KeyKind::use_marker);
  CHECK(p.manifest == k_manifest);
  CHECK_FALSE(p.trusted);
  CHECK(p.day == "20261118");
  CHECK(p.repository == "acme/widget");
  auto trusted = job(), fork = job(false, "pr-7");
  CHECK(allowed(trusted, Op::write, marker));
  CHECK(allowed(fork, Op::write, untrusted_marker));
  // A fork's marker that would count for a trusted save, and the reverse.
  CHECK_FALSE(allowed(fork, Op::write, marker));
  CHECK_FALSE(allowed(trusted, Op::write, untrusted_marker));
  // Another repository's or target's save; no job reads markers.
  CHECK_FALSE(allowed(fork, Op::write,
                      "v1/acme~2Fother/linux/deps/e1/deps/20261201T000000.000000Z-0000abcd.used/"
                      "20261118-u"));
  CHECK_FALSE(allowed(fork, Op::write,
                      "v1/acme~2Fwidget/illumos/deps/e1/deps/20261201T000000.000000Z-0000abcd."
                      "used/20261118-u"));
  CHECK_FALSE(allowed(fork, Op::read, untrusted_marker));
  // A restore is a use whatever the job may save: a push to main marks what it restored.
  auto push_main = job();
  push_main.branch = "main";
  push_main.event = "push";
  CHECK(allowed(push_main, Op::write, marker));
  CHECK_FALSE(allowed(push_main, Op::write, k_archive));
  // The day: today by the broker's clock, or within ten minutes of it; never another.
  CHECK(broker::why_not_own_use(fork, p, k_now).empty());
  CHECK(broker::why_not_own_use(fork, p, k_now - 86400).find("not today") != std::string::npos);
  CHECK(broker::why_not_own_use(fork, p, k_now + 86400).find("not today") != std::string::npos);
  CHECK(broker::why_not_own_use(trusted, p, k_now).find("trust") != std::string::npos);
}

TEST_CASE("event records: the token's own repository, target, job, now", "[broker]") {
  const std::string key =
      "v1/_events/acme~2Fwidget/linux/20261118/20261118T110640.000000Z-0000abcd.event";
  auto p = broker::parse_key(key);
  REQUIRE(p.kind == broker::KeyKind::event);
  CHECK(p.repository == "acme/widget");
  CHECK(p.target == "linux");
  CHECK(p.day == "20261118");
  auto fork = job(false, "pr-7");
  CHECK(allowed(fork, Op::write, key));
  CHECK_FALSE(allowed(fork, Op::read, key));
  CHECK_FALSE(allowed(fork, Op::list, "v1/_events/acme~2Fwidget/"));
  CHECK_FALSE(allowed(fork, Op::write,
                      "v1/_events/acme~2Fother/linux/20261118/20261118T110640.000000Z-0.event"));
  CHECK_FALSE(allowed(fork, Op::write,
                      "v1/_events/acme~2Fwidget/illumos/20261118/20261118T110640.000000Z-0.event"));
  store::Event e;
  e.phase = "pre";
  e.repository = fork.repository;
  e.target = fork.target;
  e.branch = fork.branch;
  e.job_id = fork.job_id;
  e.trusted = false;
  e.created = "2026-11-18T11:06:40.000000Z"; // k_now
  CHECK(broker::why_not_own_event(fork, p, e, k_now).empty());
  auto with = [&](auto change) {
    auto copy = e;
    change(copy);
    return broker::why_not_own_event(fork, p, copy, k_now);
  };
  CHECK_FALSE(with([](store::Event& x) { x.repository = "acme/other"; }).empty());
  CHECK_FALSE(with([](store::Event& x) { x.target = "illumos"; }).empty());
  CHECK_FALSE(with([](store::Event& x) { x.branch = "main"; }).empty());
  CHECK_FALSE(with([](store::Event& x) { x.trusted = true; }).empty());
  CHECK_FALSE(with([](store::Event& x) { x.job_id = "job-2"; }).empty());
  CHECK_FALSE(with([](store::Event& x) { x.created = "2026-11-18T11:26:40.000000Z"; }).empty());
  // Created now but filed under another day: stats' --since reads the day from the key.
  auto other_day = p;
  other_day.day = "20261117";
  CHECK_FALSE(broker::why_not_own_event(fork, other_day, e, k_now).empty());
}

TEST_CASE("a token has at most its quota of event records", "[broker]") {
  broker::RecordQuota quota;
  for (size_t i = 0; i < broker::RecordQuota::k_per_token; ++i) {
    CHECK(quota.take("a", k_now + 600, k_now));
  }
  CHECK_FALSE(quota.take("a", k_now + 600, k_now));
  CHECK_FALSE(quota.take("a", k_now + 600, k_now + 300)); // time does not refill it
  CHECK(quota.take("b", k_now + 600, k_now));
}

TEST_CASE("an upload's ticket binds its token, key, upload and sizes", "[broker]") {
  auto t = broker::upload_ticket("secret", "Bearer a", "k", "u1", 100, 10);
  CHECK(t == broker::upload_ticket("secret", "Bearer a", "k", "u1", 100, 10));
  CHECK(t != broker::upload_ticket("other", "Bearer a", "k", "u1", 100, 10));
  CHECK(t != broker::upload_ticket("secret", "Bearer b", "k", "u1", 100, 10));
  CHECK(t != broker::upload_ticket("secret", "Bearer a", "k2", "u1", 100, 10));
  CHECK(t != broker::upload_ticket("secret", "Bearer a", "k", "u2", 100, 10));
  CHECK(t != broker::upload_ticket("secret", "Bearer a", "k", "u1", 101, 10));
  CHECK(t != broker::upload_ticket("secret", "Bearer a", "k", "u1", 100, 11));
}

TEST_CASE("only plain ETags reach the store's completion request", "[broker]") {
  CHECK(broker::plain_etag("\"d41d8cd98f00b204e9800998ecf8427e\""));
  CHECK(broker::plain_etag("\"d41d8cd98f00b204e9800998ecf8427e-3\""));
  for (std::string bad : std::vector<std::string>{"", "\"a</ETag><ETag>b\"", "a b", "a&amp;",
                                                  std::string(129, 'a'), std::string("a\nb")}) {
    INFO(bad);
    CHECK_FALSE(broker::plain_etag(bad));
  }
}
