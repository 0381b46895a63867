#include "security/certificate_authenticator.hpp"

namespace firehook::security {

namespace {

constexpr std::string_view method_name = "certificate";

const std::string* first_of(const std::vector<std::string>& values) {
  return values.empty() ? nullptr : &values.front();
}

// The configured field, or null when the certificate lacks it.
const std::string* identity_field(const certificate_info& cert, config::certificate_identity kind) {
  switch (kind) {
  case config::certificate_identity::cn:
    return cert.common_name.empty() ? nullptr : &cert.common_name;
  case config::certificate_identity::san_dns:
    return first_of(cert.san_dns);
  case config::certificate_identity::san_uri:
    return first_of(cert.san_uri);
  case config::certificate_identity::san_email:
    return first_of(cert.san_email);
  }
  return nullptr;
}

std::string_view field_name(config::certificate_identity kind) {
  switch (kind) {
  case config::certificate_identity::cn:
    return "CN";
  case config::certificate_identity::san_dns:
    return "DNS subject alternative name";
  case config::certificate_identity::san_uri:
    return "URI subject alternative name";
  case config::certificate_identity::san_email:
    return "e-mail subject alternative name";
  }
  return "identity field";
}

} // namespace

auth_result certificate_authenticator::authenticate(const connect_request& request) const {
  if (request.certificate == nullptr) {
    return auth_result::abstain();
  }
  const certificate_info& cert = *request.certificate;
  const std::string* name = identity_field(cert, settings_.identity);
  if (name == nullptr || name->empty()) {
    return auth_result::deny(std::string(method_name), mqtt::reason_code::not_authorized,
                             "certificate has no " + std::string(field_name(settings_.identity)) +
                                 " (subject " + cert.subject + ")");
  }
  if (settings_.client_id == config::client_id_binding::must_match && request.client_id != *name) {
    return auth_result::deny(std::string(method_name), mqtt::reason_code::client_identifier_not_valid,
                             "client id does not match the certificate identity \"" + *name + "\"");
  }
  identity who;
  who.name = *name;
  who.method = std::string(method_name);
  who.certificate = cert;
  who.roles = cert.organizational_units;
  if (settings_.client_id != config::client_id_binding::any) {
    who.client_id = *name; // checked above (must_match) or imposed by the broker (assign)
    who.assigns_client_id = settings_.client_id == config::client_id_binding::assign;
  }
  return auth_result::allow(std::move(who));
}

} // namespace firehook::security
