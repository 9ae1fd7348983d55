// Tokens: what mint writes, verify accepts exactly that and nothing altered, expired, signed
// with another key or meant for another broker; the claims parser is strict.
#include "broker/token.hpp"
#include "store/catalog.hpp"
#include "store/signer.hpp"
#include "util/ed25519.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

using namespace ephemera;
using broker::Claims;

namespace {

constexpr int64_t k_now = 1795000000;

Claims fork_claims() {
  Claims c;
  c.repository = "acme/widget";
  c.branch = "feature";
  c.event = "pull_request";
  c.trusted = false;
  c.origin = "pr-7";
  c.job_id = "job-1";
  c.issued = k_now - 10;
  c.expires = k_now + 3600;
  return c;
}

const util::Ed25519Key& ci_key() {
  static auto key = util::Ed25519Key::generate();
  return key;
}

std::string refusal(const std::string& token, const util::Ed25519Key& key, int64_t now = k_now,
                    const std::string& audience = "") {
  try {
    broker::verify(token, key, now, audience);
  } catch (const util::StoreError& e) {
    CHECK(e.kind() == util::StoreErrorKind::unauthorized);
    return e.what();
  }
  return "";
}

} // namespace

TEST_CASE("a minted token verifies and gives back its claims", "[broker]") {
  auto token = broker::mint(fork_claims(), ci_key());
  REQUIRE(token.rfind("eph1.", 0) == 0);
  auto c = broker::verify(token, ci_key(), k_now);
  CHECK(c.repository == "acme/widget");
  CHECK(c.branch == "feature");
  CHECK(c.event == "pull_request");
  CHECK_FALSE(c.trusted);
  CHECK(c.origin == "pr-7");
  CHECK(c.job_id == "job-1");
  CHECK(c.role == broker::Role::job);
  CHECK(c.expires == k_now + 3600);
}

TEST_CASE("a token altered in any one byte is refused", "[broker]") {
  auto token = broker::mint(fork_claims(), ci_key());
  for (size_t i = 0; i < token.size(); ++i) {
    for (char replacement : {'A', '_', '.', 'x'}) {
      if (token[i] == replacement) {
        continue;
      }
      auto altered = token;
      altered[i] = replacement;
      INFO("byte " << i << " -> " << replacement);
      CHECK_FALSE(refusal(altered, ci_key()).empty());
    }
  }
  CHECK_FALSE(refusal(token.substr(0, token.size() - 1), ci_key()).empty());
  CHECK_FALSE(refusal(token + "A", ci_key()).empty());
}

TEST_CASE("a token whose claims were rewritten and re-encoded is refused", "[broker]") {
  auto token = broker::mint(fork_claims(), ci_key());
  auto first = token.find('.'), second = token.find('.', first + 1);
  auto claims = fork_claims();
  claims.trusted = true;
  auto forged = "eph1." + util::base64url_encode(claims.to_json()) + token.substr(second);
  CHECK(refusal(forged, ci_key()).find("bad signature") != std::string::npos);
}

TEST_CASE("a token signed with another key is refused", "[broker]") {
  auto other = util::Ed25519Key::generate();
  auto token = broker::mint(fork_claims(), other);
  CHECK(refusal(token, ci_key()).find("bad signature") != std::string::npos);
}

TEST_CASE("an expired token is refused, one issued far ahead too", "[broker]") {
  auto token = broker::mint(fork_claims(), ci_key());
  CHECK(refusal(token, ci_key(), k_now + 3600).find("expired") != std::string::npos);
  CHECK(refusal(token, ci_key(), k_now + 3599).empty());
  auto future = fork_claims();
  future.issued = k_now + 600;
  future.expires = k_now + 7200;
  CHECK(refusal(broker::mint(future, ci_key()), ci_key()).find("future") != std::string::npos);
}

TEST_CASE("a token for another audience is refused", "[broker]") {
  auto claims = fork_claims();
  claims.audience = "staging";
  auto token = broker::mint(claims, ci_key());
  CHECK(refusal(token, ci_key(), k_now, "staging").empty());
  CHECK(refusal(token, ci_key(), k_now, "production").find("audience") != std::string::npos);
}

