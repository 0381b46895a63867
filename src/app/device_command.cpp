#include "app/device_command.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <boost/json.hpp>

#include "app/ban_command.hpp"
#include "app/cli_text.hpp"
#include "app/command_config.hpp"
#include "broker/ban_list.hpp"
#include "registry/ban_store.hpp"
#include "registry/certificate_authority.hpp"
#include "registry/device_registry.hpp"
#include "registry/enrollment.hpp"

namespace firehook::app {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw usage_error(path + ": cannot read " + std::string(what) + ": " +
                      std::generic_category().message(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A word of a shell command line, quoted when it holds anything a shell would read.
std::string shell_word(const std::string& word) {
  const bool plain = !word.empty() && std::all_of(word.begin(), word.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0 ||
           std::string_view("/._-+:=@,").find(ch) != std::string_view::npos;
  });
  if (plain) {
    return word;
  }
  std::string out = "'";
  for (const char ch : word) {
    out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  }
  return out + "'";
}

// The listener a device connects to: the first TLS listener that asks for client certificates
// and has the certificate method in its chain; null when there is none.
const config::listener_settings* device_listener(const config::config& cfg) {
  for (const auto& l : cfg.listeners) {
    if (l.protocol == config::listener_protocol::mqtts && l.tls &&
        l.tls->client_certs != config::client_certificates::none &&
        std::find(l.auth.begin(), l.auth.end(), config::auth_method::certificate) != l.auth.end()) {
      return &l;
    }
  }
  return nullptr;
}

std::string host_of(const config::listener_settings& l) {
  if (l.address == "0.0.0.0" || l.address == "::") {
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0') {
      return name;
    }
  }
  return l.address;
}

// Reads a file the configuration names; "" when it cannot be read (the broker would say why).
std::string read_if_possible(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) {
    text << in.rdbuf();
  }
  return text.str();
}

// What the device needs, and where it goes.
struct bundle {
  std::string name;
  registry::issued_certificate issued;
  std::string device_ca_pem;
  std::optional<std::string> broker_ca_pem; // the CA that verifies the broker's certificate
  std::vector<std::string> notes;           // printed after the command
  std::string host = "HOST";
  std::string port = "PORT";
};

bundle make_bundle(const config::config& cfg, const registry::certificate_authority& ca, std::string name,
                   registry::issued_certificate issued, const std::string& host, std::uint16_t port) {
  bundle b;
  b.name = std::move(name);
  b.issued = std::move(issued);
  if (ca.intermediate()) {
    b.issued.certificate_pem += ca.certificate_pem(); // the device presents the chain up to the root
  }
  b.device_ca_pem = ca.certificate_pem();
  const auto* l = device_listener(cfg);
  if (l == nullptr) {
    b.notes.push_back(
        "no TLS listener of the configuration asks for client certificates with the certificate "
        "method: HOST and PORT are placeholders");
  } else {
    b.host = host_of(*l);
    b.port = std::to_string(l->port);
    if (l->port == 0 && port == 0) {
      b.port = "PORT";
      b.notes.push_back("listener \"" + l->name + "\" has port 0 (any free port): pass --port");
    }
    const std::string listener_ca = read_if_possible(l->tls->ca);
    if (const auto why = registry::verify_certificate(b.issued.certificate_pem, listener_ca); !why.empty()) {
      b.notes.push_back("listener \"" + l->name + "\" does not trust this certificate yet (" + why +
                        "): add " + registry::ca_files::in(cfg.broker.state_dir).certificate.string() +
                        " to its ca bundle " + l->tls->ca.string());
    }
    const std::vector<std::string> candidates{ca.certificate_pem(), listener_ca};
    const int found = registry::bundle_verifying(read_if_possible(l->tls->cert), candidates);
    if (found >= 0) {
      b.broker_ca_pem = candidates[static_cast<std::size_t>(found)];
    } else {
      b.notes.push_back("no known CA verifies the certificate of listener \"" + l->name +
                        "\": give the device the CA that signed it as --cafile");
    }
  }
  if (!host.empty()) {
    b.host = host;
  }
  if (port != 0) {
    b.port = std::to_string(port);
  }
  return b;
}

