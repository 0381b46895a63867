#pragma once
// The alerts' webhook ([alerts] webhook, docs/audit.md#webhook): every alert is POSTed as JSON
// (audit::alert_json, Content-Type application/json) to one URL, with "Authorization: Bearer
// <token>" when webhook_token_file is set. An answer 2xx accepts it; anything else (another
// status, no connection, a certificate that does not verify, no answer within webhook_timeout) is a
// failed attempt, retried after first_retry, doubled each time, webhook_retries attempts at most.
// After the last one the alert is given up: a warning in the log and
// $SYS/broker/webhook/failures.
//
// https verifies the server's certificate and name against webhook_ca, or the system's store;
// plain http is accepted by the configuration for loopback hosts only.
//
// Bounded: at most `capacity` alerts wait; one more is not queued but counted
// ($SYS/broker/webhook/dropped) and logged, once until the queue has emptied again.
//
// A sink of the event stream: consume() queues each `alert` event (on the hub's thread), flush()
// (the hub's stop) stops it.
//
// Threads: a thread of its own sends, one alert at a time, in order. enqueue() may be called from
// any thread (the hub's) and never blocks on the network. stop() (or flush(), or the destructor)
// abandons what waits, interrupts an attempt in progress and joins.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "events/hub.hpp"
#include "events/statistics.hpp"

namespace firehook::net {

class alert_webhook final : public events::sink {
public:
  struct options {
    config::webhook_settings settings;
    std::chrono::milliseconds first_retry{1000};
    std::size_t capacity = 1000;
  };

  // Reads the token file and the CA bundle, then starts the thread. Throws std::runtime_error
  // naming the file when one cannot be used. `stats` must outlive the webhook.
  alert_webhook(options o, events::statistics& stats);
  alert_webhook(const alert_webhook&) = delete;
  alert_webhook& operator=(const alert_webhook&) = delete;
  ~alert_webhook() override;

  void consume(const events::event& e) override;
  events::level min_level() const override { return events::level::warn; }
  void flush() override { stop(); }

  void enqueue(std::string json);
  void stop();

  // Reads the token file and the CA bundle as the constructor does (`firehook check`). Throws
  // std::runtime_error naming the file when one cannot be used.
  static void check_files(const config::webhook_settings& s);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace firehook::net
