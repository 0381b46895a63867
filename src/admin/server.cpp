#include "admin/server.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <stdexcept>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "admin/access.hpp"
#include "base/json_text.hpp"

namespace firehook::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr auto idle_timeout = std::chrono::seconds(10);
// How long a TLS connection that ends waits for the client's close_notify.
constexpr auto shutdown_timeout = std::chrono::seconds(2);

using response = http::response<http::string_body>;

response json_error(http::status status, std::string_view why, unsigned version) {
  response r{status, version};
  r.set(http::field::content_type, "application/json");
  std::string body = "{\"error\":";
  base::append_json_string(body, why);
  body += "}\n";
  r.body() = std::move(body);
  return r;
}

} // namespace

struct admin_server::impl {
  config::admin_settings settings;
  const token_store& tokens;
  endpoints handlers;
  events::emitter& events;
  std::shared_ptr<const tls::material> material; // [admin.tls]; null: plain HTTP
  std::atomic<std::uint32_t> open{0}; // before io: sessions still queued in it count down when it goes
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;
  // The routing table: path -> what answers it (the identity issue adds its endpoints here).
  std::map<std::string, std::function<response(unsigned version)>, std::less<>> routes;

  impl(config::admin_settings s, const token_store& t, endpoints h, events::emitter& e,
       std::shared_ptr<const tls::material> m)
      : settings(std::move(s)), tokens(t), handlers(std::move(h)), events(e), material(std::move(m)) {
    routes["/metrics"] = [this](unsigned version) {
      response r{http::status::ok, version};
      r.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      r.body() = handlers.metrics();
      return r;
    };
    routes["/healthz"] = [](unsigned version) {
      response r{http::status::ok, version};
      r.set(http::field::content_type, "application/json");
      r.body() = "{\"status\":\"ok\"}\n";
      return r;
    };
    routes["/readyz"] = [this](unsigned version) {
      const auto why = handlers.not_ready ? handlers.not_ready() : std::nullopt;
      response r{why ? http::status::service_unavailable : http::status::ok, version};
      r.set(http::field::content_type, "application/json");
      std::string body = why ? "{\"status\":\"not ready\",\"why\":" : "{\"status\":\"ready\"";
      if (why) {
        base::append_json_string(body, *why);
      }
      r.body() = body + "}\n";
      return r;
    };
  }

  // The resource that serves `target` (its path, or a path below it), if any.
  const endpoints::resource* resource_of(std::string_view target) const {
    const std::string_view path = target.substr(0, target.find('?'));
    for (const auto& [prefix, serve] : handlers.resources) {
      if (path == prefix || (path.starts_with(prefix) && path.substr(prefix.size()).starts_with('/'))) {
        return &serve;
      }
    }
    return nullptr;
  }

  // One admin_request event. `status` 0: no HTTP answer (a failed TLS handshake).
  void record(const tcp::endpoint& peer, const credential& who, const std::string& what, unsigned status,
              const std::string& why) {
    events::event e;
    e.type = events::event_type::admin_request;
    e.listener = "admin";
    e.peer = peer.address().to_string();
    e.peer_port = peer.port();
    e.method = who.method();
    e.identity = who.name;
    e.subject = what;
    e.verdict = status != 0 && status < 400 ? events::decision::allow : events::decision::deny;
    e.reason = status == 0 ? why : std::to_string(status) + (why.empty() ? "" : ": " + why);
    events.emit(std::move(e));
  }

  // `certificate`: the subject of the connection's verified client certificate, if it sent one.
  response answer(const http::request<http::string_body>& req, const tcp::endpoint& peer,
                  const std::optional<std::string>& certificate) {
    const std::string what = std::string(req.method_string()) + " " + std::string(req.target());
    const auto allowed =
        decide_access(req[http::field::authorization], certificate, tokens, settings.client_subjects);
    response r;
    std::string why = allowed.why;
    if (allowed.status != 200) {
      r = json_error(static_cast<http::status>(allowed.status), why, req.version());
      if (allowed.status == 401) {
        r.set(http::field::www_authenticate, "Bearer realm=\"firehook\"");
      }
    } else if (const auto* resource = resource_of(req.target())) {
      const auto a = (*resource)(req.method_string(), req.target(), req.body(), allowed.who.name);
      r = response{static_cast<http::status>(a.status), req.version()};
      r.set(http::field::content_type, "application/json");
      r.body() = a.body;
      if (a.status >= 400) {
        why = a.body; // the JSON error, for the admin_request event
      }
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      why = "only GET and HEAD";
      r = json_error(http::status::method_not_allowed, why, req.version());
      r.set(http::field::allow, "GET, HEAD");
    } else {
      std::string_view path = req.target();
      path = path.substr(0, path.find('?'));
      if (const auto route = routes.find(path); route != routes.end()) {
        r = route->second(req.version());
      } else {
        why = "no such endpoint";
        r = json_error(http::status::not_found, why, req.version());
      }
    }
    r.set(http::field::server, "firehook");
    r.set(http::field::cache_control, "no-store");
    r.keep_alive(req.keep_alive());
    r.prepare_payload();
    if (req.method() == http::verb::head) {
      r.body().clear();
    }
    record(peer, allowed.who, what, r.result_int(), why);
    return r;
  }

