#pragma once
// `firehook user add|passwd|remove|list|import-mosquitto`: edits the credential store that the
// "password" authentication method reads (registry/credential_store.hpp).
//
//   firehook user [-c FILE | --db FILE] add NAME [--role R]... [--attr KEY=VALUE]... [--password-stdin]
//   firehook user [-c FILE | --db FILE] passwd NAME [--password-stdin]
//   firehook user [-c FILE | --db FILE] remove NAME
//   firehook user [-c FILE | --db FILE] list
//   firehook user [-c FILE | --db FILE] import-mosquitto FILE [--role R]... [--attr KEY=VALUE]... [--replace]
//
// The database is --db, else the one the configuration -c names ([auth.password] database,
// default <state_dir>/firehook.db), else that of the default configuration (state/firehook.db).
// -c and --db may also follow the subcommand. A running broker sees changes at its next login
// check; nothing needs a restart.
//
// Passwords are never taken from the command line (they would show in `ps` and shell history):
// with --password-stdin the first line of stdin is the password; otherwise, on a terminal, the
// command asks twice without echo.
//
// Exit codes: 0 done; 1 error, with a message on stderr. `list` never prints a hash.

#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace firehook::app {

class user_command {
public:
  // Adds the `user` subcommand and its options to `app`. Keeps pointers into `app`: `app` must
  // outlive this object, which must not move (CLI11 writes the options into its members).
  explicit user_command(CLI::App& app);
  user_command(const user_command&) = delete;
  user_command& operator=(const user_command&) = delete;

  // True when the command line named `user`.
  bool parsed() const;

  // Runs the parsed subcommand; returns the exit code. Reads passwords from `in` (or the
  // terminal), prints results to `out` and errors to `err`.
  int run(std::istream& in, std::ostream& out, std::ostream& err);

private:
  int run_checked(std::istream& in, std::ostream& out, std::ostream& err);

  CLI::App* user_ = nullptr;
  CLI::App* add_ = nullptr;
  CLI::App* passwd_ = nullptr;
  CLI::App* remove_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* import_ = nullptr;

  std::string config_path_;
  std::string db_path_;
  std::string name_;
  std::string file_;
  std::vector<std::string> roles_;
  std::vector<std::string> attributes_; // KEY=VALUE as given
  bool password_stdin_ = false;
  bool replace_ = false;
};

} // namespace firehook::app
