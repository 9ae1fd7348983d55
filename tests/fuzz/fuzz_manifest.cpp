// Manifests read from a store: any bytes at any object key are either a manifest valid where
// it lies or refused with StoreError(permanent); never another exception, never a crash. The
// object key is the input's "_object" member when it has one (so the fuzzer varies paths as
// well as fields), else the one its archive field implies (so the scope checks are reached).
#include "store/backend.hpp"
#include "store/catalog.hpp"
#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace {

using ephemera::store::Manifest;
using ephemera::store::sanitise;

std::string object_of(const nlohmann::json& j) {
  for (const char* field : {"_object", "archive"}) {
    if (j.is_object() && j.contains(field) && j[field].is_string()) {
      std::string key = j[field].get<std::string>();
      std::string tail = ".tar.zst";
      if (field[0] != '_' && key.size() >= tail.size() &&
          key.compare(key.size() - tail.size(), tail.size(), tail) == 0) {
        key = key.substr(0, key.size() - tail.size()) + ".json";
      }
      return key;
    }
  }
  return "v1/x.json";
}

// What from_json promises of every manifest it accepts.
void check_valid_where_it_lies(const Manifest& m, const std::string& object) {
  std::string dir = "v1/" + sanitise(m.repository) + "/" + sanitise(m.target) + "/" +
                    sanitise(m.name) + "/e" + std::to_string(m.epoch) + "/" + sanitise(m.key) + "/";
  std::string stem = object.substr(0, object.size() - 5);
  bool ok = m.object == object && ephemera::store::valid_key(object) &&
            ephemera::store::valid_key(m.archive) && object.rfind(dir, 0) == 0 &&
            object.find('/', dir.size()) == std::string::npos &&
            object.compare(stem.size(), 5, ".json") == 0 && m.archive == stem + ".tar.zst" &&
            m.epoch >= 0 && m.compressed_size > 0;
  if (!ok) {
    __builtin_trap();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded()) {
    return 0;
  }
  std::string object = object_of(j);
  try {
    auto m = Manifest::from_json(j, object);
    check_valid_where_it_lies(m, object);
    auto again = Manifest::from_json(m.to_json(), object); // a manifest survives its own JSON
    if (again.to_json() != m.to_json()) {
      __builtin_trap();
    }
  } catch (const ephemera::util::StoreError& e) {
    if (e.kind() != ephemera::util::StoreErrorKind::permanent) {
      __builtin_trap();
    }
  }
  return 0;
}
