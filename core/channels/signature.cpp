#include "channels/signature.hpp"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include <algorithm>

#include <string>

namespace daybreak::channels {

namespace {

/// SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the algorithm up again on every
/// digest initialisation, and HMAC() builds and frees a whole MAC context per call besides.
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

/// HMAC-SHA256 (RFC 2104) with one key's inner and outer states (SHA-256 after the key XOR
/// ipad, resp. opad, block) computed once: each MAC is then a copy of each state, the data, and
/// two finals, the same bytes HMAC() computes. One per thread, keyed by the last key used (the
/// receiver uses one app secret); the key is wiped when it is replaced or the thread ends.
class KeyedSha256 {
 public:
  KeyedSha256() = default;
  KeyedSha256(const KeyedSha256&) = delete;
  KeyedSha256& operator=(const KeyedSha256&) = delete;
  ~KeyedSha256() {
    forget();
    EVP_MD_CTX_free(inner_);
    EVP_MD_CTX_free(outer_);
    EVP_MD_CTX_free(work_);
  }

  /// The 32-byte MAC of `data` under `key` into `mac`; false when OpenSSL failed (the caller
  /// then uses HMAC()).
  bool mac(std::string_view key, std::string_view data, unsigned char* mac) {
    if (!ready_ || key != std::string_view(key_)) {
      if (!keyed(key)) return false;
    }
    unsigned char inner_hash[32];
    unsigned int len = 0;
    return EVP_MD_CTX_copy_ex(work_, inner_) == 1 && EVP_DigestUpdate(work_, data.data(), data.size()) == 1 &&
           EVP_DigestFinal_ex(work_, inner_hash, &len) == 1 && EVP_MD_CTX_copy_ex(work_, outer_) == 1 &&
           EVP_DigestUpdate(work_, inner_hash, sizeof inner_hash) == 1 && EVP_DigestFinal_ex(work_, mac, &len) == 1 &&
           len == 32;
  }

 private:
  static constexpr std::size_t kBlock = 64;  // SHA-256's block size

  void forget() {
    if (!key_.empty()) OPENSSL_cleanse(key_.data(), key_.size());
    key_.clear();
    ready_ = false;
  }

  bool keyed(std::string_view key) {
    forget();
    const EVP_MD* md = sha256_md();
    if (md == nullptr) return false;
    if (inner_ == nullptr) inner_ = EVP_MD_CTX_new();
    if (outer_ == nullptr) outer_ = EVP_MD_CTX_new();
    if (work_ == nullptr) work_ = EVP_MD_CTX_new();
    if (inner_ == nullptr || outer_ == nullptr || work_ == nullptr) return false;
    unsigned char block[kBlock] = {};
    if (key.size() > kBlock) {  // a key longer than a block is hashed first
      unsigned int len = 0;
      if (EVP_Digest(key.data(), key.size(), block, &len, md, nullptr) != 1) return false;
    } else {
      std::copy(key.begin(), key.end(), block);
    }
    unsigned char pad[kBlock];
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x36;
    bool ok = EVP_DigestInit_ex(inner_, md, nullptr) == 1 && EVP_DigestUpdate(inner_, pad, kBlock) == 1;
    for (std::size_t i = 0; i < kBlock; ++i) pad[i] = block[i] ^ 0x5c;
    ok = ok && EVP_DigestInit_ex(outer_, md, nullptr) == 1 && EVP_DigestUpdate(outer_, pad, kBlock) == 1;
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    if (!ok) return false;
    key_.assign(key);
    ready_ = true;
    return true;
  }

  std::string key_;
  bool ready_ = false;
  EVP_MD_CTX* inner_ = nullptr;
  EVP_MD_CTX* outer_ = nullptr;
  EVP_MD_CTX* work_ = nullptr;
};

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  thread_local KeyedSha256 keyed;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 32;
  if (!keyed.mac(key, data, mac)) {
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  }
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
