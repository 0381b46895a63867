#include "audit/record.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace firehook::audit {

namespace {

std::string hex(const unsigned char* data, std::size_t size) {
  std::string out(size * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), data, size);
  out.pop_back();
  return out;
}

bool unhex(std::string_view text, unsigned char* out, std::size_t size) {
  std::size_t written = 0;
  return text.size() == size * 2 &&
         sodium_hex2bin(out, size, text.data(), text.size(), nullptr, &written, nullptr) == 0 && written == size;
}

void init_sodium() {
  if (sodium_init() < 0) {
    throw std::runtime_error("libsodium cannot be initialised");
  }
}

constexpr std::string_view sig_member = ",\"sig\":\"";

} // namespace

std::string sha256_hex(std::string_view bytes) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hex(digest.data(), digest.size());
}

std::string utc_time(std::chrono::system_clock::time_point t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(us % 1'000'000));
  return buf;
}

std::string make_record(std::uint64_t seq, std::string_view prev, std::chrono::system_clock::time_point t,
                        std::string_view members) {
  std::string line = "{\"seq\":" + std::to_string(seq) + ",\"prev\":\"";
  line += prev;
  line += "\",\"time\":\"" + utc_time(t) + "\"";
  if (!members.empty()) {
    line += ',';
    line += members;
  }
  line += '}';
  return line;
}

signing_key::signing_key(const std::array<unsigned char, 32>& seed) {
  init_sodium();
  crypto_sign_seed_keypair(public_.data(), secret_.data(), seed.data());
}

signing_key signing_key::load_or_create(const std::filesystem::path& file) {
  init_sodium();
  std::array<unsigned char, 32> seed{};
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    std::ifstream in(file);
    std::string text;
    in >> text;
    if (!unhex(text, seed.data(), seed.size())) {
      throw std::runtime_error(file.string() + ": not an audit signing key (64 hex digits expected)");
    }
    signing_key k(seed);
    sodium_memzero(seed.data(), seed.size());
    return k;
  }
  if (file.has_parent_path()) {
    std::filesystem::create_directories(file.parent_path(), ec);
  }
  randombytes_buf(seed.data(), seed.size());
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error(file.string() + ": cannot create the audit signing key: " + std::strerror(errno));
  }
  const std::string text = hex(seed.data(), seed.size()) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    throw std::runtime_error(file.string() + ": cannot write the audit signing key: " + std::strerror(errno));
  }
  signing_key k(seed);
  sodium_memzero(seed.data(), seed.size());
  std::ofstream pub(file.string() + ".pub", std::ios::trunc);
  pub << k.public_hex() << "\n";
  if (!pub) {
    throw std::runtime_error(file.string() + ".pub: cannot write the audit public key");
  }
  return k;
}

std::string signing_key::public_hex() const {
  return hex(public_.data(), public_.size());
}

std::string signing_key::sign(std::string_view record) const {
  std::array<unsigned char, crypto_sign_BYTES> sig{};
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(record.data()), record.size(),
                       secret_.data());
  std::string out(record.substr(0, record.size() - 1)); // without the closing brace
  out += sig_member;
  out += hex(sig.data(), sig.size());
  out += "\"}";
  return out;
}

std::optional<signed_parts> split_signature(std::string_view line) {
  constexpr std::size_t sig_hex = crypto_sign_BYTES * 2;
  const std::size_t tail = sig_member.size() + sig_hex + 2; // ,"sig":"<hex>"}
  if (line.size() < tail + 1 || line.substr(line.size() - 2) != "\"}") {
    return std::nullopt;
  }
  const std::size_t at = line.size() - tail;
  if (line.substr(at, sig_member.size()) != sig_member) {
    return std::nullopt;
  }
  signed_parts p;
  p.signed_bytes = std::string(line.substr(0, at)) + "}";
  p.signature_hex = std::string(line.substr(at + sig_member.size(), sig_hex));
  return p;
}

bool signature_valid(std::string_view bytes, std::string_view signature_hex, std::string_view public_hex) {
  init_sodium();
  std::array<unsigned char, crypto_sign_BYTES> sig{};
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pub{};
  if (!unhex(signature_hex, sig.data(), sig.size()) || !unhex(public_hex, pub.data(), pub.size())) {
    return false;
  }
  return crypto_sign_verify_detached(sig.data(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                                     pub.data()) == 0;
}

} // namespace firehook::audit
