// X-Hub-Signature-256 verification over the raw body (Meta, "Getting started with webhooks",
// payload validation): the HMAC covers the bytes exactly as received, so bodies with
// non-ASCII text and escaped or unescaped '/' must verify, and anything else must not.
#include "channels/signature.hpp"

#include <gtest/gtest.h>

#include <string>

namespace daybreak::channels {
namespace {

constexpr const char* kSecret = "app-secret-0123";

std::string sign(const std::string& body) { return "sha256=" + hmac_sha256_hex(kSecret, body); }

TEST(SignatureTest, HmacMatchesAKnownVector) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
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

}  // namespace
}  // namespace daybreak::channels
