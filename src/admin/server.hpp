#pragma once
// The HTTP admin endpoint (Boost.Beast), on a thread and an io_context of its own, so a scrape
// never waits on a shard nor a shard on a scrape. Off unless [admin] is configured. Plain HTTP (a
// loopback address: the configuration refuses another), or HTTPS with the TLS material given to
// the constructor. Every request needs a bearer token of the token store (tokens.hpp) or an allowed
// client certificate (access.hpp). docs/admin.md has the endpoints.
//
//   GET /metrics   Prometheus text (metrics.hpp)
//   GET /healthz   200 while the process serves requests
//   GET /readyz    200 when the broker is ready to serve clients, 503 with why otherwise
//   GET /bans, POST /bans, DELETE /bans/KIND/SUBJECT   the bans (docs/admin.md)
//
// Everything else is a 4xx with a JSON body {"error": "..."}: 400 malformed, 401 no valid bearer
// token (with WWW-Authenticate), 403 a client certificate whose subject is not listed, 404 unknown
// path, 405 not GET/HEAD (POST and DELETE: /bans only), 413/431 a request over max_request_bytes.
// At most max_connections connections at once (more are closed at accept); a connection idle for
// 10 s (TLS: its handshake too) is closed. Every request is one admin_request event (who and with
// which credential, from where, what, the status), in the log and the audit log; so is a failed
// TLS handshake (subject "(TLS handshake)", no HTTP status).
//
// Lifetime: start() binds and starts the thread (throws std::runtime_error naming the address);
// stop() or the destructor closes everything and joins.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/tokens.hpp"
#include "config/config.hpp"
#include "events/emitter.hpp"
#include "tls/tls.hpp"

namespace firehook::admin {

struct endpoints {
  std::function<std::string()> metrics;                  // the /metrics body
  std::function<std::optional<std::string>()> not_ready; // nullopt when ready, else why
  // Resources that take any method, by path: "/bans" serves /bans and /bans/... (app::ban_http),
  // "/devices" /devices and /devices/... (app::device_http). Each answers with a status and a JSON
  // body. `who`: the admin token's name or the client certificate's subject. A new resource is
  // one more entry here.
  struct answer {
    unsigned status = 200;
    std::string body;
  };
  using resource = std::function<answer(std::string_view method, std::string_view target, std::string_view body,
                                        std::string_view who)>;
  std::vector<std::pair<std::string, resource>> resources;
};

class admin_server {
public:
  // `tokens` and `events` (a thread-safe emitter: the hub's shared one) must outlive the server.
  // `material`: that of [admin.tls] (its http/1.1 ALPN, reloaded by the broker's reloads: each
  // connection takes the context in force when it is accepted); null serves plain HTTP.
  admin_server(config::admin_settings settings, const token_store& tokens, endpoints handlers,
               events::emitter& events, std::shared_ptr<const tls::material> material = nullptr);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  // Binds and starts serving; returns the port actually bound.
  std::uint16_t start();
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace firehook::admin
