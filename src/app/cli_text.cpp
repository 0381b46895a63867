#include "app/cli_text.hpp"

#include <algorithm>
#include <ctime>
#include <ostream>
#include <stdexcept>

namespace firehook::app {

registry::attribute_map parse_attributes(const std::vector<std::string>& given) {
  registry::attribute_map out;
  for (const auto& kv : given) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) {
      throw std::invalid_argument("--attr " + kv + ": expected KEY=VALUE");
    }
    std::string key = kv.substr(0, eq);
    if (auto why = registry::check_attribute(key, kv.substr(eq + 1)); !why.empty()) {
      throw std::invalid_argument("--attr " + kv + ": " + why);
    }
    if (!out.emplace(key, kv.substr(eq + 1)).second) {
      throw std::invalid_argument("--attr " + key + " is given twice");
    }
  }
  return out;
}

std::string join_or_dash(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += out.empty() ? "" : ",";
    out += item;
  }
  return out.empty() ? "-" : out;
}

std::string join_or_dash(const registry::attribute_map& attributes) {
  std::vector<std::string> items;
  for (const auto& [key, value] : attributes) {
    items.push_back(key + "=" + value);
  }
  return join_or_dash(items);
}

std::string utc_time(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm parts{};
  ::gmtime_r(&seconds, &parts);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return std::string(text, n);
}

std::string utc_time(std::int64_t unix_seconds) {
  return utc_time(std::chrono::system_clock::time_point(std::chrono::seconds(unix_seconds)));
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(width[i] - row[i].size() + 2, ' ');
      }
    }
    out << line << '\n';
  }
}

} // namespace firehook::app