// The mosquitto_pub and mosquitto_sub lines, with the files in `dir` ("" for the working folder).
std::vector<std::string> connection_commands(const bundle& b, const fs::path& dir) {
  const auto file = [&](const std::string& name) { return shell_word((dir / name).string()); };
  const std::string common = " --cafile " + file(b.broker_ca_pem ? "broker-ca.crt" : "ca.crt") + " --cert " +
                             file(b.name + ".crt") + " --key " + file(b.name + ".key") + " -h " +
                             shell_word(b.host) + " -p " + b.port + " -i " + b.name;
  const std::string topic = "devices/" + b.name + "/status";
  return {"mosquitto_pub" + common + " -t " + topic + " -m online",
          "mosquitto_sub" + common + " -t " + topic};
}

void write_private(const fs::path& path, const std::string& text, mode_t mode) {
  // O_EXCL through std::ofstream is not available: refuse an existing file first, then create it
  // with the mode from the start (umask can only narrow it).
  if (fs::exists(fs::symlink_status(path))) {
    throw usage_error(path.string() + ": exists; refusing to replace it");
  }
  const mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  ::umask(old);
  file << text;
  file.close();
  if (!file) {
    throw usage_error(path.string() + ": cannot write");
  }
  fs::permissions(path, static_cast<fs::perms>(mode));
}

// The bundle folder: made with mode 0700, or an existing folder holding none of the files to be
// written (the device's own key may be there already when it made its request).
void prepare_folder(const fs::path& dir, const std::string& name, bool key_made_here) {
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) {
      throw usage_error(dir.string() + ": exists and is not a folder");
    }
    for (const auto& f : {name + ".crt", key_made_here ? name + ".key" : name + ".crt", std::string("ca.crt"),
                          std::string("broker-ca.crt"), std::string("connect.txt")}) {
      if (fs::exists(fs::symlink_status(dir / f))) {
        throw usage_error((dir / f).string() + ": exists; choose another --out folder");
      }
    }
    return;
  }
  registry::create_private_folders(dir);
}

void deliver(const bundle& b, const std::string& out_dir, bool key_made_here, std::ostream& out) {
  const auto& issued = b.issued;
  out << "certificate serial " << issued.serial_hex << ", valid until " << utc_time(issued.not_after) << '\n';
  if (out_dir.empty()) {
    out << "# " << b.name << ".crt\n" << issued.certificate_pem;
    if (key_made_here) {
      out << "# " << b.name << ".key (keep it secret: it is the device's identity)\n"
          << issued.private_key_pem;
    }
    out << "# ca.crt (the CA of the device certificates)\n" << b.device_ca_pem;
    if (b.broker_ca_pem) {
      out << "# broker-ca.crt (the CA of the broker's certificate: the device checks the broker with it)\n"
          << *b.broker_ca_pem;
    }
  } else {
    const fs::path dir = fs::absolute(out_dir);
    write_private(dir / (b.name + ".crt"), issued.certificate_pem, 0644);
    if (key_made_here) {
      write_private(dir / (b.name + ".key"), issued.private_key_pem, 0600);
    }
    write_private(dir / "ca.crt", b.device_ca_pem, 0644);
    if (b.broker_ca_pem) {
      write_private(dir / "broker-ca.crt", *b.broker_ca_pem, 0644);
    }
    std::string text;
    for (const auto& line : connection_commands(b, dir)) {
      text += line + "\n";
    }
    write_private(dir / "connect.txt", text, 0644);
    out << "bundle: " << dir.string() << '\n';
  }
  if (!key_made_here) {
    out << "the key is the one the request was made with, which never left the device: keep it as " << b.name
        << ".key beside the certificate\n";
  }
  out << "connect with:\n";
  for (const auto& line : connection_commands(b, out_dir.empty() ? fs::path() : fs::absolute(out_dir))) {
    out << "  " << line << '\n';
  }
  for (const auto& note : b.notes) {
    out << "note: " << note << '\n';
  }
}

