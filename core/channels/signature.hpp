#pragma once
// HMAC-SHA256 signatures shared by the status callback receiver (X-Hub-Signature-256), the
// simulator that signs its callbacks, and the webhook channel that signs its payloads.
#include <string>
#include <string_view>

namespace daybreak::channels {

/// Lower-case hex HMAC-SHA256 of `data` under `key` (OpenSSL).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// Compares in time that depends only on the lengths, never on where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

/// Checks a `sha256=<hex>` header against the raw body. An empty secret verifies nothing.
bool verify_hub_signature(std::string_view secret, std::string_view raw_body, std::string_view header);

}  // namespace daybreak::channels
