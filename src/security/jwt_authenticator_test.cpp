#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include "base/temp_dir.hpp"
#include "security/jwk.hpp"
#include "security/jwt_authenticator.hpp"

namespace firehook::security {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr std::int64_t t0 = 1'700'000'000;                     // "now" in every test
const std::string secret = "0123456789abcdef0123456789abcdef"; // 32 bytes: HS256

std::string b64(std::string_view s) {
  return base64url_encode(s);
}

// A compact JWS with exactly this header and payload (JSON text), signed by `key` with `alg`.
std::string token(const signing_key& key, jws_alg alg, const boost::json::object& header,
                  const boost::json::object& payload) {
  const std::string input = b64(boost::json::serialize(header)) + "." + b64(boost::json::serialize(payload));
  return input + "." + b64(key.sign(alg, input));
}

boost::json::object claims(std::int64_t exp_in = 300) {
  return {{"sub", "device-17"}, {"iss", "https://issuer.test"},
          {"aud", "firehook"},  {"iat", t0 - 10},
          {"exp", t0 + exp_in}, {"roles", boost::json::array{"sensor", "ota"}}};
}

boost::json::object head(jws_alg alg, std::optional<std::string> kid = std::nullopt) {
  boost::json::object h{{"alg", to_string(alg)}, {"typ", "JWT"}};
  if (kid) {
    h["kid"] = *kid;
  }
  return h;
}

// Keys are slow to make (RSA); one set for the whole suite.
struct suite_keys {
  signing_key rsa = signing_key::generate(key_type::rsa);
  signing_key ec256 = signing_key::generate(key_type::ec_p256);
  signing_key ec384 = signing_key::generate(key_type::ec_p384);
  signing_key ed = signing_key::generate(key_type::ed25519);
  signing_key ed2 = signing_key::generate(key_type::ed25519);
  signing_key rsa2 = signing_key::generate(key_type::rsa);
  signing_key hs = signing_key::hmac(secret);
};

class JwtAuth : public ::testing::Test {
protected:
  static void SetUpTestSuite() { keys_ = new suite_keys(); }
  static void TearDownTestSuite() {
    delete keys_;
    keys_ = nullptr;
  }

