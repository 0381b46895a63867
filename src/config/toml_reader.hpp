#pragma once

// What config.cpp and topics.cpp share to read a TOML file: the diagnostics sink, the table
// reader that reports wrong types and unknown keys, and the small formatting helpers their
// messages use. Both loaders go through these, so a message about a key reads the same in
// firehook.toml and in the topics file.
//
// Private to src/config: this header includes <toml++/toml.h> (a heavy header, and Debian's
// libtomlplusplus fixes its ABI), so nothing outside src/config may include it; the public
// headers (config.hpp, topics.hpp) stay free of toml++.
//
// Nothing here holds global state. A diagnostics_sink and the table_readers writing to it
// belong to one load, on one thread; a table_reader refers to its sink and its table, which must
// outlive it.

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "config/config.hpp"

// Debian's libtomlplusplus is a compiled library that exports only the exception-mode ABI
// (toml::v3::ex): parse() throws toml::parse_error. Fail here, not at link time, if a
// compiler flag ever turns that off.
#if !TOML_EXCEPTIONS
#error "firehook config expects toml++ with TOML_EXCEPTIONS=1 (the ABI Debian's libtomlplusplus exports)"
#endif

namespace firehook::config::detail {

// "integer", "floating-point number", ...: the type a user wrote, for "(got ...)".
std::string_view type_name(toml::node_type type);

// A user's string echoed in a message: quoted, control bytes escaped so a diagnostic stays
// on one line, and shortened so a pasted blob does not drown the message.
std::string quoted_value(std::string_view text);

// " (did you mean 'x'?)" for a near miss among `candidates`, else "".
std::string suggestion(std::string_view name, const std::vector<std::string_view>& candidates);

// Letters, digits, '_' or '-', not empty: a listener or role name.
bool valid_name(std::string_view name);

class diagnostics_sink {
public:
  explicit diagnostics_sink(std::string file) : file_(std::move(file)) {}

  void error(const toml::source_region& where, std::string key, std::string message) {
    add(where, std::move(key), std::move(message), false);
  }
  void warning(const toml::source_region& where, std::string key, std::string message) {
    add(where, std::move(key), std::move(message), true);
  }

  bool has_errors() const;

  // In file order, so a user fixing them top to bottom never scrolls back; stable so that
  // several findings on one line keep the order they were found in.
  std::vector<diagnostic> take();

private:
  void add(const toml::source_region& where, std::string key, std::string message, bool warning);

  std::string file_;
  std::vector<diagnostic> list_;
};

// Parses `text` into `out`; false when it is not TOML, the syntax error then reported to `sink`.
bool parse_document(diagnostics_sink& sink, std::string_view text, std::string_view file_name,
                    toml::table& out);

// Reads a whole file into `text`; nullopt when it could, else the diagnostic saying why not
// ("cannot open: No such file or directory"), which has no position.
std::optional<diagnostic> read_file(const std::filesystem::path& path, std::string& text);

// One string of a TOML array, and where it is.
struct string_element {
  const toml::value<std::string>* value;
  std::string path; // "listener[0].auth[1]"

  const std::string& text() const { return value->get(); }
};

// Reads one TOML table into typed fields. Every accessor records its key as known, so that
// finish() can report all other keys as unknown: a misspelt key would otherwise be ignored
// and its setting silently left at the default.
class table_reader {
public:
  table_reader(diagnostics_sink& sink, const toml::table& table, std::string path)
      : sink_(sink), table_(table), path_(std::move(path)) {}

  std::string key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  const toml::node* find(std::string_view key) {
    known_.push_back(key);
    return table_.get(key);
  }

  // The value as T (a toml::value<...>); null when absent or of another type (the latter
  // reported as "must be <expected>").
  template <class T>
  const T* typed(std::string_view key, std::string_view expected) {
    const toml::node* node = find(key);
    if (node == nullptr) {
      return nullptr;
    }
    const T* value = node->as<typename T::value_type>();
    if (value == nullptr) {
      wrong_type(*node, key, expected);
    }
    return value;
  }

  // A sub-table; reports a value of another type. Null when absent or wrong.
  const toml::table* table(std::string_view key);

  // An array; reports a value of another type as "must be <expected>". Null when absent or wrong.
  const toml::array* array(std::string_view key, std::string_view expected);

  // T is an integer type or std::chrono::seconds; [min, max] must fit in T. `out` keeps its
  // default when the key is absent or wrong; true when it was set.
  template <class T>
  bool integer(std::string_view key, T& out, std::int64_t min, std::int64_t max) {
    const toml::node* node = find(key);
    if (node == nullptr) {
      return false;
    }
    const auto* value = node->as_integer();
    if (value == nullptr) {
      wrong_type(*node, key, "an integer");
      return false;
    }
    const std::int64_t got = value->get();
    if (got < min || got > max) {
      sink_.error(node->source(), key_path(key),
                  "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (got " +
                      std::to_string(got) + ")");
      return false;
    }
    if constexpr (std::is_same_v<T, std::chrono::seconds>) {
      out = std::chrono::seconds{got};
    } else {
      out = static_cast<T>(got);
    }
    return true;
  }

  // As above; `out` is set only when the key is there and valid.
  template <class T>
  void integer(std::string_view key, std::optional<T>& out, std::int64_t min, std::int64_t max) {
    T value{};
    if (integer(key, value, min, max)) {
      out = value;
    }
  }

  void boolean(std::string_view key, bool& out);

  // Null when absent or not a string (the latter reported).
  const toml::value<std::string>* string(std::string_view key);

  // A string for people (a description, payload notes): any text without NUL, empty allowed.
  void text(std::string_view key, std::string& out);

  // False when the key is present but unusable (reported); `out` then keeps its default.
  template <class E>
  bool choice(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> options) {
    const auto* value = string(key);
    if (value == nullptr) {
      return table_.get(key) == nullptr;
    }
    for (const auto& [text, option] : options) {
      if (value->get() == text) {
        out = option;
        return true;
      }
    }
    std::string allowed;
    for (const auto& option : options) {
      allowed += (allowed.empty() ? "" : ", ") + std::string(option.first);
    }
    error(*value, key, "must be one of " + allowed + " (got " + quoted_value(value->get()) + ")");
    return false;
  }

  // An array of strings, each element with its key path ("listener[0].auth[1]") for messages.
  // nullopt when the key is absent or is not an array (the latter reported); an element of
  // another type is reported and left out.
  std::optional<std::vector<string_element>> strings(std::string_view key);

  void error(const toml::node& node, std::string_view key, std::string message) {
    sink_.error(node.source(), key_path(key), std::move(message));
  }

  void wrong_type(const toml::node& node, std::string_view key, std::string_view expected);

  // A value valid alone but not with another key's: reports `message` at `key` when `ok` is false
  // and the key is in the table (a default that does not fit is the other key's to explain).
  void require(std::string_view key, bool ok, std::string message) {
    if (!ok) {
      if (const toml::node* node = table_.get(key)) {
        error(*node, key, std::move(message));
      }
    }
  }

  // Reports every key no accessor asked for as unknown, with a near miss as suggestion.
  void finish();

private:
  diagnostics_sink& sink_;
  const toml::table& table_;
  std::string path_;
  std::vector<std::string_view> known_;
};

// The keys of a rate table ([limits], [listener.rate_limits], a role's rate_limits) that `section`
// gives; a burst must be at least `least_burst` (config.cpp).
void read_rate_overrides(table_reader& section, rate_overrides& out, std::int64_t least_burst);

} // namespace firehook::config::detail
