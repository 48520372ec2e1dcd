#pragma once
// Night-before validation: can this content item still be sent as our
// WhatsApp template on day D? assign-fallback runs it on every assignment at 21:30 and replaces
// what fails, so a problem is found the evening before instead of at 06:00. Pure: no I/O.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "domain/types.hpp"
#include "domain/validate.hpp"

namespace daybreak {

/// Longest title without media, in characters. The title is the template's text *header* parameter when the
/// item has no media, and Meta limits header text to 60 characters (WhatsApp Cloud API, message
/// template components: "header … text, 60 characters maximum").
inline constexpr std::size_t kMaxTitleChars = 60;
/// Longest body, in characters: the body *parameter* limit; see kMaxBodyChars in validate.hpp
/// for the sources (1,024 when the template has a header, which ours always has).
inline constexpr std::size_t kMaxSendBodyChars = kMaxBodyChars;

/// The first reason `c` cannot be sent on `date` ("YYYY-MM-DD"), or nullopt when it can:
/// withdrawn; not valid on the date; title or body empty, over its limit, not UTF-8, or holding a
/// newline, a tab or more than four consecutive spaces (template parameters may not — Meta error
/// 132018; e.g. Wati's template rules: "can't include newlines, tabs, or more than four
/// consecutive spaces"); a media URL that is not a well-formed http(s) URL.
std::optional<std::string> content_send_problem(const Content& c, const std::string& date);

/// True for "http://host[:port][/path…]" or "https://…": a scheme, a non-empty host of letters,
/// digits, '.', '-' (or a bracketed IPv6 literal), an optional numeric port, no spaces or control
/// characters anywhere.
bool is_http_url(std::string_view url);

}  // namespace daybreak
