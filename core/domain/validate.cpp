#include "domain/validate.hpp"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <array>
#include <cstdint>
#include <set>
#include <utility>

#include "domain/content_check.hpp"
#include "domain/time.hpp"

namespace daybreak {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

// Column positions, in the order of expected_columns(); the enums keep the validators readable.
enum AdvisorCol : std::size_t {
  a_id, a_name, a_tier, a_phone, a_email, a_timezone, a_slot, a_channels, a_opted_in, a_language, a_topics
};
enum ContentCol : std::size_t {
  c_id, c_title, c_body, c_language, c_topics, c_media_url, c_valid_from, c_valid_until, c_fallback, c_emergency
};
enum AssignmentCol : std::size_t { s_advisor_id, s_date, s_content_id };

const std::vector<std::string> kAdvisorColumns = {"advisor_id", "name",     "tier",     "phone",    "email",  "timezone",
                                                  "slot",       "channels", "opted_in", "language", "topics"};
const std::vector<std::string> kContentColumns = {"content_id", "title",      "body",        "language",          "topics",
                                                  "media_url",  "valid_from", "valid_until", "fallback_eligible", "emergency"};
const std::vector<std::string> kAssignmentColumns = {"advisor_id", "date", "content_id"};

constexpr std::string_view kChannelList = "whatsapp, email, webhook";

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_control(unsigned char c) { return c < 0x20 || c == 0x7F; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 when the bytes there are not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c < 0x80 ? 1 : (c & 0xE0U) == 0xC0U ? 2 : (c & 0xF0U) == 0xE0U ? 3 : (c & 0xF8U) == 0xF0U ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  return is_valid_utf8(s.substr(i, len)) ? len : 0;
}

// A value as it appears in a message: quoted, control characters and bytes that are not UTF-8
// escaped (a message must stay on one line of a terminal and be valid JSON text), and cut short
// on a character boundary so a runaway field cannot flood the error list.
std::string quoted(std::string_view v) {
  constexpr std::size_t kShown = 64;  // characters: enough to recognise any legitimate value
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  std::size_t shown = 0;
  for (std::size_t i = 0; i < v.size();) {
    if (shown++ == kShown) {
      out += "…";
      break;
    }
    auto c = static_cast<unsigned char>(v[i]);
    std::size_t len = utf8_sequence(v, i);
    if (len > 1) {
      out.append(v.substr(i, len));
      i += len;
      continue;
    }
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (len == 0 || is_control(c)) {
      out += "\\x";
      out.push_back(kHex[c >> 4U]);
      out.push_back(kHex[c & 0xFU]);
    } else {
      out.push_back(static_cast<char>(c));
    }
    ++i;
  }
  out.push_back('"');
  return out;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

// Country calling codes libphonenumber knows, as a lookup table indexed by code (they are 1–3
// digits). Built once; a static local is initialised thread-safely.
const std::array<bool, 1000>& calling_codes() {
  static const std::array<bool, 1000> table = [] {
    std::array<bool, 1000> t{};
    std::set<int> codes;
    PhoneNumberUtil::GetInstance()->GetSupportedCallingCodes(&codes);
    for (int c : codes) {
      if (c > 0 && c < 1000) t[static_cast<std::size_t>(c)] = true;
    }
    return t;
  }();
  return table;
}

// Fast path for input already in canonical E.164 ("+" and 7–15 digits, the usual shape of a
// machine export): split off the country code by table lookup and ask IsValidNumber directly.
// PhoneNumberUtil::Parse costs ~10 µs a number, mostly regular expressions, which would dominate
// a 1,000,000-row import; this path skips it. A number it accepts is valid by libphonenumber's own
// metadata and is returned unchanged (it is already canonical); anything it does not accept goes
// through the full Parse, so this path can only ever accept, never reject, on its own.
bool valid_canonical_e164(std::string_view s) {
  if (s.size() < 8 || s.size() > 16 || s[0] != '+' || s[1] == '0') return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (!is_digit(s[i])) return false;
  }
  const auto& codes = calling_codes();
  int cc = 0;
  std::size_t cc_len = 0;
  for (std::size_t len = 1; len <= 3; ++len) {
    cc = cc * 10 + (s[len] - '0');
    // ITU country codes are prefix-free, so the first match is the only one.
    if (codes[static_cast<std::size_t>(cc)]) {
      cc_len = len;
      break;
    }
  }
  if (cc_len == 0) return false;
  std::string_view national = s.substr(1 + cc_len);
  if (national.empty() || national.size() > 17) return false;
  PhoneNumber n;
  n.set_country_code(cc);
  // Leading zeros of the national number (Italy, some others) are carried as flags, exactly as
  // PhoneNumberUtil::Parse records them.
  std::size_t zeros = 0;
  while (zeros < national.size() - 1 && national[zeros] == '0') ++zeros;
  if (zeros > 0) {
    n.set_italian_leading_zero(true);
    if (zeros > 1) n.set_number_of_leading_zeros(static_cast<std::int32_t>(zeros));
  }
  std::uint64_t nsn = 0;
  for (char c : national) nsn = nsn * 10 + static_cast<std::uint64_t>(c - '0');
  n.set_national_number(nsn);
  return PhoneNumberUtil::GetInstance()->IsValidNumber(n);
}

// A problem list for one record, with the file, line and column names filled in.
class Row {
 public:
  Row(const std::string& file, const ColumnMap& cols, const std::vector<std::string>& names, const CsvRecord& rec,
      std::vector<Problem>& out)
      : file_(file), cols_(cols), names_(names), rec_(rec), out_(out) {}

