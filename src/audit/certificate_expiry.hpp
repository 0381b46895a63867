#pragma once
// The certificate_expiry detector (docs/audit.md#alerts): an `alert` for each server certificate
// and CA certificate of the TLS listeners that expires within `days` days (or has expired), so
// that a renewal is not missed. It looks at start-up (its first tick), after every reload of a
// listener's TLS files that was applied, and once a day; it raises at most one alert per
// certificate per day, however often it looks.
//
// The certificates are read by `read` (app::listener_certificates: the files as they are now, so a
// replaced file counts), which this folder cannot do itself (only tls/ and net/ touch OpenSSL).
//
// Threads: a sink, on the hub's thread only; `read` runs there too (a few small files, once a day
// and after reloads). Alerts go out through `out` (the hub's shared, thread-safe emitter).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "events/hub.hpp"

namespace firehook::audit {

// One certificate of a TLS listener.
struct listener_certificate {
  std::string listener;
  std::string
      kind; // "server" (the first certificate of the listener's chain) or "ca" (each of its CA bundle)
  std::string subject;
  std::filesystem::path file;
  std::chrono::system_clock::time_point not_after;
};

class certificate_expiry final : public events::sink {
public:
  using read_fn = std::function<std::vector<listener_certificate>()>;
  // `days` > 0; `out` must outlive the sink.
  certificate_expiry(std::uint32_t days, read_fn read, events::emitter& out)
      : within_(std::chrono::hours(24) * days), read_(std::move(read)), out_(out) {}

  void consume(const events::event& e) override;
  void tick(std::chrono::steady_clock::time_point now) override;
  events::level min_level() const override { return events::level::info; }

  // Reads the certificates and raises the alerts that are due at `now`.
  void check(std::chrono::system_clock::time_point now);

private:
  const std::chrono::system_clock::duration within_;
  read_fn read_;
  events::emitter& out_;
  bool looked_ = false;   // the start-up check is done
  bool reloaded_ = false; // a TLS reload was applied since the last look
  std::chrono::steady_clock::time_point next_daily_{};
  // Certificate (listener, kind, file, subject, expiry) -> when it was last alerted about.
  std::unordered_map<std::string, std::chrono::system_clock::time_point> alerted_;
};

} // namespace firehook::audit
