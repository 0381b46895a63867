#pragma once
// `firehook ban add|list|remove`: edits the bans of `<state_dir>/bans.db` (registry/ban_store.hpp)
// of the configuration -c names (the defaults without one). A running broker sees the change within
// a second (it polls the database's data_version every 500 ms): a new ban disconnects the clients
// it covers, a removed one lets them in again.
//
//   firehook ban [-c FILE] add ADDRESS|CIDR [--for DURATION | --permanent] [--reason TEXT]
//   firehook ban [-c FILE] add --client-id ID ...    firehook ban [-c FILE] add --username NAME ...
//   firehook ban [-c FILE] list
//   firehook ban [-c FILE] remove ADDRESS|CIDR | --client-id ID | --username NAME
//
// DURATION: a number with a unit, s, m, h or d ("90s", "10m", "1d"); without --for or --permanent
// a ban lasts 1 h. Exit codes: 0 done; 1 error, with a message on stderr (remove: no such ban).
//
// The same JSON the admin endpoint's /bans speaks is made here (ban_http), so the two agree.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "broker/ban_list.hpp"

namespace firehook::app {

// Seconds of "90s", "10m", "2h", "1d" (a positive integer and one unit); nullopt when not one.
std::optional<std::int64_t> parse_duration(std::string_view text);

// The answer of the admin endpoint to `method` on `target` (/bans, /bans/KIND/SUBJECT), `who`
// the admin token's name: GET the list, POST {"kind","subject","reason","for"|"permanent"},
// DELETE one. 4xx with {"error": ...} for bad input.
struct http_answer {
  unsigned status = 200;
  std::string body;
};
http_answer ban_http(broker::ban_list& bans, std::string_view method, std::string_view target,
                     std::string_view body, std::string_view who);

class ban_command {
public:
  // Adds the `ban` subcommand to `app`, which must outlive this object; it must not move.
  explicit ban_command(CLI::App& app);
  ban_command(const ban_command&) = delete;
  ban_command& operator=(const ban_command&) = delete;

  bool parsed() const;
  int run(std::ostream& out, std::ostream& err);

private:
  CLI::App* ban_ = nullptr;
  CLI::App* add_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* remove_ = nullptr;
  std::string config_path_;
  std::string address_;
  std::string client_id_;
  std::string username_;
  std::string certificate_;
  std::string for_;
  std::string reason_;
  bool permanent_ = false;
};

} // namespace firehook::app
