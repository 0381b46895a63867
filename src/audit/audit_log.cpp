#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "base/json_text.hpp"

namespace firehook::audit {

namespace {

// The seq of a record line, or 0 when it does not start like one.
std::uint64_t seq_of(std::string_view line) {
  constexpr std::string_view head = "{\"seq\":";
  if (line.substr(0, head.size()) != head) {
    return 0;
  }
  std::uint64_t seq = 0;
  const char* begin = line.data() + head.size();
  const auto [end, ec] = std::from_chars(begin, line.data() + line.size(), seq);
  return ec == std::errc() && end != begin ? seq : 0;
}

// The time of a record line ("time":"YYYY-MM-DDTHH:MM:SS...), or nullopt.
std::optional<std::chrono::system_clock::time_point> time_of(std::string_view line) {
  const auto at = line.find("\"time\":\"");
  if (at == std::string_view::npos || line.size() < at + 8 + 19) {
    return std::nullopt;
  }
  const std::string text(line.substr(at + 8, 19));
  struct tm tm {};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

// "20261207T100000Z"
std::string compact_time(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[20];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

struct file_tail {
  std::string first_line;     // the file's first complete line
  std::string last_line;      // its last complete line
  bool torn = false;          // bytes after the last newline
};

file_tail read_ends(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw std::runtime_error(file.string() + ": cannot be read: " + std::strerror(errno));
  }
  file_tail t;
  std::getline(in, t.first_line);
  in.clear();
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  // Back from the end until the newline before the last complete line.
  std::string tail;
  std::streamoff from = size;
  constexpr std::streamoff chunk = 65'536;
  while (from > 0) {
    const std::streamoff step = std::min(chunk, from);
    from -= step;
    std::string buf(static_cast<std::size_t>(step), '\0');
    in.seekg(from);
    in.read(buf.data(), step);
    tail.insert(0, buf);
    if (std::count(tail.begin(), tail.end(), '\n') >= 2) {
      break; // the last complete line is in `tail`, whole
    }
  }
  const auto last_nl = tail.rfind('\n');
  if (last_nl == std::string::npos) {
    t.torn = !tail.empty();
    t.first_line.clear();
    return t;
  }
  t.torn = last_nl + 1 != tail.size();
  const auto before = last_nl == 0 ? std::string::npos : tail.rfind('\n', last_nl - 1);
  t.last_line = tail.substr(before == std::string::npos ? 0 : before + 1,
                            last_nl - (before == std::string::npos ? 0 : before + 1));
  return t;
}

} // namespace

audit_log::audit_log(log_options opts, signing_key key, std::chrono::system_clock::time_point now)
    : opts_(std::move(opts)), key_(std::move(key)) {
  std::error_code ec;
  if (opts_.file.has_parent_path()) {
    std::filesystem::create_directories(opts_.file.parent_path(), ec);
  }
  std::string previous_file;
  const bool regular = std::filesystem::is_regular_file(opts_.file, ec);
  if (regular && std::filesystem::file_size(opts_.file, ec) > 0) {
    const file_tail t = read_ends(opts_.file);
    if (!t.last_line.empty()) {
      seq_ = seq_of(t.last_line);
      prev_ = sha256_hex(t.last_line);
      if (seq_ == 0) {
        throw std::runtime_error(opts_.file.string() + ": the last line is not an audit record");
      }
    }
    if (t.torn) {
      // Left as it is, for `audit verify` to report; the chain goes on in a new file.
      previous_file = (opts_.file.parent_path() / (opts_.file.stem().string() + "-" + compact_time(now) + "-" +
                                                   std::to_string(seq_of(t.first_line)) + "-torn" +
                                                   opts_.file.extension().string()))
                          .filename()
                          .string();
      std::filesystem::rename(opts_.file, opts_.file.parent_path() / previous_file, ec);
      if (ec) {
        throw std::runtime_error(opts_.file.string() + ": cannot move a damaged audit file away: " + ec.message());
      }
    } else {
      file_first_seq_ = seq_of(t.first_line);
      file_started_ = time_of(t.first_line).value_or(now);
      fd_ = ::open(opts_.file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd_ < 0) {
        throw std::runtime_error(opts_.file.string() + ": cannot be opened: " + std::strerror(errno));
      }
      file_bytes_ = std::filesystem::file_size(opts_.file, ec);
      // A restart: recorded, signed, with the key in use.
      std::string members = "\"audit\":\"start\",\"key\":\"" + key_.public_hex() + "\"";
      add_signed(members, now);
      flush_pending();
      return;
    }
  }
  open_file(now, previous_file);
  if (fd_ < 0) {
    throw std::runtime_error(opts_.file.string() + ": cannot be opened: " + std::strerror(errno));
  }
  flush_pending();
}

audit_log::~audit_log() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void audit_log::open_file(std::chrono::system_clock::time_point now, const std::string& previous_file) {
  fd_ = ::open(opts_.file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    last_error_ = opts_.file.string() + ": " + std::strerror(errno);
    failing_ = true;
    return;
  }
  struct stat st {};
  file_bytes_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  file_started_ = now;
  file_first_seq_ = seq_ + 1;
  std::string members = "\"audit\":\"file_start\",\"key\":\"" + key_.public_hex() + "\",\"previous_file\":";
  base::append_json_string(members, previous_file);
  add_signed(members, now);
}

void audit_log::add(std::string line) {
  prev_ = sha256_hex(line);
  ++seq_;
  pending_ += line;
  pending_ += '\n';
  ++pending_records_;
}

void audit_log::append(std::string_view members, std::chrono::system_clock::time_point t) {
  if (pending_.size() >= opts_.max_pending_bytes) {
    lost_.fetch_add(1, std::memory_order_relaxed);
    ++lost_unreported_;
    return;
  }
  add(make_record(seq_ + 1, prev_, t, members));
  ++since_checkpoint_;
}

void audit_log::add_signed(std::string_view members, std::chrono::system_clock::time_point now) {
  add(key_.sign(make_record(seq_ + 1, prev_, now, members)));
  since_checkpoint_ = 0;
}

bool audit_log::flush_pending() {
  if (fd_ < 0) {
    open_file(std::chrono::system_clock::now(), {});
    if (fd_ < 0) {
      return false;
    }
  }
  std::size_t done = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      last_error_ = std::strerror(n < 0 ? errno : EIO);
      pending_.erase(0, done);
      file_bytes_ += done;
      failing_.store(true, std::memory_order_relaxed);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  file_bytes_ += done;
  pending_.clear();
  written_.fetch_add(pending_records_, std::memory_order_relaxed);
  pending_records_ = 0;
  failing_.store(false, std::memory_order_relaxed);
  return true;
}

void audit_log::report_lost(std::chrono::system_clock::time_point now) {
  if (lost_unreported_ == 0 || pending_.size() >= opts_.max_pending_bytes) {
    return;
  }
  const std::string members = "\"audit\":\"records_lost\",\"count\":" + std::to_string(lost_unreported_) +
                              ",\"reason\":\"the audit log could not be written and its buffer was full\"";
  lost_unreported_ = 0;
  add(make_record(seq_ + 1, prev_, now, members));
  ++since_checkpoint_;
}

void audit_log::write(std::chrono::system_clock::time_point now) {
  report_lost(now);
  if (!flush_pending()) {
    return;
  }
  const bool full = file_bytes_ >= opts_.max_file_bytes;
  const bool old = opts_.max_file_age.count() > 0 && now - file_started_ >= opts_.max_file_age;
  struct stat st {};
  if ((full || old) && ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode)) {
    rotate(now);
  }
}

void audit_log::checkpoint(std::chrono::system_clock::time_point now) {
  if (since_checkpoint_ == 0) {
    return;
  }
  add_signed("\"audit\":\"checkpoint\"", now);
  if (flush_pending()) {
    ::fdatasync(fd_);
  }
}

void audit_log::rotate(std::chrono::system_clock::time_point now) {
  const std::string rotated = opts_.file.stem().string() + "-" + compact_time(now) + "-" +
                              std::to_string(file_first_seq_) + opts_.file.extension().string();
  std::string members = "\"audit\":\"file_end\",\"next_file\":";
  base::append_json_string(members, opts_.file.filename().string());
  add_signed(members, now);
  if (!flush_pending()) {
    return;
  }
  ::fdatasync(fd_);
  ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  std::filesystem::rename(opts_.file, opts_.file.parent_path() / rotated, ec);
  if (ec) {
    last_error_ = "cannot rotate " + opts_.file.string() + ": " + ec.message();
    failing_ = true;
    return;
  }
  open_file(now, rotated);
  flush_pending();
  remove_old_files();
}

void audit_log::remove_old_files() {
  // Rotated files: <stem>-<time>-<first seq><ext>; the oldest are those with the smallest seq.
  std::vector<std::pair<std::uint64_t, std::filesystem::path>> rotated;
  const std::string prefix = opts_.file.stem().string() + "-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(opts_.file.parent_path(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || entry.path().extension() != opts_.file.extension()) {
      continue;
    }
    const std::string stem = entry.path().stem().string();
    const auto dash = stem.rfind('-');
    std::uint64_t first = 0;
    const char* b = stem.data() + dash + 1;
    if (dash == std::string::npos || std::from_chars(b, stem.data() + stem.size(), first).ec != std::errc()) {
      continue; // not one of ours (a "-torn" file is kept for inspection)
    }
    rotated.emplace_back(first, entry.path());
  }
  if (rotated.size() <= opts_.keep_files) {
    return;
  }
  std::sort(rotated.begin(), rotated.end());
  for (std::size_t i = 0; i + opts_.keep_files < rotated.size(); ++i) {
    std::filesystem::remove(rotated[i].second, ec);
  }
}

void audit_log::close(std::chrono::system_clock::time_point now) {
  report_lost(now);
  add_signed("\"audit\":\"stop\"", now);
  if (flush_pending()) {
    ::fdatasync(fd_);
  }
}

} // namespace firehook::audit