  void SetUp() override {
    write("issuer-rsa.pem", k().rsa.public_pem());
    write("issuer-ec.pem", k().ec256.public_pem());
    write("issuer-ed.pem", k().ed.public_pem());
    write("hs.key", secret);
    write_jwks({k().ec384.public_jwk("jw-ec384"), k().ed2.public_jwk("jw-ed", jws_alg::eddsa)});
    settings_.public_keys = {dir_ / "issuer-rsa.pem", dir_ / "issuer-ec.pem", dir_ / "issuer-ed.pem"};
    settings_.jwks = dir_ / "keys.jwks";
    settings_.issuer = "https://issuer.test";
    settings_.audience = "firehook";
    settings_.leeway = seconds(30);
    settings_.algorithms = {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"};
  }

  static const suite_keys& k() { return *keys_; }

  void write(const std::string& name, std::string_view content) const {
    // Through a temporary and a rename, as a careful key rotation would do it.
    std::filesystem::rename(dir_.write(name + ".tmp", content), dir_ / name);
  }
  void write_jwks(std::initializer_list<std::string> jwks) const {
    std::string doc = R"({"keys":[)";
    for (const auto& j : jwks) {
      doc += (doc.back() == '[' ? "" : ",") + j;
    }
    write("keys.jwks", doc + "]}");
  }

  std::unique_ptr<jwt_authenticator> make() {
    jwt_options o;
    o.now = [this] { return std::chrono::system_clock::time_point(seconds(now_.load())); };
    return std::make_unique<jwt_authenticator>(settings_, std::move(o));
  }

  static auth_result run(const jwt_authenticator& a, std::optional<std::string_view> password,
                         std::optional<std::string_view> username = "device-17") {
    connect_request r;
    r.listener = "default";
    r.peer_address = "127.0.0.1:50000";
    r.client_id = "device-17";
    r.username = username;
    r.password = password;
    return a.authenticate(r);
  }

  // The token is refused with 0x86 and a detail containing `why`.
  static void expect_denied(const jwt_authenticator& a, const std::string& tok, std::string_view why) {
    const auto r = run(a, tok);
    EXPECT_EQ(r.decision, verdict::deny) << tok;
    EXPECT_EQ(r.reason, mqtt::reason_code::bad_user_name_or_password);
    EXPECT_EQ(r.method, "jwt");
    EXPECT_THAT(r.detail, HasSubstr(std::string(why))) << tok;
  }

  static suite_keys* keys_;
  base::temp_dir dir_{"firehook-jwt-auth"};
  config::jwt_auth_settings settings_;
  std::atomic<std::int64_t> now_{t0};
};

suite_keys* JwtAuth::keys_ = nullptr;

// ---------------------------------------------------------------------------------------------

TEST_F(JwtAuth, ValidTokenOfEveryAlgorithmIsAllowedWithItsIdentity) {
  settings_.hmac_secret_file = dir_ / "hs.key";
  settings_.algorithms.emplace_back("HS256");
  const auto a = make();
  const std::vector<std::tuple<const signing_key*, jws_alg, std::optional<std::string>>> cases{
      {&k().rsa, jws_alg::rs256, std::nullopt},  {&k().rsa, jws_alg::rs384, "issuer-rsa"},
      {&k().rsa, jws_alg::rs512, std::nullopt},  {&k().rsa, jws_alg::ps256, "issuer-rsa"},
      {&k().ec256, jws_alg::es256, "issuer-ec"}, {&k().ec384, jws_alg::es384, "jw-ec384"},
      {&k().ed, jws_alg::eddsa, std::nullopt},   {&k().ed2, jws_alg::eddsa, "jw-ed"},
      {&k().hs, jws_alg::hs256, std::nullopt},   {&k().hs, jws_alg::hs256, "hs"},
  };
  for (const auto& [key, alg, kid] : cases) {
    SCOPED_TRACE(std::string(to_string(alg)) + " kid " + kid.value_or("-"));
    const auto r = run(*a, token(*key, alg, head(alg, kid), claims()));
    ASSERT_EQ(r.decision, verdict::allow) << r.detail;
    EXPECT_EQ(r.method, "jwt");
    EXPECT_EQ(r.who.method, "jwt");
    EXPECT_EQ(r.who.name, "device-17");
    EXPECT_EQ(r.who.roles, (std::vector<std::string>{"sensor", "ota"}));
    EXPECT_EQ(r.who.claims.at("iss"), "https://issuer.test");
    EXPECT_EQ(r.who.claims.at("exp"), std::to_string(t0 + 300));
    EXPECT_EQ(r.who.claims.count("roles"), 0U); // not a string or number
    ASSERT_TRUE(r.who.expires_at);
    EXPECT_EQ(*r.who.expires_at,
              std::chrono::system_clock::time_point(seconds(t0 + 300 + 30))); // exp + leeway
  }
}

TEST_F(JwtAuth, AbstainsWhenThePasswordIsNotAToken) {
  const auto a = make();
  for (const std::optional<std::string_view> pw :
       {std::optional<std::string_view>{}, std::optional<std::string_view>{""},
        std::optional<std::string_view>{"hunter2"}, std::optional<std::string_view>{"a.b"},
        std::optional<std::string_view>{"abc.def.ghi"}, std::optional<std::string_view>{"a.b.c.d"},
        std::optional<std::string_view>{"eyJhbGciOiJSUzI1NiJ9..sig"},
        std::optional<std::string_view>{"my.pass word.x"}, std::optional<std::string_view>{"eyJ@.e30.sig"}}) {
    const auto r = run(*a, pw);
    EXPECT_EQ(r.decision, verdict::abstain) << pw.value_or("(none)") << ": " << r.detail;
  }
}

TEST_F(JwtAuth, MalformedTokensAreDenied) {
  const auto a = make();
  const auto& rsa = k().rsa;
  const std::string sig = "." + b64(std::string(256, 'x'));
  expect_denied(*a, b64("{not json") + "." + b64("{}") + sig, "header is not a JSON object");
  expect_denied(*a, b64(R"({"typ":"JWT"})") + "." + b64("{}") + sig, "no \"alg\"");
  expect_denied(*a, b64(R"({"alg":256})") + "." + b64("{}") + sig, "no \"alg\"");
  expect_denied(*a, b64(R"({"alg":"RS256","kid":5})") + "." + b64("{}") + sig, "\"kid\" is not a string");
  expect_denied(*a, b64(R"({"alg":"RS256","crit":["exp"]})") + "." + b64("{}") + sig, "crit");
  expect_denied(*a, b64(R"({"alg":"HS999"})") + "." + b64("{}") + sig, "unsupported alg");
  // 4n+1 characters cannot be base64url.
  expect_denied(*a, b64(R"({"alg":"RS256"})") + "." + b64("{}") + ".AAAAA", "signature is not base64url");

  // Signed, but the payload is not a JSON object: refused after the signature holds.
  const auto signed_raw = [&](std::string_view payload) {
    const std::string input = b64(R"({"alg":"RS256"})") + "." + b64(payload);
    return input + "." + b64(rsa.sign(jws_alg::rs256, input));
  };
  expect_denied(*a, signed_raw("[1,2]"), "payload is not a base64url JSON object");
  expect_denied(*a, signed_raw("{\"sub\":"), "payload is not a base64url JSON object");
  auto bad_exp = claims();
  bad_exp["exp"] = "tomorrow";
  expect_denied(*a, token(rsa, jws_alg::rs256, head(jws_alg::rs256), bad_exp),
                "\"exp\" is not a NumericDate");
  bad_exp["exp"] = 1e300;
  expect_denied(*a, token(rsa, jws_alg::rs256, head(jws_alg::rs256), bad_exp),
                "\"exp\" is not a NumericDate");
}

TEST_F(JwtAuth, TamperedTokensAreDenied) {
  const auto a = make();
  const std::string good = token(k().rsa, jws_alg::rs256, head(jws_alg::rs256), claims());
  ASSERT_EQ(run(*a, good).decision, verdict::allow);
  // Another subject with the old signature.
  auto other = claims();
  other["sub"] = "admin";
  const std::string forged_payload = b64(boost::json::serialize(other));
  const auto dot1 = good.find('.');
  const auto dot2 = good.find('.', dot1 + 1);
  expect_denied(*a, good.substr(0, dot1 + 1) + forged_payload + good.substr(dot2), "bad RS256 signature");
  // Signed by a key the broker does not have.
  expect_denied(*a, token(k().rsa2, jws_alg::rs256, head(jws_alg::rs256), claims()), "bad RS256 signature");
  // Signature cut off.
  expect_denied(*a, good.substr(0, dot2 + 1), "bad RS256 signature");
}

TEST_F(JwtAuth, ExpiredTokenIsDeniedWithinLeewayAllowed) {
  const auto a = make();
  expect_denied(*a, token(k().ec256, jws_alg::es256, head(jws_alg::es256), claims(-31)), "expired 31 s ago");
  expect_denied(*a, token(k().ec256, jws_alg::es256, head(jws_alg::es256), claims(-30)), "expired");
  EXPECT_EQ(run(*a, token(k().ec256, jws_alg::es256, head(jws_alg::es256), claims(-29))).decision,
            verdict::allow);
  // The same token, later.
  const std::string tok = token(k().ec256, jws_alg::es256, head(jws_alg::es256), claims(60));
  EXPECT_EQ(run(*a, tok).decision, verdict::allow);
  now_ += 90;
  expect_denied(*a, tok, "expired");
}

TEST_F(JwtAuth, NotYetValidTokenIsDenied) {
  const auto a = make();
  auto c = claims();
  c["nbf"] = t0 + 31;
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "not valid before");
  c["nbf"] = t0 + 29;
  EXPECT_EQ(run(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c)).decision, verdict::allow);
}

