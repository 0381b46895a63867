#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/temp_dir.hpp"
#include "store/store.hpp"

namespace firehook::store {
namespace {

using namespace std::chrono_literals;

// Everything a store holds, as load() gives it, plus the order it came in.
struct contents final : record_visitor {
  std::map<std::string, std::string> metas, retains, sessions;
  std::map<std::pair<std::string, std::uint64_t>, std::string> messages;
  std::vector<std::string> order; // "s:<id>" and "m:<id>:<seq>", as visited

  void meta(std::string_view k, std::string_view v) override { metas.emplace(k, v); }
  void retained(std::string_view k, std::string_view v) override { retains.emplace(k, v); }
  void session(std::string_view id, std::string_view v) override {
    sessions.emplace(id, v);
    order.push_back("s:" + std::string(id));
  }
  void session_message(std::string_view id, std::uint64_t seq, std::string_view v) override {
    messages.emplace(std::pair{std::string(id), seq}, v);
    order.push_back("m:" + std::string(id) + ":" + std::to_string(seq));
  }
};

class store_test : public testing::Test {
protected:
  options opts(durability mode = durability::sync) const {
    options o;
    o.mode = mode;
    return o;
  }

  std::unique_ptr<store> open(const options& o) {
    open_result r = store::open(dir_.path() / "state", o);
    EXPECT_FALSE(r.error) << r.message;
    EXPECT_EQ(r.message, "");
    return std::move(r.opened);
  }
  std::unique_ptr<store> open() { return open(opts()); }

  // Submits and waits for the completion.
  static std::error_code commit(store& s, batch b) {
    std::promise<std::error_code> done;
    auto result = done.get_future();
    const std::error_code submitted = s.submit(std::move(b), [&](std::error_code ec) { done.set_value(ec); });
    if (submitted) {
      return submitted;
    }
    return result.get();
  }

  static contents load(store& s) {
    contents c;
    EXPECT_FALSE(s.load(c));
    return c;
  }

  base::temp_dir dir_{"firehook-store"};
};

TEST_F(store_test, every_record_kind_round_trips_through_a_reopen) {
  const std::string binary("a\0b\xff", 4);
  {
    auto s = open();
    batch b;
    b.put_meta("format", "1");
    b.put_retained("sensors/1/temperature", "21.5");
    b.put_retained(binary, binary);
    b.put_session("dev-1", "subscriptions...");
    b.put_session("dev-2", "");
    b.put_session_message("dev-1", 7, "queued");
    b.put_session_message(binary, 1, binary);
    ASSERT_FALSE(commit(*s, std::move(b)));
  }
  auto s = open();
  const contents c = load(*s);
  EXPECT_EQ(c.metas, (std::map<std::string, std::string>{{"format", "1"}}));
  EXPECT_EQ(c.retains,
            (std::map<std::string, std::string>{{"sensors/1/temperature", "21.5"}, {binary, binary}}));
  EXPECT_EQ(c.sessions, (std::map<std::string, std::string>{{"dev-1", "subscriptions..."}, {"dev-2", ""}}));
  EXPECT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages.at({"dev-1", 7}), "queued");
  EXPECT_EQ(c.messages.at({binary, 1}), binary);
}

TEST_F(store_test, a_put_replaces_and_an_erase_removes_each_kind) {
  auto s = open();
  batch b;
  b.put_meta("m", "1");
  b.put_retained("t", "1");
  b.put_session("c", "1");
  b.put_session_message("c", 1, "1");
  b.put_session_message("c", 2, "1");
  ASSERT_FALSE(commit(*s, std::move(b)));
  batch replace;
  replace.put_meta("m", "2");
  replace.put_retained("t", "2");
  replace.put_session("c", "2");
  replace.put_session_message("c", 1, "2");
  ASSERT_FALSE(commit(*s, std::move(replace)));
  contents c = load(*s);
  EXPECT_EQ(c.metas.at("m"), "2");
  EXPECT_EQ(c.retains.at("t"), "2");
  EXPECT_EQ(c.sessions.at("c"), "2");
  EXPECT_EQ(c.messages.at({"c", 1}), "2");

  batch erase;
  erase.erase_meta("m");
  erase.erase_retained("t");
  erase.erase_session_message("c", 1);
  erase.erase_session("c"); // the record only
  erase.erase_retained("never there");
  ASSERT_FALSE(commit(*s, std::move(erase)));
  c = load(*s);
  EXPECT_TRUE(c.metas.empty());
  EXPECT_TRUE(c.retains.empty());
  EXPECT_TRUE(c.sessions.empty());
  EXPECT_EQ(c.order, (std::vector<std::string>{"m:c:2"}));
}

TEST_F(store_test, operations_of_a_batch_apply_in_the_order_they_were_added) {
  auto s = open();
  batch b;
  b.put_retained("kept", "1");
  b.erase_retained("kept");
  b.put_retained("kept", "2");
  b.put_retained("gone", "1");
  b.erase_retained("gone");
  ASSERT_FALSE(commit(*s, std::move(b)));
  EXPECT_EQ(load(*s).retains, (std::map<std::string, std::string>{{"kept", "2"}}));
}

TEST_F(store_test, session_messages_load_in_sequence_order_after_their_session) {
  auto s = open();
  const std::vector<std::uint64_t> seqs{5, 0, UINT64_MAX, 1ull << 63, 3, (1ull << 63) - 1, 1};
  batch b;
  for (std::uint64_t seq : seqs) {
    b.put_session_message("b", seq, std::to_string(seq));
  }
  b.put_session("b", "B");
  b.put_session("a", "A");
  b.put_session_message("a", 2, "x");
  b.put_session_message("orphan", 9, "x"); // no session record
  ASSERT_FALSE(commit(*s, std::move(b)));
  const contents c = load(*s);
  std::vector<std::string> expected{"s:a", "m:a:2", "s:b"};
  std::vector<std::uint64_t> sorted = seqs;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint64_t seq : sorted) {
    expected.push_back("m:b:" + std::to_string(seq));
  }
  expected.push_back("m:orphan:9");
  EXPECT_EQ(c.order, expected);
}

