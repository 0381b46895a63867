#include "report.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>

namespace firehook::bench {
namespace {

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// 1234567 -> "1,234,567": the table is for reading, and throughput figures are long.
std::string grouped(std::string_view digits) {
  const std::size_t start = !digits.empty() && digits[0] == '-' ? 1 : 0;
  const std::size_t dot = std::min(digits.find('.'), digits.size());
  std::string out(digits.substr(0, start));
  for (std::size_t i = start; i < dot; ++i) {
    if (i > start && (dot - i) % 3 == 0) {
      out += ',';
    }
    out += digits[i];
  }
  out += digits.substr(dot);
  return out;
}

} // namespace

void report::add(std::string_view key, std::string_view value) {
  fields_.push_back({std::string(key), json_string(value), std::string(value)});
}

void report::add(std::string_view key, bool value) {
  fields_.push_back({std::string(key), value ? "true" : "false", value ? "yes" : "no"});
}

void report::add(std::string_view key, double value, int decimals) {
  const std::string s = fixed(value, decimals);
  fields_.push_back({std::string(key), s, grouped(s)});
}

void report::add(std::string_view key, std::uint64_t value) {
  const std::string s = std::to_string(value);
  fields_.push_back({std::string(key), s, grouped(s)});
}

void report::add(std::string_view key, std::int64_t value) {
  const std::string s = std::to_string(value);
  fields_.push_back({std::string(key), s, grouped(s)});
}

void report::add_latency(std::string_view key, const latency_histogram& h) {
  const std::string k(key);
  const auto us = [](std::int64_t ns) { return static_cast<double>(ns) / 1000.0; };
  add(k + "_p50_us", us(h.quantile(0.50)));
  add(k + "_p99_us", us(h.quantile(0.99)));
  add(k + "_p999_us", us(h.quantile(0.999)));
  add(k + "_max_us", us(h.max()));
  add(k + "_mean_us", h.mean() / 1000.0);
  add(k + "_samples", h.count());
}

std::string report::json() const {
  std::string out = "{";
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += json_string(fields_[i].key);
    out += ':';
    out += fields_[i].json;
  }
  out += '}';
  return out;
}

void report::print_table(std::ostream& out) const {
  std::size_t width = 0;
  for (const field& f : fields_) {
    width = std::max(width, f.key.size());
  }
  for (const field& f : fields_) {
    out << "  " << f.key << std::string(width - f.key.size() + 2, ' ') << f.text << '\n';
  }
}

double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto secs = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

std::optional<double> process_cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return std::nullopt;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  const std::size_t close = line.rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream rest(line.substr(close + 1));
  std::string skip;
  for (int field = 3; field <= 13; ++field) {
    rest >> skip;
  }
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  if (!(rest >> utime >> stime)) {
    return std::nullopt;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<std::uint64_t> process_rss_bytes(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      std::uint64_t kib = 0;
      if (fields >> kib) {
        return kib * 1024;
      }
    }
  }
  return std::nullopt;
}

unsigned allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    return 1;
  }
  return static_cast<unsigned>(std::max(1, CPU_COUNT(&set)));
}

std::uint64_t raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return 0;
  }
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

} // namespace firehook::bench
