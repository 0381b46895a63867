#include "security/enrollment_authenticator.hpp"

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace firehook::security {

namespace {

constexpr std::string_view method_name = "enrollment";
constexpr std::string_view token_prefix = "fhe1_";

// The whole authorization of a claim identity. The role is given by the authenticator
// (identity::roles); {client_id} binds to the name it assigned (identity::client_id).
constexpr std::string_view claim_topics = R"toml(
[roles.enrollment]
description = "a device enrolling with a one-time token: its own request and response topics only"

[[topic]]
pattern = "$enroll/{client_id}/request"
description = "the device's certificate signing request"
max_qos = 1
publish = ["enrollment"]

[[topic]]
pattern = "$enroll/{client_id}/response"
description = "the broker's answer: the certificate or why not"
max_qos = 1
subscribe = ["enrollment"]
)toml";

} // namespace

bool enrollment_authenticator::is_token(const connect_request& request) {
  return request.password && request.password->starts_with(token_prefix);
}

auth_result enrollment_authenticator::authenticate(const connect_request& request) const {
  if (!is_token(request)) {
    return auth_result::abstain();
  }
  constexpr auto bad = mqtt::reason_code::bad_user_name_or_password;
  const auto deny = [&](std::string detail) {
    return auth_result::deny(std::string(method_name), bad, std::move(detail));
  };
  if (!request.username) {
    return deny("enrollment token without a user name (the device name)");
  }
  const std::string name(*request.username);
  if (auto why = registry::check_device_name(name); !why.empty()) {
    return deny(why);
  }
  const auto hash = registry::hash_enrollment_token(*request.password);
  const auto now = registry::unix_now();
  registry::token_check token;
  try {
    token = tokens_->check(hash, now);
    if (token.status == registry::token_status::valid && devices_->contains(name)) {
      return deny("device \"" + name + "\" exists");
    }
  } catch (const std::exception& e) {
    return deny(std::string("enrollment tokens: ") + e.what()); // fail closed
  }
  if (token.status != registry::token_status::valid) {
    return deny(std::string(registry::to_string(token.status)));
  }
  if (templates_.find(token.template_name) == nullptr) {
    return deny("template \"" + token.template_name + "\" of the token is not configured");
  }
  identity who;
  who.name = name;
  who.method = std::string(method_name);
  who.roles = {"enrollment"};
  who.claims.emplace("template", token.template_name);
  who.claims.emplace("token_sha256", hash);
  who.client_id = name;
  who.assigns_client_id = true;
  const auto until = std::chrono::system_clock::now() + claim_lifetime;
  who.expires_at =
      std::min(until, std::chrono::system_clock::time_point(std::chrono::seconds(token.expires_at)));
  return auth_result::allow(std::move(who));
}

std::string enrollment_request_topic(std::string_view name) {
  return "$enroll/" + std::string(name) + "/request";
}

std::string enrollment_response_topic(std::string_view name) {
  return "$enroll/" + std::string(name) + "/response";
}

std::shared_ptr<const topic_policy> enrollment_policy() {
  auto loaded = config::load_topics_string(claim_topics, "<enrollment rights>");
  if (!loaded.ok()) {
    // Our own constant text: a failure here is a bug, found by the first test that starts.
    throw std::logic_error("the enrollment rights do not compile");
  }
  return topic_policy::compile(loaded.topics);
}

} // namespace firehook::security
