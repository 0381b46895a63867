#include "base/clock.hpp"

namespace firehook::base {

time_point steady_clock::now() const {
  return std::chrono::steady_clock::now();
}

} // namespace firehook::base
