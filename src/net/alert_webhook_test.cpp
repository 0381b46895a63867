// The alerts' webhook against a small HTTP server on 127.0.0.1 run by the test: what it POSTs,
// its retries, its time limit and its bounded queue.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "base/temp_dir.hpp"
#include "net/alert_webhook.hpp"

namespace firehook::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Answers each request with the next status of `script` (the last one again when it runs out);
// status 0: reads the request and never answers.
class receiver {
public:
  explicit receiver(std::vector<unsigned> script) : script_(std::move(script)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~receiver() {
    done_ = true;
    boost::system::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec); // wakes accept()
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  struct seen {
    std::string target, content_type, authorization, body;
  };
  std::vector<seen> requests() const {
    const std::lock_guard lock(mutex_);
    return requests_;
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 10s) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (requests().size() < n) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

private:
  void serve() {
    std::vector<tcp::socket> held;
    while (!done_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || done_) {
        break;
      }
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      http::read(s, buffer, req, ec);
      if (ec) {
        continue;
      }
      unsigned status = 0;
      {
        const std::lock_guard lock(mutex_);
        requests_.push_back({std::string(req.target()), std::string(req[http::field::content_type]),
                             std::string(req[http::field::authorization]), req.body()});
        status = script_[std::min(requests_.size(), script_.size()) - 1];
      }
      if (status == 0) {
        held.push_back(std::move(s));
        continue;
      }
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.body() = "ok";
      res.prepare_payload();
      http::write(s, res, ec);
    }
  }

  std::vector<unsigned> script_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<bool> done_{false};
  mutable std::mutex mutex_; // guards requests_
  std::vector<seen> requests_;
  std::thread thread_;
};

alert_webhook::options to(const receiver& r, std::uint32_t retries = 5) {
  alert_webhook::options o;
  o.settings.url.tls = false;
  o.settings.url.host = "127.0.0.1";
  o.settings.url.port = r.port();
  o.settings.url.target = "/hooks/firehook?x=1";
  o.settings.url.text = "http://127.0.0.1/hooks/firehook?x=1";
  o.settings.retries = retries;
  o.settings.timeout = 1s;
  o.first_retry = 20ms;
  return o;
}

TEST(alert_webhook, posts_each_alert_as_json_with_the_bearer_token) {
  base::temp_dir dir("firehook-webhook");
  const auto token_file = dir.path() / "token";
  std::ofstream(token_file) << "s3cret-token\n";
  receiver r({200});
  events::statistics stats;
  auto o = to(r);
  o.settings.token_file = token_file;
  alert_webhook hook(o, stats);
  hook.enqueue(R"({"detector":"probing"})");
  hook.enqueue(R"({"detector":"auth_failures"})");
  ASSERT_TRUE(r.wait_for(2));
  const auto seen = r.requests();
  EXPECT_EQ(seen[0].target, "/hooks/firehook?x=1");
  EXPECT_EQ(seen[0].content_type, "application/json");
  EXPECT_EQ(seen[0].authorization, "Bearer s3cret-token");
  EXPECT_EQ(seen[0].body, R"({"detector":"probing"})");
  EXPECT_EQ(seen[1].body, R"({"detector":"auth_failures"})");
  EXPECT_EQ(stats.get(events::stat::alert_webhook_failures), 0);
}

TEST(alert_webhook, a_failed_attempt_is_retried_until_accepted) {
  receiver r({500, 503, 200});
  events::statistics stats;
  alert_webhook hook(to(r), stats);
  hook.enqueue("{}");
  ASSERT_TRUE(r.wait_for(3));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(r.requests().size(), 3u) << "accepted at the third: no fourth";
  EXPECT_EQ(stats.get(events::stat::alert_webhook_failures), 0);
  EXPECT_EQ(r.requests()[2].authorization, "") << "no token file, no Authorization";
}

TEST(alert_webhook, after_the_last_attempt_the_alert_is_given_up_and_counted) {
  receiver r({500});
  events::statistics stats;
  alert_webhook hook(to(r, 3), stats);
  hook.enqueue("{}");
  ASSERT_TRUE(r.wait_for(3));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (stats.get(events::stat::alert_webhook_failures) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(stats.get(events::stat::alert_webhook_failures), 1);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(r.requests().size(), 3u);
}

TEST(alert_webhook, an_attempt_without_answer_ends_at_the_timeout) {
  receiver r({0, 200});
  events::statistics stats;
  alert_webhook hook(to(r), stats);
  const auto start = std::chrono::steady_clock::now();
  hook.enqueue("{}");
  ASSERT_TRUE(r.wait_for(2, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 900ms);
}

TEST(alert_webhook, the_queue_is_bounded_and_what_does_not_fit_is_counted) {
  receiver r({0});
  events::statistics stats;
  auto o = to(r, 1);
  o.capacity = 2;
  o.settings.timeout = 30s;
  alert_webhook hook(o, stats);
  for (int i = 0; i < 10; ++i) {
    hook.enqueue("{}");
  }
  // One in flight (or not yet taken), two waiting: the rest dropped.
  EXPECT_GE(stats.get(events::stat::alert_webhook_dropped), 7);
  EXPECT_LE(stats.get(events::stat::alert_webhook_dropped), 8);
  const auto start = std::chrono::steady_clock::now();
  hook.stop(); // interrupts the attempt waiting for its answer
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(stats.get(events::stat::alert_webhook_failures), 0) << "abandoned at stop, not failed";
}

TEST(alert_webhook, an_unreadable_token_file_is_an_error_naming_it) {
  receiver r({200});
  events::statistics stats;
  auto o = to(r);
  o.settings.token_file = "/nonexistent/token";
  try {
    alert_webhook hook(o, stats);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/token"), std::string::npos) << e.what();
  }
}

} // namespace
} // namespace firehook::net
