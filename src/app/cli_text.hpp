#pragma once
// Text shared by the commands that edit the registry (`firehook user`, `firehook device`): their
// errors, the --attr KEY=VALUE options, lists, times, and aligned tables.

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "registry/credential_store.hpp"

namespace firehook::app {

// A mistake of the person at the keyboard (or in a file they named): printed as it is, exit code 1.
class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// The --attr KEY=VALUE options as a map. Throws std::invalid_argument naming the option when one
// has no '=', an invalid key or value (registry::check_attribute), or a key given twice.
registry::attribute_map parse_attributes(const std::vector<std::string>& given);

// "a,b,c"; "-" when empty.
std::string join_or_dash(const std::vector<std::string>& items);
// "k1=v1,k2=v2"; "-" when empty.
std::string join_or_dash(const registry::attribute_map& attributes);

// "2026-12-08T01:59:21Z".
std::string utc_time(std::chrono::system_clock::time_point t);
std::string utc_time(std::int64_t unix_seconds);

// The rows with their columns aligned (two spaces between columns), one line each; the first row
// is the header.
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out);

} // namespace firehook::app