TEST_F(store_test, erasing_a_session_with_its_messages_leaves_other_sessions) {
  auto s = open();
  batch b;
  for (const char* id : {"a", "ab", "a\x01", ""}) {
    b.put_session(id, "s");
    for (std::uint64_t seq :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{2}, std::uint64_t{UINT64_MAX}}) {
      b.put_session_message(id, seq, "m");
    }
  }
  ASSERT_FALSE(commit(*s, std::move(b)));
  batch erase;
  erase.erase_session_and_messages("a");
  ASSERT_FALSE(commit(*s, std::move(erase)));
  const contents c = load(*s);
  EXPECT_EQ(c.sessions.size(), 3u);
  EXPECT_EQ(c.sessions.count("a"), 0u);
  EXPECT_EQ(c.messages.size(), 12u);
  for (const auto& [key, blob] : c.messages) {
    EXPECT_NE(key.first, "a");
  }
}

TEST_F(store_test, completions_run_once_each_in_submit_order_on_the_writer_thread) {
  auto s = open();
  constexpr int n = 500;
  std::vector<int> seen;
  std::set<std::thread::id> threads;
  std::promise<void> all_done;
  for (int i = 0; i < n; ++i) {
    batch b;
    b.put_session_message("c", static_cast<std::uint64_t>(i), "m");
    ASSERT_FALSE(s->submit(std::move(b), [&, i](std::error_code ec) {
      EXPECT_FALSE(ec);
      seen.push_back(i); // only the writer thread touches `seen`
      threads.insert(std::this_thread::get_id());
      if (i == n - 1) {
        all_done.set_value();
      }
    }));
  }
  all_done.get_future().wait();
  s->close(); // joins the writer: `seen` is safe to read
  std::vector<int> expected(n);
  for (int i = 0; i < n; ++i) {
    expected[static_cast<std::size_t>(i)] = i;
  }
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(threads.size(), 1u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  const store::counters stats = s->stats();
  EXPECT_EQ(stats.batches, static_cast<std::uint64_t>(n));
  EXPECT_LT(stats.commits, static_cast<std::uint64_t>(n)); // they were grouped
  EXPECT_EQ(stats.failed_commits, 0u);
}

TEST_F(store_test, concurrent_submitters_each_see_their_completions_in_order) {
  auto s = open();
  constexpr int threads = 8, per_thread = 100;
  std::vector<std::vector<int>> seen(threads);
  std::atomic<int> failures{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < threads; ++t) {
    submitters.emplace_back([&, t] {
      std::vector<std::future<void>> waits;
      for (int i = 0; i < per_thread; ++i) {
        batch b;
        const std::string id = "client-" + std::to_string(t);
        b.put_session(id, std::to_string(i));
        b.put_session_message(id, static_cast<std::uint64_t>(i), "m");
        auto done = std::make_shared<std::promise<void>>();
        waits.push_back(done->get_future());
        const std::error_code ec = s->submit(std::move(b), [&, t, i, done](std::error_code result) {
          failures += result ? 1 : 0;
          seen[static_cast<std::size_t>(t)].push_back(i);
          done->set_value();
        });
        failures += ec ? 1 : 0;
        if (i % 10 == 9) {
          waits.back().wait(); // sometimes wait, as a shard with a full window would
        }
      }
      for (auto& w : waits) {
        w.wait();
      }
    });
  }
  for (auto& t : submitters) {
    t.join();
  }
  s->close();
  EXPECT_EQ(failures.load(), 0);
  for (const auto& v : seen) {
    ASSERT_EQ(v.size(), static_cast<std::size_t>(per_thread));
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  }
  s = open();
  const contents c = load(*s);
  EXPECT_EQ(c.sessions.size(), static_cast<std::size_t>(threads));
  EXPECT_EQ(c.sessions.at("client-3"), std::to_string(per_thread - 1));
  EXPECT_EQ(c.messages.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST_F(store_test, interval_mode_groups_commits_and_still_completes_after_them) {
  options o = opts(durability::interval);
  o.interval = 50ms;
  auto s = open(o);
  ASSERT_FALSE(commit(*s, batch{})); // the first commit goes at once; the next waits its interval
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    batch b;
    b.put_retained("t/" + std::to_string(i), "v");
    ASSERT_FALSE(s->submit(std::move(b), [&](std::error_code ec) {
      EXPECT_FALSE(ec);
      ++done;
    }));
  }
  batch last;
  last.put_retained("last", "v");
  ASSERT_FALSE(commit(*s, std::move(last)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 40ms);
  EXPECT_EQ(done.load(), 20);
  EXPECT_EQ(s->stats().commits, 2u);
  EXPECT_EQ(load(*s).retains.size(), 21u);
}

TEST_F(store_test, an_interval_of_zero_is_refused) {
  options o = opts(durability::interval);
  o.interval = 0ms;
  const open_result r = store::open(dir_.path() / "state", o);
  EXPECT_EQ(r.error, store_errc::invalid_options);
  EXPECT_NE(r.message.find("interval"), std::string::npos);
}

TEST_F(store_test, close_commits_what_is_queued_and_later_submits_are_refused) {
  auto s = open();
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    batch b;
    b.put_retained("t/" + std::to_string(i), "v");
    ASSERT_FALSE(s->submit(std::move(b), [&](std::error_code ec) { done += ec ? 0 : 1; }));
  }
  s->close();
  EXPECT_EQ(done.load(), 50);
  bool called = false;
  EXPECT_EQ(s->submit(batch{}, [&](std::error_code) { called = true; }), store_errc::closed);
  EXPECT_FALSE(called);
  s.reset();
  s = open();
  EXPECT_EQ(load(*s).retains.size(), 50u);
}

// A store limited to a few pages (PRAGMA max_page_count) stands in for a full disk: SQLite
// reports SQLITE_FULL for both.
TEST_F(store_test, a_full_store_fails_the_batch_whole_and_works_again_when_room_is_made) {
  options o = opts();
  o.max_bytes = 256 * 1024;
  auto s = open(o);
  const std::string blob(1000, 'x');
  int committed = 0;
  std::error_code full;
  for (; committed < 10000; ++committed) {
    batch b;
    b.put_retained("t/" + std::to_string(committed), blob);
    if ((full = commit(*s, std::move(b)))) {
      break;
    }
  }
  ASSERT_EQ(full, store_errc::disk_full) << full.message();
  ASSERT_GT(committed, 10);
  EXPECT_NE(full.message().find("full"), std::string::npos);

  // A batch that does not fit is not applied in part.
  batch big;
  big.put_meta("small", "1");
  big.put_retained("big", std::string(512 * 1024, 'y'));
  EXPECT_EQ(commit(*s, std::move(big)), store_errc::disk_full);

  // Room is made (here by erasing; on a real disk, by freeing space), and the store carries on.
  batch erase;
  for (int i = 0; i < committed / 2; ++i) {
    erase.erase_retained("t/" + std::to_string(i));
  }
  ASSERT_FALSE(commit(*s, std::move(erase)));
  batch after;
  after.put_retained("after", blob);
  ASSERT_FALSE(commit(*s, std::move(after)));
  s->close();
  s = open(o);
  const contents c = load(*s);
  EXPECT_TRUE(c.metas.empty());
  EXPECT_EQ(c.retains.count("big"), 0u);
  EXPECT_EQ(c.retains.size(), static_cast<std::size_t>(committed - committed / 2 + 1));
  EXPECT_EQ(c.retains.count("t/" + std::to_string(committed - 1)), 1u);
  EXPECT_EQ(c.retains.count("after"), 1u);
}

// A child process submits batches and is killed with SIGKILL after some of their completions ran;
// every batch whose completion ran must be there, and every batch whole or not at all.
TEST_F(store_test, batches_completed_before_a_kill_survive_it) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::filesystem::path state = dir_.path() / "state";
  const options o = opts();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    open_result r = store::open(state, o);
    if (!r.opened) {
      ::_exit(2);
    }
    std::atomic<int> outstanding{0};
    for (std::uint64_t i = 0;; ++i) {
      while (outstanding.load() > 32) {
        std::this_thread::yield();
      }
      batch b;
      b.put_retained("t/" + std::to_string(i), "v");
      b.put_session_message("c", i, "m");
      ++outstanding;
      r.opened->submit(std::move(b), [&, i](std::error_code ec) {
        if (!ec && ::write(fds[1], &i, sizeof i) != sizeof i) {
          ::_exit(3);
        }
        --outstanding;
      });
    }
  }
  ::close(fds[1]);
  std::uint64_t last = 0, count = 0, value = 0;
  while (count < 300 && ::read(fds[0], &value, sizeof value) == sizeof value) {
    last = value;
    ++count;
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  while (::read(fds[0], &value, sizeof value) == sizeof value) { // completions that ran before the kill
    last = value;
    ++count;
  }
  ::close(fds[0]);
  ASSERT_GE(count, 300u);

  open_result r = store::open(state, o);
  ASSERT_TRUE(r.opened) << r.message;
  contents c;
  ASSERT_FALSE(r.opened->load(c));
  ASSERT_GT(c.retains.size(), last);
  for (std::uint64_t i = 0; i < c.retains.size(); ++i) { // a prefix of the submitted batches
    ASSERT_EQ(c.retains.count("t/" + std::to_string(i)), 1u) << i;
    ASSERT_EQ(c.messages.count({"c", i}), 1u) << i;
  }
  EXPECT_EQ(c.messages.size(), c.retains.size());
}

std::filesystem::path data_file(const std::filesystem::path& state) {
  return state / "store.db";
}

void fill(store& s, int records, std::size_t blob_size) {
  batch b;
  for (int i = 0; i < records; ++i) {
    b.put_retained("t/" + std::to_string(i), std::string(blob_size, 'v'));
  }
  std::promise<std::error_code> done;
  ASSERT_FALSE(s.submit(std::move(b), [&](std::error_code ec) { done.set_value(ec); }));
  ASSERT_FALSE(done.get_future().get());
}

void overwrite(const std::filesystem::path& file, std::uintmax_t offset, std::size_t size) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  const std::string junk(size, '\xab');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  ASSERT_TRUE(f.flush());
}

