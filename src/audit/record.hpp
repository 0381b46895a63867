#pragma once
// The audit log's record format and its chain (docs/audit.md). One record is one line, one JSON
// object, whose first members are always, in this order:
//
//   {"seq":N,"prev":"<64 hex>","time":"2026-12-07T10:00:00.123456Z",...}
//
// seq counts records from 1 across every file of the log; prev is the SHA-256 of the previous
// record's line (its bytes without the newline; 64 zeros before the first record). The rest is
// either an event (the members of events::format_json_members: "event", "client_id", ...) or one of
// the log's own records, named by an "audit" member: "file_start" (the first record of every file:
// the public key, the previous file's name), "checkpoint", "stop". Those three are signed: their
// last member is "sig", the Ed25519 signature (hex) of the line as it is without that member
// (",\"sig\":\"...\"" removed). A signature binds every record before it through prev, so an edit,
// a deletion or a truncation before a checkpoint is detectable without the key; with the key
// kept secret, nobody can rewrite the chain up to a later checkpoint.
//
// Keys: Ed25519 (libsodium). The secret key file holds the 32-byte seed in hex, mode 0600; the
// public key, in hex, goes beside it (`.pub`) and into every file_start record.

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace firehook::audit {

inline constexpr std::string_view genesis_hash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// SHA-256 of `bytes`, lower-case hex.
std::string sha256_hex(std::string_view bytes);

// "2026-12-07T10:00:00.123456Z" (UTC, microseconds).
std::string utc_time(std::chrono::system_clock::time_point t);

// {"seq":seq,"prev":"prev","time":"...",members}. `members` are JSON members without braces.
std::string make_record(std::uint64_t seq, std::string_view prev, std::chrono::system_clock::time_point t,
                        std::string_view members);

class signing_key {
public:
  // Reads the seed from `file`, or makes a new key there (mode 0600) and its public key at
  // `file` + ".pub" when the file does not exist. Throws std::runtime_error naming the file.
  static signing_key load_or_create(const std::filesystem::path& file);
  // For tests: a key from a 32-byte seed.
  explicit signing_key(const std::array<unsigned char, 32>& seed);

  std::string public_hex() const;
  // `record` (a complete JSON object) with a last member "sig": the signature of `record`.
  std::string sign(std::string_view record) const;

private:
  std::array<unsigned char, 64> secret_{};
  std::array<unsigned char, 32> public_{};
};

// A signed record split into what was signed and the signature; nullopt when `line` has no
// "sig" last member of the right shape.
struct signed_parts {
  std::string signed_bytes;
  std::string signature_hex;
};
std::optional<signed_parts> split_signature(std::string_view line);

// Whether `signature_hex` is a valid Ed25519 signature of `bytes` by `public_hex`.
bool signature_valid(std::string_view bytes, std::string_view signature_hex, std::string_view public_hex);

} // namespace firehook::audit