  void accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) {
        return;
      }
      if (!ec) {
        if (open.load() >= settings.max_connections) {
          boost::system::error_code ignored;
          socket.close(ignored); // over admin.max_connections
        } else if (material) {
          std::make_shared<session<beast::ssl_stream<beast::tcp_stream>>>(*this, std::move(socket),
                                                                          material->current())
              ->handshake();
        } else {
          std::make_shared<session<beast::tcp_stream>>(*this, std::move(socket))->read();
        }
      }
      accept();
    });
  }

  // One connection: Stream is beast::tcp_stream (plain HTTP) or an ssl_stream over one (HTTPS).
  template <class Stream>
  struct session : std::enable_shared_from_this<session<Stream>> {
    static constexpr bool secure = !std::is_same_v<Stream, beast::tcp_stream>;

    impl& owner;
    std::shared_ptr<ssl::context> context; // TLS: the context in force at accept, kept for the stream
    Stream stream;
    tcp::endpoint peer;
    std::optional<std::string> certificate; // TLS: the verified client certificate's subject
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    response reply;

    session(impl& o, tcp::socket s) requires(!secure)
        : owner(o), stream(std::move(s)), buffer(o.settings.max_request_bytes) {
      opened();
    }
    session(impl& o, tcp::socket s, std::shared_ptr<ssl::context> ctx) requires secure
        : owner(o),
          context(std::move(ctx)),
          stream(std::move(s), *context),
          buffer(o.settings.max_request_bytes) {
      opened();
    }
    ~session() { --owner.open; }

    void opened() {
      boost::system::error_code ec;
      peer = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
      ++owner.open;
    }

    void handshake() requires secure {
      beast::get_lowest_layer(stream).expires_after(idle_timeout);
      stream.async_handshake(
          ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec) {
              const std::string why = ec == beast::error::timeout
                                          ? "TLS handshake not finished in time"
                                          : tls::handshake_failure(self->stream.native_handle(), ec);
              self->owner.record(self->peer, {}, "(TLS handshake)", 0, why);
              beast::get_lowest_layer(self->stream).close();
              return;
            }
            if (auto cert = tls::peer_certificate(self->stream.native_handle())) {
              self->certificate = std::move(cert->subject);
            }
            self->read();
          });
    }

    void read() {
      parser.emplace();
      parser->header_limit(owner.settings.max_request_bytes);
      parser->body_limit(owner.settings.max_request_bytes);
      beast::get_lowest_layer(stream).expires_after(idle_timeout);
      http::async_read(
          stream, buffer, *parser,
          [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
          ec == asio::error::eof || ec == ssl::error::stream_truncated) {
        close();
        return;
      }
      if (ec) {
        const bool too_big = ec == http::error::header_limit || ec == http::error::body_limit ||
                             ec == http::error::buffer_overflow;
        const auto status = ec == http::error::body_limit ? http::status::payload_too_large
                            : too_big                     ? http::status::request_header_fields_too_large
                                                          : http::status::bad_request;
        const std::string why =
            too_big ? "over admin.max_request_bytes" : "malformed request: " + ec.message();
        reply = json_error(status, why, 11);
        reply.set(http::field::server, "firehook");
        reply.keep_alive(false);
        reply.prepare_payload();
        owner.record(peer, {}, "(unparsed request)", reply.result_int(), why);
        write(false);
        return;
      }
      const auto req = parser->release();
      reply = owner.answer(req, peer, certificate);
      write(reply.keep_alive());
    }

    void write(bool again) {
      beast::get_lowest_layer(stream).expires_after(idle_timeout);
      http::async_write(stream, reply,
                        [self = this->shared_from_this(), again](beast::error_code ec, std::size_t) {
                          if (ec || !again) {
                            self->close();
                            return;
                          }
                          self->read();
                        });
    }

    void close() {
      if constexpr (secure) {
        // close_notify first, so the client can tell the end from a cut; bounded, since a client
        // need not answer it.
        beast::get_lowest_layer(stream).expires_after(shutdown_timeout);
        stream.async_shutdown([self = this->shared_from_this()](beast::error_code) {
          beast::get_lowest_layer(self->stream).close();
        });
      } else {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.close();
      }
    }
  };
};

admin_server::admin_server(config::admin_settings settings, const token_store& tokens, endpoints handlers,
                           events::emitter& events, std::shared_ptr<const tls::material> material)
    : impl_(std::make_unique<impl>(std::move(settings), tokens, std::move(handlers), events,
                                   std::move(material))) {}

admin_server::~admin_server() {
  stop();
}

std::uint16_t admin_server::start() {
  auto& i = *impl_;
  const std::string where = "admin endpoint on " + i.settings.address + ":" + std::to_string(i.settings.port);
  try {
    tcp::resolver resolver(i.io);
    const auto endpoint =
        resolver.resolve(i.settings.address, std::to_string(i.settings.port), tcp::resolver::numeric_service)
            .begin()
            ->endpoint();
    i.acceptor.open(endpoint.protocol());
    i.acceptor.set_option(asio::socket_base::reuse_address(true));
    i.acceptor.bind(endpoint);
    i.acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(where + ": " + e.code().message());
  }
  const auto port = i.acceptor.local_endpoint().port();
  i.accept();
  i.thread = std::thread([&i] { i.io.run(); });
  return port;
}

void admin_server::stop() {
  auto& i = *impl_;
  if (!i.thread.joinable()) {
    return;
  }
  asio::post(i.io, [&i] {
    boost::system::error_code ignored;
    i.acceptor.close(ignored);
  });
  i.io.stop();
  i.thread.join();
}

} // namespace firehook::admin
