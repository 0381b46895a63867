#include "app/user_command.hpp"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "app/cli_text.hpp"
#include "config/config.hpp"
#include "registry/credential_store.hpp"

namespace firehook::app {
namespace {

namespace fs = std::filesystem;

// Turns terminal echo off until destroyed, so a typed password does not appear on screen.
class echo_off {
public:
  explicit echo_off(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) == 0) {
      termios quiet = saved_;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
    }
  }
  ~echo_off() {
    if (active_) {
      ::tcsetattr(fd_, TCSAFLUSH, &saved_);
    }
  }
  echo_off(const echo_off&) = delete;
  echo_off& operator=(const echo_off&) = delete;

private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::string read_line(std::istream& in, std::string_view what) {
  std::string line;
  if (!std::getline(in, line)) {
    throw usage_error("no " + std::string(what) + " on stdin");
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  return line;
}

std::string prompt_hidden(std::istream& in, std::ostream& err, const std::string& prompt) {
  err << prompt << std::flush;
  std::string line;
  {
    echo_off guard(STDIN_FILENO);
    line = read_line(in, "password");
  }
  err << '\n';
  return line;
}

std::string read_password(std::istream& in, std::ostream& err, bool from_stdin, const std::string& name) {
  std::string password;
  if (from_stdin) {
    password = read_line(in, "password");
  } else if (&in == &std::cin && ::isatty(STDIN_FILENO) == 1) {
    password = prompt_hidden(in, err, "Password for " + name + ": ");
    if (prompt_hidden(in, err, "Same password again: ") != password) {
      throw usage_error("the passwords differ; nothing changed");
    }
  } else {
    throw usage_error("stdin is not a terminal: use --password-stdin to read the password from it");
  }
  if (password.empty()) {
    throw usage_error("the password is empty");
  }
  return password;
}

void print_users(const std::vector<registry::user_record>& users, std::ostream& out) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "ROLES", "ATTRIBUTES", "HASH", "UPDATED"});
  for (const auto& u : users) {
    rows.push_back({u.name, join_or_dash(u.roles), join_or_dash(u.attributes),
                    std::string(registry::to_string(u.kind)), utc_time(u.updated_at)});
  }
  print_table(rows, out);
}

} // namespace

user_command::user_command(CLI::App& app) {
  user_ = app.add_subcommand("user", "manage the users of the password method (credential store)");
  user_->require_subcommand(1);
  // Inherited by the subcommands below: `firehook user add NAME -c FILE` works too.
  user_->fallthrough();
  auto* config =
      user_->add_option("-c,--config", config_path_,
                        "configuration file (TOML) naming the database ([auth.password] database)");
  auto* db = user_->add_option("--db", db_path_, "credential database file (SQLite); overrides -c");
  config->excludes(db);

  auto add_role_and_attr = [this](CLI::App* sub) {
    sub->add_option("--role", roles_,
                    "a role of the user (repeatable); the topics file grants rights to roles")
        ->allow_extra_args(false);
    sub->add_option("--attr", attributes_, "an attribute KEY=VALUE (repeatable), e.g. building=b1")
        ->allow_extra_args(false);
  };

  add_ = user_->add_subcommand("add", "add a user with an Argon2id-hashed password");
  add_->add_option("name", name_, "user name (the MQTT CONNECT user name)")->required();
  add_->add_flag("--password-stdin", password_stdin_, "read the password from the first line of stdin");
  add_role_and_attr(add_);

  passwd_ = user_->add_subcommand("passwd", "set a user's password");
  passwd_->add_option("name", name_, "user name")->required();
  passwd_->add_flag("--password-stdin", password_stdin_, "read the password from the first line of stdin");

  remove_ = user_->add_subcommand("remove", "remove a user");
  remove_->add_option("name", name_, "user name")->required();

  list_ = user_->add_subcommand("list", "list users: name, roles, attributes, hash kind (never the hash)");

  import_ = user_->add_subcommand("import-mosquitto",
                                  "import a Mosquitto password file ($6$/$7$ hashes); all lines or none");
  import_->add_option("file", file_, "the password file (mosquitto_passwd format)")->required();
  import_->add_flag("--replace", replace_,
                    "replace the password of users that exist (roles and attributes stay)");
  add_role_and_attr(import_);
}

