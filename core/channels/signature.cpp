#include "channels/signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

namespace daybreak::channels {

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0x0f]);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool verify_hub_signature(std::string_view secret, std::string_view raw_body, std::string_view header) {
  if (secret.empty()) return false;
  constexpr std::string_view kPrefix = "sha256=";
  if (header.substr(0, kPrefix.size()) != kPrefix) return false;
  return constant_time_equal(header.substr(kPrefix.size()), hmac_sha256_hex(secret, raw_body));
}

namespace {

constexpr std::string_view kUnsubVersion = "u1";
constexpr std::size_t kUnsubMacHex = 32;
constexpr std::size_t kUnsubTokenMax = 512;
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kB64Url[(v >> 18) & 63];
    out += kB64Url[(v >> 12) & 63];
    out += kB64Url[(v >> 6) & 63];
    out += kB64Url[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kB64Url[(v >> 18) & 63];
    out += kB64Url[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kB64Url[(v >> 18) & 63];
    out += kB64Url[(v >> 12) & 63];
    out += kB64Url[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::char_traits<char>::find(kB64Url, 64, c);
    if (p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(p - kB64Url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  // Unused low bits must be zero: each id has exactly one encoding.
  if (bits > 0 && (acc & ((1U << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string unsubscribe_mac(std::string_view secret, std::string_view advisor_id) {
  std::string data = "daybreak-unsubscribe:";
  data += kUnsubVersion;
  data += ':';
  data += advisor_id;
  return hmac_sha256_hex(secret, data).substr(0, kUnsubMacHex);
}

}  // namespace

std::string unsubscribe_token(std::string_view secret, std::string_view advisor_id) {
  if (secret.empty()) return "";
  std::string t(kUnsubVersion);
  t += '.';
  t += b64url_encode(advisor_id);
  t += '.';
  t += unsubscribe_mac(secret, advisor_id);
  return t;
}

std::optional<std::string> verify_unsubscribe_token(std::string_view secret, std::string_view token) {
  if (secret.empty() || token.size() > kUnsubTokenMax) return std::nullopt;
  if (token.substr(0, kUnsubVersion.size() + 1) != std::string(kUnsubVersion) + ".") return std::nullopt;
  token.remove_prefix(kUnsubVersion.size() + 1);
  const auto dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  auto id = b64url_decode(token.substr(0, dot));
  if (!id || id->empty()) return std::nullopt;
  if (!constant_time_equal(token.substr(dot + 1), unsubscribe_mac(secret, *id))) return std::nullopt;
  return id;
}

}  // namespace daybreak::channels