boost::json::value optional_json(const std::optional<std::string>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::value optional_json(const std::optional<std::int64_t>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::object to_json(const registry::device_record& d) {
  boost::json::array roles(d.roles.begin(), d.roles.end());
  boost::json::object attributes;
  for (const auto& [key, value] : d.attributes) {
    attributes[key] = value;
  }
  boost::json::array certificates;
  for (const auto& c : d.certificates) {
    certificates.push_back(boost::json::object{{"serial", c.serial_hex},
                                               {"fingerprint_sha256", c.fingerprint_sha256},
                                               {"not_before", c.not_before},
                                               {"not_after", c.not_after},
                                               {"issued_at", c.issued_at},
                                               {"retire_at", optional_json(c.retire_at)}});
  }
  return boost::json::object{{"name", d.name},
                             {"state", registry::to_string(d.state)},
                             {"roles", std::move(roles)},
                             {"attributes", std::move(attributes)},
                             {"certificates", std::move(certificates)},
                             {"username", optional_json(d.username)},
                             {"token_subject", optional_json(d.token_subject)},
                             {"created_at", d.created_at},
                             {"updated_at", d.updated_at},
                             {"last_seen_at", optional_json(d.last_seen_at)},
                             {"last_address", optional_json(d.last_address)}};
}

// The certificate a device uses now: the newest one not retired.
const registry::device_certificate* current_certificate(const registry::device_record& d) {
  for (auto it = d.certificates.rbegin(); it != d.certificates.rend(); ++it) {
    if (!it->retire_at) {
      return &*it;
    }
  }
  return nullptr;
}

void print_list(const std::vector<registry::device_record>& devices, std::ostream& out) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"NAME", "STATE", "ROLES", "ATTRIBUTES", "CERTIFICATE", "NOT AFTER", "LAST SEEN"});
  for (const auto& d : devices) {
    const auto* c = current_certificate(d);
    rows.push_back(
        {d.name, std::string(registry::to_string(d.state)), join_or_dash(d.roles), join_or_dash(d.attributes),
         c != nullptr ? c->serial_hex : "-", c != nullptr ? utc_time(c->not_after) : "-",
         d.last_seen_at ? utc_time(*d.last_seen_at) + " from " + d.last_address.value_or("?") : "never"});
  }
  print_table(rows, out);
}

void print_device(const registry::device_record& d, std::ostream& out) {
  out << "name:        " << d.name << '\n'
      << "state:       " << registry::to_string(d.state) << '\n'
      << "roles:       " << join_or_dash(d.roles) << '\n'
      << "attributes:  " << join_or_dash(d.attributes) << '\n'
      << "username:    " << d.username.value_or("-") << '\n'
      << "token sub:   " << d.token_subject.value_or("-") << '\n'
      << "created:     " << utc_time(d.created_at) << '\n'
      << "last seen:   "
      << (d.last_seen_at ? utc_time(*d.last_seen_at) + " from " + d.last_address.value_or("?") : "never")
      << '\n';
  const auto now = registry::unix_now();
  for (const auto& c : d.certificates) {
    std::string status = "current";
    if (c.retire_at) {
      status = (c.retired(now) ? "retired " : "retiring ") + utc_time(*c.retire_at);
    }
    out << "certificate: " << c.serial_hex << "  sha256 " << c.fingerprint_sha256 << "  until "
        << utc_time(c.not_after) << "  " << status << '\n';
  }
}

registry::device_certificate record_of(const registry::issued_certificate& issued) {
  return {issued.serial_hex, issued.fingerprint_sha256, issued.not_before,
          issued.not_after,  registry::unix_now(),      std::nullopt};
}

} // namespace

