#include "broker/token.hpp"

#include "cli/commands.hpp"
#include "util/ed25519.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace ephemera::cli {

namespace {

struct TokenFlags {
  std::string key;
  std::string keygen;
  std::string repository, target, branch, event, origin, job_id, audience;
  bool untrusted = false;
  bool operator_ = false;
  std::optional<int64_t> ttl;
};

int run_keygen(const std::string& path) {
  auto key = util::Ed25519Key::generate();
  util::write_file_atomic(path + ".pub", key.public_pem());
  util::write_file_atomic(path, key.private_pem());
  ::chmod(path.c_str(), 0600);
  util::log::info("wrote the private key {} and the public key {}.pub", path, path);
  return k_exit_ok;
}

int run_token(const TokenFlags& f) {
  if (!f.keygen.empty()) {
    return run_keygen(f.keygen);
  }
  if (f.key.empty()) {
    throw util::InputError("token: give the minting key with --key (or --keygen PATH to make one)");
  }
  auto key = util::Ed25519Key::load(f.key);
  if (!key.has_private()) {
    throw util::InputError(fmt::format("--key {}: a public key cannot mint tokens", f.key));
  }
  int64_t ttl = f.ttl.value_or(3600);
  if (ttl <= 0) {
    throw util::InputError("--ttl must be a positive number of seconds");
  }
  broker::Claims c;
  c.repository = f.repository;
  c.target = f.target;
  c.branch = f.branch;
  c.event = f.event;
  c.trusted = !f.untrusted;
  c.origin = f.origin;
  c.job_id = f.job_id;
  c.role = f.operator_ ? broker::Role::operator_ : broker::Role::job;
  c.audience = f.audience;
  c.issued = static_cast<int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  c.expires = c.issued + ttl;
  try {
    std::printf("%s\n", broker::mint(c, key).c_str());
  } catch (const util::Error& e) {
    throw util::InputError(fmt::format("token: {}", e.what()));
  }
  return k_exit_ok;
}

} // namespace

void add_token(Command app, Globals& /*globals*/, Action& action) {
  auto sub = app.add_subcommand("token", "Mint a job's token for a broker (or make a key pair)");
  auto f = std::make_shared<TokenFlags>();
  sub.add_option("--key", f->key, "Ed25519 private key (PEM) that mints")
      .envname("EPHEMERA_TOKEN_KEY");
  sub.add_option("--keygen", f->keygen, "Write a new key pair to PATH and PATH.pub instead");
  sub.add_option("--repository", f->repository, "The job's repository")
      .envname("GITHUB_REPOSITORY");
  sub.add_option("--target", f->target, "The job's target");
  sub.add_option("--branch", f->branch, "The branch the job builds").envname("GITHUB_BRANCH");
  sub.add_option("--event", f->event, "push or pull_request").envname("EPHEMERA_EVENT");
  sub.add_flag("--untrusted", f->untrusted, "A fork's pull request");
  sub.add_option("--origin", f->origin, "Who an untrusted job is (the fork or the pull request)")
      .envname("EPHEMERA_ORIGIN");
  sub.add_option("--job-id", f->job_id, "The job's id").envname("BUILDOMAT_JOB_ID");
  sub.add_flag("--operator", f->operator_, "An operator's token (ls, gc, invalidate; no saves)");
  sub.add_option("--audience", f->audience, "The broker deployment it is for");
  sub.add_option("--ttl", f->ttl, "Seconds it is valid (default 3600)");
  sub.callback([&action, f] { action = [f] { return run_token(*f); }; });
}

} // namespace ephemera::cli
