#include "registry/ban_store.hpp"

#include <array>
#include <cctype>

#include "base/address_range.hpp"

namespace firehook::registry {
namespace {

constexpr std::array ban_migrations{
    migration{"bans", R"sql(
CREATE TABLE bans (
  kind TEXT NOT NULL CHECK (kind IN ('address', 'client_id', 'username')),
  subject TEXT NOT NULL,
  reason TEXT NOT NULL,
  source TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER,
  PRIMARY KEY (kind, subject)
) WITHOUT ROWID;
)sql"},
    // SQLite cannot change a CHECK constraint: the table is made again with the new kinds.
    migration{"bans of certificates and token subjects", R"sql(
CREATE TABLE bans_new (
  kind TEXT NOT NULL CHECK (kind IN ('address', 'client_id', 'username', 'certificate', 'token_subject')),
  subject TEXT NOT NULL,
  reason TEXT NOT NULL,
  source TEXT NOT NULL,
  created INTEGER NOT NULL,
  expires INTEGER,
  PRIMARY KEY (kind, subject)
) WITHOUT ROWID;
INSERT INTO bans_new SELECT kind, subject, reason, source, created, expires FROM bans;
DROP TABLE bans;
ALTER TABLE bans_new RENAME TO bans;
)sql"},
};

constexpr std::string_view columns = "SELECT kind, subject, reason, source, created, expires FROM bans";

ban read_ban(const statement& s) {
  ban b;
  b.kind = ban_kind_of(s.column_text(0)).value_or(ban_kind::address);
  b.subject = s.column_text(1);
  b.reason = s.column_text(2);
  b.source = s.column_text(3);
  b.created = s.column_int(4);
  if (!s.column_is_null(5)) {
    b.expires = s.column_int(5);
  }
  return b;
}

} // namespace

std::string_view to_string(ban_kind k) {
  switch (k) {
  case ban_kind::address:
    return "address";
  case ban_kind::client_id:
    return "client_id";
  case ban_kind::username:
    return "username";
  case ban_kind::certificate:
    return "certificate";
  case ban_kind::token_subject:
    return "token_subject";
  }
  return "";
}

std::optional<ban_kind> ban_kind_of(std::string_view text) {
  for (const auto k :
       {ban_kind::address, ban_kind::client_id, ban_kind::username, ban_kind::certificate, ban_kind::token_subject}) {
    if (to_string(k) == text) {
      return k;
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_subject(ban_kind kind, std::string_view subject, std::string& error) {
  if (subject.empty()) {
    error = "must not be empty";
    return std::nullopt;
  }
  if (subject.find('\0') != std::string_view::npos) {
    error = "must not contain a NUL character";
    return std::nullopt;
  }
  if (kind == ban_kind::address && !base::address_range::parse(subject, error)) {
    return std::nullopt;
  }
  if (kind == ban_kind::certificate) {
    std::string hex;
    for (const char ch : subject) {
      if (std::isxdigit(static_cast<unsigned char>(ch))) {
        hex += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      } else if (ch != ':') {
        hex.clear();
        break;
      }
    }
    if (hex.size() != 64) {
      error = "must be a SHA-256 fingerprint: 64 hex digits, pairs may be separated by ':' "
              "(openssl x509 -noout -fingerprint -sha256 -in device.crt)";
      return std::nullopt;
    }
    return hex;
  }
  return std::string(subject);
}

ban_store::ban_store(const std::filesystem::path& path) : db_(path, ban_migrations) {}

void ban_store::put(const ban& b) {
  connection c = db_.lock();
  auto s = c.prepare("INSERT OR REPLACE INTO bans (kind, subject, reason, source, created, expires) "
                     "VALUES (?, ?, ?, ?, ?, ?)");
  s.bind(1, to_string(b.kind)).bind(2, b.subject).bind(3, b.reason).bind(4, b.source).bind(5, b.created);
  if (b.expires) {
    s.bind(6, *b.expires);
  } else {
    s.bind_null(6);
  }
  s.run();
}

bool ban_store::remove(ban_kind kind, std::string_view subject) {
  connection c = db_.lock();
  c.prepare("DELETE FROM bans WHERE kind = ? AND subject = ?")
      .bind(1, to_string(kind))
      .bind(2, subject)
      .run();
  return c.changes() > 0;
}

std::vector<ban> ban_store::list() {
  connection c = db_.lock();
  auto s = c.prepare(std::string(columns) + " ORDER BY kind, subject");
  std::vector<ban> out;
  while (s.step()) {
    out.push_back(read_ban(s));
  }
  return out;
}

std::vector<ban> ban_store::remove_expired(std::int64_t now) {
  return db_.transaction([&](connection& c) {
    std::vector<ban> out;
    {
      auto s = c.prepare(std::string(columns) + " WHERE expires IS NOT NULL AND expires <= ?");
      s.bind(1, now);
      while (s.step()) {
        out.push_back(read_ban(s));
      }
    }
    if (!out.empty()) {
      c.prepare("DELETE FROM bans WHERE expires IS NOT NULL AND expires <= ?").bind(1, now).run();
    }
    return out;
  });
}

std::int64_t ban_store::data_version() {
  connection c = db_.lock();
  auto s = c.prepare("PRAGMA data_version");
  s.step();
  return s.column_int(0);
}

} // namespace firehook::registry
