#pragma once
// An RFC 4180 CSV reader for the import files: quoted fields, doubled quotes,
// commas and newlines inside quotes, CRLF or LF line ends, an optional UTF-8 byte-order mark.
//
// It is a push parser: the caller feeds chunks of any size (the file read in blocks, or a whole
// string) and gets one callback per record, so a 1,000,000-row file is read in constant memory
// and the parser itself never touches a file. Every record carries the physical line it starts
// on, so every later message can say `advisors.csv:17: …`.
//
// Malformed input is reported per record rather than thrown: a stray quote or text after a
// closing quote marks that record bad and parsing goes on, so one import run names every bad
// row. Only two problems end the parse (a `fatal` record): a quoted field still open at the end
// of the input, and a record longer than CsvLimits::max_record_bytes — after either the rest of
// the file cannot be split into records reliably.
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace daybreak {

/// One parsed record (a row of the file).
struct CsvRecord {
  std::size_t line = 0;             ///< 1-based physical line the record starts on
  std::vector<std::string> fields;  ///< unquoted field values, in file order
  std::string error;                ///< non-empty when the record is malformed (first problem found)
  bool fatal = false;               ///< the parser stopped at this record; no record follows
};

/// Bounds that keep a broken file (say, one unmatched quote near the top) from turning the rest
/// of a large file into one giant field held in memory.
struct CsvLimits {
  /// 1 MiB: far above any legitimate row (content bodies are capped at a few KiB) yet small
  /// enough that a runaway quoted field is caught long before memory is a concern.
  std::size_t max_record_bytes = 1U << 20U;
};

/// Streaming RFC 4180 parser; see the file comment.
class CsvParser {
 public:
  /// Called once per record, in order; the record is only valid during the call.
  using Callback = std::function<void(const CsvRecord&)>;

  /// A parser that reports records to `on_record`.
  explicit CsvParser(Callback on_record, CsvLimits limits = {});

  /// Parses the next chunk of input; records it completes are reported before it returns.
  /// Input after a fatal record is ignored.
  void feed(std::string_view chunk);

  /// Ends the input: reports a last record that has no line end, or a fatal
  /// "unterminated quoted field" when a quote is still open. Call exactly once.
  void finish();

  /// True once a fatal record has been reported.
  [[nodiscard]] bool stopped() const { return stopped_; }

  /// How many records were reported so far (blank lines are skipped and not counted).
  [[nodiscard]] std::size_t records() const { return records_; }

 private:
  enum class State { field_start, unquoted, quoted, quote_in_quoted, after_quoted };

  void process(char c);
  void start_record_if_needed();
  void ensure_field();
  void end_field();
  void end_record();
  void mark_error(std::string message);
  void append(char c);
  void fail(std::string message);

  Callback on_record_;
  CsvLimits limits_;
  CsvRecord record_;
  std::size_t nfields_ = 0;      // fields used in record_.fields (the vector is reused)
  std::size_t record_bytes_ = 0;
  std::size_t line_ = 1;         // current physical line
  std::size_t quote_line_ = 0;   // line where the open quoted field began
  std::size_t records_ = 0;
  State state_ = State::field_start;
  bool in_record_ = false;       // a character of the current record has been seen
  bool pending_cr_ = false;      // saw '\r' outside quotes; a following '\n' makes it CRLF
  bool stopped_ = false;
  unsigned bom_matched_ = 0;     // bytes of the UTF-8 BOM matched at the very start
  bool bom_done_ = false;
};

/// Appends one CSV field to `out` (the writer side, for `daybreak export --format csv`): RFC 4180
/// quoting (a field holding a comma, quote or line break is quoted, quotes doubled). A text
/// cell (`text` true) that begins with =, +, -, @, a tab or a carriage return is neutralised
/// first by a leading single quote, as OWASP recommends against CSV/formula injection: a
/// spreadsheet then shows it as text instead of evaluating it (`=HYPERLINK(…)` in a provider's
/// error detail, an advisor id such as `-1+1`). Numbers SQLite holds as numbers are written with
/// `text` false and stay as they are, so a negative number is still a number.
void csv_write_field(std::string& out, std::string_view v, bool text);
/// True when csv_write_field would neutralise `v` as a text cell.
[[nodiscard]] bool csv_formula_leading(std::string_view v);

/// Parses a whole in-memory text (tests and small inputs): feed + finish in one call.
void parse_csv(std::string_view text, const CsvParser::Callback& on_record, CsvLimits limits = {});

}  // namespace daybreak
