#include "audit/certificate_expiry.hpp"

#include "audit/record.hpp"

namespace firehook::audit {

namespace {

constexpr auto day = std::chrono::hours(24);

// The subject of the reload events of a listener's TLS files (tls::material).
constexpr std::string_view tls_reload = "TLS certificates";

} // namespace

void certificate_expiry::consume(const events::event& e) {
  if (e.type == events::event_type::reload && e.verdict == events::decision::allow &&
      e.subject.starts_with(tls_reload)) {
    reloaded_ = true; // looked at on the next tick, after the events of this drain
  }
}

void certificate_expiry::tick(std::chrono::steady_clock::time_point now) {
  if (looked_ && !reloaded_ && now < next_daily_) {
    return;
  }
  looked_ = true;
  reloaded_ = false;
  next_daily_ = now + day;
  check(std::chrono::system_clock::now());
}

void certificate_expiry::check(std::chrono::system_clock::time_point now) {
  std::erase_if(alerted_, [&](const auto& kv) { return now - kv.second >= day; });
  for (const listener_certificate& c : read_()) {
    if (c.not_after - now > within_) {
      continue;
    }
    const std::string key = c.listener + '\n' + c.kind + '\n' + c.file.string() + '\n' + c.subject + '\n' +
                            std::to_string(c.not_after.time_since_epoch().count());
    if (!alerted_.emplace(key, now).second) {
      continue; // alerted about within the last day
    }
    const auto left = std::chrono::duration_cast<std::chrono::hours>(c.not_after - now).count() / 24;
    const std::string what = (c.kind == "ca" ? "CA certificate \"" : "server certificate \"") + c.subject +
                             "\" of listener \"" + c.listener + "\" (" + c.file.string() + ")";
    events::event a;
    a.type = events::event_type::alert;
    a.time = now;
    a.listener = c.listener;
    a.subject = "certificate_expiry";
    a.reason = c.not_after <= now ? what + " expired on " + utc_time(c.not_after).substr(0, 10)
                                  : what + " expires on " + utc_time(c.not_after).substr(0, 10) + ", in " +
                                        std::to_string(left) + " days";
    a.count = c.not_after <= now ? 0 : static_cast<std::uint64_t>(left);
    out_.emit(std::move(a));
  }
}

} // namespace firehook::audit
