#include "security/jwt_authenticator.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <boost/json.hpp>

namespace firehook::security {

struct jwt_authenticator::key_set {
  std::vector<verification_key> keys;
};

namespace {

using sys_time = std::chrono::system_clock::time_point;

constexpr std::string_view method_name = "jwt";
// The largest NumericDate taken: 9999-12-31T23:59:59Z. Larger values are not dates anybody means.
constexpr double max_numeric_date = 253402300799.0;

// A value from the token for the log: quoted, printable ASCII only, at most 64 characters, so a
// crafted kid or claim cannot forge log lines.
std::string log_quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
  }
  if (s.size() > 64) {
    out += "...";
  }
  return out + "\"";
}

std::string_view sv(const boost::json::string& s) {
  return {s.data(), s.size()};
}

bool is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

struct compact_jws {
  std::string_view header, payload, signature; // base64url text
  std::string header_json;                     // decoded
};

// JWS compact form (RFC 7515 section 7.1), or nullopt when the password is something else.
std::optional<compact_jws> split_compact(std::string_view text) {
  const auto first = text.find('.');
  if (first == std::string_view::npos) {
    return std::nullopt;
  }
  const auto second = text.find('.', first + 1);
  if (second == std::string_view::npos || text.find('.', second + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  compact_jws out{
      text.substr(0, first), text.substr(first + 1, second - first - 1), text.substr(second + 1), {}};
  if (out.header.empty() || out.payload.empty()) {
    return std::nullopt;
  }
  for (const char c : text) {
    if (c != '.' && !is_b64url_char(c)) {
      return std::nullopt;
    }
  }
  auto header = base64url_decode(out.header);
  if (!header || header->empty() || header->front() != '{') {
    return std::nullopt;
  }
  out.header_json = std::move(*header);
  return out;
}

std::optional<boost::json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.get_object());
}

// A NumericDate (RFC 7519 section 2): seconds since the epoch, possibly fractional.
std::optional<sys_time> numeric_date(const boost::json::value& v) {
  double seconds = 0;
  if (v.is_int64()) {
    seconds = static_cast<double>(v.get_int64());
  } else if (v.is_uint64()) {
    seconds = static_cast<double>(v.get_uint64());
  } else if (v.is_double()) {
    seconds = v.get_double();
  } else {
    return std::nullopt;
  }
  if (!std::isfinite(seconds) || seconds < 0 || seconds > max_numeric_date) {
    return std::nullopt;
  }
  return sys_time(std::chrono::duration_cast<sys_time::duration>(std::chrono::duration<double>(seconds)));
}

std::string seconds_text(std::chrono::system_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

std::vector<jws_alg> allowed_algorithms(const config::jwt_auth_settings& s) {
  std::vector<std::string> names = s.algorithms;
  if (names.empty()) {
    // The default of config.hpp, for settings made without the parser.
    names = {"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"};
    if (!s.hmac_secret_file.empty()) {
      names.emplace_back("HS256");
    }
  }
  std::vector<jws_alg> out;
  for (const auto& name : names) {
    const auto alg = parse_jws_alg(name);
    if (!alg) {
      throw std::invalid_argument("auth.jwt.algorithms: unsupported algorithm " + log_quoted(name));
    }
    const bool hmac = *alg == jws_alg::hs256 || *alg == jws_alg::hs384 || *alg == jws_alg::hs512;
    if (hmac && s.hmac_secret_file.empty()) {
      throw std::invalid_argument("auth.jwt.algorithms: " + name + " needs hmac_secret_file");
    }
    out.push_back(*alg);
  }
  return out;
}

auth_result deny(std::string detail) {
  return auth_result::deny(std::string(method_name), mqtt::reason_code::bad_user_name_or_password,
                           "token refused: " + std::move(detail));
}

} // namespace

jwt_authenticator::jwt_authenticator(config::jwt_auth_settings settings, jwt_options options)
    : reloadable("token keys"), settings_(std::move(settings)), options_(std::move(options)),
      algorithms_(allowed_algorithms(settings_)) {
  load_first();
}

jwt_authenticator::~jwt_authenticator() = default;

std::vector<std::filesystem::path> jwt_authenticator::watched_files() const {
  std::vector<std::filesystem::path> files = settings_.public_keys;
  for (const auto* file : {&settings_.jwks, &settings_.hmac_secret_file}) {
    if (!file->empty()) {
      files.push_back(*file);
    }
  }
  return files;
}

std::shared_ptr<const jwt_authenticator::key_set> jwt_authenticator::read_keys(std::string& skipped) const {
  auto set = std::make_shared<key_set>();
  for (const auto& file : settings_.public_keys) {
    set->keys.push_back(verification_key::from_pem_file(file));
  }
  if (!settings_.jwks.empty()) {
    auto jwks = load_jwks_file(settings_.jwks);
    for (const auto& why : jwks.skipped) {
      skipped += "; " + settings_.jwks.string() + ": skipped " + why;
    }
    std::move(jwks.keys.begin(), jwks.keys.end(), std::back_inserter(set->keys));
  }
  if (!settings_.hmac_secret_file.empty()) {
    set->keys.push_back(verification_key::from_hmac_secret_file(settings_.hmac_secret_file));
  }
  if (set->keys.empty()) {
    throw key_error("auth.jwt: no usable verification key in public_keys, jwks or hmac_secret_file");
  }
  return set;
}