TEST_F(store_test, a_file_that_is_not_a_store_is_refused_naming_it) {
  const std::filesystem::path state = dir_.path() / "state";
  std::filesystem::create_directories(state);
  dir_.write(data_file(state), std::string(64 * 1024, 'x'));
  const open_result r = store::open(state, opts());
  EXPECT_FALSE(r.opened);
  EXPECT_EQ(r.error, store_errc::corrupt) << r.error.message() << ": " << r.message;
  EXPECT_NE(r.message.find(data_file(state).string()), std::string::npos) << r.message;
}

TEST_F(store_test, a_truncated_file_is_refused_naming_it) {
  const std::filesystem::path state = dir_.path() / "state";
  {
    auto s = open();
    fill(*s, 5000, 100);
  }
  const auto file = data_file(state);
  std::filesystem::resize_file(file, std::filesystem::file_size(file) / 2);
  const open_result r = store::open(state, opts());
  EXPECT_FALSE(r.opened);
  EXPECT_EQ(r.error, store_errc::corrupt) << r.error.message() << ": " << r.message;
  EXPECT_NE(r.message.find(file.string()), std::string::npos) << r.message;
}

TEST_F(store_test, a_damaged_page_is_refused_naming_the_file) {
  const std::filesystem::path state = dir_.path() / "state";
  {
    auto s = open();
    fill(*s, 5000, 100);
  }
  const auto file = data_file(state);
  overwrite(file, std::filesystem::file_size(file) / 2 / 4096 * 4096, 4096);
  const open_result r = store::open(state, opts());
  EXPECT_FALSE(r.opened);
  EXPECT_EQ(r.error, store_errc::corrupt) << r.error.message() << ": " << r.message;
  EXPECT_NE(r.message.find(file.string()), std::string::npos) << r.message;
}

