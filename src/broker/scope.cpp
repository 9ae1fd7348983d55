#include "broker/scope.hpp"

#include "policy/policy.hpp"
#include "store/keys.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <fmt/format.h>

#include <cmath>

namespace ephemera::broker {

namespace {

// How far a client's clock may be from the broker's, in seconds.
constexpr double k_clock_slack = 600;

std::vector<std::string_view> components(std::string_view key) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    auto slash = key.find('/', start);
    out.push_back(key.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) {
      return out;
    }
    start = slash + 1;
  }
}


// The token's own folder of saves and of markers.
std::string saves_folder(const Claims& c) {
  return "v1/" + store::sanitise(c.repository) + "/" + store::sanitise(c.target) + "/";
}
std::string markers_folder(const Claims& c) {
  return "v1/_invalidations/" + store::sanitise(c.repository) + "/";
}
std::string cas_folder(const Claims& c) {
  return "cas1/" + store::sanitise(c.repository) + "/" + store::sanitise(c.target) + "/";
}

// A content-addressed object of the token's repository and target: by its trust folder.
Verdict authorize_cas(const Claims& c, Op op, const ParsedKey& p,
                      const std::vector<std::string>& protected_branches) {
  bool own_folder = c.trusted ? p.trusted : !p.trusted && p.origin == c.origin;
  if (op == Op::write) {
    if (auto why = why_no_save(c, protected_branches); !why.empty()) {
      return Verdict{false, false, why};
    }
    if (!own_folder) {
      return Verdict{false, false,
                     c.trusted ? "a trusted job writes only the trusted folder"
                               : "an untrusted job writes only the folder of its own origin"};
    }
    return Verdict{true, false, ""};
  }
  if (p.trusted || own_folder) {
    return Verdict{true, false, ""};
  }
  return Verdict{false, true,
                 c.trusted ? "an untrusted save, and the token is trusted"
                           : "an untrusted save of another origin"};
}

Verdict allow() {
  return Verdict{true, false, ""};
}
Verdict refuse(std::string why) {
  return Verdict{false, false, std::move(why)};
}

} // namespace

const char* to_string(Op op) {
  switch (op) {
  case Op::read:
    return "read";
  case Op::list:
    return "list";
  case Op::write:
    return "write";
  case Op::remove:
    return "remove";
  }
  return "?";
}

ParsedKey parse_key(std::string_view key) {
  auto c = components(key);
  ParsedKey p;
  if (!c.empty() && c[0] == "cas1") {
    // Only where a save puts one (store::parse_cas_key): anything else below cas1/ is other.
    if (auto k = store::parse_cas_key(key)) {
      p.kind = KeyKind::cas;
      p.repository = std::move(k->repository);
      p.target = std::move(k->target);
      p.trusted = k->trusted;
      p.origin = std::move(k->origin);
      p.sha256 = std::move(k->sha256);
    }
    return p;
  }
  auto layout = store::parse_key(key);
  if (c.empty() || c[0] != "v1") {
    return p; // outside the layout's root the store's parser goes by the suffix alone
  }
  switch (layout.kind) {
  case store::KeyKind::marker:
    if (layout.repository) {
      p.kind = KeyKind::marker;
      p.repository = *layout.repository;
    }
    return p;
  case store::KeyKind::event:
    if (layout.repository) {
      p.kind = KeyKind::event;
      p.repository = *layout.repository;
      p.target = layout.key;
      p.day = layout.day;
    }
    return p;
  case store::KeyKind::manifest:
  case store::KeyKind::archive:
  case store::KeyKind::use_marker:
    break;
  default:
    return p;
  }
  // A repository folder starting with '_' is the store's own (markers, records, the clock).
  if (!layout.scope || c[1].empty() || c[1][0] == '_') {
    return p; // not where publish() puts a save
  }
  p.repository = layout.scope->repository;
  p.target = layout.scope->target;
  std::string k(key);
  if (layout.kind == store::KeyKind::manifest) {
    p.kind = KeyKind::manifest;
    p.manifest = k;
  } else if (layout.kind == store::KeyKind::archive) {
    p.kind = KeyKind::archive;
    p.manifest = store::own_manifest(k);
  } else {
    p.kind = KeyKind::use_marker;
    p.manifest = layout.manifest;
    p.trusted = layout.trusted;
    p.day = layout.day;
  }
  return p;
}

