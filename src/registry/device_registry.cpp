#include "registry/device_registry.hpp"

#include <array>
#include <chrono>

namespace firehook::registry {
namespace {

constexpr std::size_t max_device_name = 64; // ub-common-name (RFC 5280 appendix A)

constexpr std::string_view device_columns =
    "SELECT name, state, username, token_subject, created_at, updated_at, last_seen_at, last_address "
    "FROM devices";

std::optional<std::string> optional_text(const statement& s, int column) {
  return s.column_is_null(column) ? std::nullopt : std::optional(s.column_text(column));
}

std::optional<std::int64_t> optional_int(const statement& s, int column) {
  return s.column_is_null(column) ? std::nullopt : std::optional(s.column_int(column));
}

void bind_optional(statement& s, int index, const std::optional<std::string>& value) {
  if (value) {
    s.bind(index, *value);
  } else {
    s.bind_null(index);
  }
}

device_record read_device(const statement& s) {
  device_record d;
  d.name = s.column_text(0);
  // The CHECK constraint of the table admits only the three states.
  d.state = device_state_of(s.column_text(1)).value_or(device_state::revoked);
  d.username = optional_text(s, 2);
  d.token_subject = optional_text(s, 3);
  d.created_at = s.column_int(4);
  d.updated_at = s.column_int(5);
  d.last_seen_at = optional_int(s, 6);
  d.last_address = optional_text(s, 7);
  return d;
}

// Roles, attributes and certificates of `d`, read while the connection is held.
void load_details(connection& c, device_record& d) {
  statement roles = c.prepare("SELECT role FROM device_roles WHERE device_name = ?1 ORDER BY position");
  roles.bind(1, d.name);
  while (roles.step()) {
    d.roles.push_back(roles.column_text(0));
  }
  statement attributes = c.prepare("SELECT key, value FROM device_attributes WHERE device_name = ?1");
  attributes.bind(1, d.name);
  while (attributes.step()) {
    d.attributes.emplace(attributes.column_text(0), attributes.column_text(1));
  }
  statement certs =
      c.prepare("SELECT serial, fingerprint_sha256, not_before, not_after, issued_at, retire_at "
                "FROM device_certificates WHERE device_name = ?1 ORDER BY issued_at, rowid");
  certs.bind(1, d.name);
  while (certs.step()) {
    d.certificates.push_back({certs.column_text(0), certs.column_text(1), certs.column_int(2),
                              certs.column_int(3), certs.column_int(4), optional_int(certs, 5)});
  }
}

void insert_certificate(connection& c, std::string_view name, const device_certificate& cert) {
  auto s = c.prepare("INSERT INTO device_certificates (serial, device_name, fingerprint_sha256, not_before, "
                     "not_after, issued_at, retire_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  s.bind(1, cert.serial_hex)
      .bind(2, name)
      .bind(3, cert.fingerprint_sha256)
      .bind(4, cert.not_before)
      .bind(5, cert.not_after)
      .bind(6, cert.issued_at);
  if (cert.retire_at) {
    s.bind(7, *cert.retire_at);
  } else {
    s.bind_null(7);
  }
  s.run();
}

bool device_exists(connection& c, std::string_view name) {
  statement s = c.prepare("SELECT 1 FROM devices WHERE name = ?1");
  s.bind(1, name);
  return s.step();
}

[[noreturn]] void no_such_device(std::string_view name) {
  throw device_error("no device \"" + std::string(name) + "\"");
}

} // namespace

std::string_view to_string(device_state s) {
  switch (s) {
  case device_state::active:
    return "active";
  case device_state::disabled:
    return "disabled";
  case device_state::revoked:
    return "revoked";
  }
  return "";
}

std::optional<device_state> device_state_of(std::string_view text) {
  for (const auto s : {device_state::active, device_state::disabled, device_state::revoked}) {
    if (to_string(s) == text) {
      return s;
    }
  }
  return std::nullopt;
}

std::string check_device_name(std::string_view name) {
  if (name.empty()) {
    return "device name is empty";
  }
  if (name.size() > max_device_name) {
    return "device name is longer than 64 characters";
  }
  const auto alnum = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
  };
  if (!alnum(name.front())) {
    return "device name \"" + std::string(name) + "\" must start with a letter or a digit";
  }
  for (const char ch : name) {
    if (!alnum(ch) && ch != '.' && ch != '_' && ch != '-') {
      return "device name \"" + std::string(name) + "\" may hold only A-Z a-z 0-9 . _ -";
    }
  }
  return {};
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<device_registry> device_registry::open(const std::filesystem::path& path) {
  return std::make_shared<device_registry>(std::make_shared<store>(path));
}

void insert_device(connection& c, const new_device& device, const std::optional<device_certificate>& first) {
  if (auto why = check_device_name(device.name); !why.empty()) {
    throw device_error(why);
  }
  if (auto why = check_roles_and_attributes(device.roles, device.attributes); !why.empty()) {
    throw device_error(why);
  }
  if (device_exists(c, device.name)) {
    throw device_error("device \"" + device.name + "\" exists");
  }
  const std::int64_t now = unix_now();
  auto s = c.prepare("INSERT INTO devices (name, state, username, token_subject, created_at, updated_at) "
                     "VALUES (?1, 'active', ?2, ?3, ?4, ?4)");
  s.bind(1, device.name).bind(4, now);
  bind_optional(s, 2, device.username);
  bind_optional(s, 3, device.token_subject);
  s.run();
  statement role = c.prepare("INSERT INTO device_roles (device_name, position, role) VALUES (?1, ?2, ?3)");
  std::int64_t position = 0;
  for (const auto& r : device.roles) {
    role.bind(1, device.name).bind(2, position++).bind(3, r).run();
    role.reset();
  }
  statement attribute =
      c.prepare("INSERT INTO device_attributes (device_name, key, value) VALUES (?1, ?2, ?3)");
  for (const auto& [key, value] : device.attributes) {
    attribute.bind(1, device.name).bind(2, key).bind(3, value).run();
    attribute.reset();
  }
  if (first) {
    insert_certificate(c, device.name, *first);
  }
}

void device_registry::add(const new_device& device, const std::optional<device_certificate>& first) {
  // Checked before the transaction too, so that bad input never takes the write lock.
  if (auto why = check_device_name(device.name); !why.empty()) {
    throw device_error(why);
  }
  if (auto why = check_roles_and_attributes(device.roles, device.attributes); !why.empty()) {
    throw device_error(why);
  }
  db_->transaction([&](connection& c) { insert_device(c, device, first); });
}

bool device_registry::remove(std::string_view name) {
  return db_->transaction([&](connection& c) {
    // Roles, attributes and certificates go with it (ON DELETE CASCADE).
    c.prepare("DELETE FROM devices WHERE name = ?1").bind(1, name).run();
    return c.changes() > 0;
  });
}

std::optional<device_record> device_registry::find(std::string_view name) {
  connection c = db_->lock();
  std::optional<device_record> d;
  {
    statement s = c.prepare(std::string(device_columns) + " WHERE name = ?1");
    s.bind(1, name);
    if (!s.step()) {
      return std::nullopt;
    }
    d = read_device(s);
  }
  load_details(c, *d);
  return d;
}

bool device_registry::contains(std::string_view name) {
  connection c = db_->lock();
  return device_exists(c, name);
}

std::optional<std::pair<std::string, device_state>>
device_registry::linked_to_user(std::string_view username) {
  return linked("SELECT name, state FROM devices WHERE username = ?1 ORDER BY name LIMIT 1", username);
}

std::optional<std::pair<std::string, device_state>>
device_registry::linked_to_token_subject(std::string_view subject) {
  return linked("SELECT name, state FROM devices WHERE token_subject = ?1 ORDER BY name LIMIT 1", subject);
}

std::optional<std::pair<std::string, device_state>> device_registry::linked(std::string_view sql,
                                                                            std::string_view value) {
  connection c = db_->lock();
  statement s = c.prepare(sql);
  s.bind(1, value);
  if (!s.step()) {
    return std::nullopt;
  }
  return std::pair(s.column_text(0), device_state_of(s.column_text(1)).value_or(device_state::revoked));
}

std::vector<device_record> device_registry::list() {
  connection c = db_->lock();
  std::vector<device_record> out;
  {
    statement s = c.prepare(std::string(device_columns) + " ORDER BY name");
    while (s.step()) {
      out.push_back(read_device(s));
    }
  }
  for (auto& d : out) {
    load_details(c, d);
  }
  return out;
}

void device_registry::set_state(std::string_view name, device_state state) {
  db_->transaction([&](connection& c) {
    c.prepare("UPDATE devices SET state = ?1, updated_at = ?2 WHERE name = ?3")
        .bind(1, to_string(state))
        .bind(2, unix_now())
        .bind(3, name)
        .run();
    if (c.changes() == 0) {
      no_such_device(name);
    }
  });
}

void device_registry::rotate_certificate(std::string_view name, const device_certificate& issued,
                                         std::int64_t grace_seconds) {
  db_->transaction([&](connection& c) {
    if (!device_exists(c, name)) {
      no_such_device(name);
    }
    const std::int64_t now = unix_now();
    // A certificate retired earlier keeps its (earlier) end: a second rotation does not revive it.
    c.prepare("UPDATE device_certificates SET retire_at = ?1 WHERE device_name = ?2 AND retire_at IS NULL")
        .bind(1, now + grace_seconds)
        .bind(2, name)
        .run();
    insert_certificate(c, name, issued);
    c.prepare("UPDATE devices SET updated_at = ?1 WHERE name = ?2").bind(1, now).bind(2, name).run();
  });
}

void device_registry::touch(std::string_view name, std::string_view address, std::int64_t now,
                            std::int64_t min_interval) {
  connection c = db_->lock();
  c.prepare("UPDATE devices SET last_seen_at = ?1, last_address = ?2 WHERE name = ?3 AND "
            "(last_seen_at IS NULL OR last_seen_at <= ?4 OR last_address IS NOT ?2)")
      .bind(1, now)
      .bind(2, address)
      .bind(3, name)
      .bind(4, now - min_interval)
      .run();
}

} // namespace firehook::registry