std::string jwt_authenticator::load() {
  std::string skipped;
  auto fresh = read_keys(skipped);
  const std::size_t count = fresh->keys.size();
  {
    const std::lock_guard lock(keys_mutex_);
    keys_ = std::move(fresh);
  }
  return std::to_string(count) + " verification keys" + skipped;
}

std::shared_ptr<const jwt_authenticator::key_set> jwt_authenticator::current_keys() const {
  const std::lock_guard lock(keys_mutex_);
  return keys_;
}

std::size_t jwt_authenticator::key_count() const {
  return current_keys()->keys.size();
}

auth_result jwt_authenticator::authenticate(const connect_request& request) const {
  if (!request.password) {
    return auth_result::abstain();
  }
  const auto jws = split_compact(*request.password);
  if (!jws) {
    return auth_result::abstain();
  }

  // --- the header (RFC 7515 section 4)
  const auto header = parse_object(jws->header_json);
  if (!header) {
    return deny("malformed: the header is not a JSON object");
  }
  const auto* alg_value = header->if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) {
    return deny("malformed: the header has no \"alg\" string");
  }
  const std::string_view alg_name = sv(alg_value->get_string());
  const auto alg = parse_jws_alg(alg_name);
  if (!alg) {
    std::string lower(alg_name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    if (lower == "none") {
      return deny("alg " + log_quoted(alg_name) + ": unsigned tokens are never accepted");
    }
    return deny("unsupported alg " + log_quoted(alg_name));
  }
  if (std::find(algorithms_.begin(), algorithms_.end(), *alg) == algorithms_.end()) {
    return deny("alg " + std::string(to_string(*alg)) + " is not in auth.jwt.algorithms");
  }
  // RFC 7515 section 4.1.11: extensions listed in "crit" must be understood; we know none.
  if (header->contains("crit")) {
    return deny("the header has \"crit\" extensions, none of which is supported");
  }
  std::optional<std::string_view> kid;
  if (const auto* k = header->if_contains("kid")) {
    if (!k->is_string()) {
      return deny("malformed: \"kid\" is not a string");
    }
    kid = sv(k->get_string());
  }

  // --- the signature (RFC 7515 section 5.2)
  const auto keys = current_keys();
  bool kid_known = false;
  std::vector<const verification_key*> candidates;
  for (const auto& key : keys->keys) {
    if (kid && key.kid() != *kid) {
      continue;
    }
    kid_known = true;
    if (key.can_verify(*alg)) {
      candidates.push_back(&key);
    }
  }
  if (kid && !kid_known) {
    return deny("unknown kid " + log_quoted(*kid));
  }
  if (candidates.empty()) {
    return deny("no key " + (kid ? "with kid " + log_quoted(*kid) + " " : std::string()) + "verifies " +
                std::string(to_string(*alg)));
  }
  const auto signature = base64url_decode(jws->signature);
  if (!signature) {
    return deny("malformed: the signature is not base64url");
  }
  const std::string_view signing_input(jws->header.data(), jws->header.size() + 1 + jws->payload.size());
  const auto sig_bytes = std::as_bytes(std::span<const char>(signature->data(), signature->size()));
  const bool good = std::any_of(candidates.begin(), candidates.end(), [&](const auto* key) {
    return verify(*alg, *key, signing_input, sig_bytes);
  });
  if (!good) {
    return deny("bad " + std::string(to_string(*alg)) + " signature" +
                (kid ? " (kid " + log_quoted(*kid) + ")" : std::string()));
  }

  // --- the claims (RFC 7519 section 4.1), only once the signature holds
  const auto payload_text = base64url_decode(jws->payload);
  const auto claims = payload_text ? parse_object(*payload_text) : std::nullopt;
  if (!claims) {
    return deny("malformed: the payload is not a base64url JSON object");
  }
  const sys_time now = options_.now ? options_.now() : std::chrono::system_clock::now();
  const auto leeway = std::chrono::duration_cast<std::chrono::system_clock::duration>(settings_.leeway);
  const auto date = [&](std::string_view name, std::optional<sys_time>& out) -> std::optional<std::string> {
    if (const auto* v = claims->if_contains(name)) {
      out = numeric_date(*v);
      if (!out) {
        return "malformed: \"" + std::string(name) + "\" is not a NumericDate";
      }
    }
    return std::nullopt;
  };
  std::optional<sys_time> exp, nbf, iat;
  for (auto [name, out] : {std::pair{"exp", &exp}, std::pair{"nbf", &nbf}, std::pair{"iat", &iat}}) {
    if (auto problem = date(name, *out)) {
      return deny(*problem);
    }
  }
  if (exp && now >= *exp + leeway) {
    return deny("expired " + seconds_text(now - *exp) + " ago (leeway " + seconds_text(leeway) + ")");
  }
  const auto most = std::chrono::duration_cast<std::chrono::system_clock::duration>(settings_.max_lifetime);
  if (exp && most.count() != 0 && *exp - now > most + leeway) {
    return deny("valid for " + seconds_text(*exp - now) + " more, longer than max_lifetime (" + seconds_text(most) +
                ")");
  }
  if (nbf && now + leeway < *nbf) {
    return deny("not valid before " + seconds_text(*nbf - now) + " from now (nbf, leeway " +
                seconds_text(leeway) + ")");
  }
  if (iat && now + leeway < *iat) {
    return deny("issued " + seconds_text(*iat - now) + " in the future (iat, leeway " + seconds_text(leeway) +
                ")");
  }

  if (!settings_.issuer.empty()) {
    const auto* iss = claims->if_contains("iss");
    if (iss == nullptr || !iss->is_string() || sv(iss->get_string()) != settings_.issuer) {
      return deny("wrong issuer: iss " +
                  (iss == nullptr     ? std::string("missing")
                   : iss->is_string() ? log_quoted(sv(iss->get_string()))
                                      : std::string("not a string")) +
                  ", expected " + log_quoted(settings_.issuer));
    }
  }
  if (const auto* aud = claims->if_contains("aud")) {
    if (settings_.audience.empty()) {
      return deny(
          "the token names an audience (aud) and auth.jwt.audience is not set (RFC 7519 section 4.1.3)");
    }
    bool match = aud->is_string() && sv(aud->get_string()) == settings_.audience;
    if (const auto* list = aud->if_array()) {
      match = std::any_of(list->begin(), list->end(), [&](const boost::json::value& v) {
        return v.is_string() && sv(v.get_string()) == settings_.audience;
      });
    }
    if (!match) {
      return deny("wrong audience: aud does not contain " + log_quoted(settings_.audience));
    }
  } else if (!settings_.audience.empty()) {
    return deny("wrong audience: no aud, expected " + log_quoted(settings_.audience));
  }
  for (const auto& name : settings_.required_claims) {
    if (!claims->contains(name)) {
      return deny("required claim " + log_quoted(name) + " missing");
    }
  }
  if (!exp && most.count() != 0) {
    return deny("no \"exp\": a token must expire within max_lifetime (" + seconds_text(most) + ")");
  }

  // --- the identity
  identity who;
  who.method = std::string(method_name);
  const auto* name = claims->if_contains(settings_.identity_claim);
  if (name == nullptr || !name->is_string() || name->get_string().empty()) {
    return deny("identity claim " + log_quoted(settings_.identity_claim) + " missing, empty or not a string");
  }
  who.name = std::string(sv(name->get_string()));
  if (const auto* roles = claims->if_contains(settings_.roles_claim)) {
    if (roles->is_string()) {
      who.roles.emplace_back(sv(roles->get_string()));
    } else if (const auto* list = roles->if_array()) {
      for (const auto& role : *list) {
        if (!role.is_string()) {
          return deny("roles claim " + log_quoted(settings_.roles_claim) +
                      " holds a value that is not a string");
        }
        who.roles.emplace_back(sv(role.get_string()));
      }
    } else {
      return deny("roles claim " + log_quoted(settings_.roles_claim) +
                  " is neither a string nor an array of strings");
    }
  }
  for (const auto& [key, value] : *claims) {
    if (value.is_string()) {
      who.claims.emplace(std::string(sv(key)), std::string(sv(value.get_string())));
    } else if (value.is_number()) {
      who.claims.emplace(std::string(sv(key)), boost::json::serialize(value));
    }
  }
  if (exp) {
    who.expires_at = *exp + leeway;
  }
  if (options_.devices) {
    // After the signature, so that a disabled device's token costs what a good one does.
    try {
      if (const auto device = options_.devices->linked_to_token_subject(who.name);
          device && device->second != registry::device_state::active) {
        return deny("token subject of device \"" + device->first + "\", which is " +
                    std::string(registry::to_string(device->second)));
      }
    } catch (const std::exception& e) {
      return deny(std::string("device registry: ") + e.what());
    }
  }
  // The client id the issuer gave the token: its holder may use that one only, so {client_id}
  // proves something for it, as for a certificate that must match.
  if (const auto* bound = claims->if_contains(settings_.client_id_claim)) {
    if (!bound->is_string() || bound->get_string().empty()) {
      return deny("client id claim " + log_quoted(settings_.client_id_claim) + " is not a non-empty string");
    }
    who.client_id = std::string(sv(bound->get_string()));
    if (request.client_id.empty()) {
      who.assigns_client_id = true;
    } else if (request.client_id != *who.client_id) {
      return auth_result::deny(std::string(method_name), mqtt::reason_code::client_identifier_not_valid,
                               "the token is for client id " + log_quoted(*who.client_id) + ", not " +
                                   log_quoted(request.client_id));
    }
  }
  return auth_result::allow(std::move(who));
}

} // namespace firehook::security
