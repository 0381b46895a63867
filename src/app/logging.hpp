#pragma once
// The process's log: general lines (start-up, shutdown, errors) and the event stream's lines, both
// on standard error, as text or as one JSON object per line (log.format). In JSON every line is a
// valid JSON object: general lines carry the message as an escaped string member, event lines
// carry each event field as its own member (events::format_json_members).

#include "audit/log_sink.hpp"
#include "config/config.hpp"

namespace firehook::app {

// Installs the default (general) logger and returns the writer the event log sink writes through.
audit::log_sink::writer setup_logging(const config::log_settings& log);

// The least severe event the log writes at `level` (events below it are not even aggregated).
events::level event_level(config::log_level level);

} // namespace firehook::app
