#include "base/reload.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include "base/temp_dir.hpp"

namespace firehook::base {
namespace {

// A number read from a file; a file that is not a number is refused.
class number_file final : public reloadable {
public:
  explicit number_file(std::filesystem::path file) : reloadable("number file"), file_(std::move(file)) {
    load_first();
  }
  int value = 0;
  int loads = 0;

private:
  std::vector<std::filesystem::path> watched_files() const override { return {file_}; }
  std::string load() override {
    ++loads;
    std::ifstream in(file_);
    int v = 0;
    if (!(in >> v)) {
      throw std::runtime_error(file_.string() + ": not a number");
    }
    value = v; // validated in full before the swap
    return "value " + std::to_string(v);
  }
  std::filesystem::path file_;
};

// Replaces the file by a rename, as rotation should do it: a new inode, seen even when the size
// and the modification time happen to be the same.
void replace(const temp_dir& dir, const std::string& text) {
  dir.write("n.tmp", text);
  std::filesystem::rename(dir / "n.tmp", dir / "n");
}

TEST(reloadable, reads_only_when_a_file_changed_or_when_forced) {
  temp_dir dir("firehook-reload");
  replace(dir, "1");
  number_file n(dir / "n");
  EXPECT_EQ(n.value, 1);
  EXPECT_EQ(n.in_force(), "value 1");

  auto r = n.reload(false);
  EXPECT_EQ(r.what, reload_result::outcome::unchanged);
  EXPECT_EQ(n.loads, 1);

  replace(dir, "2");
  r = n.reload(false);
  EXPECT_EQ(r.what, reload_result::outcome::applied);
  EXPECT_EQ(r.subject, "number file");
  EXPECT_EQ(r.detail, "value 2");
  EXPECT_EQ(r.changed, std::vector<std::filesystem::path>{dir / "n"});
  EXPECT_EQ(n.value, 2);

  r = n.reload(true); // SIGHUP: read again although nothing changed
  EXPECT_EQ(r.what, reload_result::outcome::applied);
  EXPECT_TRUE(r.changed.empty());
  EXPECT_EQ(n.loads, 3);
}

TEST(reloadable, a_broken_version_keeps_the_old_one_and_is_reported_once) {
  temp_dir dir("firehook-reload");
  replace(dir, "7");
  number_file n(dir / "n");
  replace(dir, "seven");
  auto r = n.reload(false);
  EXPECT_EQ(r.what, reload_result::outcome::refused);
  EXPECT_NE(r.detail.find("not a number"), std::string::npos) << r.detail;
  EXPECT_EQ(n.value, 7);
  EXPECT_EQ(n.in_force(), "value 7");
  EXPECT_EQ(n.reload(false).what, reload_result::outcome::unchanged); // the same broken file

  std::filesystem::remove(dir / "n"); // a file that goes away is a change too
  EXPECT_EQ(n.reload(false).what, reload_result::outcome::refused);
  replace(dir, "8");
  EXPECT_EQ(n.reload(false).what, reload_result::outcome::applied);
  EXPECT_EQ(n.value, 8);
}

TEST(reloadable, the_first_load_throws_instead_of_refusing) {
  temp_dir dir("firehook-reload");
  replace(dir, "x");
  EXPECT_THROW(number_file n(dir / "n"), std::runtime_error);
}

TEST(file_stamp, tells_a_missing_file) {
  temp_dir dir("firehook-reload");
  EXPECT_FALSE(file_stamp::of(dir / "none").exists);
  const auto f = dir.write("f", "abc");
  const auto s = file_stamp::of(f);
  EXPECT_TRUE(s.exists);
  EXPECT_EQ(s.size, 3U);
}

} // namespace
} // namespace firehook::base
