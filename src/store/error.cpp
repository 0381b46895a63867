#include "store/error.hpp"

#include <string>

namespace firehook::store {
namespace {

class category final : public std::error_category {
public:
  const char* name() const noexcept override { return "firehook.store"; }
  std::string message(int ev) const override {
    switch (static_cast<store_errc>(ev)) {
    case store_errc::disk_full:
      return "store full: no space left on the disk or the store's size limit reached";
    case store_errc::io_error:
      return "store input/output error";
    case store_errc::corrupt:
      return "store file damaged or not a store";
    case store_errc::cannot_open:
      return "store cannot be opened";
    case store_errc::locked:
      return "store in use by another process";
    case store_errc::too_new:
      return "store written by a later version";
    case store_errc::invalid_options:
      return "invalid store options";
    case store_errc::closed:
      return "store closed";
    case store_errc::internal:
      return "store internal error";
    }
    return "unknown store error " + std::to_string(ev);
  }
};

} // namespace

const std::error_category& store_category() {
  static const category instance;
  return instance;
}

} // namespace firehook::store