  // Reports a malformed record or a wrong number of fields; the fields cannot be trusted then.
  bool shape_ok() {
    if (!rec_.error.empty()) {
      row_problem(rec_.error);
      return false;
    }
    if (rec_.fields.size() != cols_.width) {
      row_problem("expected " + std::to_string(cols_.width) + " fields, found " + std::to_string(rec_.fields.size()));
      return false;
    }
    return true;
  }

  std::string_view raw(std::size_t col) const { return rec_.fields[cols_.pos[col]]; }
  std::string_view get(std::size_t col) const { return trim(raw(col)); }
  const std::string& name(std::size_t col) const { return names_[col]; }
  std::size_t line() const { return rec_.line; }

  void bad(std::size_t col, std::string message) {
    out_.push_back(Problem{file_, rec_.line, names_[col], std::move(message)});
    ++count_;
  }
  void row_problem(std::string message) {
    out_.push_back(Problem{file_, rec_.line, "", std::move(message)});
    ++count_;
  }
  std::size_t count() const { return count_; }

  // Every field must be UTF-8 (providers reject anything else); single-line fields must also be
  // free of control characters (they end up in HTTP and SMTP headers). Returns false when bad.
  bool text_ok(std::size_t col, bool multiline = false) {
    std::string_view v = raw(col);
    if (!is_valid_utf8(v)) {
      bad(col, "is not valid UTF-8");
      return false;
    }
    for (char ch : v) {
      auto c = static_cast<unsigned char>(ch);
      if (is_control(c) && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) {
        bad(col, quoted(v) + " contains a control character");
        return false;
      }
    }
    return true;
  }

  // A non-empty, well-formed text field; reports and returns nullopt otherwise.
  std::optional<std::string> required(std::size_t col, bool multiline = false) {
    if (!text_ok(col, multiline)) return std::nullopt;
    std::string_view v = multiline ? raw(col) : get(col);
    if (trim(v).empty()) {
      bad(col, "must not be empty");
      return std::nullopt;
    }
    return std::string(v);
  }

  // A WhatsApp template parameter: non-empty, at most `max_chars` characters, and free of line
  // breaks, tabs and runs of more than four spaces, which Meta rejects in a parameter (error
  // 132018). `why_limit` explains a limit that depends on other fields.
  std::optional<std::string> template_param(std::size_t col, std::size_t max_chars, std::string_view why_limit) {
    if (!text_ok(col, /*multiline=*/true)) return std::nullopt;
    std::string_view v = get(col);
    if (v.empty()) {
      bad(col, "must not be empty");
      return std::nullopt;
    }
    if (v.find_first_of("\n\r\t") != std::string_view::npos) {
      bad(col, "contains a line break or tab, which a WhatsApp template parameter cannot carry");
      return std::nullopt;
    }
    if (v.find("     ") != std::string_view::npos) {
      bad(col, "contains more than four consecutive spaces, which a WhatsApp template parameter cannot carry");
      return std::nullopt;
    }
    if (std::size_t chars = utf8_length(v); chars > max_chars) {
      bad(col, "is " + std::to_string(chars) + " characters long; at most " + std::to_string(max_chars) + " are allowed" +
                   std::string(why_limit));
      return std::nullopt;
    }
    return std::string(v);
  }

