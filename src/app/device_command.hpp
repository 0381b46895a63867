#pragma once
// `firehook device ...`: the device registry (registry/device_registry.hpp) and the certificates
// the CA of `firehook ca init` issues to devices. The registry is in the credential database of
// the configuration -c names ([auth.password] database, default <state_dir>/firehook.db); the CA
// in <state_dir>/ca.
//
//   firehook device [-c FILE] add NAME [--role R]... [--attr K=V]... [--csr FILE] [--out DIR]
//                   [--days N] [--san-uri URI] [--host H] [--port P] [--username U] [--token-subject S]
//   firehook device [-c FILE] list [--json]
//   firehook device [-c FILE] show NAME [--json]
//   firehook device [-c FILE] disable NAME | enable NAME | remove NAME
//   firehook device [-c FILE] revoke NAME [--reason TEXT]
//   firehook device [-c FILE] rotate NAME [--csr FILE] [--out DIR] [--days N] [--grace DURATION]
//   firehook device [-c FILE] enroll-token --template T [--count N] [--expires DURATION]
//
// add: with --csr, signs the public key of the device's own request (the recommended path: the
// private key never leaves the device); without it, makes an EC P-256 key too. The certificate's
// CN is NAME whatever the request asks for. Prints, or with --out writes to one folder (mode 0700):
// NAME.crt, NAME.key (mode 0600, only when made here), ca.crt (the device CA), broker-ca.crt (the
// CA that signed the broker's certificate, when one of the known bundles verifies it) and
// connect.txt: the exact mosquitto_pub and mosquitto_sub commands, for the first TLS listener of
// the configuration that asks for client certificates and uses the certificate method (--host and
// --port override its address, e.g. the name devices reach it by).
//
// --username links the device's password user and --token-subject its tokens' subject: their logins
// are refused while the device is disabled.
//
// rotate: issues a new certificate; the old ones stay valid for the grace period (default 7d) and
// the broker refuses them after it. A running broker sees every change at the device's next
// CONNECT: disable does not drop a connected device; revoke does.
//
// revoke: for good. The device's state becomes revoked (enable and remove then refuse it); the CA's
// CRL (<state_dir>/ca/crl.pem) is signed again with every certificate of every revoked device; and
// permanent bans (bans.db, source "device revoke") block its client id, certificates, password
// user and token subject. A running broker reads the bans within 500 ms: it drops the device's
// connections (5.0: DISCONNECT 0x98) and ends its sessions, queued messages included.
//
// enroll-token: makes N (default 1, at most 10000) one-time enrollment tokens for template T (an
// [[enrollment.template]] of the configuration), valid for DURATION (default 24h, at most 365d),
// and prints them one per line, once: only their SHA-256 is stored (registry/enrollment.hpp).
//
// Exit codes: 0 done; 1 error (unknown device, device exists, bad name, unreadable or invalid
// request, no CA yet...), with a one-line message on stderr, as `firehook user` and `ban`.

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/ban_command.hpp" // http_answer
#include "config/config.hpp"
#include "registry/ban_store.hpp"

namespace firehook::registry {
class device_registry;
}

namespace firehook::app {

// `device revoke` (the command and the admin endpoint): the registry's state, the CA's CRL and the
// bans, each given to `ban` (the command writes them to bans.db; the admin endpoint puts them in
// the running broker's list, and so in force at once). `who` and `reason` go into the bans'
// reason. Throws usage_error for an unknown device, registry::ca_error without a CA.
struct revocation {
  std::vector<std::string> serials; // in the CRL now (every revoked device's)
  std::string crl;                  // its file
  std::vector<registry::ban> bans;
};
revocation revoke_device(const config::config& cfg, registry::device_registry& devices, std::string_view name,
                         std::string_view reason, std::string_view who,
                         const std::function<void(registry::ban)>& ban);

// The admin endpoint's /devices (docs/admin.md): GET /devices, GET /devices/NAME, POST /devices
// (from a CSR), POST /devices/NAME/{disable,enable,revoke}, DELETE /devices/NAME. `ban` as above.
// 4xx with {"error": ...} for bad input; 5xx when the registry or the CA fails.
http_answer device_http(const config::config& cfg, std::string_view method, std::string_view target,
                        std::string_view body, std::string_view who, const std::function<void(registry::ban)>& ban);

class device_command {
public:
  // Keeps pointers into `app`, which must outlive this object; not movable (CLI11 writes into it).
  explicit device_command(CLI::App& app);
  device_command(const device_command&) = delete;
  device_command& operator=(const device_command&) = delete;

  bool parsed() const;
  int run(std::ostream& out, std::ostream& err);

private:
  int run_checked(std::ostream& out, std::ostream& err);
  int make_enrollment_tokens(const config::config& cfg, std::ostream& out);

  CLI::App* device_ = nullptr;
  CLI::App* add_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* show_ = nullptr;
  CLI::App* disable_ = nullptr;
  CLI::App* enable_ = nullptr;
  CLI::App* remove_ = nullptr;
  CLI::App* rotate_ = nullptr;
  CLI::App* revoke_ = nullptr;
  std::string reason_;
  CLI::App* enroll_token_ = nullptr;

  std::string config_path_;
  std::string name_;
  std::vector<std::string> roles_;
  std::vector<std::string> attributes_; // KEY=VALUE as given
  std::string csr_;
  std::string out_dir_;
  std::uint32_t days_ = 365;
  std::string san_uri_;
  std::string host_;
  std::uint16_t port_ = 0;
  std::string username_;
  std::string token_subject_;
  std::string grace_ = "7d";
  std::string template_;
  unsigned count_ = 1;
  std::string expires_ = "24h";
  bool json_ = false;
};

} // namespace firehook::app
