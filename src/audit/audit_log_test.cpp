#include "audit/audit_log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "audit/reader.hpp"
#include "base/temp_dir.hpp"

namespace firehook::audit {
namespace {

using ::testing::HasSubstr;
using clock_type = std::chrono::system_clock;

signing_key test_key(unsigned char fill = 7) {
  std::array<unsigned char, 32> seed{};
  seed.fill(fill);
  return signing_key(seed);
}

struct AuditLog : ::testing::Test {
  base::temp_dir dir{"firehook-audit"};
  clock_type::time_point now = clock_type::from_time_t(1'796'000'000);
  log_options opts() const {
    log_options o;
    o.file = dir / "audit.log";
    return o;
  }
  std::vector<std::filesystem::path> files() const {
    std::vector<std::filesystem::path> out;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      out.push_back(e.path());
    }
    return out;
  }
  std::vector<std::string> lines(const std::filesystem::path& f) const {
    std::ifstream in(f);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) {
      out.push_back(l);
    }
    return out;
  }
  void rewrite(const std::filesystem::path& f, const std::vector<std::string>& ls) const {
    std::ofstream out(f, std::ios::trunc);
    for (const auto& l : ls) {
      out << l << '\n';
    }
  }
  void event(audit_log& log, const std::string& client) {
    log.append("\"event\":\"auth_denied\",\"client_id\":\"" + client + "\",\"peer\":\"10.0.0.9\"", now);
  }
  std::string pub() const { return test_key().public_hex(); }
};

TEST_F(AuditLog, AChainOfRecordsWithSignedCheckpointsVerifies) {
  {
    audit_log log(opts(), test_key(), now);
    event(log, "a");
    event(log, "b");
    log.checkpoint(now);
    event(log, "c");
    log.write(now);
    log.close(now);
    EXPECT_EQ(log.written(), 6U); // file_start, a, b, checkpoint, c, stop
  }
  const auto ls = lines(dir / "audit.log");
  ASSERT_EQ(ls.size(), 6U);
  EXPECT_THAT(ls[0], HasSubstr("\"seq\":1,\"prev\":\"" + std::string(genesis_hash) + "\""));
  EXPECT_THAT(ls[1], HasSubstr("\"prev\":\"" + sha256_hex(ls[0]) + "\""));
  EXPECT_THAT(ls[3], HasSubstr("\"audit\":\"checkpoint\""));
  const auto r = verify(files(), pub());
  EXPECT_TRUE(r.intact) << r.problem;
  EXPECT_EQ(r.records, 6U);
  EXPECT_EQ(r.signed_records, 3U);
  EXPECT_TRUE(r.notes.empty());
}

TEST_F(AuditLog, ARestartContinuesTheChain) {
  {
    audit_log log(opts(), test_key(), now);
    event(log, "a");
    log.close(now);
  }
  {
    audit_log log(opts(), test_key(), now);
    EXPECT_EQ(log.next_seq(), 5U); // file_start, a, stop, start
    event(log, "b");
    log.close(now);
  }
  const auto r = verify(files(), pub());
  EXPECT_TRUE(r.intact) << r.problem;
  EXPECT_EQ(r.records, 6U);
}

TEST_F(AuditLog, EditsDeletionsAndForgedSignaturesAreFound) {
  {
    audit_log log(opts(), test_key(), now);
    for (const char* c : {"a", "b", "c"}) {
      event(log, c);
    }
    log.close(now);
  }
  const auto f = dir / "audit.log";
  const auto original = lines(f);

  auto edited = original;
  edited[2].replace(edited[2].find("\"b\""), 3, "\"x\"");
  rewrite(f, edited);
  auto r = verify({f}, pub());
  EXPECT_FALSE(r.intact);
  EXPECT_THAT(r.problem, HasSubstr("audit.log:4: prev is not the hash"));

  auto deleted = original;
  deleted.erase(deleted.begin() + 2);
  rewrite(f, deleted);
  r = verify({f}, pub());
  EXPECT_THAT(r.problem, HasSubstr("audit.log:3: seq 4 where 3 was expected"));

  // A forger who rewrites the whole chain after an edit cannot sign the stop record.
  rewrite(f, original);
  r = verify({f}, test_key(9).public_hex());
  EXPECT_THAT(r.problem, HasSubstr("audit.log:1: signed with another key"));
  auto forged = original;
  forged.back().replace(forged.back().size() - 10, 8, "00000000");
  rewrite(f, forged);
  r = verify({f}, pub());
  EXPECT_THAT(r.problem, HasSubstr("audit.log:5: bad signature"));

  // Records after the last signature can be cut off unnoticed: verify says how many there are.
  auto tail = original;
  tail.pop_back();
  rewrite(f, tail);
  r = verify({f}, pub());
  EXPECT_TRUE(r.intact) << r.problem;
  ASSERT_FALSE(r.notes.empty());
  EXPECT_THAT(r.notes.back(), HasSubstr("3 record(s) after the last signed one"));

  rewrite(f, original);
  std::ofstream(f, std::ios::app) << "{\"seq\":6,\"prev\":\"";
  r = verify({f}, pub());
  EXPECT_THAT(r.problem, HasSubstr("audit.log:6: incomplete last record"));
}

TEST_F(AuditLog, RotationCarriesTheChainAndKeepsAtMostKeepFiles) {
  auto o = opts();
  o.max_file_bytes = 600;
  o.keep_files = 2;
  {
    audit_log log(o, test_key(), now);
    for (int i = 0; i < 30; ++i) {
      event(log, "c" + std::to_string(i));
      log.write(now);
    }
    log.close(now);
  }
  const auto all = files();
  EXPECT_EQ(all.size(), 3U); // the current file and two rotated ones
  const auto r = verify(all, pub());
  EXPECT_TRUE(r.intact) << r.problem;
  ASSERT_FALSE(r.notes.empty());
  EXPECT_THAT(r.notes.front(), HasSubstr("the chain begins at seq"));
  // A rotated file removed from the middle breaks the chain.
  std::vector<std::filesystem::path> rotated;
  for (const auto& p : all) {
    if (p.filename() != "audit.log") {
      rotated.push_back(p);
    }
  }
  std::sort(rotated.begin(), rotated.end(), [this](const auto& a, const auto& b) {
    return lines(a).front() < lines(b).front();
  });
  const auto gap = verify({rotated.front(), dir / "audit.log"}, pub());
  EXPECT_FALSE(gap.intact);
  EXPECT_THAT(gap.problem, HasSubstr("was expected"));
}

TEST_F(AuditLog, RotationByAge) {
  auto o = opts();
  o.max_file_age = std::chrono::seconds(60);
  audit_log log(o, test_key(), now);
  event(log, "a");
  log.write(now + std::chrono::seconds(30));
  EXPECT_EQ(files().size(), 1U);
  log.write(now + std::chrono::seconds(61));
  EXPECT_EQ(files().size(), 2U);
}

TEST_F(AuditLog, AFileThatCannotBeWrittenKeepsRecordsUpToTheBoundAndCountsTheRest) {
  auto o = opts();
  o.file = "/dev/full";
  o.max_pending_bytes = 2'000;
  audit_log log(o, test_key(), now);
  EXPECT_TRUE(log.failing());
  for (int i = 0; i < 100; ++i) {
    event(log, "c" + std::to_string(i));
  }
  log.write(now);
  EXPECT_TRUE(log.failing());
  EXPECT_GT(log.lost(), 50U);
  EXPECT_EQ(log.written(), 0U);
}

TEST_F(AuditLog, ATornLastLineIsMovedAsideAndTheChainGoesOn) {
  {
    audit_log log(opts(), test_key(), now);
    event(log, "a");
    log.write(now);
  }
  std::ofstream(dir / "audit.log", std::ios::app) << "{\"seq\":3,\"prev\":\"ab";
  {
    audit_log log(opts(), test_key(), now);
    EXPECT_EQ(log.next_seq(), 4U); // after the torn record's seq's predecessor and the new file_start
    log.close(now);
  }
  EXPECT_EQ(files().size(), 2U);
  const auto r = verify(files(), pub());
  EXPECT_FALSE(r.intact);
  EXPECT_THAT(r.problem, HasSubstr("-torn.log:3: incomplete last record"));
}

TEST_F(AuditLog, QueryFiltersByField) {
  {
    audit_log log(opts(), test_key(), now);
    event(log, "a");
    log.append("\"event\":\"publish_refused\",\"client_id\":\"b\",\"identity\":\"dev-b\"", now);
    event(log, "b");
    log.close(now);
  }
  std::ostringstream out;
  query_filter f;
  f.client_id = "b";
  EXPECT_EQ(query(files(), f, out), 2U);
  f.event = "publish_refused";
  out.str("");
  EXPECT_EQ(query(files(), f, out), 1U);
  EXPECT_THAT(out.str(), HasSubstr("dev-b"));
  query_filter by_kind;
  by_kind.event = "stop";
  EXPECT_EQ(query(files(), by_kind, out), 1U);
  query_filter late;
  late.since = "2099";
  EXPECT_EQ(query(files(), late, out), 0U);
}

} // namespace
} // namespace firehook::audit
