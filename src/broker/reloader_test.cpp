#include "broker/reloader.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include "base/temp_dir.hpp"

namespace firehook::broker {
namespace {

using outcome = base::reload_result::outcome;

// A file whose text must not be "bad".
class text_file final : public base::reloadable {
public:
  text_file(std::string subject, std::filesystem::path file)
      : reloadable(std::move(subject)), file_(std::move(file)) {
    load_first();
  }

private:
  std::vector<std::filesystem::path> watched_files() const override { return {file_}; }
  std::string load() override {
    std::ifstream in(file_);
    std::string text;
    in >> text;
    if (text == "bad") {
      throw std::runtime_error(file_.filename().string() + " is bad");
    }
    return text;
  }
  std::filesystem::path file_;
};

struct Reloader : ::testing::Test {
  base::temp_dir dir{"firehook-reloader"};
  events::recording_emitter out;
  reloader reloads{out};

  void replace(const std::string& name, const std::string& text) {
    dir.write(name + ".tmp", text);
    std::filesystem::rename(dir / (name + ".tmp"), dir / name);
  }
};

TEST_F(Reloader, OneEventPerAppliedOrRefusedVersionAndTheAfterStepBeforeIt) {
  replace("a", "one");
  replace("b", "two");
  int after_a = 0;
  std::size_t events_at_after = 99;
  reloads.watch(std::make_shared<text_file>("file a", dir / "a"), [&] {
    ++after_a;
    events_at_after = out.events.size();
  });
  reloads.watch(std::make_shared<text_file>("file b", dir / "b"));

  auto in_force = reloads.in_force();
  ASSERT_EQ(in_force.size(), 2U);
  EXPECT_EQ(in_force[0].subject, "file a");
  EXPECT_EQ(in_force[1].detail, "two");

  auto r = reloads.reload(false); // nothing changed: no event
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].what, outcome::unchanged);
  EXPECT_TRUE(out.events.empty());

  replace("a", "three");
  replace("b", "bad");
  r = reloads.reload(false);
  EXPECT_EQ(r[0].what, outcome::applied);
  EXPECT_EQ(r[1].what, outcome::refused);
  EXPECT_EQ(after_a, 1);
  EXPECT_EQ(events_at_after, 0U); // the event comes once the after step has run
  ASSERT_EQ(out.events.size(), 2U);
  const auto& applied = out.events[0];
  EXPECT_EQ(applied.type, events::event_type::reload);
  EXPECT_EQ(applied.subject, "file a");
  EXPECT_EQ(applied.verdict, events::decision::allow);
  EXPECT_EQ(applied.reason, "reloaded: three (changed: " + (dir / "a").string() + ")");
  const auto& refused = out.events[1];
  EXPECT_EQ(refused.subject, "file b");
  EXPECT_EQ(refused.verdict, events::decision::deny);
  EXPECT_EQ(refused.reason, "refused, the previous version stays in force: b is bad (changed: " +
                                (dir / "b").string() + ")");
  EXPECT_EQ(reloads.in_force()[1].detail, "two");

  r = reloads.reload(true); // SIGHUP: everything read again
  EXPECT_EQ(r[0].what, outcome::applied);
  EXPECT_EQ(r[1].what, outcome::refused);
  EXPECT_EQ(after_a, 2);
  ASSERT_EQ(out.events.size(), 4U);
  EXPECT_EQ(out.events[2].reason, "reloaded: three (no file changed; reload asked for)");
}

} // namespace
} // namespace firehook::broker
