#include "session/error.hpp"

#include <string>

#include "mqtt/error.hpp"

namespace firehook::session {

namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "firehook.session"; }
  std::string message(int ev) const override {
    if (static_cast<session_errc>(ev) == session_errc::slow_subscriber) {
      return "no acknowledgement for limits.slow_subscriber_timeout while over its queue bounds";
    }
    if (static_cast<session_errc>(ev) == session_errc::message_rate_too_high) {
      return "over its publish or subscribe rate for limits.rate_limit_timeout";
    }
    return std::string(mqtt::to_string(to_reason_code(make_error_code(static_cast<session_errc>(ev)))));
  }
};

} // namespace

const std::error_category& session_category() {
  static const category instance;
  return instance;
}

mqtt::reason_code to_reason_code(std::error_code ec) {
  using mqtt::reason_code;
  if (ec.category() != session_category()) {
    return mqtt::to_reason_code(ec);
  }
  switch (static_cast<session_errc>(ec.value())) {
  case session_errc::protocol_error:
    return reason_code::protocol_error;
  case session_errc::keep_alive_timeout:
    return reason_code::keep_alive_timeout;
  case session_errc::session_taken_over:
    return reason_code::session_taken_over;
  case session_errc::receive_maximum_exceeded:
    return reason_code::receive_maximum_exceeded;
  case session_errc::topic_alias_invalid:
    return reason_code::topic_alias_invalid;
  case session_errc::qos_not_supported:
    return reason_code::qos_not_supported;
  case session_errc::retain_not_supported:
    return reason_code::retain_not_supported;
  case session_errc::client_identifier_not_valid:
    return reason_code::client_identifier_not_valid;
  case session_errc::bad_user_name_or_password:
    return reason_code::bad_user_name_or_password;
  case session_errc::not_authorized:
    return reason_code::not_authorized;
  case session_errc::bad_authentication_method:
    return reason_code::bad_authentication_method;
  case session_errc::unsupported_protocol_version:
    return reason_code::unsupported_protocol_version;
  case session_errc::topic_name_invalid:
    return reason_code::topic_name_invalid;
  case session_errc::packet_too_large:
    return reason_code::packet_too_large;
  case session_errc::server_shutting_down:
    return reason_code::server_shutting_down;
  case session_errc::normal_disconnection:
    return reason_code::success;
  case session_errc::administrative_action:
    return reason_code::administrative_action;
  case session_errc::maximum_connect_time:
    return reason_code::maximum_connect_time;
  case session_errc::slow_subscriber:
    return reason_code::quota_exceeded;
  case session_errc::message_rate_too_high:
    return reason_code::message_rate_too_high;
  }
  return reason_code::unspecified_error;
}

} // namespace firehook::session
