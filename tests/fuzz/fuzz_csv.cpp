// Fuzz harness for the CSV reader (core/domain/csv.hpp): arbitrary bytes as an import file.
//
// Beyond "does not crash", it checks what the import relies on:
//  - chunking does not matter: the whole input at once, byte by byte and in uneven chunks give
//    the same records (the import reads 1 MiB blocks, so a record or a BOM can straddle two);
//  - records come in line order, every line is >= 1 and within the input, at most one record is
//    fatal and nothing follows it, and records() counts what was reported;
//  - a well-formed record survives a round trip: written back with every field quoted, it parses
//    to the same fields;
//  - a small CsvLimits::max_record_bytes stops the parse with a fatal record instead of growing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/csv.hpp"
#include "fuzz_check.hpp"

namespace {

using daybreak::CsvLimits;
using daybreak::CsvParser;
using daybreak::CsvRecord;

bool same(const CsvRecord& a, const CsvRecord& b) {
  return a.line == b.line && a.fields == b.fields && a.error == b.error && a.fatal == b.fatal;
}

// Parses `text` fed in chunks of the sizes `chunks` cycles through (0 = all at once).
std::vector<CsvRecord> parse_chunked(std::string_view text, const std::vector<std::size_t>& chunks, CsvLimits limits,
                                     std::size_t* reported = nullptr) {
  std::vector<CsvRecord> out;
  CsvParser p([&](const CsvRecord& r) { out.push_back(r); }, limits);
  std::size_t pos = 0;
  std::size_t k = 0;
  while (pos < text.size()) {
    std::size_t n = chunks[k++ % chunks.size()];
    if (n == 0) n = text.size();
    n = std::min(n, text.size() - pos);
    p.feed(text.substr(pos, n));
    pos += n;
  }
  p.finish();
  if (reported != nullptr) *reported = p.records();
  FUZZ_CHECK(p.records() == out.size(), "records() differs from the number of callbacks");
  return out;
}

// Writes fields back as one RFC 4180 record with every field quoted.
std::string quote_all(const std::vector<std::string>& fields) {
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : fields[i]) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  out += "\r\n";
  return out;
}

void check_records(std::string_view text, const std::vector<CsvRecord>& recs) {
  const std::size_t lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
  std::size_t prev = 0;
  std::size_t field_bytes = 0;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const CsvRecord& r = recs[i];
    FUZZ_CHECK(r.line >= 1 && r.line <= lines, "record line outside the input");
    FUZZ_CHECK(r.line >= prev, "records out of line order");
    prev = r.line;
    FUZZ_CHECK(!r.fatal || i + 1 == recs.size(), "a record follows a fatal one");
    FUZZ_CHECK(!r.fatal || !r.error.empty(), "a fatal record without a message");
    FUZZ_CHECK(r.fatal || !r.fields.empty(), "a complete record with no field");
    for (const auto& f : r.fields) field_bytes += f.size();
  }
  FUZZ_CHECK(field_bytes <= text.size(), "fields hold more bytes than the input");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  std::size_t reported = 0;
  const auto whole = parse_chunked(text, {0}, {}, &reported);
  check_records(text, whole);

  // Byte by byte, then uneven chunk sizes taken from the input itself (so the fuzzer steers
  // where the cuts fall); each must give exactly the same records.
  const auto bytewise = parse_chunked(text, {1}, {});
  std::vector<std::size_t> sizes;
  for (std::size_t i = 0; i < std::min<std::size_t>(size, 8); ++i) sizes.push_back(1 + data[i] % 7U);
  if (sizes.empty()) sizes.push_back(1);
  const auto uneven = parse_chunked(text, sizes, {});
  for (const auto* other : {&bytewise, &uneven}) {
    FUZZ_CHECK(other->size() == whole.size(), "chunked parse gives a different number of records");
    for (std::size_t i = 0; i < whole.size(); ++i) {
      FUZZ_CHECK(same(whole[i], (*other)[i]), whole[i].error.empty() ? "chunked parse differs" : whole[i].error);
    }
  }

  // Round trip of every well-formed record.
  for (const auto& r : whole) {
    if (!r.error.empty() || r.fatal) continue;
    std::vector<CsvRecord> again;
    daybreak::parse_csv(quote_all(r.fields), [&](const CsvRecord& x) { again.push_back(x); });
    FUZZ_CHECK(again.size() == 1, "a quoted record did not parse back to one record");
    FUZZ_CHECK(again[0].error.empty() && again[0].fields == r.fields, again[0].error);
  }

  // A small record limit: the parse must stop at the first long record with a fatal one.
  CsvLimits small;
  small.max_record_bytes = 16;
  const auto limited = parse_chunked(text, {0}, small);
  check_records(text, limited);
  for (const auto& r : limited) {
    std::size_t bytes = 0;
    for (const auto& f : r.fields) bytes += f.size();
    FUZZ_CHECK(bytes <= small.max_record_bytes + 1, "a record grew past max_record_bytes");
  }
  return 0;
}