// A child commits `batches` batches (retained "t/<i>"), each waited for, then exits without
// closing the store, as a crash would: the commits stay in the write-ahead log.
void commit_and_crash(const std::filesystem::path& state, const options& o, int batches) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    open_result r = store::open(state, o);
    for (int i = 0; r.opened && i < batches; ++i) {
      batch b;
      b.put_retained("t/" + std::to_string(i), std::string(100, 'v'));
      std::promise<std::error_code> done;
      r.opened->submit(std::move(b), [&](std::error_code ec) { done.set_value(ec); });
      if (done.get_future().get()) {
        ::_exit(3);
      }
    }
    ::_exit(r.opened ? 0 : 2);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(store_test, a_cut_short_write_ahead_log_recovers_to_its_last_whole_commit_and_says_so) {
  const std::filesystem::path state = dir_.path() / "state";
  commit_and_crash(state, opts(), 10);
  const std::filesystem::path wal = state / "store.db-wal";
  ASSERT_TRUE(std::filesystem::exists(wal));
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) - 100); // the last commit's frame

  open_result r = store::open(state, opts());
  ASSERT_TRUE(r.opened) << r.message;
  EXPECT_NE(r.message.find(wal.string()), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("dropped an unfinished commit"), std::string::npos) << r.message;
  const contents c = load(*r.opened);
  EXPECT_EQ(c.retains.size(), 9u);
  EXPECT_EQ(c.retains.count("t/9"), 0u);

  // Recovery folded the log into the file: a clean reopen reports nothing.
  r.opened.reset();
  auto again = open();
  EXPECT_EQ(load(*again).retains.size(), 9u);
}