device_command::device_command(CLI::App& app) {
  device_ = app.add_subcommand("device", "the device registry and the certificates issued to devices");
  device_->require_subcommand(1);
  device_->fallthrough();
  device_->add_option("-c,--config", config_path_, "configuration file (TOML) naming the state dir");

  const auto issuing = [this](CLI::App* sub) {
    sub->add_option("--csr", csr_, "the device's certificate signing request (PEM): its key never leaves it");
    sub->add_option("--out", out_dir_, "write the bundle to this folder (mode 0700) instead of printing it");
    sub->add_option("--days", days_, "how long the certificate is valid (default 365)")
        ->check(CLI::Range(1, 36500));
    sub->add_option("--san-uri", san_uri_, "a URI subject alternative name for the certificate");
    sub->add_option("--host", host_, "the broker's address as devices reach it (default: the listener's)");
    sub->add_option("--port", port_, "the broker's port as devices reach it (default: the listener's)");
  };
  const auto named = [this](CLI::App* sub) { sub->add_option("name", name_, "device name")->required(); };

  add_ = device_->add_subcommand("add", "register a device and issue its certificate");
  named(add_);
  add_->add_option("--role", roles_, "a role of the device (repeatable)")->allow_extra_args(false);
  add_->add_option("--attr", attributes_, "an attribute KEY=VALUE (repeatable), e.g. building=b1")
      ->allow_extra_args(false);
  add_->add_option("--username", username_,
                   "the password user of the same device, if any: refused too while the device is disabled");
  add_->add_option("--token-subject", token_subject_, "the token subject of the same device, if any");
  issuing(add_);

  list_ = device_->add_subcommand("list", "list the devices");
  list_->add_flag("--json", json_, "as JSON");
  show_ = device_->add_subcommand("show", "show one device and its certificates");
  named(show_);
  show_->add_flag("--json", json_, "as JSON");
  disable_ = device_->add_subcommand("disable", "refuse the device's connections (until enabled)");
  named(disable_);
  enable_ = device_->add_subcommand("enable", "let a disabled device connect again");
  named(enable_);
  remove_ = device_->add_subcommand("remove", "remove the device from the registry");
  named(remove_);
  revoke_ = device_->add_subcommand(
      "revoke", "revoke the device for good: certificates, client id, password user and token subject blocked, "
                "connections dropped, sessions ended");
  named(revoke_);
  revoke_->add_option("--reason", reason_, "why, for the bans and the audit log");
  rotate_ = device_->add_subcommand("rotate", "issue a new certificate; the old one ends after --grace");
  named(rotate_);
  rotate_->add_option("--grace", grace_,
                      "how long the old certificate stays valid: 90s, 10m, 2h, 7d (default 7d)");
  issuing(rotate_);
  enroll_token_ =
      device_->add_subcommand("enroll-token", "make one-time tokens with which devices enrol over MQTT");
  enroll_token_->add_option("--template", template_, "the [[enrollment.template]] the devices get")
      ->required();
  enroll_token_->add_option("--count", count_, "how many tokens (default 1)")->check(CLI::Range(1, 10000));
  enroll_token_->add_option("--expires", expires_, "how long they are valid: 90s, 10m, 2h, 7d (default 24h)");
}

int device_command::make_enrollment_tokens(const config::config& cfg, std::ostream& out) {
  const config::enrollment_template* t = cfg.enrollment.find(template_);
  if (t == nullptr) {
    std::string known;
    for (const auto& each : cfg.enrollment.templates) {
      known += (known.empty() ? "" : ", ") + each.name;
    }
    throw usage_error("no [[enrollment.template]] named \"" + template_ + "\" in the configuration (" +
                      (known.empty() ? std::string("it has none") : "known: " + known) + ")");
  }
  const auto seconds = parse_duration(expires_);
  if (!seconds || *seconds <= 0 || *seconds > 365 * 86400) {
    throw usage_error("--expires must be a duration up to 365d: 90s, 10m, 2h, 7d (got \"" + expires_ + "\")");
  }
  const auto expires_at = registry::unix_now() + *seconds;
  auto tokens = registry::enrollment_tokens::open(registry::credential_database_path(cfg));
  // Printed once: the database keeps only their hashes.
  for (const auto& token : tokens->create(t->name, count_, expires_at)) {
    out << token << '\n';
  }
  return 0;
}

bool device_command::parsed() const {
  return device_->parsed();
}

int device_command::run(std::ostream& out, std::ostream& err) {
  try {
    return run_checked(out, err);
  } catch (const std::exception& e) {
    err << "firehook device: " << e.what() << '\n';
    return 1;
  }
}

revocation revoke_device(const config::config& cfg, registry::device_registry& devices, std::string_view name,
                         std::string_view reason, std::string_view who,
                         const std::function<void(registry::ban)>& ban) {
  const auto d = devices.find(name);
  if (!d) {
    throw usage_error("no device \"" + std::string(name) + "\"");
  }
  devices.set_state(name, registry::device_state::revoked);
  revocation r;
  // The CRL, from the registry: every certificate of every revoked device.
  for (const auto& other : devices.list()) {
    if (other.state == registry::device_state::revoked) {
      for (const auto& c : other.certificates) {
        r.serials.push_back(c.serial_hex);
      }
    }
  }
  const auto files = registry::ca_files::in(cfg.broker.state_dir);
  registry::certificate_authority::load(files).write_crl(r.serials);
  r.crl = files.crl.string();
  // The bans: what a running broker enforces within half a second, on every credential of it.
  const std::string why = "device " + std::string(name) + " revoked" +
                          (who.empty() ? "" : " by " + std::string(who)) +
                          (reason.empty() ? "" : ": " + std::string(reason));
  const auto add = [&](registry::ban_kind kind, const std::string& subject) {
    r.bans.push_back(registry::ban{kind, subject, why, std::string(broker::revocation_source), registry::unix_now(),
                                   std::nullopt});
    ban(r.bans.back());
  };
  add(registry::ban_kind::client_id, std::string(name));
  for (const auto& c : d->certificates) {
    add(registry::ban_kind::certificate, c.fingerprint_sha256);
  }
  if (d->username) {
    add(registry::ban_kind::username, *d->username);
  }
  if (d->token_subject) {
    add(registry::ban_kind::token_subject, *d->token_subject);
  }
  return r;
}