std::string why_no_save(const Claims& c, const std::vector<std::string>& protected_branches) {
  policy::Context ctx;
  ctx.branch = c.branch;
  ctx.event = policy::parse_event(c.event).value_or(policy::Event::unknown);
  ctx.protected_branches = protected_branches;
  if (!policy::context_known(ctx)) {
    return "the token names no branch or no event: a job of unknown context never saves";
  }
  if (ctx.event == policy::Event::push && policy::is_protected(ctx)) {
    return fmt::format("the token is for a push to the protected branch '{}', which never saves",
                       util::printable(c.branch));
  }
  if (!c.trusted && c.origin.empty()) {
    return "the token is untrusted and names no origin: such a job never saves";
  }
  return "";
}

Verdict authorize(const Claims& c, Op op, std::string_view key,
                  const std::vector<std::string>& protected_branches) {
  if (c.role == Role::operator_) {
    return allow();
  }
  std::string saves = saves_folder(c), markers = markers_folder(c), cas = cas_folder(c);
  if (op == Op::list) {
    bool own = key.rfind(saves, 0) == 0 || key.rfind(markers, 0) == 0 || key.rfind(cas, 0) == 0;
    if (own && store::sanitise(c.repository)[0] != '_') {
      return allow();
    }
    return refuse(fmt::format("a listing outside the token's scope ({}, {}, {})",
                              util::printable(saves), util::printable(markers),
                              util::printable(cas)));
  }
  if (op == Op::remove) {
    return refuse("only an operator's token removes objects");
  }
  auto p = parse_key(key);
  if (p.kind == KeyKind::other) {
    return refuse("not a save, a marker or a record: only an operator's token reaches other "
                  "objects");
  }
  bool own_repository = p.repository == c.repository;
  if (p.kind == KeyKind::marker) {
    if (op == Op::write) {
      return refuse("only an operator's token writes invalidation markers");
    }
    return own_repository ? allow() : refuse("another repository's marker");
  }
  if (!own_repository || p.target != c.target) {
    return refuse(fmt::format("outside the token's scope (repository '{}', target '{}')",
                              util::printable(c.repository), util::printable(c.target)));
  }
  switch (p.kind) {
  case KeyKind::cas:
    return authorize_cas(c, op, p, protected_branches);
  case KeyKind::use_marker:
  case KeyKind::event:
    if (op != Op::write) {
      return refuse("use markers and event records are read by operators only");
    }
    if (p.kind == KeyKind::use_marker && p.trusted != c.trusted) {
      return refuse(c.trusted ? "a trusted job's use marker ends without -u"
                              : "an untrusted job's use marker ends in -u: it never counts "
                                "for a trusted save");
    }
    return allow();
  default:
    break;
  }
  if (op == Op::write) {
    if (auto why = why_no_save(c, protected_branches); !why.empty()) {
      return refuse(why);
    }
  }
  return allow();
}

Verdict may_read(const Claims& c, const store::Manifest& m) {
  if (c.role == Role::operator_ || m.trusted) {
    return allow();
  }
  if (c.trusted) {
    return Verdict{false, true, "an untrusted save, and the token is trusted"};
  }
  if (m.origin.empty() || m.origin != c.origin) {
    return Verdict{false, true, "an untrusted save of another origin"};
  }
  return allow();
}

