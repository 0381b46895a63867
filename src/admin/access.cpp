#include "admin/access.hpp"

#include <algorithm>
#include <cctype>

namespace firehook::admin {

std::string_view credential::method() const {
  switch (how) {
  case kind::token:
    return "admin-token";
  case kind::certificate:
    return "admin-certificate";
  case kind::none:
    break;
  }
  return "";
}

access decide_access(std::string_view authorization, const std::optional<std::string>& certificate_subject,
                     const token_store& tokens, const std::vector<std::string>& client_subjects) {
  access out;
  if (!authorization.empty()) {
    constexpr std::string_view scheme = "Bearer ";
    // The scheme is case-insensitive (RFC 9110, section 11.1).
    const auto same = [](char a, char b) {
      return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
    };
    if (authorization.size() > scheme.size() &&
        std::equal(scheme.begin(), scheme.end(), authorization.begin(), same)) {
      if (auto name = tokens.who(authorization.substr(scheme.size()))) {
        out.who = {credential::kind::token, std::move(*name)};
        return out;
      }
    }
    out.status = 401;
    out.why = "not a valid bearer token";
    return out;
  }
  if (certificate_subject) {
    out.who = {credential::kind::certificate, *certificate_subject};
    if (std::find(client_subjects.begin(), client_subjects.end(), *certificate_subject) ==
        client_subjects.end()) {
      out.status = 403;
      out.why = "client certificate not allowed: its subject is not in admin.client_subjects";
    }
    return out;
  }
  out.status = 401;
  out.why = "no bearer token";
  return out;
}

} // namespace firehook::admin
