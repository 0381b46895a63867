#include "security/password_authenticator.hpp"

#include <exception>

namespace firehook::security {

namespace {
constexpr std::string_view method_name = "password";
} // namespace

auth_result password_authenticator::authenticate(const connect_request& request) const {
  if (!request.username) {
    return auth_result::abstain();
  }
  constexpr auto bad = mqtt::reason_code::bad_user_name_or_password;
  if (!request.password) {
    return auth_result::deny(std::string(method_name), bad, "no password");
  }
  registry::check_result checked;
  try {
    checked = store_->check(*request.username, *request.password);
  } catch (const std::exception& e) {
    // Fail closed: a login that cannot be checked is refused.
    return auth_result::deny(std::string(method_name), bad, std::string("credential store: ") + e.what());
  }
  switch (checked.result) {
  case registry::check_result::outcome::unknown_user:
    return auth_result::deny(std::string(method_name), bad, "unknown user");
  case registry::check_result::outcome::wrong_password:
    return auth_result::deny(std::string(method_name), bad, "wrong password");
  case registry::check_result::outcome::ok:
    break;
  }
  if (devices_ != nullptr) {
    // Checked after the password, so that a wrong password and a disabled device take the same time.
    try {
      if (const auto device = devices_->linked_to_user(checked.user.name);
          device && device->second != registry::device_state::active) {
        return auth_result::deny(std::string(method_name), bad,
                                 "user of device \"" + device->first + "\", which is " +
                                     std::string(registry::to_string(device->second)));
      }
    } catch (const std::exception& e) {
      return auth_result::deny(std::string(method_name), bad, std::string("device registry: ") + e.what());
    }
  }
  identity who;
  who.name = std::move(checked.user.name);
  who.method = std::string(method_name);
  who.roles = std::move(checked.user.roles);
  who.attributes = std::move(checked.user.attributes);
  auto result = auth_result::allow(std::move(who));
  if (checked.upgraded) {
    result.detail = "imported hash upgraded to argon2id";
  } else if (!checked.upgrade_error.empty()) {
    result.detail = "hash upgrade failed: " + checked.upgrade_error;
  }
  return result;
}

std::shared_ptr<const password_authenticator> make_password_authenticator(const config::config& cfg) {
  // One connection for both: they are the same database.
  auto db = std::make_shared<registry::store>(registry::credential_database_path(cfg));
  return std::make_shared<const password_authenticator>(std::make_shared<registry::credential_store>(db),
                                                        std::make_shared<registry::device_registry>(db));
}

} // namespace firehook::security