std::string why_not_own(const Claims& c, const store::Manifest& m, double now) {
  auto differs = [](const char* what, const std::string& got, const std::string& want) {
    return fmt::format("its {} '{}' is not the token's '{}'", what,
                       util::printable(got.substr(0, 200)), util::printable(want));
  };
  if (c.role == Role::operator_) {
    return "an operator's token does not save";
  }
  if (m.repository != c.repository) {
    return differs("repository", m.repository, c.repository);
  }
  if (m.target != c.target) {
    return differs("target", m.target, c.target);
  }
  if (m.branch != c.branch) {
    return differs("branch", m.branch, c.branch);
  }
  if (m.event != c.event) {
    return differs("event", m.event, c.event);
  }
  if (m.trusted != c.trusted) {
    return m.trusted ? "it says trusted, and the token is untrusted"
                     : "it says untrusted, and the token is trusted";
  }
  if (m.origin != c.origin) {
    return differs("origin", m.origin, c.origin);
  }
  if (m.job_id != c.job_id) {
    return differs("job id", m.job_id, c.job_id);
  }
  auto created = store::parse_rfc3339(m.created);
  if (!created || std::abs(*created - now) > k_clock_slack) {
    return fmt::format("its created time '{}' is more than 10 minutes from the broker's clock",
                       util::printable(m.created));
  }
  return "";
}

} // namespace ephemera::broker

namespace ephemera::broker {

namespace {

// Whether day is that of now, give or take the minutes a client's clock may be off.
bool about_today(std::string_view day, double now) {
  return day == store::utc_day(now - k_clock_slack) || day == store::utc_day(now) ||
         day == store::utc_day(now + k_clock_slack);
}

} // namespace

std::string why_not_own_use(const Claims& c, const ParsedKey& p, double now) {
  if (c.role == Role::operator_) {
    return "an operator's token does not restore";
  }
  if (p.trusted != c.trusted) {
    return "the marker's trust is not the token's";
  }
  if (!about_today(p.day, now)) {
    return fmt::format("its day {} is not today by the broker's clock", util::printable(p.day));
  }
  return "";
}

std::string why_not_own_event(const Claims& c, const ParsedKey& p, const store::Event& e,
                              double now) {
  auto differs = [](const char* what, const std::string& got, const std::string& want) {
    return fmt::format("its {} '{}' is not the token's '{}'", what,
                       util::printable(got.substr(0, 200)), util::printable(want));
  };
  if (c.role == Role::operator_) {
    return "an operator's token writes no event record";
  }
  if (e.repository != c.repository || p.repository != c.repository) {
    return differs("repository", e.repository, c.repository);
  }
  if (e.target != c.target || p.target != c.target) {
    return differs("target", e.target, c.target);
  }
  if (e.branch != c.branch) {
    return differs("branch", e.branch, c.branch);
  }
  if (e.trusted != c.trusted) {
    return e.trusted ? "it says trusted, and the token is untrusted"
                     : "it says untrusted, and the token is trusted";
  }
  if (e.job_id != c.job_id) {
    return differs("job id", e.job_id, c.job_id);
  }
  auto created = store::parse_rfc3339(e.created);
  if (!created || std::abs(*created - now) > k_clock_slack) {
    return fmt::format("its created time '{}' is more than 10 minutes from the broker's clock",
                       util::printable(e.created));
  }
  if (p.day != store::utc_day(*created)) {
    return fmt::format("it lies in the folder of day {}, and was created on {}",
                       util::printable(p.day), store::utc_day(*created));
  }
  return "";
}

std::string upload_ticket(std::string_view secret, std::string_view token, std::string_view key,
                          std::string_view upload, uint64_t size, uint64_t part_size) {
  return util::hmac_sha256_hex(secret,
                               fmt::format("ephemera-upload/1\n{}\n{}\n{}\n{}\n{}",
                                           util::sha256_hex(token), key, upload, size, part_size));
}

bool plain_etag(std::string_view etag) {
  return !etag.empty() && etag.size() <= 128 &&
         etag.find_first_not_of("0123456789abcdefABCDEF-\"") == std::string_view::npos;
}

} // namespace ephemera::broker
