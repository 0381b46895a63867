#include "admin/tokens.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "audit/record.hpp"

namespace firehook::admin {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (const char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

// Writes `text` to `file` through a temporary file and a rename, mode 0600.
void replace_file(const std::filesystem::path& file, const std::string& text) {
  const auto tmp = file.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(tmp + ": " + std::strerror(errno));
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    throw std::runtime_error(file.string() + ": cannot be written: " + std::strerror(errno));
  }
}

} // namespace

token_store::token_store(std::filesystem::path file) : reloadable("admin tokens " + file.string()), file_(std::move(file)) {
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised");
  }
  load_first();
}

token_store::table token_store::read(const std::filesystem::path& file) {
  table t;
  std::ifstream in(file);
  if (!in) {
    if (std::error_code ec; !std::filesystem::exists(file, ec)) {
      return t; // no tokens yet: nobody gets in
    }
    throw std::runtime_error(file.string() + ": cannot be read");
  }
  std::string line;
  for (unsigned n = 1; std::getline(in, line); ++n) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    std::istringstream fields(line);
    std::string name, hash;
    fields >> name >> hash;
    if (!valid_name(name) || hash.size() != 64 || hash.find_first_not_of("0123456789abcdef") != std::string::npos) {
      throw std::runtime_error(file.string() + ":" + std::to_string(n) + ": not a \"NAME SHA256-HEX\" line");
    }
    t.emplace(hash, name);
  }
  return t;
}

std::string token_store::load() {
  auto fresh = std::make_shared<const table>(read(file_));
  const std::size_t n = fresh->size();
  const std::lock_guard lock(mutex_);
  tokens_ = std::move(fresh);
  return std::to_string(n) + " tokens";
}

std::optional<std::string> token_store::who(std::string_view bearer) const {
  std::shared_ptr<const table> t;
  {
    const std::lock_guard lock(mutex_);
    t = tokens_;
  }
  const std::string hash = audit::sha256_hex(bearer);
  std::optional<std::string> found;
  // Every entry is compared, in constant time each, so the answer's timing says nothing.
  for (const auto& [stored, name] : *t) {
    if (sodium_memcmp(stored.data(), hash.data(), hash.size()) == 0) {
      found = name;
    }
  }
  return found;
}

std::string token_store::add(const std::filesystem::path& file, const std::string& name) {
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised");
  }
  if (!valid_name(name)) {
    throw std::runtime_error("a token name is 1 to 64 letters, digits, '-', '_' or '.'");
  }
  const auto existing = read(file);
  for (const auto& [hash, n] : existing) {
    if (n == name) {
      throw std::runtime_error("a token named \"" + name + "\" exists already (remove it first)");
    }
  }
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char encoded[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(encoded, sizeof encoded, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  const std::string token = std::string("fha_") + encoded;
  std::string text;
  if (std::ifstream in(file); in) {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (!text.empty() && text.back() != '\n') {
    text += '\n';
  }
  text += name + " " + audit::sha256_hex(token) + "\n";
  if (file.has_parent_path()) {
    std::filesystem::create_directories(file.parent_path());
  }
  replace_file(file, text);
  return token;
}

bool token_store::remove(const std::filesystem::path& file, const std::string& name) {
  std::ifstream in(file);
  std::string text, line;
  bool removed = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string n;
    fields >> n;
    if (n == name) {
      removed = true;
      continue;
    }
    text += line + "\n";
  }
  if (removed) {
    replace_file(file, text);
  }
  return removed;
}

std::vector<std::string> token_store::names(const std::filesystem::path& file) {
  std::vector<std::string> out;
  for (const auto& [hash, name] : read(file)) {
    out.push_back(name);
  }
  return out;
}

} // namespace firehook::admin