  // An id: non-empty, short, no blanks or control characters (ids become keys and URL parts).
  std::optional<std::string> id(std::size_t col) {
    auto v = required(col);
    if (!v) return std::nullopt;
    if (v->size() > kMaxIdBytes) {
      bad(col, quoted(*v) + " is longer than " + std::to_string(kMaxIdBytes) + " bytes");
      return std::nullopt;
    }
    for (char c : *v) {
      if (c == ' ' || c == '\t') {
        bad(col, quoted(*v) + " must not contain spaces");
        return std::nullopt;
      }
    }
    return v;
  }

  std::optional<bool> boolean(std::size_t col, std::optional<bool> if_empty) {
    std::string_view v = get(col);
    if (v.empty() && if_empty) return if_empty;
    auto b = parse_bool(v);
    if (!b) {
      bad(col, v.empty() ? std::string("must not be empty; expected true/false, yes/no or 1/0")
                         : quoted(v) + " is not a boolean (true/false, yes/no, 1/0)");
    }
    return b;
  }

  std::optional<std::string> language(std::size_t col) {
    auto v = required(col);
    if (!v) return std::nullopt;
    if (!is_language_tag(*v)) {
      bad(col, quoted(*v) + " is not a language code such as \"en\", \"hi\" or \"en-IN\"");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::vector<std::string>> topics(std::size_t col) {
    if (!text_ok(col)) return std::nullopt;
    return split_list(get(col), ';');
  }

  // An optional date: empty stays empty.
  std::optional<std::string> date(std::size_t col, bool allow_empty) {
    std::string_view v = get(col);
    if (v.empty()) {
      if (allow_empty) return std::string();
      bad(col, "must not be empty");
      return std::nullopt;
    }
    if (!parse_date(v)) {
      bad(col, quoted(v) + " is not a valid date YYYY-MM-DD");
      return std::nullopt;
    }
    return std::string(v);
  }

 private:
  const std::string& file_;
  const ColumnMap& cols_;
  const std::vector<std::string>& names_;
  const CsvRecord& rec_;
  std::vector<Problem>& out_;
  std::size_t count_ = 0;
};

// Records `key` as seen on `line`; when it was seen before, returns that earlier line.
std::optional<std::size_t> remember(std::unordered_map<std::string, std::size_t>& seen, std::string key, std::size_t line) {
  auto [it, inserted] = seen.try_emplace(std::move(key), line);
  if (inserted) return std::nullopt;
  return it->second;
}

}  // namespace

std::string_view to_string(ImportKind k) {
  switch (k) {
    case ImportKind::advisors: return "advisors";
    case ImportKind::content: return "content";
    case ImportKind::assignments: return "assignments";
  }
  return "?";
}

std::optional<ImportKind> import_kind_from_string(std::string_view s) {
  if (s == "advisors") return ImportKind::advisors;
  if (s == "content") return ImportKind::content;
  if (s == "assignments") return ImportKind::assignments;
  return std::nullopt;
}

const std::vector<std::string>& expected_columns(ImportKind k) {
  switch (k) {
    case ImportKind::advisors: return kAdvisorColumns;
    case ImportKind::content: return kContentColumns;
    case ImportKind::assignments: return kAssignmentColumns;
  }
  return kAssignmentColumns;
}

std::string Problem::text() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  out += ": ";
  if (!field.empty()) out += "field \"" + field + "\": ";
  out += message;
  return out;
}

HeaderCheck check_header(ImportKind kind, const CsvRecord& header, const std::string& file) {
  HeaderCheck hc;
  const auto& expected = expected_columns(kind);
  auto problem = [&](std::string msg) { hc.problems.push_back(Problem{file, header.line, "", std::move(msg)}); };
  if (!header.error.empty()) {
    problem("header: " + header.error);
    return hc;
  }
  constexpr std::size_t kUnset = static_cast<std::size_t>(-1);
  hc.columns.pos.assign(expected.size(), kUnset);
  hc.columns.width = header.fields.size();
  for (std::size_t i = 0; i < header.fields.size(); ++i) {
    std::string_view name = trim(header.fields[i]);
    std::size_t k = 0;
    while (k < expected.size() && expected[k] != name) ++k;
    if (k == expected.size()) {
      problem("header: unknown column " + quoted(name) + " (expected " + join_list(expected, ',') + ")");
    } else if (hc.columns.pos[k] != kUnset) {
      problem("header: column \"" + expected[k] + "\" appears twice");
    } else {
      hc.columns.pos[k] = i;
    }
  }
  for (std::size_t k = 0; k < expected.size(); ++k) {
    if (hc.columns.pos[k] == kUnset) problem("header: missing column \"" + expected[k] + "\"");
  }
  return hc;
}

Result<std::string> normalize_phone(std::string_view raw) {
  std::string_view s = trim(raw);
  auto invalid = [&](std::string_view why) {
    return Error{"bad_phone", quoted(s) + " is not a valid phone number" + std::string(why)};
  };
  if (s.empty()) return invalid("");
  if (valid_canonical_e164(s)) return std::string(s);
  // Only digits and the usual separators: libphonenumber would otherwise turn letters into
  // digits ("+1 800 FLOWERS") or drop an extension, and neither belongs in a recipient address.
  for (char c : s) {
    if (!(is_digit(c) || c == '+' || c == ' ' || c == '-' || c == '(' || c == ')' || c == '.')) return invalid("");
  }
  if (s.front() != '+') return invalid(" (E.164 needs + and the country code, e.g. +919810000000)");
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber n;
  // Region "ZZ" (unknown) makes the leading + and country code mandatory: an advisor list is
  // international, and guessing a default country would silently misroute numbers.
  if (util->Parse(std::string(s), "ZZ", &n) != PhoneNumberUtil::NO_PARSING_ERROR || !util->IsValidNumber(n)) {
    return invalid("");
  }
  std::string e164;
  util->Format(n, PhoneNumberUtil::E164, &e164);
  return e164;
}

bool is_valid_email(std::string_view s) {
  constexpr std::size_t kMaxEmail = 254;  // RFC 5321 path limit
  constexpr std::size_t kMaxLocal = 64;   // RFC 5321 local-part limit
  if (s.empty() || s.size() > kMaxEmail) return false;
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos) return false;
  std::string_view local = s.substr(0, at);
  std::string_view domain = s.substr(at + 1);
  if (local.size() > kMaxLocal || domain.empty()) return false;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (is_control(c) || c == ' ' || std::string_view("\"(),:;<>[\\]").find(ch) != std::string_view::npos) return false;
  }
  if (local.front() == '.' || local.back() == '.') return false;
  auto dot = domain.find('.');
  if (dot == std::string_view::npos || domain.front() == '.' || domain.back() == '.' || domain.front() == '-' ||
      domain.find("..") != std::string_view::npos) {
    return false;
  }
  return true;
}

