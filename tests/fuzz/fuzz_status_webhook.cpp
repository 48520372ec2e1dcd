// Fuzz harness for the WhatsApp status callback parser (core/channels/status_parse.hpp,
// parse_status_webhook): arbitrary bytes as a POST body. The receiver runs it on whatever the
// internet sends, after the signature check, so it must never crash or overflow, and it answers
// every body with updates (and elements rejected one by one, bounded, each naming where it went
// wrong) or one "bad_webhook" error whose message names where it went wrong.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "channels/status_parse.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto r = daybreak::channels::parse_status_webhook(body);
  if (!r) {
    const auto& e = r.error();
    FUZZ_CHECK(e.code == "bad_webhook", e.code);
    // "<json path>: <what>", e.g. "entry[0].changes[0].value.statuses[1].timestamp: missing".
    FUZZ_CHECK(e.message.find(": ") != std::string_view::npos && e.message.find(": ") > 0, e.message);
    return 0;
  }
  for (const auto& u : r->updates) {
    FUZZ_CHECK(!u.provider_message_id.empty(), "an update without a message id");
    FUZZ_CHECK(u.provider_at >= 0, u.provider_message_id);
    FUZZ_CHECK(!u.delivery_id || *u.delivery_id >= 0, u.provider_message_id);
  }
  FUZZ_CHECK(r->ignored >= 0, "negative ignored count");
  // Rejected elements: bounded in number and size, each naming where it went wrong.
  FUZZ_CHECK(r->rejected.size() <= daybreak::kRejectsPerBodyMax, "too many rejects kept");
  FUZZ_CHECK(r->rejected_total >= static_cast<int>(r->rejected.size()), "rejected_total below the rejects kept");
  for (const auto& x : r->rejected) {
    FUZZ_CHECK(x.path.size() <= daybreak::kRejectTextMax && x.reason.size() <= daybreak::kRejectTextMax &&
                   x.excerpt.size() <= daybreak::kRejectTextMax,
               x.path);
    FUZZ_CHECK(x.reason.find(": ") != std::string_view::npos, x.reason);
  }
  FUZZ_CHECK(r->account_errors.size() <= daybreak::kRejectsPerBodyMax, "too many account errors kept");
  return 0;
}
