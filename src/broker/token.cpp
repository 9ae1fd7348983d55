#include "broker/token.hpp"

#include "util/error.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace ephemera::broker {

using nlohmann::json;
using util::StoreError;
using util::StoreErrorKind;

namespace {

constexpr size_t k_max_claim = 1024;

const char* role_name(Role role) {
  return role == Role::operator_ ? "operator" : "job";
}

std::string string_member(const json& j, const char* key) {
  const auto& v = j.at(key);
  if (!v.is_string()) {
    throw util::Error(fmt::format("token claim '{}' is not a string", key));
  }
  auto s = v.get<std::string>();
  if (s.size() > k_max_claim || std::any_of(s.begin(), s.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      })) {
    throw util::Error(fmt::format("token claim '{}' is longer than {} bytes or holds a control "
                                  "byte",
                                  key, k_max_claim));
  }
  return s;
}

int64_t time_member(const json& j, const char* key) {
  const auto& v = j.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw util::Error(fmt::format("token claim '{}' is not a whole number of seconds", key));
  }
  return v.get<int64_t>();
}

StoreError refused(std::string why) {
  return StoreError(StoreErrorKind::unauthorized, "token refused: " + why);
}

} // namespace

std::string Claims::to_json() const {
  return json{{"repository", repository}, {"target", target},        {"branch", branch},
              {"event", event},           {"trusted", trusted},      {"origin", origin},
              {"job_id", job_id},         {"role", role_name(role)}, {"audience", audience},
              {"issued", issued},         {"expires", expires}}
      .dump();
}

Claims parse_claims(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw util::Error("token claims are not a JSON object");
  }
  static const std::set<std::string> k_members{"repository", "target", "branch", "event",
                                               "trusted",    "origin", "job_id", "role",
                                               "audience",   "issued", "expires"};
  for (const auto& [key, value] : j.items()) {
    if (k_members.count(key) == 0) {
      throw util::Error(fmt::format("token claims hold an unknown member '{}'",
                                    util::printable(key.substr(0, 64))));
    }
  }
  for (const auto& key : k_members) {
    if (!j.contains(key)) {
      throw util::Error(fmt::format("token claims have no '{}'", key));
    }
  }
  Claims c;
  c.repository = string_member(j, "repository");
  c.target = string_member(j, "target");
  c.branch = string_member(j, "branch");
  c.event = string_member(j, "event");
  if (c.event != "" && c.event != "push" && c.event != "pull_request") {
    throw util::Error("token claim 'event' is not \"push\", \"pull_request\" or \"\"");
  }
  if (!j.at("trusted").is_boolean()) {
    throw util::Error("token claim 'trusted' is not true or false");
  }
  c.trusted = j.at("trusted").get<bool>();
  c.origin = string_member(j, "origin");
  c.job_id = string_member(j, "job_id");
  auto role = string_member(j, "role");
  if (role != "job" && role != "operator") {
    throw util::Error("token claim 'role' is not \"job\" or \"operator\"");
  }
  c.role = role == "operator" ? Role::operator_ : Role::job;
  c.audience = string_member(j, "audience");
  c.issued = time_member(j, "issued");
  c.expires = time_member(j, "expires");
  if (c.expires <= c.issued) {
    throw util::Error("token claim 'expires' is not after 'issued'");
  }
  if (c.role == Role::job && c.repository.empty()) {
    throw util::Error("a job's token names no repository");
  }
  return c;
}

std::string mint(const Claims& claims, const util::Ed25519Key& key) {
  parse_claims(claims.to_json()); // what the broker would refuse is never minted
  std::string head = std::string(k_token_prefix) + util::base64url_encode(claims.to_json());
  return head + "." + util::base64url_encode(key.sign(head));
}

namespace {

// The signed text and the signature of a token, or a refusal saying what is malformed.
std::pair<std::string_view, std::string> split(std::string_view token) {
  if (token.size() > k_max_token) {
    throw refused(fmt::format("longer than {} bytes", k_max_token));
  }
  if (token.rfind(k_token_prefix, 0) != 0) {
    throw refused("not an ephemera token (no eph1. prefix)");
  }
  auto dot = token.find('.', std::string_view(k_token_prefix).size());
  if (dot == std::string_view::npos || token.find('.', dot + 1) != std::string_view::npos) {
    throw refused("malformed: not eph1.<claims>.<signature>");
  }
  auto sig = util::base64url_decode(token.substr(dot + 1));
  if (!sig || sig->size() != 64) {
    throw refused("malformed signature");
  }
  return {token.substr(0, dot), *sig};
}

std::optional<Claims> claims_of(std::string_view head) {
  auto text = util::base64url_decode(head.substr(std::string_view(k_token_prefix).size()));
  if (!text) {
    return std::nullopt;
  }
  return parse_claims(*text);
}

} // namespace

Claims verify(std::string_view token, const util::Ed25519Key& key, int64_t now,
              std::string_view audience) {
  auto [head, sig] = split(token);
  // The signature before the claims are parsed: nobody without the key reaches the parser.
  if (!key.verify(head, sig)) {
    throw refused("bad signature (altered, or minted with another key)");
  }
  std::optional<Claims> c;
  try {
    c = claims_of(head);
  } catch (const util::Error& e) {
    throw refused(e.what());
  }
  if (!c) {
    throw refused("malformed claims");
  }
  if (now >= c->expires) {
    throw refused(fmt::format("expired {} s ago", now - c->expires));
  }
  if (c->issued > now + 60) {
    throw refused("issued in the future");
  }
  if (!audience.empty() && c->audience != audience) {
    throw refused(fmt::format("for audience '{}', not '{}'", util::printable(c->audience),
                              util::printable(audience)));
  }
  return *c;
}

std::optional<Claims> peek(std::string_view token) {
  try {
    auto parts = split(token);
    return claims_of(parts.first);
  } catch (const util::Error&) {
    return std::nullopt;
  }
}

} // namespace ephemera::broker
