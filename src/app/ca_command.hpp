#pragma once
// `firehook ca init`: makes the certificate authority that `firehook device add` issues device
// certificates with (registry/certificate_authority.hpp), in <state_dir>/ca of the configuration
// -c names (the defaults without one): ca.key (mode 0600, folder 0700) and ca.crt.
//
//   firehook ca [-c FILE] init [--name CN] [--days N]              a new EC P-256 CA (10 years)
//   firehook ca [-c FILE] init --import-cert FILE --import-key FILE an existing CA or intermediate
//
// A CA is made once: init refuses to replace the files. The broker trusts the devices only once
// ca.crt is in the `ca` bundle of a TLS listener ([listener.tls] ca); init says so.
// Exit codes: 0 done; 1 error, with a one-line message on stderr (as `firehook user` and `ban`).

#include <cstdint>
#include <iosfwd>
#include <string>

#include <CLI/CLI.hpp>

namespace firehook::app {

class ca_command {
public:
  // Keeps pointers into `app`, which must outlive this object; not movable (CLI11 writes into it).
  explicit ca_command(CLI::App& app);
  ca_command(const ca_command&) = delete;
  ca_command& operator=(const ca_command&) = delete;

  bool parsed() const;
  int run(std::ostream& out, std::ostream& err);

private:
  CLI::App* ca_ = nullptr;
  CLI::App* init_ = nullptr;
  std::string config_path_;
  std::string name_ = "Firehook device CA";
  std::uint32_t days_ = 3650;
  std::string import_cert_;
  std::string import_key_;
};

} // namespace firehook::app
