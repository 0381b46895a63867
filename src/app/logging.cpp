#include "app/logging.hpp"

#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <memory>
#include <string>

#include "base/json_text.hpp"

namespace firehook::app {

namespace {

// "2026-12-07T06:10:00.123+0000", local time.
void append_time(std::string& out, spdlog::log_clock::time_point t) {
  const std::time_t secs = spdlog::log_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, ".%03d", static_cast<int>(ms)));
  std::strftime(buf + n, sizeof buf - n, "%z", &tm);
  out += buf;
}

// One JSON object per line. `members`: the payload is already JSON members (an event line);
// otherwise it is a message, escaped into "message".
class json_formatter final : public spdlog::formatter {
public:
  explicit json_formatter(bool members) : members_(members) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line = "{\"time\":\"";
    append_time(line, msg.time);
    line += "\",\"level\":\"";
    const auto level = spdlog::level::to_string_view(msg.level);
    line.append(level.data(), level.size());
    line += '"';
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (members_) {
      if (!payload.empty()) {
        line += ',';
        line += payload;
      }
    } else {
      line += ",\"thread\":" + std::to_string(msg.thread_id) + ",\"message\":";
      base::append_json_string(line, payload);
    }
    line += "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>(members_);
  }

private:
  bool members_;
};

spdlog::level::level_enum spdlog_level(events::level l) {
  switch (l) {
  case events::level::debug:
    return spdlog::level::debug;
  case events::level::info:
    return spdlog::level::info;
  case events::level::warn:
    return spdlog::level::warn;
  case events::level::error:
    return spdlog::level::err;
  }
  return spdlog::level::info;
}

} // namespace

events::level event_level(config::log_level level) {
  switch (level) {
  case config::log_level::trace:
  case config::log_level::debug:
    return events::level::debug;
  case config::log_level::info:
    return events::level::info;
  case config::log_level::warn:
    return events::level::warn;
  case config::log_level::error:
  case config::log_level::off:
    break;
  }
  return events::level::error; // events are warnings at most: none is written
}

audit::log_sink::writer setup_logging(const config::log_settings& log) {
  static constexpr spdlog::level::level_enum levels[] = {spdlog::level::trace, spdlog::level::debug,
                                                         spdlog::level::info,  spdlog::level::warn,
                                                         spdlog::level::err,   spdlog::level::off};
  const auto level = levels[static_cast<int>(log.level)];
  const bool json = log.format == config::log_format::json;
  // Two sinks on the same stream, each with its own formatter; stdio writes each line whole.
  auto general = spdlog::stderr_color_mt("firehook");
  auto events_log = spdlog::stderr_color_mt("events");
  if (json) {
    general->set_formatter(std::make_unique<json_formatter>(false));
    events_log->set_formatter(std::make_unique<json_formatter>(true));
  } else {
    general->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    events_log->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  general->set_level(level);
  events_log->set_level(level);
  spdlog::set_default_logger(general);
  return [events_log](events::level l, std::chrono::system_clock::time_point time, std::string_view line) {
    events_log->log(time, spdlog::source_loc{}, spdlog_level(l), line);
  };
}

} // namespace firehook::app