bool is_language_tag(std::string_view s) {
  // primary subtag of 2–3 letters, then subtags of 1–8 letters or digits
  std::size_t i = 0;
  while (i < s.size() && is_alpha(s[i])) ++i;
  if (i < 2 || i > 3) return false;
  while (i < s.size()) {
    if (s[i] != '-' && s[i] != '_') return false;
    std::size_t start = ++i;
    while (i < s.size() && (is_alpha(s[i]) || is_digit(s[i]))) ++i;
    if (i - start < 1 || i - start > 8) return false;
  }
  return true;
}

std::optional<bool> parse_bool(std::string_view s) {
  s = trim(s);
  if (iequals(s, "true") || iequals(s, "yes") || s == "1") return true;
  if (iequals(s, "false") || iequals(s, "no") || s == "0") return false;
  return std::nullopt;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0U) == 0xC0U) {
      len = 2;
      cp = c & 0x1FU;
    } else if ((c & 0xF0U) == 0xE0U) {
      len = 3;
      cp = c & 0x0FU;
    } else if ((c & 0xF8U) == 0xF0U) {
      len = 4;
      cp = c & 0x07U;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0U) != 0x80U) return false;
      cp = (cp << 6U) | (cc & 0x3FU);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char ch : s) {
    if ((static_cast<unsigned char>(ch) & 0xC0U) != 0x80U) ++n;  // count every byte that starts a code point
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// advisors.csv

AdvisorValidator::AdvisorValidator(ImportRules rules, std::string file, ColumnMap columns)
    : rules_(std::move(rules)), file_(std::move(file)), columns_(std::move(columns)) {}

std::optional<Advisor> AdvisorValidator::validate(const CsvRecord& rec, std::vector<Problem>& problems) {
  Row row(file_, columns_, kAdvisorColumns, rec, problems);
  if (!row.shape_ok()) return std::nullopt;
  Advisor a;

  if (auto id = row.id(a_id)) {
    if (auto first = remember(seen_, *id, rec.line)) {
      row.bad(a_id, quoted(*id) + " already appears on line " + std::to_string(*first));
    }
    a.advisor_id = std::move(*id);
  }
  if (auto name = row.required(a_name)) a.name = std::move(*name);

  if (row.text_ok(a_tier)) {
    std::string_view tier = row.get(a_tier);
    bool known = false;
    for (const auto& t : rules_.tiers) known = known || t == tier;
    if (tier.empty()) {
      row.bad(a_tier, "must not be empty; expected one of " + join_names(rules_.tiers));
    } else if (!known) {
      row.bad(a_tier, quoted(tier) + " is not a known tier (" + join_names(rules_.tiers) + ")");
    } else {
      a.tier = std::string(tier);
    }
  }

  if (row.text_ok(a_phone) && !row.get(a_phone).empty()) {
    auto p = normalize_phone(row.get(a_phone));
    if (p) {
      a.phone = std::move(*p);
    } else {
      row.bad(a_phone, p.error().message);
    }
  }
  if (row.text_ok(a_email) && !row.get(a_email).empty()) {
    std::string_view e = row.get(a_email);
    if (is_valid_email(e)) {
      a.email = std::string(e);
    } else {
      row.bad(a_email, quoted(e) + " is not a valid email address");
    }
  }

  if (row.text_ok(a_timezone)) {
    std::string_view tz = row.get(a_timezone);
    if (tz.empty()) {
      a.timezone = rules_.default_timezone;
    } else if (!is_known_timezone(tz)) {
      row.bad(a_timezone, quoted(tz) + " is not a known IANA time zone (e.g. \"Asia/Kolkata\")");
    } else {
      a.timezone = std::string(tz);
    }
  }
  if (row.text_ok(a_slot)) {
    std::string_view slot = row.get(a_slot);
    if (slot.empty()) {
      a.slot = rules_.default_slot;
    } else if (!parse_slot(slot)) {
      row.bad(a_slot, quoted(slot) + " is not a time HH:MM between 00:00 and 23:59");
    } else {
      a.slot = std::string(slot);
    }
  }

  if (row.text_ok(a_channels)) {
    std::string_view list = row.get(a_channels);
    auto parts = split_list(list, '|');
    if (parts.empty()) {
      row.bad(a_channels, "must not be empty; expected channels like \"whatsapp|email\" (" + std::string(kChannelList) + ")");
    }
    for (const auto& part : parts) {
      auto ch = channel_from_string(part);
      if (!ch) {
        row.bad(a_channels, quoted(part) + " is not a known channel (" + std::string(kChannelList) + ")");
        continue;
      }
      bool dup = false;
      for (Channel c : a.channels) dup = dup || c == *ch;
      if (dup) {
        row.bad(a_channels, quoted(part) + " is listed twice");
        continue;
      }
      a.channels.push_back(*ch);
      // A channel is only usable with its address. A present-but-invalid address was reported
      // above already, so only a missing one is reported here.
      if (*ch == Channel::whatsapp && row.get(a_phone).empty()) {
        row.bad(a_phone, "must not be empty: channels include whatsapp");
      } else if (*ch == Channel::email && row.get(a_email).empty()) {
        row.bad(a_email, "must not be empty: channels include email");
      }
    }
  }

  // Opt-in is consent: an empty cell is an error, never a guess.
  if (auto b = row.boolean(a_opted_in, std::nullopt)) a.opted_in = *b;
  if (auto lang = row.language(a_language)) a.language = std::move(*lang);
  if (auto t = row.topics(a_topics)) a.topics = std::move(*t);

  if (row.count() > 0) return std::nullopt;
  return a;
}

// ---------------------------------------------------------------------------------------------
// content.csv

ContentValidator::ContentValidator(ImportRules rules, std::string file, ColumnMap columns)
    : rules_(std::move(rules)), file_(std::move(file)), columns_(std::move(columns)) {}

std::optional<Content> ContentValidator::validate(const CsvRecord& rec, std::vector<Problem>& problems) {
  Row row(file_, columns_, kContentColumns, rec, problems);
  if (!row.shape_ok()) return std::nullopt;
  Content c;

  if (auto id = row.id(c_id)) {
    if (auto first = remember(seen_, *id, rec.line)) {
      row.bad(c_id, quoted(*id) + " already appears on line " + std::to_string(*first));
    }
    c.content_id = std::move(*id);
  }
  // media_url first: whether there is media decides the title's limit.
  bool has_media = false;
  if (row.text_ok(c_media_url)) {
    std::string_view url = row.get(c_media_url);
    if (url.empty()) {
      // no media: a text-only message
    } else if (url.size() > kMaxUrlBytes) {
      row.bad(c_media_url, "is longer than " + std::to_string(kMaxUrlBytes) + " characters");
    } else if (!is_http_url(url)) {
      row.bad(c_media_url, quoted(url) + " is not an http:// or https:// URL");
    } else {
      c.media_url = std::string(url);
      has_media = true;
    }
  }
  // Title and body are WhatsApp template parameters, checked here by the same rules (and limits)
  // as assign-fallback's night-before check (domain/content_check.cpp), so an item that imports
  // can also be sent. Without media the title is the template's text header.
  if (auto title = row.template_param(c_title, has_media ? rules_.max_body_chars : kMaxTitleChars,
                                      has_media ? "" : " without a media_url (the title is then the template header)")) {
    c.title = std::move(*title);
  }
  if (auto body = row.template_param(c_body, rules_.max_body_chars, "")) c.body = std::move(*body);
  if (auto lang = row.language(c_language)) c.language = std::move(*lang);
  if (auto t = row.topics(c_topics)) c.topics = std::move(*t);

  auto from = row.date(c_valid_from, /*allow_empty=*/true);
  auto until = row.date(c_valid_until, /*allow_empty=*/true);
  if (from && until) {
    // "YYYY-MM-DD" strings compare in date order.
    if (!from->empty() && !until->empty() && *until < *from) {
      row.bad(c_valid_until, quoted(*until) + " is before valid_from " + quoted(*from));
    } else {
      c.valid_from = std::move(*from);
      c.valid_until = std::move(*until);
    }
  }
  // An empty flag means "no": content only joins the fallback or emergency pool when asked to.
  if (auto b = row.boolean(c_fallback, false)) c.fallback_eligible = *b;
  if (auto b = row.boolean(c_emergency, false)) c.emergency = *b;

  if (row.count() > 0) return std::nullopt;
  return c;
}

// ---------------------------------------------------------------------------------------------
// assignments.csv

AssignmentValidator::AssignmentValidator(std::string file, ColumnMap columns, AssignmentLookups lookups, Source source)
    : file_(std::move(file)), columns_(std::move(columns)), lookups_(std::move(lookups)), source_(source) {}

std::optional<Assignment> AssignmentValidator::validate(const CsvRecord& rec, std::vector<Problem>& problems) {
  Row row(file_, columns_, kAssignmentColumns, rec, problems);
  if (!row.shape_ok()) return std::nullopt;
  Assignment s;
  s.source = source_;

  auto advisor = row.id(s_advisor_id);
  if (advisor && !lookups_.advisor_exists(*advisor)) {
    row.bad(s_advisor_id, quoted(*advisor) + " is not a known advisor (import advisors first)");
    advisor.reset();
  }
  auto date = row.date(s_date, /*allow_empty=*/false);
  auto content_id = row.id(s_content_id);
  if (content_id) {
    auto content = lookups_.content(*content_id);
    if (!content) {
      row.bad(s_content_id, quoted(*content_id) + " is not known content (import content first)");
    } else if (content->withdrawn) {
      row.bad(s_content_id, quoted(*content_id) + " has been withdrawn");
    } else if (date && ((!content->valid_from.empty() && *date < content->valid_from) ||
                        (!content->valid_until.empty() && *date > content->valid_until))) {
      std::string range;
      if (!content->valid_from.empty()) range += "from " + content->valid_from;
      if (!content->valid_until.empty()) range += (range.empty() ? "until " : " until ") + content->valid_until;
      row.bad(s_date, "content " + quoted(*content_id) + " is not valid on " + *date + " (valid " + range + ")");
    }
  }
  if (advisor && date) {
    if (auto first = remember(seen_, *advisor + '\x1f' + *date, rec.line)) {
      row.bad(s_date, "advisor " + quoted(*advisor) + " already has an assignment for " + *date + " on line " +
                          std::to_string(*first));
    }
  }

  if (row.count() > 0) return std::nullopt;
  s.advisor_id = std::move(*advisor);
  s.date = std::move(*date);
  s.content_id = std::move(*content_id);
  return s;
}

}  // namespace daybreak
