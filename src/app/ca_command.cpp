#include "app/ca_command.hpp"

#include <ostream>

#include "app/command_config.hpp"
#include "registry/certificate_authority.hpp"

namespace firehook::app {

ca_command::ca_command(CLI::App& app) {
  ca_ = app.add_subcommand("ca", "the certificate authority that issues device certificates");
  ca_->require_subcommand(1);
  ca_->fallthrough();
  ca_->add_option("-c,--config", config_path_, "configuration file (TOML) naming the state dir");
  init_ = ca_->add_subcommand("init", "make the CA (EC P-256) in <state_dir>/ca, or import one");
  init_->add_option("--name", name_, "the CA's common name (default \"Firehook device CA\")");
  init_->add_option("--days", days_, "how long the CA is valid (default 3650)")->check(CLI::Range(1, 36500));
  auto* cert = init_->add_option("--import-cert", import_cert_,
                                 "an existing CA (or intermediate) certificate, PEM; its chain may follow");
  auto* key = init_->add_option("--import-key", import_key_, "the private key of --import-cert, PEM");
  cert->needs(key);
  key->needs(cert);
}

bool ca_command::parsed() const {
  return ca_->parsed();
}

int ca_command::run(std::ostream& out, std::ostream& err) {
  const auto cfg = command_config(config_path_, err);
  if (!cfg) {
    return 1;
  }
  const auto files = registry::ca_files::in(cfg->broker.state_dir);
  try {
    const auto ca = import_cert_.empty()
                        ? registry::certificate_authority::create(files, name_, days_)
                        : registry::certificate_authority::import(files, import_cert_, import_key_);
    ca.write_crl({}); // empty until a device is revoked: a listener can name it from the start
    out << (import_cert_.empty() ? "created" : "imported") << " CA " << ca.subject() << ": "
        << files.certificate.string() << ", key " << files.key.string() << " (mode 0600), CRL "
        << files.crl.string() << "\n"
        << "add " << files.certificate.string()
        << " to the `ca` bundle of a TLS listener ([listener.tls] ca) so that the broker trusts the devices it "
           "issues, and name "
        << files.crl.string() << " as its crl so that `firehook device revoke` refuses their certificates\n";
    return 0;
  } catch (const std::exception& e) {
    err << "firehook ca: " << e.what() << '\n';
    return 1;
  }
}

} // namespace firehook::app
