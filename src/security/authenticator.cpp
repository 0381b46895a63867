#include "security/authenticator.hpp"

namespace firehook::security {

auth_result auth_result::deny(std::string method, mqtt::reason_code rc, std::string detail) {
  auth_result r;
  r.decision = verdict::deny;
  r.reason = rc;
  r.method = std::move(method);
  r.detail = std::move(detail);
  return r;
}

auth_result auth_result::allow(identity who) {
  auth_result r;
  r.decision = verdict::allow;
  r.method = who.method;
  r.who = std::move(who);
  return r;
}

auth_result auth_chain::authenticate(const connect_request& request) const {
  return *run(request, false);
}

std::optional<auth_result> auth_chain::authenticate_quick(const connect_request& request) const {
  return run(request, true);
}

std::optional<auth_result> auth_chain::run(const connect_request& request, bool quick_only) const {
  for (const auto& m : methods_) {
    if (quick_only && !m->quick(request)) {
      return std::nullopt;
    }
    auto r = m->authenticate(request);
    if (r.decision != verdict::abstain) {
      if (r.method.empty()) {
        r.method = std::string(m->method());
      }
      return r;
    }
  }
  return fallback(request);
}

auth_result auth_chain::fallback(const connect_request& request) const {
  bool has_credentials = request.username || request.password;
  if (allow_anonymous_ && !has_credentials) {
    identity anon;
    anon.method = "anonymous";
    anon.name = "anonymous";
    return auth_result::allow(std::move(anon));
  }
  if (has_credentials) {
    return auth_result::deny("", mqtt::reason_code::bad_user_name_or_password,
                             "credentials given but no configured method accepted them");
  }
  return auth_result::deny("", mqtt::reason_code::not_authorized,
                           "no credentials and anonymous access is off");
}

} // namespace firehook::security
