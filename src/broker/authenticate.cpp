#include "broker/authenticate.hpp"

#include "broker/broker.hpp"

namespace firehook::broker {

mqtt::reason_code authenticate(const connection_info& info, const mqtt::connect& c) {
  if (info.allow_anonymous) {
    return mqtt::reason_code::success;
  }
  if (c.username || c.password) {
    return mqtt::reason_code::bad_user_name_or_password;
  }
  return mqtt::reason_code::not_authorized;
}

} // namespace firehook::broker
