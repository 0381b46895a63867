#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/temp_dir.hpp"
#include "registry/store.hpp"

namespace firehook::registry {
namespace {

namespace fs = std::filesystem;

// A fresh folder under $TMPDIR, removed with everything in it at the end of the test.
unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777U;
}

constexpr std::array<migration, 2> two_migrations{{
    {"t1", "CREATE TABLE a (x INTEGER NOT NULL) STRICT;"},
    {"t2", "CREATE TABLE b (y TEXT NOT NULL) STRICT; INSERT INTO b VALUES ('seed');"},
}};

TEST(store, creates_file_0600_and_missing_folders_0700) {
  base::temp_dir dir{"firehook-store"};
  const fs::path file = dir.path() / "state" / "deeper" / "firehook.db";
  store s(file);
  EXPECT_TRUE(fs::exists(file));
  EXPECT_EQ(mode_of(file), 0600U);
  EXPECT_EQ(mode_of(dir.path() / "state"), 0700U);
  EXPECT_EQ(mode_of(dir.path() / "state" / "deeper"), 0700U);
  EXPECT_EQ(s.path(), file);
}

TEST(store, runs_registry_migrations_and_records_the_version) {
  base::temp_dir dir{"firehook-store"};
  store s(dir.path() / "f.db");
  EXPECT_EQ(s.schema_version(), static_cast<int>(registry_migrations().size()));
  auto c = s.lock();
  auto st = c.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'users'");
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int(0), 1);
}

TEST(store, brings_an_older_schema_forward_and_keeps_data) {
  base::temp_dir dir{"firehook-store"};
  const fs::path file = dir.path() / "f.db";
  {
    store s(file, std::span(two_migrations).first(1));
    EXPECT_EQ(s.schema_version(), 1);
    s.lock().exec("INSERT INTO a VALUES (7)");
  }
  store s(file, two_migrations);
  EXPECT_EQ(s.schema_version(), 2);
  auto c = s.lock();
  auto a = c.prepare("SELECT x FROM a");
  ASSERT_TRUE(a.step());
  EXPECT_EQ(a.column_int(0), 7);
  auto b = c.prepare("SELECT y FROM b");
  ASSERT_TRUE(b.step());
  EXPECT_EQ(b.column_text(0), "seed");
}

TEST(store, refuses_a_schema_newer_than_it_knows) {
  base::temp_dir dir{"firehook-store"};
  const fs::path file = dir.path() / "f.db";
  { store s(file, two_migrations); }
  try {
    store s(file, std::span(two_migrations).first(1));
    FAIL() << "opened a database with a newer schema";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 2 is newer"), std::string::npos) << e.what();
  }
}

TEST(store, a_failing_migration_leaves_the_file_unchanged) {
  base::temp_dir dir{"firehook-store"};
  const fs::path file = dir.path() / "f.db";
  { store s(file, std::span(two_migrations).first(1)); }
  constexpr std::array<migration, 2> broken{{
      two_migrations[0],
      {"broken", "CREATE TABLE c (z INTEGER); THIS IS NOT SQL;"},
  }};
  try {
    store s(file, broken);
    FAIL() << "a broken migration was accepted";
  } catch (const store_error& e) {
    EXPECT_NE(std::string(e.what()).find("migration 2 (broken) failed"), std::string::npos) << e.what();
  }
  store s(file, std::span(two_migrations).first(1));
  EXPECT_EQ(s.schema_version(), 1);
  auto c = s.lock();
  auto st = c.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'c'");
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_int(0), 0) << "table c of the failed migration must be rolled back";
}

TEST(store, refuses_a_file_that_is_not_a_database) {
  base::temp_dir dir{"firehook-store"};
  const fs::path file = dir.path() / "f.db";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not an SQLite database, just some text that is long enough to be read as a header\n",
               f);
    std::fclose(f);
  }
  EXPECT_THROW(store s(file), store_error);
}

TEST(store, refuses_a_symbolic_link_in_place_of_the_database) {
  base::temp_dir dir{"firehook-store"};
  const fs::path real = dir.path() / "real.db";
  { store s(real); }
  const fs::path link = dir.path() / "link.db";
  fs::create_symlink(real, link);
  EXPECT_THROW(store s(link), store_error);
}

TEST(store, transaction_rolls_back_when_the_callback_throws) {
  base::temp_dir dir{"firehook-store"};
  store s(dir.path() / "f.db", two_migrations);
  EXPECT_THROW(s.transaction([](connection& c) {
    c.exec("INSERT INTO a VALUES (1)");
    throw std::runtime_error("changed my mind");
  }),
               std::runtime_error);
  const auto count = s.transaction([](connection& c) {
    auto st = c.prepare("SELECT count(*) FROM a");
    st.step();
    return st.column_int(0);
  });
  EXPECT_EQ(count, 0);
}

TEST(store, statement_binds_text_with_nul_and_empty_text) {
  base::temp_dir dir{"firehook-store"};
  store s(dir.path() / "f.db", two_migrations);
  auto c = s.lock();
  c.prepare("INSERT INTO b VALUES (?1)").bind(1, std::string_view("").substr(0)).run();
  const std::string with_nul("a\0b", 3);
  c.prepare("INSERT INTO b VALUES (?1)").bind(1, with_nul).run();
  EXPECT_EQ(c.changes(), 1);
  auto st = c.prepare("SELECT y FROM b WHERE y <> 'seed' ORDER BY rowid");
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_text(0), "") << "empty text must be stored as '' (NOT NULL), not as NULL";
  ASSERT_TRUE(st.step());
  EXPECT_EQ(st.column_text(0), with_nul);
  EXPECT_FALSE(st.step());
}

TEST(store, constraint_violation_throws_store_error) {
  base::temp_dir dir{"firehook-store"};
  store s(dir.path() / "f.db", two_migrations);
  auto c = s.lock();
  // STRICT: text in an INTEGER column is refused, not converted.
  EXPECT_THROW(c.prepare("INSERT INTO a VALUES (?1)").bind(1, std::string_view("x")).run(), store_error);
}

} // namespace
} // namespace firehook::registry
