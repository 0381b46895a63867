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

#include "base/json_text.hpp"

namespace firehook::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto idle_timeout = std::chrono::seconds(10);

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
  std::atomic<std::uint32_t> open{0}; // before io: sessions still queued in it count down when it goes
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::thread thread;
  // The routing table: path -> what answers it (the identity issue adds its endpoints here).
  std::map<std::string, std::function<response(unsigned version)>, std::less<>> routes;

  impl(config::admin_settings s, const token_store& t, endpoints h, events::emitter& e)
      : settings(std::move(s)), tokens(t), handlers(std::move(h)), events(e) {
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

  void record(const tcp::endpoint& peer, const std::string& who, const std::string& what, const response& r,
              std::string why) {
    events::event e;
    e.type = events::event_type::admin_request;
    e.listener = "admin";
    e.peer = peer.address().to_string();
    e.peer_port = peer.port();
    if (!who.empty()) {
      e.method = "admin-token";
      e.identity = who;
    }
    e.subject = what;
    const auto code = static_cast<unsigned>(r.result_int());
    e.verdict = code < 400 ? events::decision::allow : events::decision::deny;
    e.reason = std::to_string(code) + (why.empty() ? "" : ": " + why);
    events.emit(std::move(e));
  }

  response answer(const http::request<http::string_body>& req, const tcp::endpoint& peer) {
    const std::string what = std::string(req.method_string()) + " " + std::string(req.target());
    std::string who;
    const auto auth = req[http::field::authorization];
    if (auth.size() > 7 && beast::iequals(auth.substr(0, 7), "Bearer ")) {
      who = tokens.who(auth.substr(7)).value_or("");
    }
    response r;
    std::string why;
    if (who.empty()) {
      why = auth.empty() ? "no bearer token" : "not a valid bearer token";
      r = json_error(http::status::unauthorized, why, req.version());
      r.set(http::field::www_authenticate, "Bearer realm=\"firehook\"");
    } else if (std::string_view target = req.target();
               handlers.bans &&
               (target.substr(0, target.find('?')) == "/bans" || target.starts_with("/bans/"))) {
      const auto a = handlers.bans(req.method_string(), target, req.body(), who);
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
    record(peer, who, what, r, why);
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
        } else {
          std::make_shared<session>(*this, std::move(socket))->read();
        }
      }
      accept();
    });
  }

  struct session : std::enable_shared_from_this<session> {
    impl& owner;
    beast::tcp_stream stream;
    tcp::endpoint peer;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    response reply;

    session(impl& o, tcp::socket s) : owner(o), stream(std::move(s)), buffer(o.settings.max_request_bytes) {
      boost::system::error_code ec;
      peer = stream.socket().remote_endpoint(ec);
      ++owner.open;
    }
    ~session() { --owner.open; }

    void read() {
      parser.emplace();
      parser->header_limit(owner.settings.max_request_bytes);
      parser->body_limit(owner.settings.max_request_bytes);
      stream.expires_after(idle_timeout);
      http::async_read(stream, buffer, *parser,
                       [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
          ec == asio::error::eof) {
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
        owner.record(peer, "", "(unparsed request)", reply, why);
        write(false);
        return;
      }
      const auto req = parser->release();
      reply = owner.answer(req, peer);
      write(reply.keep_alive());
    }

    void write(bool again) {
      stream.expires_after(idle_timeout);
      http::async_write(stream, reply, [self = shared_from_this(), again](beast::error_code ec, std::size_t) {
        if (ec || !again) {
          self->close();
          return;
        }
        self->read();
      });
    }

    void close() {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream.close();
    }
  };
};

admin_server::admin_server(config::admin_settings settings, const token_store& tokens, endpoints handlers,
                           events::emitter& events)
    : impl_(std::make_unique<impl>(std::move(settings), tokens, std::move(handlers), events)) {}

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