namespace {

http_answer json_answer(unsigned status, boost::json::value v) {
  return {status, boost::json::serialize(v) + "\n"};
}

http_answer json_error(unsigned status, std::string_view why) {
  return json_answer(status, boost::json::object{{"error", why}});
}

// The member `key` of `o` as a string; nullopt when absent; throws usage_error when not a string.
std::optional<std::string> text_member(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (!v->is_string()) {
    throw usage_error("\"" + std::string(key) + "\" must be a string");
  }
  return std::string(v->as_string());
}

// POST /devices: a device from its own request. No key is ever made here: it would cross the network.
http_answer add_from_request(const config::config& cfg, registry::device_registry& devices,
                             const boost::json::object& o) {
  static constexpr std::string_view known[] = {"name", "roles", "attributes", "csr", "days",
                                               "username", "token_subject", "san_uri"};
  for (const auto& member : o) {
    if (std::find(std::begin(known), std::end(known), member.key()) == std::end(known)) {
      throw usage_error("unknown member \"" + std::string(member.key()) + "\"");
    }
  }
  registry::new_device d;
  d.name = text_member(o, "name").value_or("");
  if (auto why = registry::check_device_name(d.name); !why.empty()) {
    throw usage_error("\"name\": " + why);
  }
  if (const auto* roles = o.if_contains("roles")) {
    if (!roles->is_array()) {
      throw usage_error("\"roles\" must be an array of strings");
    }
    for (const auto& r : roles->as_array()) {
      if (!r.is_string()) {
        throw usage_error("\"roles\" must be an array of strings");
      }
      d.roles.emplace_back(r.as_string());
    }
  }
  if (const auto* attributes = o.if_contains("attributes")) {
    if (!attributes->is_object()) {
      throw usage_error("\"attributes\" must be an object of strings");
    }
    for (const auto& [key, value] : attributes->as_object()) {
      if (!value.is_string()) {
        throw usage_error("\"attributes\" must be an object of strings");
      }
      d.attributes.emplace(std::string(key), std::string(value.as_string()));
    }
  }
  if (auto why = registry::check_roles_and_attributes(d.roles, d.attributes); !why.empty()) {
    throw usage_error(why);
  }
  d.username = text_member(o, "username");
  d.token_subject = text_member(o, "token_subject");
  const auto csr = text_member(o, "csr");
  if (!csr) {
    throw usage_error("\"csr\" (the device's certificate signing request, PEM) is required: the admin endpoint "
                      "never makes a device's key");
  }
  std::uint32_t days = 365;
  if (const auto* v = o.if_contains("days")) {
    if (!v->is_int64() || v->as_int64() < 1 || v->as_int64() > 36500) {
      throw usage_error("\"days\" must be a whole number of days, 1..36500");
    }
    days = static_cast<std::uint32_t>(v->as_int64());
  }
  if (devices.find(d.name)) {
    return json_error(409, "device \"" + d.name + "\" exists");
  }
  std::optional<registry::certificate_authority> ca;
  try {
    ca = registry::certificate_authority::load(registry::ca_files::in(cfg.broker.state_dir));
  } catch (const registry::ca_error& e) {
    return json_error(409, e.what());
  }
  registry::issued_certificate issued;
  try {
    issued = ca->sign_request(*csr, "\"csr\"", {d.name, text_member(o, "san_uri").value_or(""), days});
  } catch (const registry::ca_error& e) {
    return json_error(400, e.what());
  }
  devices.add(d, record_of(issued));
  if (ca->intermediate()) {
    issued.certificate_pem += ca->certificate_pem();
  }
  return json_answer(201, boost::json::object{{"device", to_json(*devices.find(d.name))},
                                              {"certificate", issued.certificate_pem},
                                              {"ca", ca->certificate_pem()}});
}

} // namespace