TEST_F(JwtAuth, IssuedInTheFutureBeyondLeewayIsDenied) {
  const auto a = make();
  auto c = claims();
  c["iat"] = t0 + 120;
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "in the future (iat");
  c["iat"] = t0 + 20;
  EXPECT_EQ(run(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c)).decision, verdict::allow);
}

TEST_F(JwtAuth, AudienceMustMatch) {
  const auto a = make();
  auto c = claims();
  c["aud"] = "another-service";
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "wrong audience");
  c["aud"] = boost::json::array{"another-service", "firehook"};
  EXPECT_EQ(run(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c)).decision, verdict::allow);
  c["aud"] = boost::json::array{"another-service", 7};
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "wrong audience");
  c.erase("aud");
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "no aud");

  // No audience configured: a token meant for some audience is not for us (RFC 7519 4.1.3).
  settings_.audience.clear();
  const auto b = make();
  expect_denied(*b, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims()), "audience is not set");
  EXPECT_EQ(run(*b, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c)).decision, verdict::allow);
}

TEST_F(JwtAuth, IssuerMustMatch) {
  const auto a = make();
  auto c = claims();
  c["iss"] = "https://evil.test";
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "wrong issuer");
  c.erase("iss");
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "iss missing");
}

TEST_F(JwtAuth, RequiredClaimsMustBePresent) {
  settings_.required_claims = {"exp", "jti"};
  const auto a = make();
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims()),
                "required claim \"jti\" missing");
  auto c = claims();
  c["jti"] = "n-1";
  EXPECT_EQ(run(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c)).decision, verdict::allow);
  c.erase("exp");
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "required claim \"exp\" missing");
}

