#include "net/alert_webhook.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "audit/alert_outputs.hpp"

namespace firehook::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t answer_limit = 65'536; // of the receiver's answer, body included

std::string read_token(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error(file.string() + ": cannot be read (alerts.webhook_token_file)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  const bool one_line = std::none_of(
      token.begin(), token.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (token.empty() || !one_line) {
    throw std::runtime_error(file.string() +
                             ": must hold the bearer token on one line (alerts.webhook_token_file)");
  }
  return token;
}

std::unique_ptr<ssl::context> client_context(const config::webhook_settings& s) {
  if (!s.url.tls) {
    return nullptr;
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx->set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (s.ca.empty()) {
    ctx->set_default_verify_paths(ec);
  } else {
    ctx->load_verify_file(s.ca.string(), ec);
  }
  if (ec) {
    throw std::runtime_error((s.ca.empty() ? std::string("the system's CA store") : s.ca.string()) +
                             ": cannot be read (alerts.webhook_ca): " + ec.message());
  }
  return ctx;
}

bool is_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

} // namespace

struct alert_webhook::impl {
  // What one attempt holds, so that a stop or the time limit can cancel it from outside.
  struct attempt {
    tcp::resolver resolver;
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    bool done = false;
    bool cancelled = false;
    std::string failure; // empty: accepted

    explicit attempt(asio::io_context& io) : resolver(io) {}
    beast::tcp_stream* lowest() { return tls ? &beast::get_lowest_layer(*tls) : plain ? &*plain : nullptr; }
    // On the worker's thread, between two steps of run(): a cancel that comes after the name is
    // resolved and before the stream exists has nothing to close, so run() looks at `cancelled`.
    void cancel() {
      cancelled = true;
      resolver.cancel();
      if (auto* s = lowest()) {
        boost::system::error_code ignored;
        s->socket().close(ignored);
      }
    }
  };

  options opts;
  events::statistics& stats;
  std::string token;
  std::unique_ptr<ssl::context> ctx; // before io: handlers still in io may hold streams using it
  asio::io_context io{1};
  attempt* current = nullptr;    // worker thread only (and handlers run by it)
  std::atomic<bool> halt{false}; // stop() was called: an attempt not yet begun does not begin

  std::mutex mutex; // guards queue, stopping, drop_reported
  std::condition_variable wake;
  std::deque<std::string> queue;
  bool stopping = false;
  bool drop_reported = false;
  std::thread worker;

  impl(options o, events::statistics& s)
      : opts(std::move(o)), stats(s),
        token(opts.settings.token_file.empty() ? std::string() : read_token(opts.settings.token_file)),
        ctx(client_context(opts.settings)) {}

  http::request<http::string_body> request(std::string body) const {
    const auto& u = opts.settings.url;
    http::request<http::string_body> req{http::verb::post, u.target, 11};
    const bool v6 = u.host.find(':') != std::string::npos;
    std::string host = v6 ? "[" + u.host + "]" : u.host;
    if (u.port != (u.tls ? 443 : 80)) {
      host += ":" + std::to_string(u.port);
    }
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "firehook");
    req.set(http::field::content_type, "application/json");
    if (!token.empty()) {
      req.set(http::field::authorization, "Bearer " + token);
    }
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }

  template <class Stream>
  asio::awaitable<unsigned> exchange(Stream& stream, http::request<http::string_body>& req) {
    co_await http::async_write(stream, req, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(answer_limit);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    co_return parser.get().result_int();
  }

  asio::awaitable<void> run(attempt& a, std::string body) {
    const auto& u = opts.settings.url;
    try {
      if (halt) {
        throw std::runtime_error("stopping");
      }
      const auto endpoints =
          co_await a.resolver.async_resolve(u.host, std::to_string(u.port), asio::use_awaitable);
      if (a.cancelled) {
        throw std::runtime_error("stopping");
      }
      auto req = request(std::move(body));
      unsigned status = 0;
      if (ctx) {
        a.tls.emplace(io, *ctx);
        if (!is_address(u.host)) {
          SSL_set_tlsext_host_name(a.tls->native_handle(), u.host.c_str()); // SNI
        }
        a.tls->set_verify_callback(ssl::host_name_verification(u.host));
        beast::get_lowest_layer(*a.tls).expires_after(opts.settings.timeout);
        co_await beast::get_lowest_layer(*a.tls).async_connect(endpoints, asio::use_awaitable);
        co_await a.tls->async_handshake(ssl::stream_base::client, asio::use_awaitable);
        status = co_await exchange(*a.tls, req);
      } else {
        a.plain.emplace(io);
        a.plain->expires_after(opts.settings.timeout);
        co_await a.plain->async_connect(endpoints, asio::use_awaitable);
        status = co_await exchange(*a.plain, req);
      }
      if (status < 200 || status > 299) {
        a.failure = "answered " + std::to_string(status);
      }
    } catch (const boost::system::system_error& e) {
      a.failure =
          e.code() == beast::error::timeout ? "no answer within alerts.webhook_timeout" : e.code().message();
    } catch (const std::exception& e) {
      a.failure = e.what();
    }
    a.done = true;
  }

  // One POST; empty when accepted, else why not.
  std::string post_once(const std::string& body) {
    attempt a(io);
    current = &a;
    io.restart();
    asio::co_spawn(io, run(a, body), asio::detached);
    io.run_for(opts.settings.timeout + std::chrono::seconds(1)); // the resolver has no time limit of its own
    if (!a.done) {
      a.cancel();
      io.restart();
      io.run(); // what was cancelled finishes at once
      if (a.failure.empty()) {
        a.failure = "no answer within alerts.webhook_timeout";
      }
    }
    current = nullptr;
    return a.failure;
  }

  // True when stop() came during the wait.
  bool wait(std::chrono::milliseconds d) {
    std::unique_lock lock(mutex);
    return wake.wait_for(lock, d, [this] { return stopping; });
  }

  void deliver(const std::string& body) {
    const auto& s = opts.settings;
    auto backoff = opts.first_retry;
    std::string why;
    for (std::uint32_t n = 1; n <= s.retries; ++n) {
      why = post_once(body);
      if (why.empty()) {
        if (n > 1) {
          spdlog::info("alert webhook {}: accepted at attempt {}", s.url.text, n);
        }
        return;
      }
      spdlog::debug("alert webhook {}: attempt {} of {} failed: {}", s.url.text, n, s.retries, why);
      if (n == s.retries || wait(backoff)) {
        break;
      }
      backoff *= 2;
    }
    {
      const std::lock_guard lock(mutex);
      if (stopping) {
        return; // abandoned with the rest of the queue
      }
    }
    stats.add(events::stat::alert_webhook_failures, 1);
    spdlog::warn("alert webhook {}: an alert was given up after {} attempt(s): {}", s.url.text, s.retries,
                 why);
  }

  void loop() {
    while (true) {
      std::string body;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [this] { return stopping || !queue.empty(); });
        if (stopping) {
          return;
        }
        body = std::move(queue.front());
        queue.pop_front();
      }
      deliver(body);
    }
  }
};