http_answer device_http(const config::config& cfg, std::string_view method, std::string_view target,
                        std::string_view body, std::string_view who, const std::function<void(registry::ban)>& ban) {
  const std::string_view path = target.substr(0, target.find('?'));
  // "/devices", "/devices/NAME" or "/devices/NAME/ACTION".
  std::string_view rest = path.size() > 8 ? path.substr(9) : std::string_view();
  const std::string_view name = rest.substr(0, rest.find('/'));
  const std::string_view action = rest.find('/') == std::string_view::npos ? "" : rest.substr(rest.find('/') + 1);
  boost::json::object o;
  if (method == "POST" && !body.empty()) {
    boost::system::error_code ec;
    auto parsed = boost::json::parse(body, ec);
    if (ec || !parsed.is_object()) {
      return json_error(400, "the body must be a JSON object");
    }
    o = std::move(parsed.as_object());
  }
  try {
    auto devices = registry::device_registry::open(registry::credential_database_path(cfg));
    if (name.empty()) {
      if (method == "GET") {
        boost::json::array list;
        for (const auto& d : devices->list()) {
          list.push_back(to_json(d));
        }
        return json_answer(200, boost::json::object{{"devices", std::move(list)}});
      }
      if (method == "POST") {
        return add_from_request(cfg, *devices, o);
      }
      return json_error(405, "GET and POST /devices");
    }
    const auto d = devices->find(name);
    if (!d) {
      return json_error(404, "no device \"" + std::string(name) + "\"");
    }
    if (method == "GET" && action.empty()) {
      return json_answer(200, to_json(*d));
    }
    const bool revoked = d->state == registry::device_state::revoked;
    if (method == "DELETE" && action.empty()) {
      if (revoked) {
        return json_error(409, "the device is revoked, for good: it stays so that its certificates stay in the CRL");
      }
      devices->remove(name);
      return json_answer(200, boost::json::object{{"removed", name}});
    }
    if (method == "POST" && (action == "disable" || action == "enable")) {
      if (revoked) {
        return json_error(409, "the device is revoked, for good");
      }
      devices->set_state(name, action == "disable" ? registry::device_state::disabled : registry::device_state::active);
      return json_answer(200, to_json(*devices->find(name)));
    }
    if (method == "POST" && action == "revoke") {
      const auto r = revoke_device(cfg, *devices, name, text_member(o, "reason").value_or(""), who, ban);
      boost::json::array bans;
      for (const auto& b : r.bans) {
        bans.push_back(boost::json::object{{"kind", registry::to_string(b.kind)}, {"subject", b.subject}});
      }
      return json_answer(200, boost::json::object{{"device", to_json(*devices->find(name))},
                                                  {"crl", r.crl},
                                                  {"bans", std::move(bans)}});
    }
    return json_error(405, "GET or DELETE /devices/NAME; POST /devices/NAME/disable, /enable or /revoke");
  } catch (const usage_error& e) {
    return json_error(400, e.what());
  } catch (const registry::device_error& e) {
    return json_error(400, e.what());
  } catch (const std::exception& e) {
    return json_error(500, e.what()); // the registry or the CA could not be read or written
  }
}

