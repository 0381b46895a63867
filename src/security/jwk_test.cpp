#include <gtest/gtest.h>

#include <fstream>

#include "base/temp_dir.hpp"
#include "security/jwk.hpp"

namespace firehook::security {
namespace {

std::span<const std::byte> as_span(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

std::string b64(std::string_view s) {
  return base64url_encode(s);
}

std::string decoded(std::string_view text) {
  auto out = base64url_decode(text);
  EXPECT_TRUE(out.has_value()) << text;
  return out.value_or("");
}

std::string jwks_of(std::initializer_list<std::string> keys) {
  std::string out = R"({"keys":[)";
  bool first = true;
  for (const auto& k : keys) {
    out += first ? "" : ",";
    out += k;
    first = false;
  }
  return out + "]}";
}

// ---------------------------------------------------------------------------------------------

TEST(Base64url, RoundTripsEveryLength) {
  std::string bytes;
  for (int i = 0; i < 70; ++i) {
    EXPECT_EQ(decoded(b64(bytes)), bytes);
    bytes.push_back(static_cast<char>(i * 37 + 200));
  }
  EXPECT_EQ(b64("\xfb\xff"), "-_8");
  EXPECT_EQ(b64("{\"alg\":\"ES256\"}"), "eyJhbGciOiJFUzI1NiJ9");
}

TEST(Base64url, IsStrict) {
  EXPECT_FALSE(base64url_decode("eyJ="));  // padding
  EXPECT_FALSE(base64url_decode("ab+/"));  // standard alphabet
  EXPECT_FALSE(base64url_decode("ab c"));  // whitespace
  EXPECT_FALSE(base64url_decode("abcde")); // 4n+1 characters
  EXPECT_FALSE(base64url_decode("-_9"));   // non-zero trailing bits ("-_8" is canonical)
  EXPECT_FALSE(base64url_decode(std::string_view("ab\0d", 4)));
  EXPECT_EQ(base64url_decode(""), std::string());
}

TEST(JwsAlg, NamesAreExactAndNoneIsNotOne) {
  for (const char* name : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                           "ES256", "ES384", "EdDSA"}) {
    const auto alg = parse_jws_alg(name);
    ASSERT_TRUE(alg) << name;
    EXPECT_EQ(to_string(*alg), name);
  }
  for (const char* name : {"none", "None", "NONE", "hs256", "ES512", "EDDSA", "Ed25519", "", "RS256 "}) {
    EXPECT_FALSE(parse_jws_alg(name)) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// Published test vectors: interoperability, not just agreement with ourselves.

// RFC 7515 appendix A: the JWS Payload shared by A.1 to A.3.
constexpr std::string_view rfc7515_payload =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";

TEST(JwsVectors, Rfc7515A1Hs256) {
  const std::string secret =
      decoded("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  const auto key = verification_key::from_hmac_secret(secret, "");
  const std::string input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + std::string(rfc7515_payload);
  std::string sig = decoded("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  EXPECT_TRUE(verify(jws_alg::hs256, key, input, as_span(sig)));
  EXPECT_EQ(signing_key::hmac(secret).sign(jws_alg::hs256, input), sig);
  sig[5] ^= 1;
  EXPECT_FALSE(verify(jws_alg::hs256, key, input, as_span(sig)));
}

TEST(JwsVectors, Rfc7515A3Es256RawSignature) {
  const auto set = parse_jwks(jwks_of({R"({"kty":"EC","crv":"P-256",
      "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})"}));
  ASSERT_EQ(set.keys.size(), 1U);
  EXPECT_EQ(set.keys[0].type(), key_type::ec_p256);
  const std::string input = "eyJhbGciOiJFUzI1NiJ9." + std::string(rfc7515_payload);
  std::string sig =
      decoded("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q");
  ASSERT_EQ(sig.size(), 64U);
  EXPECT_TRUE(verify(jws_alg::es256, set.keys[0], input, as_span(sig)));
  EXPECT_FALSE(verify(jws_alg::es384, set.keys[0], input, as_span(sig)));
  EXPECT_FALSE(verify(jws_alg::es256, set.keys[0], input + "x", as_span(sig)));
  sig[40] ^= 1; // S changed
  EXPECT_FALSE(verify(jws_alg::es256, set.keys[0], input, as_span(sig)));
}

TEST(JwsVectors, Rfc8037A4Ed25519) {
  const auto set = parse_jwks(
      jwks_of({R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})"}));
  ASSERT_EQ(set.keys.size(), 1U);
  EXPECT_EQ(set.keys[0].type(), key_type::ed25519);
  const std::string input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
  std::string sig =
      decoded("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg");
  EXPECT_TRUE(verify(jws_alg::eddsa, set.keys[0], input, as_span(sig)));
  sig[0] ^= 1;
  EXPECT_FALSE(verify(jws_alg::eddsa, set.keys[0], input, as_span(sig)));
}

// ---------------------------------------------------------------------------------------------
// Keys generated here, every algorithm, through both PEM and JWK.

struct alg_case {
  jws_alg alg;
  key_type type;
};

class EveryAlgorithm : public ::testing::TestWithParam<alg_case> {};

TEST_P(EveryAlgorithm, SignsAndVerifiesThroughPemAndJwk) {
  const auto [alg, type] = GetParam();
  const auto signer = signing_key::generate(type);
  const auto from_pem = verification_key::from_pem(signer.public_pem(), "k1");
  const auto set = parse_jwks(jwks_of({signer.public_jwk("k2", alg)}));
  ASSERT_EQ(set.keys.size(), 1U);
  const auto& from_jwk = set.keys[0];
  EXPECT_EQ(from_pem.type(), type);
  EXPECT_EQ(from_jwk.type(), type);
  EXPECT_EQ(from_jwk.kid(), "k2");
  EXPECT_EQ(from_jwk.alg(), alg);

  const std::string input = b64(R"({"alg":")" + std::string(to_string(alg)) + "\"}") + "." + b64("{}");
  std::string sig = signer.sign(alg, input);
  EXPECT_TRUE(verify(alg, from_pem, input, as_span(sig)));
  EXPECT_TRUE(verify(alg, from_jwk, input, as_span(sig)));
  EXPECT_FALSE(verify(alg, from_pem, input + ".", as_span(sig)));

  // Another key of the same type does not verify it.
  const auto other = verification_key::from_pem(signing_key::generate(type).public_pem(), "");
  EXPECT_FALSE(verify(alg, other, input, as_span(sig)));

  // Nor does a shortened or lengthened signature.
  const std::string shorter = sig.substr(0, sig.size() - 1);
  EXPECT_FALSE(verify(alg, from_pem, input, as_span(shorter)));
  const std::string longer = sig + '\0';
  EXPECT_FALSE(verify(alg, from_pem, input, as_span(longer)));
  sig.back() = static_cast<char>(sig.back() ^ 0x10);
  EXPECT_FALSE(verify(alg, from_pem, input, as_span(sig)));
}

INSTANTIATE_TEST_SUITE_P(
    Jwk, EveryAlgorithm,
    ::testing::Values(alg_case{jws_alg::rs256, key_type::rsa}, alg_case{jws_alg::rs384, key_type::rsa},
                      alg_case{jws_alg::rs512, key_type::rsa}, alg_case{jws_alg::ps256, key_type::rsa},
                      alg_case{jws_alg::ps384, key_type::rsa}, alg_case{jws_alg::ps512, key_type::rsa},
                      alg_case{jws_alg::es256, key_type::ec_p256},
                      alg_case{jws_alg::es384, key_type::ec_p384},
                      alg_case{jws_alg::eddsa, key_type::ed25519}),
    [](const auto& param_info) { return std::string(to_string(param_info.param.alg)); });

TEST(Verify, RsaPkcs1AndPssAreNotInterchangeable) {
  const auto signer = signing_key::generate(key_type::rsa);
  const auto key = verification_key::from_pem(signer.public_pem(), "");
  const std::string input = "a.b";
  const std::string pss = signer.sign(jws_alg::ps256, input);
  const std::string pkcs1 = signer.sign(jws_alg::rs256, input);
  EXPECT_TRUE(verify(jws_alg::ps256, key, input, as_span(pss)));
  EXPECT_FALSE(verify(jws_alg::rs256, key, input, as_span(pss)));
  EXPECT_FALSE(verify(jws_alg::ps256, key, input, as_span(pkcs1)));
  EXPECT_FALSE(verify(jws_alg::rs384, key, input, as_span(pkcs1)));
}

TEST(Verify, EcdsaDerSignatureIsNotAJwsSignature) {
  // A JWS carries R || S; a DER SEQUENCE (what EVP makes) must not be accepted in its place.
  const auto signer = signing_key::generate(key_type::ec_p256);
  const auto key = verification_key::from_pem(signer.public_pem(), "");
  const std::string raw = signer.sign(jws_alg::es256, "a.b");
  ASSERT_EQ(raw.size(), 64U);
  std::string der = "\x30\x44\x02\x20" + raw.substr(0, 32) + "\x02\x20" + raw.substr(32);
  EXPECT_FALSE(verify(jws_alg::es256, key, "a.b", as_span(der)));
  // An ES384 signature by a P-256 key, or the reverse: the key's curve decides.
  const std::string wrong_curve = signer.sign(jws_alg::es384, "a.b");
  EXPECT_FALSE(verify(jws_alg::es384, key, "a.b", as_span(wrong_curve)));
}

TEST(Verify, KeysVerifyOnlyTheirOwnAlgorithms) {
  const auto rsa = verification_key::from_pem(signing_key::generate(key_type::rsa).public_pem(), "");
  const auto ec = verification_key::from_pem(signing_key::generate(key_type::ec_p256).public_pem(), "");
  const auto ed = verification_key::from_pem(signing_key::generate(key_type::ed25519).public_pem(), "");
  for (const auto alg : {jws_alg::hs256, jws_alg::hs384, jws_alg::hs512, jws_alg::es256, jws_alg::eddsa}) {
    EXPECT_FALSE(rsa.can_verify(alg)) << to_string(alg);
  }
  EXPECT_TRUE(rsa.can_verify(jws_alg::ps512));
  EXPECT_FALSE(ec.can_verify(jws_alg::hs256));
  EXPECT_FALSE(ec.can_verify(jws_alg::es384));
  EXPECT_FALSE(ec.can_verify(jws_alg::rs256));
  EXPECT_TRUE(ec.can_verify(jws_alg::es256));
  EXPECT_FALSE(ed.can_verify(jws_alg::hs256));
  EXPECT_TRUE(ed.can_verify(jws_alg::eddsa));
}

TEST(Verify, AlgorithmConfusionWithAPublicKeyAsHmacSecretFails) {
  // The classic attack: HS256 "signed" with the PEM text of the server's public key.
  const auto signer = signing_key::generate(key_type::rsa);
  const std::string pem = signer.public_pem();
  const auto key = verification_key::from_pem(pem, "");
  const std::string input = b64(R"({"alg":"HS256"})") + "." + b64(R"({"sub":"admin"})");
  const std::string forged = signing_key::hmac(pem).sign(jws_alg::hs256, input);
  EXPECT_FALSE(verify(jws_alg::hs256, key, input, as_span(forged)));
}

TEST(Verify, HmacSecretLengthBoundsTheHash) {
  const std::string input = "a.b";
  const auto short_key = verification_key::from_hmac_secret(std::string(32, 's'), "");
  EXPECT_TRUE(short_key.can_verify(jws_alg::hs256));
  EXPECT_FALSE(short_key.can_verify(jws_alg::hs384));
  EXPECT_FALSE(short_key.can_verify(jws_alg::hs512));
  const std::string sig384 = signing_key::hmac(std::string(32, 's')).sign(jws_alg::hs384, input);
  EXPECT_FALSE(verify(jws_alg::hs384, short_key, input, as_span(sig384)));

  const std::string secret(64, 'L');
  const auto long_key = verification_key::from_hmac_secret(secret, "");
  for (const auto alg : {jws_alg::hs256, jws_alg::hs384, jws_alg::hs512}) {
    const std::string sig = signing_key::hmac(secret).sign(alg, input);
    EXPECT_TRUE(verify(alg, long_key, input, as_span(sig))) << to_string(alg);
    EXPECT_FALSE(verify(alg, long_key, "a.c", as_span(sig))) << to_string(alg);
  }
  EXPECT_THROW(verification_key::from_hmac_secret(std::string(31, 's'), ""), key_error);
}

// ---------------------------------------------------------------------------------------------
// PEM files

TEST(Pem, RefusesWhatIsNotOnePublicKey) {
  const std::string pem = signing_key::generate(key_type::ec_p256).public_pem();
  EXPECT_THROW(verification_key::from_pem("", ""), key_error);
  EXPECT_THROW(verification_key::from_pem("not a key", ""), key_error);
  EXPECT_THROW(verification_key::from_pem(pem + pem, ""), key_error);
  EXPECT_THROW(
      verification_key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + pem, ""),
      key_error);
  EXPECT_THROW(
      verification_key::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ""),
      key_error);
  std::string broken = pem; // a character in the algorithm identifier's OID changed
  broken[40] = broken[40] == 'A' ? 'B' : 'A';
  try {
    (void)verification_key::from_pem(broken, "x");
    FAIL() << "a corrupted key was accepted";
  } catch (const key_error& e) {
    EXPECT_NE(std::string(e.what()).find("key \"x\""), std::string::npos) << e.what();
  }
}

TEST(Pem, FilesNameTheirKeyAfterTheFile) {
  base::temp_dir dir{"firehook-jwk"};
  const auto signer = signing_key::generate(key_type::ed25519);
  const auto key = verification_key::from_pem_file(dir.write("issuer-2024.pem", signer.public_pem()));
  EXPECT_EQ(key.kid(), "issuer-2024");
  EXPECT_EQ(key.type(), key_type::ed25519);
  const auto secret =
      verification_key::from_hmac_secret_file(dir.write("shared.key", std::string(40, 'z') + "\n"));
  EXPECT_EQ(secret.kid(), "shared");
  EXPECT_EQ(secret.type(), key_type::hmac);
  const std::string sig = signing_key::hmac(std::string(40, 'z') + "\n").sign(jws_alg::hs256, "a.b");
  EXPECT_TRUE(verify(jws_alg::hs256, secret, "a.b", as_span(sig))); // the newline is part of it

  try {
    (void)verification_key::from_pem_file(dir / "missing.pem");
    FAIL();
  } catch (const key_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.pem"), std::string::npos) << e.what();
  }
  try {
    (void)verification_key::from_hmac_secret_file(dir.write("short.key", "0123456789"));
    FAIL();
  } catch (const key_error& e) {
    EXPECT_NE(std::string(e.what()).find("short.key"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// JWK Sets

TEST(Jwks, SkipsKeysForOtherPurposesAndSaysWhy) {
  const auto signer = signing_key::generate(key_type::ec_p256);
  const auto set = parse_jwks(jwks_of({
      signer.public_jwk("good"),
      R"({"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"})",
      R"({"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"})",
      R"({"kty":"EC","crv":"P-521","x":"AA","y":"AA"})",
      R"({"kty":"OKP","crv":"X25519","x":"AA"})",
      R"({"kty":"RSA","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"})",
      R"({"kty":"EC","crv":"P-256","key_ops":["encrypt"],"x":"AA","y":"AA"})",
      R"({"kty":"XYZ"})",
  }));
  ASSERT_EQ(set.keys.size(), 1U);
  EXPECT_EQ(set.keys[0].kid(), "good");
  EXPECT_EQ(set.keys[0].alg(), std::nullopt);
  ASSERT_EQ(set.skipped.size(), 7U);
  EXPECT_NE(set.skipped[0].find("\"use\""), std::string::npos) << set.skipped[0];
  EXPECT_NE(set.skipped[1].find("hmac_secret_file"), std::string::npos) << set.skipped[1];
  EXPECT_NE(set.skipped[2].find("P-521"), std::string::npos) << set.skipped[2];
}

TEST(Jwks, AlgNarrowsTheKey) {
  const auto signer = signing_key::generate(key_type::rsa);
  const auto set = parse_jwks(jwks_of({signer.public_jwk("ps", jws_alg::ps256)}));
  ASSERT_EQ(set.keys.size(), 1U);
  EXPECT_TRUE(set.keys[0].can_verify(jws_alg::ps256));
  EXPECT_FALSE(set.keys[0].can_verify(jws_alg::rs256));
  const std::string sig = signer.sign(jws_alg::rs256, "a.b");
  EXPECT_FALSE(verify(jws_alg::rs256, set.keys[0], "a.b", as_span(sig)));
}

TEST(Jwks, BrokenDocumentsAndKeysAreErrors) {
  const auto ec = signing_key::generate(key_type::ec_p256);
  const auto rsa = signing_key::generate(key_type::rsa);
  auto with = [](std::string jwk, std::string_view member) {
    jwk.insert(jwk.size() - 1, "," + std::string(member));
    return jwk;
  };
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", "not JSON"},
      {"[]", "JWK Set"},
      {R"({"keys":{}})", "JWK Set"},
      {jwks_of({"42"}), "not a JSON object"},
      {jwks_of({R"({"crv":"P-256"})"}), "\"kty\""},
      {jwks_of({with(ec.public_jwk("a"), R"("d":"AAAA")")}), "private parameter"},
      {jwks_of({with(rsa.public_jwk("a"), R"("p":"AAAA")")}), "private parameter"},
      {jwks_of({ec.public_jwk("a", jws_alg::rs256)}), "does not fit"},
      {jwks_of({R"({"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"})"}), "must be 32 bytes"},
      // A point that is not on P-256 (x = y = 1).
      {jwks_of({R"({"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE",)"
                R"("y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"})"}),
       "not"},
      // RSA under 2048 bits: a 1024-bit modulus.
      {jwks_of({R"({"kty":"RSA","e":"AQAB","n":")" + b64("\xc1" + std::string(127, '\x35')) + "\"}"}),
       "at least 2048"},
      {jwks_of({R"({"kty":"RSA","e":"AQAB","n":"a+b"})"}), "base64url"},
      {jwks_of({R"({"kty":"OKP","crv":"Ed25519","x":"AAAA"})"}), "32 bytes"},
      {jwks_of({R"({"kty":"RSA","kid":7})"}), "\"kid\""},
  };
  for (const auto& [doc, expected] : cases) {
    try {
      (void)parse_jwks(doc);
      ADD_FAILURE() << "accepted: " << doc;
    } catch (const key_error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << doc << "\n -> " << e.what();
    }
  }
}

TEST(Jwks, FileErrorsNameTheFile) {
  base::temp_dir dir{"firehook-jwk"};
  const auto signer = signing_key::generate(key_type::ed25519);
  const auto set = load_jwks_file(dir.write("keys.json", jwks_of({signer.public_jwk("ed")})));
  ASSERT_EQ(set.keys.size(), 1U);
  EXPECT_EQ(set.keys[0].kid(), "ed");
  try {
    (void)load_jwks_file(dir.write("bad.json", R"({"keys":[{"kty":"EC"}]})"));
    FAIL();
  } catch (const key_error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("keys[0]"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)load_jwks_file(dir.write("huge.json", std::string((1 << 20) + 1, ' '))), key_error);
}

} // namespace
} // namespace firehook::security
