#pragma once
// HMAC-SHA256 signatures shared by the status callback receiver (X-Hub-Signature-256), the
// simulator that signs its callbacks, and the webhook channel that signs its payloads.
#include <optional>
#include <string>
#include <string_view>

namespace daybreak::channels {

/// Lower-case hex HMAC-SHA256 of `data` under `key` (OpenSSL).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// Compares in time that depends only on the lengths, never on where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

/// Checks a `sha256=<hex>` header against the raw body. An empty secret verifies nothing.
bool verify_hub_signature(std::string_view secret, std::string_view raw_body, std::string_view header);

/// The one-click unsubscribe token of an advisor (List-Unsubscribe, RFC 8058):
/// "u1." + base64url(advisor_id) + "." + the first 32 hex digits (128 bits) of
/// HMAC-SHA256(secret, "daybreak-unsubscribe:u1:" + advisor_id). It names the advisor and cannot
/// be made for another one without the secret, so advisors cannot be unsubscribed by guessing
/// ids. URL-safe as it is (letters, digits, '-', '_', '.'). Empty when `secret` is empty.
std::string unsubscribe_token(std::string_view secret, std::string_view advisor_id);

/// The advisor id of a token made by unsubscribe_token with `secret`, or nullopt when it is
/// malformed, longer than 512 bytes, or its MAC does not match (compared in constant time).
/// An empty secret verifies nothing.
std::optional<std::string> verify_unsubscribe_token(std::string_view secret, std::string_view token);

}  // namespace daybreak::channels