int device_command::run_checked(std::ostream& out, std::ostream& err) {
  const auto cfg = command_config(config_path_, err);
  if (!cfg) {
    return 1;
  }
  if (enroll_token_->parsed()) {
    return make_enrollment_tokens(*cfg, out);
  }
  const fs::path path = registry::credential_database_path(*cfg);
  const bool creates = add_->parsed();
  if (!creates && !fs::exists(path)) {
    throw usage_error("no device registry at " + path.string() + " (`firehook device add` creates it)");
  }
  if (!list_->parsed()) {
    if (auto why = registry::check_device_name(name_); !why.empty()) {
      throw usage_error(why);
    }
  }
  auto devices = registry::device_registry::open(path);
  const auto unknown = [&] { return usage_error("no device \"" + name_ + "\" in " + path.string()); };

  if (list_->parsed()) {
    const auto all = devices->list();
    if (json_) {
      boost::json::array list;
      for (const auto& d : all) {
        list.push_back(to_json(d));
      }
      out << boost::json::serialize(boost::json::object{{"devices", std::move(list)}}) << '\n';
    } else {
      print_list(all, out);
    }
    return 0;
  }
  if (show_->parsed()) {
    const auto d = devices->find(name_);
    if (!d) {
      throw unknown();
    }
    if (json_) {
      out << boost::json::serialize(to_json(*d)) << '\n';
    } else {
      print_device(*d, out);
    }
    return 0;
  }
  if (revoke_->parsed()) {
    registry::ban_store bans(cfg->broker.state_dir / "bans.db");
    const char* user = std::getenv("USER");
    const auto r = revoke_device(*cfg, *devices, name_, reason_, user != nullptr ? user : "",
                                 [&](const registry::ban& b) { bans.put(b); });
    out << "revoked device " << name_ << "\n  CRL " << r.crl << ": " << r.serials.size()
        << " certificate(s) of revoked devices\n";
    for (const auto& b : r.bans) {
      out << "  banned " << registry::to_string(b.kind) << ' ' << b.subject << '\n';
    }
    out << "a running broker drops its connections and ends its sessions within a second\n";
    return 0;
  }
  if (disable_->parsed() || enable_->parsed() || remove_->parsed()) {
    const auto d = devices->find(name_);
    if (!d) {
      throw unknown();
    }
    if (d->state == registry::device_state::revoked) {
      // Kept for good: its certificates must stay in the CRL, which is made from the registry.
      throw usage_error("device \"" + name_ + "\" is revoked, for good; provision the device again under a new name");
    }
  }
  if (disable_->parsed() || enable_->parsed()) {
    const auto state = disable_->parsed() ? registry::device_state::disabled : registry::device_state::active;
    devices->set_state(name_, state);
    out << (disable_->parsed() ? "disabled" : "enabled") << " device " << name_
        << (disable_->parsed()
                ? ": its next connection is refused (a connected device stays until it reconnects)"
                : "")
        << '\n';
    return 0;
  }
  if (remove_->parsed()) {
    devices->remove(name_);
    out << "removed device " << name_
        << " (its certificates stay valid at the TLS layer until they expire: disable a device to refuse "
           "it)\n";
    return 0;
  }

  // add and rotate: checked before the CA signs anything.
  registry::new_device device{name_, roles_, {}, std::nullopt, std::nullopt};
  std::int64_t grace = 0;
  if (add_->parsed()) {
    try {
      device.attributes = parse_attributes(attributes_);
    } catch (const std::invalid_argument& e) {
      throw usage_error(e.what());
    }
    if (auto why = registry::check_roles_and_attributes(device.roles, device.attributes); !why.empty()) {
      throw usage_error(why);
    }
    if (!username_.empty()) {
      device.username = username_;
    }
    if (!token_subject_.empty()) {
      device.token_subject = token_subject_;
    }
    if (devices->find(name_)) {
      throw usage_error("device \"" + name_ +
                        "\" exists (`firehook device rotate` issues a new certificate)");
    }
  } else {
    const auto seconds = parse_duration(grace_);
    if (!seconds) {
      throw usage_error("--grace must be a duration: 90s, 10m, 2h, 7d (got \"" + grace_ + "\")");
    }
    grace = *seconds;
    if (!devices->find(name_)) {
      throw unknown();
    }
  }
  if (!san_uri_.empty() &&
      (san_uri_.find(':') == std::string::npos || std::any_of(san_uri_.begin(), san_uri_.end(), [](char ch) {
         return static_cast<unsigned char>(ch) <= 0x20 || static_cast<unsigned char>(ch) >= 0x7f;
       }))) {
    throw usage_error("--san-uri " + san_uri_ + ": not a URI (scheme:..., printable ASCII without spaces)");
  }
  const auto ca = registry::certificate_authority::load(registry::ca_files::in(cfg->broker.state_dir));
  if (!out_dir_.empty()) {
    prepare_folder(out_dir_, name_, csr_.empty());
  }
  const registry::issue_options options{name_, san_uri_, days_};
  auto issued = csr_.empty()
                    ? ca.issue_with_new_key(options)
                    : ca.sign_request(read_file(csr_, "the certificate signing request"), csr_, options);
  if (add_->parsed()) {
    devices->add(device, record_of(issued));
    out << "added device " << name_ << " (roles: " << join_or_dash(device.roles) << ")\n";
  } else {
    devices->rotate_certificate(name_, record_of(issued), grace);
    out << "rotated the certificate of device " << name_ << "; the previous one is refused after "
        << utc_time(registry::unix_now() + grace) << '\n';
  }
  deliver(make_bundle(*cfg, ca, name_, std::move(issued), host_, port_), out_dir_, csr_.empty(), out);
  return 0;
}

} // namespace firehook::app
