#pragma once
// Validation of import files: each CSV record becomes an
// Advisor, Content or Assignment, or a list of every problem in it, each naming file, line,
// field and value (`advisors.csv:17: field "phone": "+9198" is not a valid phone number`).
//
// Pure: no I/O and no clock. The few facts that live elsewhere come in as values — the
// configured tiers and defaults (ImportRules) and, for assignments, lookups into the store
// (AssignmentLookups) — so every rule is testable with plain strings.
//
// The validators are stateful only to catch duplicates within one file (an id, or an
// (advisor, date) pair, seen on an earlier line); that costs memory proportional to the number of
// distinct keys, which for 1,000,000 advisors is tens of MB and fine for an operator command.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/csv.hpp"
#include "domain/result.hpp"
#include "domain/types.hpp"

namespace daybreak {

/// Which file an import reads.
enum class ImportKind { advisors, content, assignments };

/// "advisors", "content" or "assignments".
std::string_view to_string(ImportKind k);
/// The kind named by `s`, or nullopt for any other word.
std::optional<ImportKind> import_kind_from_string(std::string_view s);
/// The header of a kind's file, in its documented order (README "Input files", daybreak(1) import).
const std::vector<std::string>& expected_columns(ImportKind k);

/// Longest content body accepted, in characters (Unicode code points).
///
/// The body is sent as a WhatsApp template *body parameter*. A text parameter may be 32,768
/// characters only when the template has nothing but a body component, and 1,024 otherwise
/// (whatsapp-api-js `BodyParameter`, https://whatsappapijs.web.app/classes/messages.BodyParameter.html;
/// Sinch's WhatsApp notes agree on 32,768 for text-only template bodies, and Vonage's template
/// guide gives 1,024 for a body next to a header). Our template has a header (title or media),
/// so 1,024 applies; the 4,096 limit of free-form text messages does not, because daily content
/// goes out as a template outside the 24-hour customer-service window.
inline constexpr std::size_t kMaxBodyChars = 1024;
/// Longest advisor_id or content_id: ids end up in webhook payloads and delivery keys.
inline constexpr std::size_t kMaxIdBytes = 128;
/// Longest media URL: beyond 2,048 characters many HTTP stacks refuse the URL anyway.
inline constexpr std::size_t kMaxUrlBytes = 2048;

/// One problem found in an import file.
struct Problem {
  std::string file;       ///< file name as the operator gave it
  std::size_t line = 0;   ///< physical line; 0 = the file as a whole
  std::string field;      ///< column name; empty when the problem is about the whole row
  std::string message;    ///< what is wrong, e.g. `"+9198" is not a valid phone number`

  /// `advisors.csv:17: field "phone": "+9198" is not a valid phone number`.
  [[nodiscard]] std::string text() const;
};

/// The configured facts the rules depend on (filled from Config by the caller).
struct ImportRules {
  std::vector<std::string> tiers = {"platinum", "gold", "silver", "standard"};  ///< known tiers, highest first
  std::string default_timezone = "Asia/Kolkata";  ///< used when an advisor's timezone is empty
  std::string default_slot = "06:00";             ///< used when an advisor's slot is empty
  std::size_t max_body_chars = kMaxBodyChars;     ///< longest content body, in characters
};

/// Where each expected column sits in a record; columns may come in any order.
struct ColumnMap {
  std::vector<std::size_t> pos;  ///< pos[i] = record index of expected_columns(kind)[i]
  std::size_t width = 0;         ///< fields every record must have
};

/// A checked header: the column map, or problems naming every missing, unknown or repeated column.
struct HeaderCheck {
  ColumnMap columns;              ///< meaningful only when problems is empty
  std::vector<Problem> problems;  ///< one per missing, unknown or repeated column
};

/// Checks the header record of a `kind` file named `file`.
HeaderCheck check_header(ImportKind kind, const CsvRecord& header, const std::string& file);

/// E.164 normalisation through libphonenumber: `raw` must carry a leading + and country code
/// ("+91 98100 00000" → "+919810000000") and be a valid number for its country. The error
/// message quotes the value, e.g. `"+9198" is not a valid phone number`.
Result<std::string> normalize_phone(std::string_view raw);

/// A deliberately simple address check (one @, non-empty local part, a dotted domain, no spaces,
/// control characters or SMTP-special characters): strict enough to keep header injection and
/// typos out, loose enough not to reject real addresses.
bool is_valid_email(std::string_view s);

/// A BCP-47-shaped language tag: "en", "hi", "en-IN", "pt_BR" (WhatsApp writes an underscore).
bool is_language_tag(std::string_view s);

/// true/false, yes/no, 1/0 in any letter case; nullopt for anything else.
std::optional<bool> parse_bool(std::string_view s);

/// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool is_valid_utf8(std::string_view s);
/// Number of code points in well-formed UTF-8 text.
std::size_t utf8_length(std::string_view s);

/// Validates advisors.csv records one at a time and remembers ids to catch duplicates.
class AdvisorValidator {
 public:
  /// A validator for the file `file`, whose header resolved to `columns`.
  AdvisorValidator(ImportRules rules, std::string file, ColumnMap columns);
  /// Appends every problem of `rec` to `problems`; returns the advisor only when there was none.
  std::optional<Advisor> validate(const CsvRecord& rec, std::vector<Problem>& problems);

 private:
  ImportRules rules_;
  std::string file_;
  ColumnMap columns_;
  std::unordered_map<std::string, std::size_t> seen_;  // advisor_id → first line
};

/// Validates content.csv records one at a time and remembers ids to catch duplicates.
class ContentValidator {
 public:
  /// A validator for the file `file`, whose header resolved to `columns`.
  ContentValidator(ImportRules rules, std::string file, ColumnMap columns);
  /// Appends every problem of `rec` to `problems`; returns the content only when there was none.
  std::optional<Content> validate(const CsvRecord& rec, std::vector<Problem>& problems);

 private:
  ImportRules rules_;
  std::string file_;
  ColumnMap columns_;
  std::unordered_map<std::string, std::size_t> seen_;  // content_id → first line
};

/// What the assignments validator needs to know about the store: assignments may only name
/// advisors and content that were imported before.
struct AssignmentLookups {
  /// True when the advisor is stored.
  std::function<bool(const std::string& advisor_id)> advisor_exists;
  /// The stored content item, or nullopt when there is none.
  std::function<std::optional<Content>(const std::string& content_id)> content;
};

/// Validates assignments.csv records one at a time and remembers (advisor, date) pairs.
class AssignmentValidator {
 public:
  /// A validator for `file` whose rows become assignments of `source` (editorial or advisor).
  AssignmentValidator(std::string file, ColumnMap columns, AssignmentLookups lookups, Source source);
  /// Appends every problem of `rec` to `problems`; returns the assignment only when there was none.
  std::optional<Assignment> validate(const CsvRecord& rec, std::vector<Problem>& problems);

 private:
  std::string file_;
  ColumnMap columns_;
  AssignmentLookups lookups_;
  Source source_;
  std::unordered_map<std::string, std::size_t> seen_;  // "advisor_id\x1f" "date" → first line
};

}  // namespace daybreak
