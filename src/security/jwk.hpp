#pragma once
// Keys that verify JSON Web Signatures (RFC 7515), loaded from PEM files, an HMAC secret file or a
// JWK Set (RFC 7517, key parameters from RFC 7518 section 6 and RFC 8037 for Ed25519).
//
// Each key is bound to the algorithms its type can verify, and nothing else:
//
//   key type   comes from                              verifies
//   hmac       the configured secret file only         HS256 HS384 HS512 (the secret at least as
//                                                      long as the hash: 32, 48, 64 bytes)
//   rsa        PEM "PUBLIC KEY", JWK kty "RSA"         RS256 RS384 RS512 PS256 PS384 PS512
//                                                      (>= 2048 bits)
//   ec_p256    PEM "PUBLIC KEY", JWK kty "EC" P-256    ES256
//   ec_p384    PEM "PUBLIC KEY", JWK kty "EC" P-384    ES384
//   ed25519    PEM "PUBLIC KEY", JWK kty "OKP" Ed25519 EdDSA
//
// So algorithm confusion (an HS256 token "signed" with the bytes of a public key) cannot happen:
// a public key file or a JWK never becomes an HMAC secret, and verify() refuses any pairing
// outside this table. A JWK "alg" narrows its key to that one algorithm. "none" is not an
// algorithm here at all.
//
// Done with OpenSSL 3 EVP directly: Debian 12's cjose (0.6.2) has no OKP keys and no EdDSA, and
// its libjwt (1.10.2) has neither PS256, EdDSA nor JWK Sets (checked against both packages'
// headers: cjose's jwk.h knows kty RSA, EC and oct; libjwt's jwt_alg_t ends at ES512).
//
// Thread safety: verification_key is immutable after construction and may be shared by any number
// of threads; verify() keeps its state on the stack. Every function here leaves the calling
// thread's OpenSSL error queue empty, so it cannot confuse a TLS call that follows on that thread.
//
// Errors: the loaders throw key_error with a message that names the file or the JWK (start-up and
// reload only); verify() never throws and answers false for anything that is not a good signature.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace firehook::security {

// The JWS "alg" values Firehook verifies (RFC 7518 section 3.1, RFC 8037 section 3.1).
enum class jws_alg : std::uint8_t {
  hs256,
  hs384,
  hs512,
  rs256,
  rs384,
  rs512,
  ps256,
  ps384,
  ps512,
  es256,
  es384,
  eddsa
};

// The exact, case-sensitive RFC name ("RS256", "EdDSA", ...) to the algorithm. "none" and every
// name not listed above give nullopt.
std::optional<jws_alg> parse_jws_alg(std::string_view name) noexcept;
std::string_view to_string(jws_alg alg) noexcept;

enum class key_type : std::uint8_t { hmac, rsa, ec_p256, ec_p384, ed25519 };
std::string_view to_string(key_type type) noexcept;

class key_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class verification_key {
public:
  // A SubjectPublicKeyInfo PEM block ("-----BEGIN PUBLIC KEY-----") holding an RSA (>= 2048 bits),
  // EC P-256/P-384 (named curve) or Ed25519 key. A private key, a certificate or any other
  // key type is refused.
  static verification_key from_pem(std::string_view pem, std::string kid);
  // The file's key; its kid is the file name without its extension ("keys/device-ca.pem" ->
  // "device-ca").
  static verification_key from_pem_file(const std::filesystem::path& file);
  // An HMAC secret of at least 32 bytes (RFC 7518 section 3.2: the key must be at least as long
  // as the hash), used byte for byte. HS384 and HS512 are admitted only when it is at least 48
  // and 64 bytes long.
  static verification_key from_hmac_secret(std::string_view secret, std::string kid);
  // The file's bytes as they are (a trailing newline is part of the secret); kid as for PEM files.
  static verification_key from_hmac_secret_file(const std::filesystem::path& file);

