#include "registry/enrollment.hpp"

#include <sodium.h>

#include <array>
#include <ctime>

#include <boost/json.hpp>

namespace firehook::registry {
namespace {

constexpr std::string_view token_prefix = "fhe1_";
constexpr std::size_t token_bytes = 16; // 128 bits: not guessable, and hashed with plain SHA-256

std::string hex(const unsigned char* bytes, std::size_t n) {
  std::string out(n * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, n);
  out.pop_back();
  return out;
}

std::string utc_text(std::int64_t t) {
  const std::time_t tt = t;
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::array<char, 32> buf{};
  const auto n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf.data(), n);
}

boost::json::array to_json(const std::vector<std::string>& list) {
  boost::json::array a;
  for (const auto& s : list) {
    a.emplace_back(s);
  }
  return a;
}

std::string join(const std::vector<std::string>& list) {
  std::string out;
  for (const auto& s : list) {
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

// "" when `r` asks for nothing beyond template `t`, otherwise why it is refused.
std::string template_mismatch(const enrollment_request& r, const config::enrollment_template& t) {
  if (r.template_name && *r.template_name != t.name) {
    return "template mismatch: the token enrols into template \"" + t.name + "\", not \"" + *r.template_name +
           "\"";
  }
  if (r.roles && *r.roles != t.roles) {
    return "roles mismatch: template \"" + t.name + "\" gives roles [" + join(t.roles) + "], not [" +
           join(*r.roles) + "]";
  }
  if (r.attributes) {
    const attribute_map wanted(t.attributes.begin(), t.attributes.end());
    if (*r.attributes != wanted) {
      return "attributes mismatch: template \"" + t.name + "\" sets the attributes itself";
    }
  }
  return {};
}

} // namespace

enrollment_outcome refused_enrollment(std::string reason) {
  enrollment_outcome out;
  boost::json::object o;
  o["status"] = "refused";
  o["reason"] = reason;
  out.response = boost::json::serialize(o);
  out.reason = std::move(reason);
  return out;
}

std::string hash_enrollment_token(std::string_view token) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return hex(digest.data(), digest.size());
}

std::string_view to_string(token_status s) {
  switch (s) {
  case token_status::valid:
    return "valid";
  case token_status::unknown:
    return "unknown token";
  case token_status::used:
    return "token already used";
  case token_status::expired:
    return "token expired";
  }
  return "";
}

std::shared_ptr<enrollment_tokens> enrollment_tokens::open(const std::filesystem::path& path) {
  return std::make_shared<enrollment_tokens>(std::make_shared<store>(path));
}

std::vector<std::string> enrollment_tokens::create(std::string_view template_name, unsigned count,
                                                   std::int64_t expires_at) {
  if (sodium_init() < 0) {
    throw store_error("libsodium cannot start");
  }
  std::vector<std::string> tokens;
  tokens.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    std::array<unsigned char, token_bytes> random{};
    randombytes_buf(random.data(), random.size());
    tokens.push_back(std::string(token_prefix) + hex(random.data(), random.size()));
  }
  const std::int64_t now = unix_now();
  db_->transaction([&](connection& c) {
    statement s = c.prepare("INSERT INTO enrollment_tokens (hash, template, created_at, expires_at) "
                            "VALUES (?1, ?2, ?3, ?4)");
    for (const auto& t : tokens) {
      s.bind(1, hash_enrollment_token(t)).bind(2, template_name).bind(3, now).bind(4, expires_at).run();
      s.reset();
    }
  });
  return tokens;
}

token_check enrollment_tokens::check(std::string_view token_hash, std::int64_t now) {
  connection c = db_->lock();
  statement s = c.prepare("SELECT template, expires_at, used_at FROM enrollment_tokens WHERE hash = ?1");
  s.bind(1, token_hash);
  token_check out;
  if (!s.step()) {
    return out;
  }
  out.template_name = s.column_text(0);
  out.expires_at = s.column_int(1);
  out.status = !s.column_is_null(2)    ? token_status::used
               : out.expires_at <= now ? token_status::expired
                                       : token_status::valid;
  return out;
}

token_status enrollment_tokens::redeem(std::string_view token_hash, std::int64_t now,
                                       const new_device& device, const device_certificate& cert) {
  return db_->transaction([&](connection& c) {
    // The claim and its check are one statement inside BEGIN IMMEDIATE: of two redeems of one
    // token, whichever writes second finds used_at set and changes nothing.
    c.prepare("UPDATE enrollment_tokens SET used_at = ?1, used_by = ?2 "
              "WHERE hash = ?3 AND used_at IS NULL AND expires_at > ?1")
        .bind(1, now)
        .bind(2, device.name)
        .bind(3, token_hash)
        .run();
    if (c.changes() == 0) {
      statement s = c.prepare("SELECT used_at FROM enrollment_tokens WHERE hash = ?1");
      s.bind(1, token_hash);
      if (!s.step()) {
        return token_status::unknown;
      }
      return s.column_is_null(0) ? token_status::expired : token_status::used;
    }
    // Throws device_error (name taken): the transaction rolls back, the token stays unused.
    insert_device(c, device, cert);
    return token_status::valid;
  });
}

