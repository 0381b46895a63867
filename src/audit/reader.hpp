#pragma once
// Reading the audit log back: `firehook audit verify` and `firehook audit query` (record.hpp has
// the format). Files may be given in any order: they are put in chain order by their first
// record's seq. Start-up of nothing, no state: plain functions, any thread.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace firehook::audit {

struct verify_report {
  bool intact = true;
  std::uint64_t records = 0;
  std::uint64_t signed_records = 0;
  // The first thing wrong, "audit.log:12: seq 40 does not follow 38"; empty when intact.
  std::string problem;
  // What is worth knowing and not wrong: where the chain begins, records not yet covered by a
  // signature, where the public key came from.
  std::vector<std::string> notes;
};

// Checks the chain (seq and prev of every record, across files) and every signature, against
// `public_key_hex` when given (the `.pub` file beside the key), otherwise against the key the
// log's first signed record names.
verify_report verify(const std::vector<std::filesystem::path>& files, std::optional<std::string> public_key_hex);

struct query_filter {
  std::string since, until; // UTC times as in the records ("2026-12-07T10:00:00"); a prefix is enough
  std::string event;        // event type, or the log's own record kind ("checkpoint", ...)
  std::string client_id, identity, peer;
};

// Writes the records that match every given field of `filter` to `out`, as they are in the files.
// Returns how many matched; throws std::runtime_error naming a file that cannot be read.
std::uint64_t query(const std::vector<std::filesystem::path>& files, const query_filter& filter, std::ostream& out);

} // namespace firehook::audit