alert_webhook::alert_webhook(options o, events::statistics& stats)
    : impl_(std::make_unique<impl>(std::move(o), stats)) {
  impl_->worker = std::thread([this] { impl_->loop(); });
}

alert_webhook::~alert_webhook() {
  try {
    stop();
  } catch (const std::exception& e) { // a thread that cannot be joined; nothing else throws
    spdlog::error("alert webhook: {}", e.what());
  }
}

void alert_webhook::check_files(const config::webhook_settings& s) {
  if (!s.token_file.empty()) {
    (void)read_token(s.token_file);
  }
  (void)client_context(s);
}

void alert_webhook::consume(const events::event& e) {
  if (e.type == events::event_type::alert) {
    enqueue(audit::alert_json(e));
  }
}

void alert_webhook::enqueue(std::string json) {
  impl& m = *impl_;
  std::unique_lock lock(m.mutex);
  if (m.stopping) {
    return;
  }
  if (m.queue.size() >= m.opts.capacity) {
    m.stats.add(events::stat::alert_webhook_dropped, 1);
    if (!m.drop_reported) {
      m.drop_reported = true;
      lock.unlock();
      spdlog::warn("alert webhook {}: {} alerts wait already; new ones are dropped (counted in "
                   "$SYS/broker/webhook/dropped) until it catches up",
                   m.opts.settings.url.text, m.opts.capacity);
    }
    return;
  }
  if (m.queue.empty()) {
    m.drop_reported = false; // caught up: the next overflow is logged again
  }
  m.queue.push_back(std::move(json));
  m.wake.notify_one();
}

void alert_webhook::stop() {
  impl& m = *impl_;
  std::size_t abandoned = 0;
  {
    const std::lock_guard lock(m.mutex);
    if (m.stopping) {
      return;
    }
    m.stopping = true;
    m.halt = true;
    abandoned = m.queue.size();
    m.queue.clear();
  }
  m.wake.notify_all();
  // Runs on the worker's thread, inside the attempt in progress if there is one.
  asio::post(m.io, [&m] {
    if (m.current != nullptr) {
      m.current->cancel();
    }
  });
  if (m.worker.joinable()) {
    m.worker.join();
  }
  if (abandoned != 0) {
    spdlog::warn("alert webhook {}: {} alert(s) not sent at shutdown", m.opts.settings.url.text, abandoned);
  }
}

} // namespace firehook::net
