#include "security/certificate_authenticator.hpp"

#include <algorithm>

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

bool certificate_authenticator::quick(const connect_request& request) const {
  if (lookup_ == nullptr || request.certificate == nullptr) {
    return true;
  }
  const std::string* name = identity_field(*request.certificate, settings_.identity);
  if (name == nullptr || name->empty()) {
    return true; // refused at once by authenticate()
  }
  try {
    return !lookup_->contains(*name);
  } catch (const std::exception&) {
    return false; // authenticate() on the pool meets the same error and refuses
  }
}

std::optional<auth_result> certificate_authenticator::apply_device(identity& who,
                                                                   const connect_request& request) const {
  if (devices_ == nullptr) {
    return std::nullopt;
  }
  constexpr auto bad = mqtt::reason_code::bad_user_name_or_password;
  std::optional<registry::device_record> device;
  try {
    device = devices_->find(who.name);
  } catch (const std::exception& e) {
    return auth_result::deny(std::string(method_name), bad, std::string("device registry: ") + e.what());
  }
  if (!device) {
    return std::nullopt; // not a registered device: a certificate of an external CA, as before
  }
  if (device->state != registry::device_state::active) {
    return auth_result::deny(std::string(method_name), bad,
                             "device \"" + device->name + "\" is " +
                                 std::string(registry::to_string(device->state)));
  }
  const std::int64_t now = registry::unix_now();
  for (const auto& issued : device->certificates) {
    if (issued.fingerprint_sha256 == who.certificate->fingerprint_sha256 && issued.retired(now)) {
      return auth_result::deny(std::string(method_name), bad,
                               "certificate " + issued.serial_hex + " of device \"" + device->name +
                                   "\" was replaced by a rotation and its grace period is over");
    }
  }
  // The device's roles first, then the certificate's OU values it does not already have.
  for (auto& ou : who.roles) {
    if (std::find(device->roles.begin(), device->roles.end(), ou) == device->roles.end()) {
      device->roles.push_back(std::move(ou));
    }
  }
  who.roles = std::move(device->roles);
  who.attributes = std::move(device->attributes);
  try {
    devices_->touch(device->name, request.peer_address, now);
  } catch (const std::exception&) {
    // Last seen is a convenience: a busy or read-only database does not refuse the device.
  }
  return std::nullopt;
}

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
    // The same for an active and a disabled device: it tells nothing of the registry.
    return auth_result::deny(std::string(method_name), mqtt::reason_code::client_identifier_not_valid,
                             "client id does not match the certificate identity \"" + *name + "\"");
  }
  identity who;
  who.name = *name;
  who.method = std::string(method_name);
  who.certificate = cert;
  who.roles = cert.organizational_units;
  if (auto refused = apply_device(who, request)) {
    return std::move(*refused);
  }
  if (settings_.client_id != config::client_id_binding::any) {
    who.client_id = *name; // checked above (must_match) or imposed by the broker (assign)
    who.assigns_client_id = settings_.client_id == config::client_id_binding::assign;
  }
  return auth_result::allow(std::move(who));
}

} // namespace firehook::security