std::optional<enrollment_request> parse_enrollment_request(std::string_view payload, std::string& why) {
  if (payload.size() > max_enrollment_request) {
    why = "request larger than " + std::to_string(max_enrollment_request) + " bytes";
    return std::nullopt;
  }
  if (payload.empty()) {
    // mosquitto_rr 2.0.11 (Debian 12) sends an empty message with -f and -s: say so plainly.
    why = "request is empty";
    return std::nullopt;
  }
  enrollment_request r;
  if (payload.starts_with("-----BEGIN")) {
    r.csr_pem = std::string(payload);
    return r;
  }
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(payload, ec);
  if (ec || !v.is_object()) {
    why = "request is neither a JSON object nor a PEM certificate request";
    return std::nullopt;
  }
  for (const auto& [key, value] : v.as_object()) {
    if (key == "csr" && value.is_string()) {
      r.csr_pem = std::string(value.as_string());
    } else if (key == "template" && value.is_string()) {
      r.template_name = std::string(value.as_string());
    } else if (key == "roles" && value.is_array()) {
      r.roles.emplace();
      for (const auto& role : value.as_array()) {
        if (!role.is_string()) {
          why = "\"roles\" must be an array of strings";
          return std::nullopt;
        }
        r.roles->emplace_back(role.as_string());
      }
    } else if (key == "attributes" && value.is_object()) {
      r.attributes.emplace();
      for (const auto& [k, a] : value.as_object()) {
        if (!a.is_string()) {
          why = "\"attributes\" values must be strings";
          return std::nullopt;
        }
        r.attributes->emplace(std::string(k), std::string(a.as_string()));
      }
    } else {
      why = "unknown or mistyped key \"" + std::string(key) + "\" (known: csr, template, roles, attributes)";
      return std::nullopt;
    }
  }
  if (r.csr_pem.empty()) {
    why = "\"csr\" is missing";
    return std::nullopt;
  }
  return r;
}

enrollment_outcome enroll(enrollment_tokens& tokens, const config::enrollment_settings& templates,
                          const ca_files& ca, std::string_view name, std::string_view token_hash,
                          std::string_view payload, std::int64_t now) {
  enrollment_outcome out;
  const auto refuse = [&](std::string reason) {
    auto refusal = refused_enrollment(std::move(reason));
    refusal.template_name = out.template_name;
    return refusal;
  };
  try {
    const token_check token = tokens.check(token_hash, now);
    out.template_name = token.template_name;
    if (token.status != token_status::valid) {
      return refuse(std::string(to_string(token.status)));
    }
    const config::enrollment_template* t = templates.find(token.template_name);
    if (t == nullptr) {
      return refuse("template \"" + token.template_name + "\" is not configured");
    }
    std::string why;
    const auto request = parse_enrollment_request(payload, why);
    if (!request) {
      return refuse(why);
    }
    if (auto mismatch = template_mismatch(*request, *t); !mismatch.empty()) {
      return refuse(mismatch);
    }
    const certificate_authority authority = certificate_authority::load(ca);
    issued_certificate issued;
    try {
      // The CN is the authenticated name; the CSR's subject is ignored (certificate_authority).
      issued = authority.sign_request(request->csr_pem, "the request", {std::string(name), {}, t->days});
    } catch (const ca_error& e) {
      return refuse(std::string("bad certificate request: ") + e.what());
    }
    new_device device;
    device.name = std::string(name);
    device.roles = t->roles;
    device.attributes = attribute_map(t->attributes.begin(), t->attributes.end());
    const device_certificate cert{
        issued.serial_hex, issued.fingerprint_sha256, issued.not_before, issued.not_after, now, std::nullopt};
    try {
      if (const auto status = tokens.redeem(token_hash, now, device, cert); status != token_status::valid) {
        return refuse(std::string(to_string(status)));
      }
    } catch (const device_error& e) {
      return refuse(e.what());
    }
    out.issued = true;
    out.serial_hex = issued.serial_hex;
    boost::json::object o;
    o["status"] = "issued";
    o["device"] = std::string(name);
    o["template"] = t->name;
    o["roles"] = to_json(t->roles);
    boost::json::object attributes;
    for (const auto& [k, v] : t->attributes) {
      attributes[k] = v;
    }
    o["attributes"] = std::move(attributes);
    o["serial"] = issued.serial_hex;
    o["not_after"] = utc_text(issued.not_after);
    o["certificate"] = issued.certificate_pem;
    o["ca"] = authority.certificate_pem();
    out.response = boost::json::serialize(o);
    return out;
  } catch (const std::exception& e) {
    // The database or the CA files: the operator's problem, reported in the event, not to the device.
    auto refusal = refused_enrollment("internal error");
    refusal.template_name = out.template_name;
    refusal.reason = std::string("internal error: ") + e.what();
    return refusal;
  }
}

} // namespace firehook::registry
