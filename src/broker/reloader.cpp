#include "broker/reloader.hpp"

#include <string>

namespace firehook::broker {

namespace {
std::string changed_text(const base::reload_result& r) {
  if (r.changed.empty()) {
    return "no file changed; reload asked for";
  }
  std::string text = "changed: ";
  for (std::size_t i = 0; i < r.changed.size(); ++i) {
    text += (i == 0 ? "" : ", ") + r.changed[i].string();
  }
  return text;
}
} // namespace

void reloader::watch(std::shared_ptr<base::reloadable> what, std::function<void()> after) {
  const std::lock_guard lock(mutex_);
  watched_.push_back({std::move(what), std::move(after)});
}

std::vector<base::reload_result> reloader::reload(bool force) {
  const std::lock_guard lock(mutex_);
  std::vector<base::reload_result> results;
  for (auto& w : watched_) {
    auto r = w.what->reload(force);
    using outcome = base::reload_result::outcome;
    if (r.what == outcome::applied && w.after) {
      w.after();
    }
    if (r.what != outcome::unchanged) {
      events::event e;
      e.type = events::event_type::reload;
      e.subject = r.subject;
      e.verdict = r.what == outcome::applied ? events::decision::allow : events::decision::deny;
      e.reason = r.what == outcome::applied ? "reloaded: " + r.detail
                                             : "refused, the previous version stays in force: " + r.detail;
      e.reason += " (" + changed_text(r) + ")";
      out_.emit(std::move(e));
    }
    results.push_back(std::move(r));
  }
  return results;
}

std::vector<base::reload_result> reloader::in_force() const {
  const std::lock_guard lock(mutex_);
  std::vector<base::reload_result> out;
  for (const auto& w : watched_) {
    out.push_back({base::reload_result::outcome::unchanged, w.what->subject(), w.what->in_force(), {}});
  }
  return out;
}

} // namespace firehook::broker
