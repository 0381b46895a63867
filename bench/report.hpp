#pragma once
// The results of one run: one JSON object on one line of stdout (for scripts) and the same fields
// as a two-column table on stderr (for people). Also the process figures a run reports: CPU time
// of the generator itself, and CPU time and resident memory of the broker when its pid is known.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stats.hpp"

namespace firehook::bench {

class report {
public:
  void add(std::string_view key, std::string_view value);
  void add(std::string_view key, const char* value) { add(key, std::string_view(value)); }
  void add(std::string_view key, bool value);
  void add(std::string_view key, double value, int decimals = 1);
  void add(std::string_view key, std::uint64_t value);
  void add(std::string_view key, std::int64_t value);
  void add(std::string_view key, unsigned value) { add(key, std::uint64_t{value}); }
  void add(std::string_view key, int value) { add(key, std::int64_t{value}); }
  // key_p50_us, key_p99_us, key_p999_us, key_max_us, key_mean_us (in microseconds) and key_samples.
  void add_latency(std::string_view key, const latency_histogram& h);

  // `{"k":v,...}` on one line.
  std::string json() const;
  void print_table(std::ostream& out) const;

private:
  struct field {
    std::string key;
    std::string json; // the value as JSON
    std::string text; // the value for the table
  };
  std::vector<field> fields_;
};

// CPU seconds (user + system) used by this process so far.
double own_cpu_seconds();
// CPU seconds used so far by process `pid`, from /proc/PID/stat; nullopt when it cannot be read.
std::optional<double> process_cpu_seconds(int pid);
// Resident memory of process `pid` (VmRSS in /proc/PID/status) in bytes.
std::optional<std::uint64_t> process_rss_bytes(int pid);
// CPUs this process may run on (its affinity mask, e.g. as set by taskset).
unsigned allowed_cpus();
// Raises the open file limit to the hard limit; returns the new soft limit.
std::uint64_t raise_file_limit();

} // namespace firehook::bench
