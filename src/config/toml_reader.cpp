#include "config/toml_reader.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <system_error>

namespace firehook::config::detail {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

} // namespace

std::string_view type_name(toml::node_type type) {
  switch (type) {
  case toml::node_type::table:
    return "table";
  case toml::node_type::array:
    return "array";
  case toml::node_type::string:
    return "string";
  case toml::node_type::integer:
    return "integer";
  case toml::node_type::floating_point:
    return "floating-point number";
  case toml::node_type::boolean:
    return "boolean";
  case toml::node_type::date:
    return "date";
  case toml::node_type::time:
    return "time";
  case toml::node_type::date_time:
    return "date-time";
  case toml::node_type::none:
    break;
  }
  return "nothing";
}

std::string quoted_value(std::string_view text) {
  constexpr std::size_t max_shown = 64;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      std::array<char, 8> hex{};
      std::snprintf(hex.data(), hex.size(), "\\x%02x", c);
      out += hex.data();
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max_shown) {
    out += "...";
  }
  out += '"';
  return out;
}

std::string suggestion(std::string_view name, const std::vector<std::string_view>& candidates) {
  std::string_view closest;
  std::size_t closest_distance = 3; // suggest only near misses: a typo, not a different word
  for (const std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(name, candidate);
    if (distance < closest_distance) {
      closest = candidate;
      closest_distance = distance;
    }
  }
  return closest.empty() ? std::string() : " (did you mean '" + std::string(closest) + "'?)";
}

bool valid_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

bool diagnostics_sink::has_errors() const {
  return std::any_of(list_.begin(), list_.end(), [](const diagnostic& d) { return !d.warning; });
}

std::vector<diagnostic> diagnostics_sink::take() {
  std::stable_sort(list_.begin(), list_.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return std::move(list_);
}

void diagnostics_sink::add(const toml::source_region& where, std::string key, std::string message,
                           bool warning) {
  list_.push_back(diagnostic{.file = file_,
                             .line = where.begin.line,
                             .column = where.begin.column,
                             .key = std::move(key),
                             .message = std::move(message),
                             .warning = warning});
}

bool parse_document(diagnostics_sink& sink, std::string_view text, std::string_view file_name,
                    toml::table& out) {
  try {
    out = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    // A syntax error leaves no document to validate; toml++ stops at the first one.
    sink.error(e.source(), "", std::string(e.description()));
    return false;
  }
  return true;
}

std::optional<diagnostic> read_file(const std::filesystem::path& path, std::string& text) {
  const auto unreadable = [&](std::string message) {
    diagnostic d;
    d.file = path.string();
    d.message = std::move(message);
    return d;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return unreadable("cannot read: is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return unreadable("cannot open: " + std::generic_category().message(errno));
  }
  text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return unreadable("cannot read: " + std::generic_category().message(errno));
  }
  return std::nullopt;
}

const toml::table* table_reader::table(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) {
    return nullptr;
  }
  if (!node->is_table()) {
    wrong_type(*node, key, "a table");
    return nullptr;
  }
  return node->as_table();
}

const toml::array* table_reader::array(std::string_view key, std::string_view expected) {
  const toml::node* node = find(key);
  if (node == nullptr) {
    return nullptr;
  }
  if (!node->is_array()) {
    wrong_type(*node, key, expected);
    return nullptr;
  }
  return node->as_array();
}

void table_reader::boolean(std::string_view key, bool& out) {
  if (const auto* value = typed<toml::value<bool>>(key, "a boolean (true or false)")) {
    out = value->get();
  }
}

const toml::value<std::string>* table_reader::string(std::string_view key) {
  return typed<toml::value<std::string>>(key, "a string");
}

void table_reader::text(std::string_view key, std::string& out) {
  if (const auto* value = string(key)) {
    if (value->get().find('\0') != std::string::npos) {
      error(*value, key, "must not contain a NUL character");
    } else {
      out = value->get();
    }
  }
}

std::optional<std::vector<string_element>> table_reader::strings(std::string_view key) {
  const toml::node* node = find(key);
  if (node == nullptr) {
    return std::nullopt;
  }
  const auto* list = node->as_array();
  if (list == nullptr) {
    wrong_type(*node, key, "an array of strings");
    return std::nullopt;
  }
  std::vector<string_element> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const toml::node& element = *list->get(i);
    std::string path = key_path(key) + "[" + std::to_string(i) + "]";
    if (const auto* text = element.as_string()) {
      out.push_back(string_element{.value = text, .path = std::move(path)});
    } else {
      sink_.error(element.source(), std::move(path),
                  "must be a string (got " + std::string(type_name(element.type())) + ")");
    }
  }
  return out;
}

void table_reader::wrong_type(const toml::node& node, std::string_view key, std::string_view expected) {
  error(node, key, "must be " + std::string(expected) + " (got " + std::string(type_name(node.type())) + ")");
}

void table_reader::finish() {
  for (const auto& [key, node] : table_) {
    const std::string_view name = key.str();
    if (std::find(known_.begin(), known_.end(), name) == known_.end()) {
      sink_.error(key.source(), key_path(name), "unknown key" + suggestion(name, known_));
    }
  }
}

} // namespace firehook::config::detail
