#include "app/command_config.hpp"

#include <ostream>

namespace firehook::app {

std::shared_ptr<const config::config> command_config(const std::string& path, std::ostream& err) {
  if (path.empty()) {
    return std::make_shared<const config::config>(config::defaults());
  }
  auto loaded = config::load_file(path);
  if (!loaded.ok()) {
    for (const auto& d : loaded.diagnostics) {
      err << d.to_string() << '\n';
    }
    return nullptr;
  }
  return loaded.cfg;
}

} // namespace firehook::app