TEST_F(JwtAuth, ATokenMustExpireWithinMaxLifetime) {
  settings_.max_lifetime = std::chrono::hours(1);
  const auto a = make();
  // Within the bound (and its leeway of 30 s): accepted.
  EXPECT_EQ(run(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims(3600 + 30))).decision,
            verdict::allow);
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims(3600 + 31)),
                "valid for 3631 s more, longer than max_lifetime (3600 s)");
  auto c = claims();
  c.erase("exp");
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c),
                "no \"exp\": a token must expire within max_lifetime (3600 s)");
  settings_.max_lifetime = std::chrono::seconds(0); // no bound: a token for a year, or for ever
  const auto unbounded = make();
  EXPECT_EQ(run(*unbounded, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims(365 * 86400))).decision,
            verdict::allow);
  EXPECT_EQ(run(*unbounded, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c)).decision, verdict::allow);
}

TEST_F(JwtAuth, IdentityAndRolesComeFromTheConfiguredClaims) {
  settings_.identity_claim = "device_id";
  settings_.roles_claim = "groups";
  const auto a = make();
  auto c = claims();
  c["device_id"] = "meter-4";
  c["groups"] = "meters";
  c["fw"] = 12;
  c["ratio"] = 0.5;
  c["ok"] = true;
  const auto r = run(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c));
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_EQ(r.who.name, "meter-4");
  EXPECT_EQ(r.who.roles, std::vector<std::string>{"meters"});
  EXPECT_EQ(r.who.claims.at("fw"), "12");
  EXPECT_EQ(r.who.claims.at("ratio"), "5E-1"); // Boost.JSON's shortest form of a double
  EXPECT_EQ(r.who.claims.at("sub"), "device-17");
  EXPECT_EQ(r.who.claims.count("ok"), 0U);

  c["groups"] = boost::json::array{"meters", 3};
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "not a string");
  c["groups"] = boost::json::object{};
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "neither a string nor an array");
  c.erase("groups");
  c["device_id"] = "";
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "identity claim \"device_id\"");
  c.erase("device_id");
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c), "identity claim \"device_id\"");
}

TEST_F(JwtAuth, AClientIdClaimIsTheOnlyClientIdTheTokenMayUse) {
  const auto a = make();
  auto c = claims();
  const auto tok = [&] { return token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), c); };
  EXPECT_FALSE(run(*a, tok()).who.client_id) << "no claim: any client id, bound to none";
  c["client_id"] = "device-17";
  auto r = run(*a, tok());
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_EQ(r.who.client_id, "device-17");
  EXPECT_FALSE(r.who.assigns_client_id);
  c["client_id"] = "device-18";
  r = run(*a, tok());
  EXPECT_EQ(r.decision, verdict::deny);
  EXPECT_EQ(r.reason, mqtt::reason_code::client_identifier_not_valid);
  EXPECT_THAT(r.detail, HasSubstr("for client id \"device-18\", not \"device-17\""));
  // A CONNECT without a client id is given the token's.
  const std::string held = tok(); // the request only views it
  connect_request empty;
  empty.client_id = "";
  empty.password = held;
  r = a->authenticate(empty);
  ASSERT_EQ(r.decision, verdict::allow) << r.detail;
  EXPECT_EQ(r.who.client_id, "device-18");
  EXPECT_TRUE(r.who.assigns_client_id);
  c["client_id"] = 18;
  expect_denied(*a, tok(), "client id claim \"client_id\"");
}

TEST_F(JwtAuth, ATokenOfADeviceThatIsNotActiveIsRefusedAsABadToken) {
  auto devices = registry::device_registry::open(dir_.path() / "devices.db");
  devices->add(registry::new_device{"meter-9", {}, {}, std::nullopt, std::string("device-17")});
  jwt_options o;
  o.now = [this] { return std::chrono::system_clock::time_point(seconds(now_.load())); };
  o.devices = devices;
  const jwt_authenticator a(settings_, std::move(o));
  const auto tok = token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims());
  EXPECT_EQ(run(a, tok).decision, verdict::allow);
  devices->set_state("meter-9", registry::device_state::disabled);
  expect_denied(a, tok, "token subject of device \"meter-9\", which is disabled");
  devices->set_state("meter-9", registry::device_state::active);
  EXPECT_EQ(run(a, tok).decision, verdict::allow);
}

