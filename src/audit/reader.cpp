#include "audit/reader.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <boost/json.hpp>

#include "audit/record.hpp"

namespace firehook::audit {

namespace json = boost::json;

namespace {

std::string member(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) {
    return {};
  }
  if (v->is_string()) {
    return std::string(v->get_string());
  }
  return json::serialize(*v);
}

std::optional<json::object> parse_record(const std::string& line) {
  boost::system::error_code ec;
  auto v = json::parse(line, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.as_object());
}

// The files in chain order: by the seq of their first record (unreadable or empty ones first, so
// that verify reports them).
std::vector<std::filesystem::path> in_chain_order(const std::vector<std::filesystem::path>& files) {
  std::vector<std::pair<std::uint64_t, std::filesystem::path>> keyed;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string first;
    std::getline(in, first);
    std::uint64_t seq = 0;
    if (auto o = parse_record(first)) {
      if (const auto* s = o->if_contains("seq"); s && s->is_uint64()) {
        seq = s->as_uint64();
      } else if (s && s->is_int64() && s->as_int64() > 0) {
        seq = static_cast<std::uint64_t>(s->as_int64());
      }
    }
    keyed.emplace_back(seq, f);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::filesystem::path> out;
  for (auto& k : keyed) {
    out.push_back(std::move(k.second));
  }
  return out;
}

bool is_signed_kind(std::string_view kind) {
  return kind == "file_start" || kind == "start" || kind == "checkpoint" || kind == "file_end" || kind == "stop";
}

std::uint64_t seq_value(const json::object& o) {
  const auto* s = o.if_contains("seq");
  if (s == nullptr) {
    return 0;
  }
  if (s->is_uint64()) {
    return s->as_uint64();
  }
  return s->is_int64() && s->as_int64() > 0 ? static_cast<std::uint64_t>(s->as_int64()) : 0;
}

} // namespace

namespace {

// Walks the chain record by record; check() returns what is wrong with the next one, or "".
class chain_walk {
public:
  chain_walk(verify_report& r, std::optional<std::string> key) : r_(r), key_given_(key.has_value()), key_(key.value_or("")) {}

  std::string check(const std::filesystem::path& file, std::uint64_t line_no, const std::string& line) {
    const auto o = parse_record(line);
    if (!o) {
      return "not a JSON object";
    }
    const std::uint64_t seq = seq_value(*o);
    const std::string kind = member(*o, "audit");
    if (seq == 0) {
      return "no seq";
    }
    if (line_no == 1 && kind != "file_start") {
      return "a file must begin with a signed file_start record";
    }
    if (auto why = linked(file, *o, seq); !why.empty()) {
      return why;
    }
    if (is_signed_kind(kind)) {
      if (auto why = signed_by_key(file, *o, kind, line); !why.empty()) {
        return why;
      }
      ++r_.signed_records;
      unsigned_tail_ = 0;
    } else {
      ++unsigned_tail_;
    }
    ++r_.records;
    prev_ = sha256_hex(line);
    expected_seq_ = seq + 1;
    return {};
  }

  std::uint64_t unsigned_tail() const { return unsigned_tail_; }

private:
  // seq and prev follow the record before (or start the chain).
  std::string linked(const std::filesystem::path& file, const json::object& o, std::uint64_t seq) {
    if (expected_seq_ == 0) {
      if (seq != 1) {
        r_.notes.push_back("the chain begins at seq " + std::to_string(seq) + " in " + file.string() +
                           " (earlier files not given, or removed by audit.keep_files)");
      } else if (member(o, "prev") != genesis_hash) {
        return "the first record's prev is not the genesis hash";
      }
      return {};
    }
    if (seq != expected_seq_) {
      return "seq " + std::to_string(seq) + " where " + std::to_string(expected_seq_) +
             " was expected (a record is missing or was added)";
    }
    if (member(o, "prev") != prev_) {
      return "prev is not the hash of the record before it (that record was changed)";
    }
    return {};
  }

  std::string signed_by_key(const std::filesystem::path& file, const json::object& o, const std::string& kind,
                            const std::string& line) {
    const auto parts = split_signature(line);
    if (!parts) {
      return "a " + kind + " record without a signature";
    }
    if (key_.empty()) {
      key_ = member(o, "key");
      r_.notes.push_back("public key taken from the log itself (" + file.string() +
                         "); give --public-key (the audit.key.pub you keep) to check it against yours");
    }
    if (const std::string named = member(o, "key"); !named.empty() && named != key_) {
      return key_given_ ? "signed with another key than the one given"
                        : "signed with another key than the log's first one (" + named + ")";
    }
    return signature_valid(parts->signed_bytes, parts->signature_hex, key_) ? "" : "bad signature";
  }

  verify_report& r_;
  const bool key_given_;
  std::string key_;
  std::uint64_t expected_seq_ = 0; // 0: the first record decides
  std::string prev_;
  std::uint64_t unsigned_tail_ = 0;
};

} // namespace

verify_report verify(const std::vector<std::filesystem::path>& files, std::optional<std::string> public_key_hex) {
  verify_report r;
  chain_walk walk(r, std::move(public_key_hex));
  auto fail = [&r](const std::filesystem::path& f, std::uint64_t line, const std::string& why) {
    r.intact = false;
    r.problem = f.string() + ":" + std::to_string(line) + ": " + why;
    return r;
  };
  for (const auto& file : in_chain_order(files)) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      return fail(file, 0, "cannot be read");
    }
    const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::uint64_t line_no = 0;
    for (std::size_t pos = 0; pos < content.size();) {
      const auto nl = content.find('\n', pos);
      ++line_no;
      if (nl == std::string::npos) {
        return fail(file, line_no, "incomplete last record (the file ends in the middle of a line)");
      }
      if (auto why = walk.check(file, line_no, content.substr(pos, nl - pos)); !why.empty()) {
        return fail(file, line_no, why);
      }
      pos = nl + 1;
    }
  }
  if (r.records == 0) {
    r.intact = false;
    r.problem = "no records";
    return r;
  }
  if (walk.unsigned_tail() > 0) {
    r.notes.push_back(std::to_string(walk.unsigned_tail()) +
                      " record(s) after the last signed one: their order and content are chained, but a "
                      "truncation of them cannot be told until the next checkpoint");
  }
  return r;
}

std::uint64_t query(const std::vector<std::filesystem::path>& files, const query_filter& f, std::ostream& out) {
  std::uint64_t matched = 0;
  for (const auto& file : in_chain_order(files)) {
    std::ifstream in(file);
    if (!in) {
      throw std::runtime_error(file.string() + ": cannot be read");
    }
    std::string line;
    while (std::getline(in, line)) {
      const auto o = parse_record(line);
      if (!o) {
        continue;
      }
      const std::string time = member(*o, "time");
      if (!f.since.empty() && time < f.since) {
        continue;
      }
      // `until` is inclusive of a prefix: "2026-12-07" takes the whole day.
      if (!f.until.empty() && time.compare(0, f.until.size(), f.until) > 0) {
        continue;
      }
      const std::string kind = member(*o, "event").empty() ? member(*o, "audit") : member(*o, "event");
      if ((!f.event.empty() && kind != f.event) || (!f.client_id.empty() && member(*o, "client_id") != f.client_id) ||
          (!f.identity.empty() && member(*o, "identity") != f.identity) ||
          (!f.peer.empty() && member(*o, "peer") != f.peer)) {
        continue;
      }
      out << line << '\n';
      ++matched;
    }
  }
  return matched;
}

} // namespace firehook::audit
