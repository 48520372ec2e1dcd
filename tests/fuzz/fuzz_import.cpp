// Fuzz harness for import validation: the same bytes as an advisors, a content and an
// assignments CSV, through the path `daybreak import` takes (core/app/import.cpp, class
// Importer): CsvParser → check_header on the first record → AdvisorValidator / ContentValidator /
// AssignmentValidator on every later one, and the "file is empty" problem when there was no
// record. run_import itself reads a file and hashes it; this drives the same domain calls
// in memory, so the harness needs neither a database nor a temporary file per input.
//
// The import promises every rejection names where it is (domain/validate.hpp):
// the harness aborts when a problem lacks the file name, the record's line, or a column name
// (a problem without a column is allowed only for a malformed record or a wrong field count,
// which are about the whole row). Messages must also stay on one terminal line and be valid
// UTF-8 (they are printed and put in JSON).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/csv.hpp"
#include "domain/types.hpp"
#include "domain/validate.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace daybreak;

const std::string kFile = "fuzz.csv";

// Stand-ins for the store: advisors whose id starts with "a" exist; three content items cover
// the lookup outcomes (valid, withdrawn, valid only in 2026-01).
AssignmentLookups fake_lookups() {
  AssignmentLookups l;
  l.advisor_exists = [](const std::string& id) { return !id.empty() && id[0] == 'a'; };
  l.content = [](const std::string& id) -> std::optional<Content> {
    Content c;
    c.content_id = id;
    if (id == "c1") return c;
    if (id == "c2") {
      c.withdrawn = true;
      return c;
    }
    if (id == "c3") {
      c.valid_from = "2026-01-01";
      c.valid_until = "2026-01-31";
      return c;
    }
    return std::nullopt;
  };
  return l;
}

bool one_line_utf8(std::string_view s) {
  if (!is_valid_utf8(s)) return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; });
}

// Checks one problem reported for `rec` (a data row) or for the header (`rec` = the header).
void check_problem(const Problem& p, const CsvRecord& rec, const std::vector<std::string>& columns, bool row_shape_bad) {
  const std::string text = p.text();
  FUZZ_CHECK(p.file == kFile, text);
  FUZZ_CHECK(p.line == rec.line && p.line > 0, text);
  FUZZ_CHECK(!p.message.empty(), text);
  FUZZ_CHECK(one_line_utf8(p.message), text);
  FUZZ_CHECK(text.rfind(kFile + ":" + std::to_string(p.line) + ": ", 0) == 0, text);
  if (p.field.empty()) {
    FUZZ_CHECK(row_shape_bad, "a problem in a well-formed row names no column: " + text);
  } else {
    FUZZ_CHECK(std::find(columns.begin(), columns.end(), p.field) != columns.end(), "unknown column named: " + text);
    FUZZ_CHECK(text.find("field \"" + p.field + "\": ") != std::string::npos, text);
  }
}

// What each validator returns for a row without problems must be usable downstream.
void check_valid(const Advisor& a) {
  FUZZ_CHECK(!a.advisor_id.empty() && a.advisor_id.size() <= kMaxIdBytes, a.advisor_id);
  FUZZ_CHECK(!a.channels.empty(), a.advisor_id);
  FUZZ_CHECK(!a.timezone.empty() && !a.slot.empty() && !a.language.empty(), a.advisor_id);
  for (Channel c : a.channels) {
    if (c == Channel::whatsapp) FUZZ_CHECK(!a.phone.empty() && a.phone[0] == '+', a.phone);
    if (c == Channel::email) FUZZ_CHECK(is_valid_email(a.email), a.email);
  }
}
void check_valid(const Content& c) {
  FUZZ_CHECK(!c.content_id.empty() && c.content_id.size() <= kMaxIdBytes, c.content_id);
  FUZZ_CHECK(!c.title.empty() && !c.body.empty() && is_valid_utf8(c.body), c.content_id);
  FUZZ_CHECK(utf8_length(c.body) <= kMaxBodyChars, c.content_id);
  FUZZ_CHECK(c.valid_from.empty() || c.valid_until.empty() || c.valid_from <= c.valid_until, c.content_id);
}
void check_valid(const Assignment& s) {
  FUZZ_CHECK(!s.advisor_id.empty() && s.advisor_id[0] == 'a', s.advisor_id);
  FUZZ_CHECK(s.content_id == "c1" || s.content_id == "c3", s.content_id);
  FUZZ_CHECK(s.date.size() == 10, s.date);
}

// One import of `text` as a `kind` file, as Importer::on_record / finish do it.
void import_as(ImportKind kind, std::string_view text) {
  const auto& columns = expected_columns(kind);
  const ImportRules rules;
  bool header_seen = false;
  bool header_bad = false;
  std::optional<AdvisorValidator> advisors;
  std::optional<ContentValidator> content;
  std::optional<AssignmentValidator> assignments;
  std::size_t width = 0;
  std::vector<Problem> problems;

  parse_csv(text, [&](const CsvRecord& rec) {
    if (!header_seen) {
      header_seen = true;
      HeaderCheck hc = check_header(kind, rec, kFile);
      for (const auto& p : hc.problems) check_problem(p, rec, columns, /*row_shape_bad=*/true);
      if (!hc.problems.empty()) {
        header_bad = true;
        return;
      }
      FUZZ_CHECK(hc.columns.pos.size() == columns.size() && hc.columns.width == rec.fields.size(), "bad column map");
      width = hc.columns.width;
      switch (kind) {
        case ImportKind::advisors: advisors.emplace(rules, kFile, hc.columns); break;
        case ImportKind::content: content.emplace(rules, kFile, hc.columns); break;
        case ImportKind::assignments: assignments.emplace(kFile, hc.columns, fake_lookups(), Source::editorial); break;
      }
      return;
    }
    if (header_bad) return;
    problems.clear();
    bool valid = false;
    switch (kind) {
      case ImportKind::advisors:
        if (auto a = advisors->validate(rec, problems)) {
          check_valid(*a);
          valid = true;
        }
        break;
      case ImportKind::content:
        if (auto c = content->validate(rec, problems)) {
          check_valid(*c);
          valid = true;
        }
        break;
      case ImportKind::assignments:
        if (auto s = assignments->validate(rec, problems)) {
          check_valid(*s);
          valid = true;
        }
        break;
    }
    // A row is either valid or has at least one problem, never both or neither.
    FUZZ_CHECK(valid == problems.empty(), "a row is valid and has problems, or neither");
    const bool shape_bad = !rec.error.empty() || rec.fields.size() != width;
    for (const auto& p : problems) check_problem(p, rec, columns, shape_bad);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  import_as(ImportKind::advisors, text);
  import_as(ImportKind::content, text);
  import_as(ImportKind::assignments, text);
  return 0;
}
