#include "broker/server.hpp"
#include "cli/commands.hpp"
#include "store/url.hpp"
#include "util/ed25519.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/units.hpp"

#include <fmt/format.h>

#include <memory>

namespace ephemera::cli {

namespace {

struct ServeFlags {
  std::string listen = "127.0.0.1:8080";
  std::string signing_key;
  std::string token_key;
  std::string port_file;
  std::string audience;
  std::vector<std::string> protected_branches;
  std::string max_object = "64GiB";
  std::optional<int> rate;
  std::optional<int> threads;
  std::optional<int> timeout;
  std::string spool;
};

int run_serve(const Globals& g, const ServeFlags& f) {
  broker::ServerOptions o;
  auto colon = f.listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw util::InputError(fmt::format("--listen '{}': give HOST:PORT (127.0.0.1:8080; port 0 "
                                       "for any free one)",
                                       util::printable(f.listen)));
  }
  o.host = f.listen.substr(0, colon);
  try {
    o.port = std::stoi(f.listen.substr(colon + 1));
  } catch (const std::exception&) {
    o.port = -1;
  }
  if (o.port < 0 || o.port > 65535) {
    throw util::InputError(
        fmt::format("--listen '{}': the port must be 0 to 65535", util::printable(f.listen)));
  }
  auto max = util::parse_size(f.max_object);
  if (!max || *max == 0) {
    throw util::InputError(
        fmt::format("--max-object '{}': give a size (64GiB)", util::printable(f.max_object)));
  }
  o.max_object = *max;
  o.port_file = f.port_file;
  o.audience = f.audience;
  for (const auto& b : f.protected_branches) {
    o.protected_branches.push_back(b);
  }
  if (f.rate) {
    o.rate = *f.rate;
  }
  if (f.threads) {
    o.threads = std::max(1, *f.threads);
  }
  if (f.timeout) {
    o.timeout = std::chrono::seconds(std::max(1, *f.timeout));
  }
  if (!f.spool.empty()) {
    o.spool = f.spool;
  }
  if (g.store.empty()) {
    throw util::InputError("serve: give the store it fronts with --store or EPHEMERA_STORE");
  }
  auto signing = util::Ed25519Key::load(f.signing_key);
  if (!signing.has_private()) {
    throw util::InputError(
        fmt::format("--signing-key {}: a public key cannot sign manifests", f.signing_key));
  }
  // Without a minter's key of its own, the broker checks tokens with its signing key's
  // public half (one key pair for a small installation).
  auto tokens = util::Ed25519Key::load(f.token_key.empty() ? f.signing_key : f.token_key);
  broker::Server server(store::open_backend(g.store), std::move(signing), std::move(tokens), o);
  util::log::info("serving {}", store::redact_url(g.store));
  server.run();
  return k_exit_ok;
}

} // namespace

void add_serve(Command app, Globals& g, Action& action) {
  auto sub = app.add_subcommand(
      "serve", "Serve the store (--store) to build machines that hold only a token");
  auto f = std::make_shared<ServeFlags>();
  sub.add_option("--listen", f->listen, "HOST:PORT (port 0: any free one)").capture_default_str();
  sub.add_option("--signing-key", f->signing_key, "Ed25519 private key (PEM) that signs manifests")
      .required()
      .envname("EPHEMERA_BROKER_SIGNING_KEY");
  sub.add_option("--token-key", f->token_key,
                 "Ed25519 public key (PEM) of the token minter (default: the signing key's)")
      .envname("EPHEMERA_BROKER_TOKEN_KEY");
  sub.add_option("--port-file", f->port_file, "Write the port here once listening");
  sub.add_option("--audience", f->audience, "Accept only tokens minted for this audience");
  sub.add_option("--protected-branch", f->protected_branches,
                 "Another branch whose pushes never save (main and master always)");
  sub.add_option("--max-object", f->max_object, "The largest object accepted")
      .capture_default_str();
  sub.add_option("--rate", f->rate, "Requests a second per token (default 50; 0: no limit)");
  sub.add_option("--threads", f->threads, "Requests served at once (default 16)");
  sub.add_option("--timeout", f->timeout, "Seconds a connection may make no progress (default 60)");
  sub.add_option("--spool", f->spool, "Where uploads wait until they reach the store (/tmp)");
  sub.callback([&g, &action, f] { action = [&g, f] { return run_serve(g, *f); }; });
}

} // namespace ephemera::cli