TEST_CASE("malformed tokens are refused without reaching the claims", "[broker]") {
  for (std::string bad :
       std::vector<std::string>{"", "eph1.", "eph1..", "eph2.e30.AAAA", "eph1.e30",
                                "eph1.e30.AAAA.AAAA", "eph1.e30.!!!!", std::string(9000, 'A')}) {
    INFO(bad.substr(0, 40));
    CHECK_FALSE(refusal(bad, ci_key()).empty());
  }
}

TEST_CASE("the claims parser is strict", "[broker]") {
  auto good = fork_claims().to_json();
  CHECK_NOTHROW(broker::parse_claims(good));
  auto with = [&](const std::string& from, const std::string& to) {
    auto text = good;
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  CHECK_THROWS_AS(broker::parse_claims(with("\"trusted\":false", "\"trusted\":0")), util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("\"event\":\"pull_request\"", "\"event\":\"merge\"")),
                  util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("\"role\":\"job\"", "\"role\":\"root\"")), util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("\"origin\":\"pr-7\"", "\"origin\":\"a\\u0001\"")),
                  util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("\"job_id\"", "\"job\"")), util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("{", "{\"admin\":true,")), util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("\"issued\":1794999990", "\"issued\":-1")),
                  util::Error);
  CHECK_THROWS_AS(broker::parse_claims(with("\"expires\":1795003600", "\"expires\":1794999990")),
                  util::Error);
  CHECK_THROWS_AS(
      broker::parse_claims(with("\"repository\":\"acme/widget\"", "\"repository\":\"\"")),
      util::Error);
  CHECK_THROWS_AS(broker::parse_claims("[]"), util::Error);
  CHECK_THROWS_AS(broker::parse_claims("{"), util::Error);
}

TEST_CASE("base64url has one spelling for each byte string", "[broker]") {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    auto enc = util::base64url_encode(s);
    CHECK(enc.find('=') == std::string::npos);
    CHECK(util::base64url_decode(enc) == s);
  }
  CHECK(util::base64url_decode("Zg") == "f");
  CHECK_FALSE(util::base64url_decode("Zh").has_value()); // bits left over
  CHECK_FALSE(util::base64url_decode("Zg==").has_value());
  CHECK_FALSE(util::base64url_decode("Z").has_value());
  CHECK_FALSE(util::base64url_decode("Zm9v+").has_value());
}

TEST_CASE("Ed25519 keys: PEM round trip, public halves verify, never sign", "[broker]") {
  auto key = util::Ed25519Key::generate();
  auto priv = util::Ed25519Key::from_pem(key.private_pem(), "private");
  auto pub = util::Ed25519Key::from_pem(key.public_pem(), "public");
  CHECK(priv.has_private());
  CHECK_FALSE(pub.has_private());
  CHECK(pub.public_raw() == key.public_raw());
  auto sig = priv.sign("message");
  CHECK(sig.size() == 64);
  CHECK(pub.verify("message", sig));
  CHECK_FALSE(pub.verify("messagE", sig));
  CHECK_FALSE(pub.verify("message", sig.substr(1)));
  CHECK_THROWS_AS(pub.sign("message"), util::Error);
  CHECK_THROWS_AS(util::Ed25519Key::from_pem("not a key", "text"), util::Error);
}

TEST_CASE("manifests signed with the broker's key verify with its public key only", "[broker]") {
  auto key = util::Ed25519Key::generate();
  auto broker_side = store::ed25519_signer(util::Ed25519Key::from_pem(key.private_pem(), "k"));
  auto machine = store::ed25519_signer(util::Ed25519Key::from_pem(key.public_pem(), "k"));
  auto other = store::ed25519_signer(util::Ed25519Key::generate());
  auto sig = broker_side->sign("payload");
  CHECK(sig.rfind("ed25519:", 0) == 0);
  CHECK(machine->verify("payload", sig));
  CHECK_FALSE(machine->verify("payloaD", sig));
  CHECK_FALSE(other->verify("payload", sig));
  // A build machine holds no key that signs, and an HMAC signature is no Ed25519 one.
  CHECK(machine->sign("payload").empty());
  CHECK_FALSE(machine->verify("payload", store::hmac_signer("secret")->sign("payload")));
  CHECK_FALSE(machine->verify("payload", ""));
}