TEST_F(JwtAuth, AlgNoneIsRefusedInAnySpelling) {
  const auto a = make();
  const std::string payload = b64(boost::json::serialize(claims()));
  for (const char* none : {"none", "None", "NONE", "nOnE"}) {
    const std::string h = b64(std::string(R"({"alg":")") + none + "\"}");
    expect_denied(*a, h + "." + payload + ".", "unsigned tokens are never accepted");
    expect_denied(*a, h + "." + payload + "." + b64("sig"), "unsigned tokens are never accepted");
  }
}

TEST_F(JwtAuth, HmacTokenSignedWithThePublicKeyIsRefused) {
  // Without hmac_secret_file, HS256 is not even an algorithm this broker takes...
  const auto a = make();
  const auto forger = signing_key::hmac(k().rsa.public_pem());
  for (const auto& kid : {std::optional<std::string>{}, std::optional<std::string>{"issuer-rsa"}}) {
    expect_denied(*a, token(forger, jws_alg::hs256, head(jws_alg::hs256, kid), claims()),
                  "HS256 is not in auth.jwt.algorithms");
  }
  // ...and with one, the public key is still never an HMAC key.
  settings_.hmac_secret_file = dir_ / "hs.key";
  settings_.algorithms.emplace_back("HS256");
  const auto b = make();
  expect_denied(*b, token(forger, jws_alg::hs256, head(jws_alg::hs256), claims()), "bad HS256 signature");
  expect_denied(*b, token(forger, jws_alg::hs256, head(jws_alg::hs256, "issuer-rsa"), claims()),
                "no key with kid \"issuer-rsa\" verifies HS256");
  // The PEM file's own bytes, too (with its trailing newline).
  std::ifstream in(dir_ / "issuer-rsa.pem", std::ios::binary);
  const std::string pem_file((std::istreambuf_iterator<char>(in)), {});
  expect_denied(*b, token(signing_key::hmac(pem_file), jws_alg::hs256, head(jws_alg::hs256), claims()),
                "bad HS256 signature");
  EXPECT_EQ(run(*b, token(k().hs, jws_alg::hs256, head(jws_alg::hs256), claims())).decision, verdict::allow);
}

TEST_F(JwtAuth, OnlyTheConfiguredAlgorithmsAreTaken) {
  settings_.algorithms = {"ES256"};
  const auto a = make();
  expect_denied(*a, token(k().rsa, jws_alg::rs256, head(jws_alg::rs256), claims()), "RS256 is not in");
  expect_denied(*a, token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa), claims()), "EdDSA is not in");
  EXPECT_EQ(run(*a, token(k().ec256, jws_alg::es256, head(jws_alg::es256), claims())).decision,
            verdict::allow);
  // An ES384 signature by the P-256 key, labelled ES256, does not pass.
  settings_.algorithms = {"ES256", "ES384"};
  const auto b = make();
  expect_denied(*b, token(k().ec256, jws_alg::es384, head(jws_alg::es384), claims()), "bad ES384 signature");
}

TEST_F(JwtAuth, UnknownKidIsDenied) {
  const auto a = make();
  expect_denied(*a, token(k().rsa, jws_alg::rs256, head(jws_alg::rs256, "rotated-away"), claims()),
                "unknown kid \"rotated-away\"");
  // A right key under another key's kid is not tried against the right key.
  expect_denied(*a, token(k().rsa, jws_alg::rs256, head(jws_alg::rs256, "issuer-ec"), claims()),
                "no key with kid \"issuer-ec\" verifies RS256");
  // kid from the token reaches the log only quoted and cleaned.
  const auto r = run(*a, token(k().rsa, jws_alg::rs256, head(jws_alg::rs256, "x\n[ERROR] forged"), claims()));
  EXPECT_THAT(r.detail, HasSubstr("unknown kid \"x?[ERROR] forged\""));
}

