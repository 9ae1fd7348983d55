// Tokens as the broker reads them from any client: any bytes are either a token the key
// signed or refused with StoreError(unauthorized); the claims parser, which the signature
// check keeps from strangers, takes any bytes too (util::Error or claims), never crashing.
#include "broker/token.hpp"
#include "util/ed25519.hpp"
#include "util/error.hpp"

#include <cstdint>
#include <string>

namespace {

const ephemera::util::Ed25519Key& key() {
  static auto k = ephemera::util::Ed25519Key::generate();
  return k;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  try {
    ephemera::broker::verify(input, key(), 1795000000, "aud");
  } catch (const ephemera::util::StoreError& e) {
    if (e.kind() != ephemera::util::StoreErrorKind::unauthorized) {
      __builtin_trap();
    }
  }
  try {
    auto c = ephemera::broker::parse_claims(input);
    // What parses mints, and what is minted verifies to the same claims.
    auto token = ephemera::broker::mint(c, key());
    if (ephemera::broker::verify(token, key(), c.issued).to_json() != c.to_json()) {
      __builtin_trap();
    }
  } catch (const ephemera::util::StoreError&) {
    // expired at its own issue time is impossible (expires > issued); any other refusal too
    __builtin_trap();
  } catch (const ephemera::util::Error&) {
  }
  ephemera::broker::peek(input);
  return 0;
}
