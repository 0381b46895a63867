#pragma once

// `firehook topics doc` and `firehook topics explain`: the topics file as people read it.
//
//   firehook topics doc -c firehook.toml            Markdown for the device teams, on stdout (-o FILE)
//   firehook topics doc --topics topics.toml
//   firehook topics explain --topics topics.toml --identity 'cn=t1,ou=thermostats,attr.building=b1'
//                           --publish buildings/b1/rooms/r1/temperature [--qos 1] [--retain]
//   firehook topics explain ... --subscribe 'buildings/b1/rooms/+/temperature'
//
// explain exits 0 when allowed, 1 when refused, 2 when the files cannot be read or are invalid.
// --identity is a comma-separated list of key=value: cn, ou, san_dns, san_uri, san_email (a client
// certificate; ou and san_* may repeat), claim.<name>, attr.<name>, role (may repeat), username,
// client_id, method (certificate, password, jwt or anonymous; guessed from the keys otherwise).

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>

namespace CLI {
class App;
}

namespace firehook::config {
struct config;
struct topics_file;
} // namespace firehook::config

namespace firehook::app {

// Registers `topics` with its subcommands on `app`; `parsed()` says whether the command line chose
// it, and `run()` then does the work and returns the exit code. Not copyable: CLI11 keeps pointers
// to the members.
class topics_command {
public:
  explicit topics_command(CLI::App& app);
  topics_command(const topics_command&) = delete;
  topics_command& operator=(const topics_command&) = delete;

  bool parsed() const;
  int run() const;

private:
  CLI::App* topics_ = nullptr;
  CLI::App* doc_ = nullptr;
  CLI::App* explain_ = nullptr;
  std::string config_path_;
  std::string topics_path_;
  std::string output_path_;
  std::string identity_;
  std::string publish_;
  std::string subscribe_;
  unsigned qos_ = 0;
  bool retain_ = false;
};

// The Markdown document of a topics file (what `topics doc` prints). `source_name` is the file
// named in its header.
std::string render_topics_markdown(const config::topics_file& file, const std::string& source_name);

// Loads the topics file `cfg` names and prints its diagnostics to `err`, with the warnings about it
// under this configuration (config::client_id_grant_warnings); true when it has no error. For
// `firehook check` and `serve`.
bool report_topics_file(const config::config& cfg, std::ostream& err);

} // namespace firehook::app