TEST_F(JwtAuth, JwksChangesAreReloadedAndABrokenFileKeepsTheOldKeys) {
  using outcome = base::reload_result::outcome;
  const auto a = make();
  EXPECT_EQ(a->key_count(), 5U);
  EXPECT_EQ(a->subject(), "token keys");
  EXPECT_THAT(a->in_force(), HasSubstr("5 verification keys"));
  const std::string new_key_token =
      token(k().rsa2, jws_alg::ps256, head(jws_alg::ps256, "rotated-in"), claims());
  const std::string old_key_token =
      token(k().ec384, jws_alg::es384, head(jws_alg::es384, "jw-ec384"), claims());
  expect_denied(*a, new_key_token, "unknown kid");
  EXPECT_EQ(run(*a, old_key_token).decision, verdict::allow);
  EXPECT_EQ(a->reload(false).what, outcome::unchanged);

  // Rotation: the new key in, the old one out; taken at the next look at the files.
  write_jwks({k().rsa2.public_jwk("rotated-in")});
  expect_denied(*a, new_key_token, "unknown kid"); // authenticate() never reads files
  auto r = a->reload(false);
  EXPECT_EQ(r.what, outcome::applied);
  EXPECT_THAT(r.detail, HasSubstr("verification keys"));
  EXPECT_EQ(run(*a, new_key_token).decision, verdict::allow);
  expect_denied(*a, old_key_token, "unknown kid \"jw-ec384\"");

  // A broken file: the keys in use stay, the result says why, and says it once.
  write("keys.jwks", R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA"}]})");
  r = a->reload(false);
  EXPECT_EQ(r.what, outcome::refused);
  EXPECT_THAT(r.detail, HasSubstr("keys.jwks"));
  EXPECT_EQ(run(*a, new_key_token).decision, verdict::allow);
  EXPECT_EQ(a->reload(false).what, outcome::unchanged);
  r = a->reload(true); // SIGHUP: read again, refused again
  EXPECT_EQ(r.what, outcome::refused);
  EXPECT_EQ(run(*a, new_key_token).decision, verdict::allow);

  // Mended: taken again.
  write_jwks({k().ec384.public_jwk("jw-ec384")});
  EXPECT_EQ(a->reload(false).what, outcome::applied);
  EXPECT_EQ(run(*a, old_key_token).decision, verdict::allow);
}

TEST_F(JwtAuth, EveryKeyFileIsWatched) {
  settings_.hmac_secret_file = dir_ / "hs.key";
  const auto a = make();
  // An edited PEM file is a change too, not only the JWKS file.
  const auto pem = settings_.public_keys.front();
  std::filesystem::rename(pem, dir_ / "moved.pem");
  write(pem.filename().string(), "not a key");
  const auto r = a->reload(false);
  EXPECT_EQ(r.what, base::reload_result::outcome::refused);
  EXPECT_THAT(r.detail, HasSubstr(pem.filename().string()));
}

TEST_F(JwtAuth, StartUpFailsOnUnusableKeyFiles) {
  auto s = settings_;
  settings_.public_keys.push_back(dir_ / "missing.pem");
  try {
    (void)make();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.pem"));
  }
  settings_ = s;
  write("keys.jwks", "{}");
  try {
    (void)make();
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("keys.jwks"));
  }
  settings_ = s;
  settings_.algorithms.emplace_back("HS256"); // no secret file
  EXPECT_THROW((void)make(), std::invalid_argument);
}

TEST_F(JwtAuth, DefaultAlgorithmsTakeHs256OnlyWithASecret) {
  settings_.algorithms.clear();
  const auto a = make();
  expect_denied(*a, token(k().hs, jws_alg::hs256, head(jws_alg::hs256), claims()), "HS256 is not in");
  EXPECT_EQ(run(*a, token(k().rsa, jws_alg::ps256, head(jws_alg::ps256), claims())).decision, verdict::allow);
  settings_.hmac_secret_file = dir_ / "hs.key";
  const auto b = make();
  EXPECT_EQ(run(*b, token(k().hs, jws_alg::hs256, head(jws_alg::hs256), claims())).decision, verdict::allow);
}

TEST_F(JwtAuth, ManyThreadsAuthenticateWhileTheJwksRotates) {
  const auto a = make();
  const std::string pem_token = token(k().ed, jws_alg::eddsa, head(jws_alg::eddsa, "issuer-ed"), claims());
  std::atomic<bool> stop{false};
  std::atomic<int> allowed{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        (run(*a, pem_token).decision == verdict::allow ? allowed : other)++;
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    write_jwks({k().ed2.public_jwk("jw-ed-" + std::to_string(i))});
    (void)a->reload(i % 5 == 0); // the file watch, and now and then a SIGHUP
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_GT(allowed.load(), 0);
  EXPECT_EQ(other.load(), 0); // the PEM key never went away
}

} // namespace
} // namespace firehook::security
