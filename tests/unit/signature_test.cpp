// X-Hub-Signature-256 verification over the raw body (Meta, "Getting started with webhooks",
// payload validation): the HMAC covers the bytes exactly as received, so bodies with
// non-ASCII text and escaped or unescaped '/' must verify, and anything else must not.
#include "channels/signature.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <vector>

namespace daybreak::channels {
namespace {

constexpr const char* kSecret = "app-secret-0123";

std::string sign(const std::string& body) { return "sha256=" + hmac_sha256_hex(kSecret, body); }

TEST(SignatureTest, HmacMatchesAKnownVector) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SignatureTest, KeyedStatesGiveHmacsBytesForEveryKeyLengthAndKeyChange) {
  // RFC 4231 test case 6: a 131-byte key (longer than SHA-256's block: hashed first).
  EXPECT_EQ(hmac_sha256_hex(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  // Keys of every length around the block size, alternating (each call may replace the
  // thread's keyed states), against OpenSSL's one-shot HMAC.
  for (std::size_t n = 0; n <= 130; ++n) {
    std::string key;
    for (std::size_t i = 0; i < n; ++i) key += static_cast<char>((i * 37 + n) & 0xff);
    for (const std::string& data : {std::string(), std::string("x"), std::string(1000, 'z') + std::to_string(n)}) {
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int len = 0;
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
           data.size(), mac, &len);
      std::string hex;
      for (unsigned int i = 0; i < len; ++i) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex += kHex[mac[i] >> 4];
        hex += kHex[mac[i] & 0x0f];
      }
      EXPECT_EQ(hmac_sha256_hex(key, data), hex) << n;
      EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
  }
}

TEST(SignatureTest, NonAsciiAndSlashBodiesVerify) {
  // Meta escapes non-ASCII as \uXXXX and '/' as \/ in webhook bodies; a receiver that re-encodes
  // the JSON before hashing fails exactly on these. Raw UTF-8 must verify too.
  const std::string bodies[] = {
      R"({"entry":[{"changes":[{"value":{"statuses":[{"id":"wamid.A","status":"read"}]}}]}],"object":"whatsapp_business_account"})",
      R"({"title":"Markets \u2014 \u0917\u0941\u0930\u0941\u0935\u093e\u0930","url":"https:\/\/cdn.example.com\/a\/b.pdf"})",
      "{\"title\":\"Markets \xE2\x80\x94 \xE0\xA4\x97\xE0\xA5\x81\xE0\xA4\xB0\xE0\xA5\x81\",\"url\":\"https://cdn.example.com/a/b.pdf\"}",
      std::string("with\0nul", 8),
  };
  for (const auto& body : bodies) {
    EXPECT_TRUE(verify_hub_signature(kSecret, body, sign(body))) << body;
  }
}

TEST(SignatureTest, AnyChangedByteFails) {
  const std::string body = R"({"url":"https:\/\/x.example\/\u00e9"})";
  const std::string header = sign(body);
  // The same text with '/' unescaped, or the escape decoded, is a different body.
  EXPECT_FALSE(verify_hub_signature(kSecret, R"({"url":"https://x.example/\u00e9"})", header));
  EXPECT_FALSE(verify_hub_signature(kSecret, "{\"url\":\"https:\\/\\/x.example\\/\xC3\xA9\"}", header));
  EXPECT_FALSE(verify_hub_signature(kSecret, body + "\n", header));
  EXPECT_FALSE(verify_hub_signature("other-secret", body, header));
}

TEST(SignatureTest, MissingOrMalformedHeaderFails) {
  const std::string body = R"({"object":"whatsapp_business_account","entry":[]})";
  const std::string hex = hmac_sha256_hex(kSecret, body);
  EXPECT_FALSE(verify_hub_signature(kSecret, body, ""));
  EXPECT_FALSE(verify_hub_signature(kSecret, body, hex));               // no "sha256=" prefix
  EXPECT_FALSE(verify_hub_signature(kSecret, body, "sha1=" + hex));
  EXPECT_FALSE(verify_hub_signature(kSecret, body, "sha256=" + hex.substr(1)));  // truncated
  EXPECT_FALSE(verify_hub_signature(kSecret, body, "sha256="));
  std::string flipped = hex;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  EXPECT_FALSE(verify_hub_signature(kSecret, body, "sha256=" + flipped));
  EXPECT_TRUE(verify_hub_signature(kSecret, body, "sha256=" + hex));
}

TEST(SignatureTest, NoSecretVerifiesNothing) {
  const std::string body = "{}";
  EXPECT_FALSE(verify_hub_signature("", body, "sha256=" + hmac_sha256_hex("", body)));
}

TEST(SignatureTest, ConstantTimeEqualComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

// One-click unsubscribe tokens: they name the advisor, verify under the secret that made them
// and under no other, and cannot be altered to name another advisor or guessed.
TEST(UnsubscribeTokenTest, RoundTripsEveryAdvisorId) {
  for (const std::string& id : std::vector<std::string>{"a", "ab", "abc", "adv-0001", "ADV/ü 7&x=y", std::string(200, 'z')}) {
    const std::string t = unsubscribe_token(kSecret, id);
    ASSERT_EQ(t.rfind("u1.", 0), 0u) << t;
    EXPECT_EQ(t.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."), std::string::npos) << t;
    auto back = verify_unsubscribe_token(kSecret, t);
    ASSERT_TRUE(back) << t;
    EXPECT_EQ(*back, id);
    EXPECT_EQ(unsubscribe_token(kSecret, id), t) << "tokens are deterministic (the same link in every email)";
  }
}

TEST(UnsubscribeTokenTest, ForgedOrAlteredTokensAreRefused) {
  const std::string t = unsubscribe_token(kSecret, "adv-0001");
  EXPECT_FALSE(verify_unsubscribe_token("another-secret", t)) << "a token made under another secret";
  EXPECT_FALSE(verify_unsubscribe_token("", t)) << "an empty secret verifies nothing";
  EXPECT_EQ(unsubscribe_token("", "adv-0001"), "");
  // The id part swapped for another advisor's, the MAC kept: refused.
  const std::string other = unsubscribe_token(kSecret, "adv-0002");
  const std::string swapped = other.substr(0, other.rfind('.')) + t.substr(t.rfind('.'));
  EXPECT_FALSE(verify_unsubscribe_token(kSecret, swapped));
  // Any single character of the MAC changed: refused.
  for (std::size_t i = t.rfind('.') + 1; i < t.size(); ++i) {
    std::string x = t;
    x[i] = x[i] == '0' ? '1' : '0';
    EXPECT_FALSE(verify_unsubscribe_token(kSecret, x)) << x;
  }
  for (const std::string& bad : std::vector<std::string>{"", "u1.", "u1..", "u2.YWR2LTAwMDE." + t.substr(t.rfind('.') + 1), "u1.YWR2LTAwMDE",
                                "u1.!!!." + t.substr(t.rfind('.') + 1), t + "0", std::string(600, 'u')}) {
    EXPECT_FALSE(verify_unsubscribe_token(kSecret, bad)) << bad;
  }
  // Another encoding of the same id (non-zero unused bits) is not accepted either.
  const std::string id_part = t.substr(3, t.rfind('.') - 3);
  std::string other_enc = id_part;
  other_enc.back() = other_enc.back() == 'E' ? 'F' : 'E';
  EXPECT_FALSE(verify_unsubscribe_token(kSecret, "u1." + other_enc + t.substr(t.rfind('.'))));
}

}  // namespace
}  // namespace daybreak::channels