bool user_command::parsed() const {
  return user_->parsed();
}

int user_command::run(std::istream& in, std::ostream& out, std::ostream& err) {
  try {
    return run_checked(in, out, err);
  } catch (const std::exception& e) {
    err << "firehook user: " << e.what() << '\n';
    return 1;
  }
}

int user_command::run_checked(std::istream& in, std::ostream& out, std::ostream& err) {
  fs::path path = db_path_;
  if (path.empty()) {
    config::load_result loaded;
    if (config_path_.empty()) {
      loaded.cfg = std::make_shared<const config::config>(config::defaults());
    } else {
      loaded = config::load_file(config_path_);
    }
    for (const auto& d : loaded.diagnostics) {
      err << d.to_string() << '\n';
    }
    if (!loaded.ok()) {
      return 1;
    }
    path = registry::credential_database_path(*loaded.cfg);
  }

  // Only add and import create a database: a mistyped path for the others is an error, not a
  // new empty file.
  const bool creates = add_->parsed() || import_->parsed();
  if (!creates && !fs::exists(path)) {
    throw usage_error("no credential database at " + path.string() + " (`firehook user add` creates it)");
  }
  // Checked before the (slow) store opening and before a password prompt.
  if (add_->parsed() || passwd_->parsed() || remove_->parsed()) {
    if (auto why = registry::check_user_name(name_); !why.empty()) {
      throw usage_error(why);
    }
  }
  registry::attribute_map attributes;
  try {
    attributes = parse_attributes(attributes_);
  } catch (const std::invalid_argument& e) {
    throw usage_error(e.what());
  }
  for (auto it = roles_.begin(); it != roles_.end(); ++it) {
    if (auto why = registry::check_role(*it); !why.empty()) {
      throw usage_error("--role: " + why);
    }
    if (std::find(roles_.begin(), it, *it) != it) {
      throw usage_error("--role " + *it + " is given twice");
    }
  }
  auto store = registry::credential_store::open(path);

  if (add_->parsed()) {
    if (store->find_user(name_)) {
      throw usage_error("user \"" + name_ + "\" exists (use `firehook user passwd` to change the password)");
    }
    const std::string password = read_password(in, err, password_stdin_, name_);
    store->add_user(name_, password, roles_, attributes);
    out << "added user " << name_ << " to " << path.string() << '\n';
  } else if (passwd_->parsed()) {
    if (!store->find_user(name_)) {
      throw usage_error("no user \"" + name_ + "\" in " + path.string());
    }
    const std::string password = read_password(in, err, password_stdin_, name_);
    store->set_password(name_, password);
    out << "changed the password of " << name_ << '\n';
  } else if (remove_->parsed()) {
    if (!store->remove_user(name_)) {
      throw usage_error("no user \"" + name_ + "\" in " + path.string());
    }
    out << "removed user " << name_ << '\n';
  } else if (list_->parsed()) {
    print_users(store->list_users(), out);
  } else if (import_->parsed()) {
    std::ifstream file(file_, std::ios::binary);
    if (!file) {
      throw usage_error("cannot read " + file_);
    }
    std::stringstream text;
    text << file.rdbuf();
    const auto parsed_file = registry::parse_mosquitto_file(text.str());
    for (const auto& e : parsed_file.errors) {
      err << file_ << ':' << e.line << ": " << e.message << '\n';
    }
    if (!parsed_file.errors.empty()) {
      throw usage_error(std::to_string(parsed_file.errors.size()) + " bad line(s) in " + file_ +
                        "; nothing imported");
    }
    if (parsed_file.entries.empty()) {
      throw usage_error("no users in " + file_ + "; nothing imported");
    }
    try {
      store->import_mosquitto(parsed_file.entries, replace_, roles_, attributes);
    } catch (const registry::credential_error& e) {
      throw usage_error(file_ + ": " + e.what() +
                        (replace_ ? "" : " (--replace replaces existing users' passwords)") +
                        "; nothing imported");
    }
    out << "imported " << parsed_file.entries.size() << " user(s) from " << file_
        << "; their passwords move to Argon2id at their next login\n";
  }
  return 0;
}

} // namespace firehook::app
