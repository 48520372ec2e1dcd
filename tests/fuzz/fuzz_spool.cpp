// Fuzz harness for spooled callback requests (core/channels/status_parse.hpp): arbitrary bytes
// as a spool file for parse_spool_request, and a round trip format_spool_request →
// parse_spool_request, which `daybreak ingest` relies on to verify the signature over exactly
// the bytes the receiver got.
//
// Round-trip input: the first byte is the signature's length (capped at the bytes left), then
// the signature, then the body. The round trip is checked for signatures an HTTP header can
// carry (what the receiver passes: no CR or LF, no blank at either end, since HTTP parsers trim
// those); any body must come back byte for byte.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "channels/status_parse.hpp"
#include "fuzz_check.hpp"

namespace {

bool header_value(std::string_view s) {
  if (s.find_first_of("\r\n") != std::string_view::npos) return false;
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  return s.empty() || (!blank(s.front()) && !blank(s.back()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using daybreak::channels::format_spool_request;
  using daybreak::channels::parse_spool_request;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // 1. The input itself as a spool file.
  if (auto r = parse_spool_request(text)) {
    FUZZ_CHECK(r->body.size() < text.size() || text.empty(), "the body took the whole file, headers included");
    FUZZ_CHECK(text.substr(text.size() - r->body.size()) == r->body, "the body is not the end of the file");
    FUZZ_CHECK(r->signature.empty() || text.find(r->signature) != std::string_view::npos, r->signature);
  } else {
    FUZZ_CHECK(r.error().code == "bad_spool" && !r.error().message.empty(), r.error().message);
  }

  // 2. Round trip.
  if (size == 0) return 0;
  const std::size_t sig_len = std::min<std::size_t>(data[0], size - 1);
  const std::string_view sig = text.substr(1, sig_len);
  const std::string_view body = text.substr(1 + sig_len);
  if (!header_value(sig)) return 0;
  const std::string file = format_spool_request(sig, body);
  auto back = parse_spool_request(file);
  FUZZ_CHECK(back.ok(), back.ok() ? std::string() : back.error().message);
  FUZZ_CHECK(back->signature == sig, back->signature);
  FUZZ_CHECK(back->body == body, "the body changed in a round trip");
  return 0;
}