  const std::string& kid() const noexcept { return kid_; }
  key_type type() const noexcept { return type_; }
  // The JWK "alg" this key was narrowed to, if any.
  std::optional<jws_alg> alg() const noexcept { return alg_; }
  // Whether the key's type (and "alg", when given) admits `alg`: the table above.
  bool can_verify(jws_alg alg) const noexcept;

private:
  struct material;
  friend struct key_factory;
  friend bool verify(jws_alg alg, const verification_key& key, std::string_view signing_input,
                     std::span<const std::byte> signature) noexcept;

  verification_key(std::shared_ptr<const material> m, key_type type, std::string kid,
                   std::optional<jws_alg> alg);

  std::shared_ptr<const material> material_;
  key_type type_;
  std::string kid_;
  std::optional<jws_alg> alg_;
};

// True only when `signature` is a valid `alg` signature by `key` over `signing_input` (the ASCII
// "BASE64URL(header).BASE64URL(payload)"), and the key may verify `alg`. Signature encodings are
// those of RFC 7518: ECDSA is the fixed-length R || S (64 bytes for ES256, 96 for ES384), RSA is
// exactly the modulus length, PSxxx is RSASSA-PSS with SHA-xxx, MGF1-SHA-xxx and a salt as long
// as the hash (32 bytes for PS256).
bool verify(jws_alg alg, const verification_key& key, std::string_view signing_input,
            std::span<const std::byte> signature) noexcept;

struct jwk_set {
  std::vector<verification_key> keys;
  // One line per JWK that was left out on purpose, saying why: a key for encryption ("use":
  // "enc"), a symmetric ("oct") key, an unsupported curve or "alg".
  std::vector<std::string> skipped;
};

// A JWK Set: {"keys": [...]}. Keys of kty RSA (n, e), EC (crv P-256/P-384, x, y) and OKP (crv
// Ed25519, x); "kid", "use", "key_ops" and "alg" are honoured. Throws key_error for a document
// that is not a JWK Set and for a key of a supported type that is malformed (bad base64url, a
// point not on the curve, an RSA key under 2048 bits, an "alg" that does not fit the key type) or
// that carries private parameters ("d", "p", ...): a broken file is reported, not half used.
jwk_set parse_jwks(std::string_view json);
// The same for a file (at most 1 MiB); the message names the file.
jwk_set load_jwks_file(const std::filesystem::path& file);

// Strict base64url without padding (RFC 7515 section 2): any other character, padding or
// non-zero trailing bits give nullopt. The bytes are returned in a string.
std::optional<std::string> base64url_decode(std::string_view text);
// base64url without padding.
std::string base64url_encode(std::string_view bytes);

// A private key that makes JWS signatures. The broker itself only verifies; this is for tests
// (which do not include OpenSSL themselves: outside net/ and registry/, only jwk.cpp does) and
// for tools that issue development tokens. Immutable after construction, shareable between
// threads. Throws key_error.
class signing_key {
public:
  // A fresh key: RSA 2048 bits, EC P-256 or P-384, Ed25519. Not for hmac.
  static signing_key generate(key_type type);
  // An HMAC key: the secret's bytes as they are (no length check: tests need short ones).
  static signing_key hmac(std::string_view secret);

  key_type type() const noexcept { return type_; }
  // The public half as a SubjectPublicKeyInfo PEM block; key_error for hmac.
  std::string public_pem() const;
  // The public half as a JWK object (JSON text) with this kid and, when given, "alg".
  std::string public_jwk(std::string_view kid, std::optional<jws_alg> alg = std::nullopt) const;
  // The RFC 7518 signature of `signing_input` (ECDSA as R || S). Every pairing the key can compute
  // is made, even one verify() refuses (an ES384 signature by a P-256 key), so that tests can
  // make the tokens an attacker would; an impossible one (RS256 with an EC key) throws key_error.
  std::string sign(jws_alg alg, std::string_view signing_input) const;

private:
  struct material;
  signing_key(std::shared_ptr<const material> m, key_type type) : material_(std::move(m)), type_(type) {}
  std::shared_ptr<const material> material_;
  key_type type_;
};

} // namespace firehook::security
