// Manifests read from a store: any bytes are either a manifest or refused with
// StoreError(permanent); never another exception, never a crash.
#include "store/catalog.hpp"
#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) {
    return 0;
  }
  try {
    auto m = ephemera::store::Manifest::from_json(j);
    auto again = ephemera::store::Manifest::from_json(m.to_json());
    if (again.sha256 != m.sha256 || again.archive != m.archive || again.created != m.created) {
      __builtin_trap(); // a manifest survives its own JSON
    }
  } catch (const ephemera::util::StoreError& e) {
    if (e.kind() != ephemera::util::StoreErrorKind::permanent) {
      __builtin_trap();
    }
  }
  return 0;
}