TEST_F(store_test, a_damaged_write_ahead_log_drops_the_commits_from_the_damage_on) {
  const std::filesystem::path state = dir_.path() / "state";
  commit_and_crash(state, opts(), 10);
  const std::filesystem::path wal = state / "store.db-wal";
  const std::uintmax_t size = std::filesystem::file_size(wal);
  overwrite(wal, size / 2, 64); // in the page of a commit about half way

  const open_result r = store::open(state, opts());
  ASSERT_TRUE(r.opened) << r.message;
  EXPECT_NE(r.message.find("are lost"), std::string::npos) << r.message;
  const contents c = load(*r.opened);
  EXPECT_GT(c.retains.size(), 0u);
  EXPECT_LT(c.retains.size(), 10u);
  for (std::size_t i = 0; i < c.retains.size(); ++i) { // whole commits, oldest first
    EXPECT_EQ(c.retains.count("t/" + std::to_string(i)), 1u) << i;
  }
}

TEST_F(store_test, a_second_opener_of_the_same_folder_is_refused) {
  auto first = open();
  const open_result second = store::open(dir_.path() / "state", opts());
  EXPECT_FALSE(second.opened);
  EXPECT_EQ(second.error, store_errc::locked) << second.message;
  EXPECT_NE(second.message.find("store.db"), std::string::npos) << second.message;
}

} // namespace
} // namespace firehook::store
