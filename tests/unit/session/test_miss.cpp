// explain_miss: a lookup's result in words, counted per reason, the scope searched first.
#include "session/miss.hpp"
#include "store/short_id.hpp"

#include <catch2/catch.hpp>

using namespace ephemera;

namespace {

store::PassedOverSave passed(store::PassedOver reason, int64_t epoch, std::string why) {
  store::PassedOverSave p;
  p.reason = reason;
  p.object = "v1/acme~2Fwidget/~/deps/e" + std::to_string(epoch) + "/k/1.json";
  p.scope = {"acme/widget", "", "deps", epoch};
  p.key = "k";
  p.why = std::move(why);
  return p;
}

} // namespace

TEST_CASE("a miss says what the store holds and why each save was passed over", "[session]") {
  const std::string scope = "acme/widget/-/deps/e2";
  store::LookupResult none;
  CHECK(session::explain_miss(none, scope).summary ==
        "searched acme/widget/-/deps/e2: the store holds no save of this stanza");

  store::LookupResult r;
  r.passed_over = {passed(store::PassedOver::invalidated, 2, "invalidated at T: poisoned"),
                   passed(store::PassedOver::invalidated, 2, "invalidated at T: poisoned"),
                   passed(store::PassedOver::other_key, 2, "key 'x' is not one looked for"),
                   passed(store::PassedOver::older_epoch, 1, "of epoch 1")};
  auto why = session::explain_miss(r, scope);
  CHECK(why.summary == "searched acme/widget/-/deps/e2: passed over 2 invalidated (invalidated "
                       "at T: poisoned), 1 of another key; elsewhere: 1 of an older epoch");
  REQUIRE(why.details.size() == 4);
  CHECK(why.details[3] ==
        store::short_id(r.passed_over[3].object) + " acme/widget/-/deps/e1 key 'k': of epoch 1");

  store::LookupResult elsewhere;
  elsewhere.passed_over = {passed(store::PassedOver::other_target, 2, "under target 'x'")};
  CHECK(session::explain_miss(elsewhere, scope).summary ==
        "searched acme/widget/-/deps/e2: no save there; elsewhere: 1 under another target");
}
