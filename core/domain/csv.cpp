#include "domain/csv.hpp"

#include <utility>

namespace daybreak {
namespace {

constexpr char kBom[3] = {'\xEF', '\xBB', '\xBF'};

}  // namespace

CsvParser::CsvParser(Callback on_record, CsvLimits limits) : on_record_(std::move(on_record)), limits_(limits) {}

void CsvParser::feed(std::string_view chunk) {
  std::size_t i = 0;
  // The BOM may be split across chunks, so it is matched byte by byte; a partial match that
  // turns out not to be a BOM is replayed as ordinary data.
  while (!bom_done_ && i < chunk.size()) {
    if (chunk[i] == kBom[bom_matched_]) {
      ++i;
      if (++bom_matched_ == 3) bom_done_ = true;
    } else {
      bom_done_ = true;
      for (unsigned k = 0; k < bom_matched_; ++k) process(kBom[k]);
    }
  }
  for (; i < chunk.size() && !stopped_; ++i) process(chunk[i]);
}

void CsvParser::finish() {
  if (!bom_done_) {
    bom_done_ = true;
    for (unsigned k = 0; k < bom_matched_; ++k) process(kBom[k]);
  }
  if (stopped_) return;
  if (pending_cr_) {
    // A file ending in a bare "\r": treat it as the line end it almost certainly is.
    pending_cr_ = false;
    if (state_ != State::quoted) {
      end_record();
      return;
    }
  }
  if (state_ == State::quoted) {
    record_.line = quote_line_;
    fail("unterminated quoted field");
    return;
  }
  end_record();
}

void CsvParser::start_record_if_needed() {
  if (in_record_) return;
  in_record_ = true;
  record_.line = line_;
  record_.error.clear();
  record_.fatal = false;
  nfields_ = 0;
  record_bytes_ = 0;
  if (!record_.fields.empty()) record_.fields[0].clear();
}

void CsvParser::ensure_field() {
  // The slot of the current field was cleared when the parser moved onto it; it only has to exist.
  if (record_.fields.size() <= nfields_) record_.fields.emplace_back();
}

void CsvParser::end_field() {
  ensure_field();  // an empty field ("a,,b" or "a,b,") still needs its slot
  ++nfields_;
  if (record_.fields.size() > nfields_) record_.fields[nfields_].clear();
}

void CsvParser::end_record() {
  state_ = State::field_start;
  if (!in_record_) return;  // a blank line is not a record
  end_field();
  record_.fields.resize(nfields_);
  ++records_;
  on_record_(record_);
  in_record_ = false;
}

void CsvParser::mark_error(std::string message) {
  if (record_.error.empty()) record_.error = std::move(message);
}

void CsvParser::append(char c) {
  ensure_field();
  record_.fields[nfields_].push_back(c);
  if (++record_bytes_ > limits_.max_record_bytes) {
    fail("record longer than " + std::to_string(limits_.max_record_bytes) + " bytes (an unterminated quoted field?)");
  }
}

void CsvParser::fail(std::string message) {
  if (stopped_) return;
  stopped_ = true;
  record_.error = std::move(message);
  record_.fatal = true;
  record_.fields.resize(nfields_);
  ++records_;
  on_record_(record_);
  in_record_ = false;
}

void CsvParser::process(char c) {
  if (stopped_) return;
  if (pending_cr_) {
    pending_cr_ = false;
    if (c == '\n') {  // CRLF
      end_record();
      ++line_;
      return;
    }
    // A lone '\r' is not a line end in RFC 4180: keep it as data (the validator will object to
    // a control character where it matters) rather than silently re-splitting lines.
    start_record_if_needed();
    if (state_ == State::after_quoted) mark_error("field " + std::to_string(nfields_ + 1) + ": text after the closing quote");
    append('\r');
    if (stopped_) return;
    if (state_ == State::field_start) state_ = State::unquoted;
  }

  switch (state_) {
    case State::field_start:
      if (c == '\n') {
        end_record();
        ++line_;
        return;
      }
      if (c == '\r') {
        pending_cr_ = true;  // may be the CRLF of a blank line; the record starts only on data
        return;
      }
      start_record_if_needed();
      if (c == '"') {
        ensure_field();
        quote_line_ = line_;
        state_ = State::quoted;
      } else if (c == ',') {
        end_field();
      } else {
        append(c);
        state_ = State::unquoted;
      }
      return;

    case State::unquoted:
      if (c == ',') {
        end_field();
        state_ = State::field_start;
      } else if (c == '\n') {
        end_record();
        ++line_;
      } else if (c == '\r') {
        pending_cr_ = true;
      } else {
        if (c == '"') {
          mark_error("field " + std::to_string(nfields_ + 1) +
                     ": stray quote in an unquoted field (quote the whole field and double the quote)");
        }
        append(c);
      }
      return;

    case State::quoted:
      if (c == '"') {
        state_ = State::quote_in_quoted;
      } else {
        if (c == '\n') ++line_;
        append(c);
      }
      return;

    case State::quote_in_quoted:
      if (c == '"') {  // a doubled quote is one literal quote
        append('"');
        state_ = State::quoted;
      } else if (c == ',') {
        end_field();
        state_ = State::field_start;
      } else if (c == '\n') {
        end_record();
        ++line_;
      } else if (c == '\r') {
        pending_cr_ = true;
        state_ = State::after_quoted;
      } else {
        mark_error("field " + std::to_string(nfields_ + 1) + ": text after the closing quote");
        append(c);
        state_ = State::after_quoted;
      }
      return;

    case State::after_quoted:
      if (c == ',') {
        end_field();
        state_ = State::field_start;
      } else if (c == '\n') {
        end_record();
        ++line_;
      } else if (c == '\r') {
        pending_cr_ = true;
      } else {
        append(c);
      }
      return;
  }
}

void parse_csv(std::string_view text, const CsvParser::Callback& on_record, CsvLimits limits) {
  CsvParser p(on_record, limits);
  p.feed(text);
  p.finish();
}

bool csv_formula_leading(std::string_view v) {
  if (v.empty()) return false;
  switch (v.front()) {
    case '=': case '+': case '-': case '@': case '\t': case '\r': return true;
    default: return false;
  }
}

void csv_write_field(std::string& out, std::string_view v, bool text) {
  const bool neutralise = text && csv_formula_leading(v);
  if (!neutralise && v.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += v;
    return;
  }
  const bool quote = v.find_first_of(",\"\r\n") != std::string_view::npos;
  if (quote) out.push_back('"');
  if (neutralise) out.push_back('\'');
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  if (quote) out.push_back('"');
}

}  // namespace daybreak
