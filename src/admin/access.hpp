#pragma once
// Who may use the admin endpoint: the one decision for every request, from its Authorization
// header and the verified TLS client certificate of its connection. Deny by default.
//
//   an Authorization header      the bearer token decides: a token of the store is let in under its
//                                name; anything else is 401, whatever certificate came with it
//   no header, a certificate     let in under its subject when admin.client_subjects lists that
//                                subject exactly (RFC 2253 form); another subject is 403
//   neither                      401
//
// A request is judged by what it sends explicitly, so a token is never overruled by the
// certificate of the connection it travels on. The certificate reaching this point has verified
// against [admin.tls] client_ca in the handshake (one from another CA fails the handshake).
//
// A pure function of its arguments; the token store is thread-safe (tokens.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/tokens.hpp"

namespace firehook::admin {

// What a request was let in (or, 403, refused) with.
struct credential {
  enum class kind : std::uint8_t { none, token, certificate };
  kind how = kind::none;
  std::string name; // the token's name, or the certificate's subject

  // For the admin_request event's `method`: "admin-token", "admin-certificate", or "".
  std::string_view method() const;
};

struct access {
  unsigned status = 200; // 200 let in; 401 or 403 refused
  std::string why;       // when refused: for the JSON error and the event
  credential who;        // when let in; for 403, the certificate that was refused
};

access decide_access(std::string_view authorization, const std::optional<std::string>& certificate_subject,
                     const token_store& tokens, const std::vector<std::string>& client_subjects);

} // namespace firehook::admin
