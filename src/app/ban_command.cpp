#include "app/ban_command.hpp"

#include <charconv>
#include <iostream>
#include <stdexcept>

#include <boost/json.hpp>

#include "app/command_config.hpp"
#include "registry/ban_store.hpp"

namespace firehook::app {
namespace {

constexpr std::int64_t default_ban_seconds = 3600;

boost::json::object to_json(const registry::ban& b) {
  boost::json::object o;
  o["kind"] = registry::to_string(b.kind);
  o["subject"] = b.subject;
  o["reason"] = b.reason;
  o["source"] = b.source;
  o["created"] = b.created;
  if (b.expires) {
    o["expires"] = *b.expires;
  } else {
    o["expires"] = nullptr;
  }
  o["until"] = broker::ban_list::until_text(b);
  return o;
}

std::string error_body(std::string_view why) {
  return boost::json::serialize(boost::json::object{{"error", why}}) + "\n";
}

// %XX escapes of a path segment ("10.0.0.0%2F8").
std::optional<std::string> percent_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc{} || end != text.data() + i + 3) {
      return std::nullopt;
    }
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

// A ban as asked for, checked; throws std::invalid_argument with the reason.
registry::ban make_ban(registry::ban_kind kind, std::string_view subject, std::string reason,
                       std::optional<std::int64_t> seconds, std::string source) {
  std::string error;
  auto checked = registry::check_subject(kind, subject, error);
  if (!checked) {
    throw std::invalid_argument(std::string(registry::to_string(kind)) + " \"" + std::string(subject) +
                                "\": " + error);
  }
  const auto now = broker::ban_list::now_seconds();
  registry::ban b{kind, std::move(*checked), std::move(reason), std::move(source), now, std::nullopt};
  if (seconds) {
    b.expires = now + *seconds;
  }
  return b;
}

} // namespace

std::optional<std::int64_t> parse_duration(std::string_view text) {
  if (text.size() < 2) {
    return std::nullopt;
  }
  std::int64_t unit = 0;
  switch (text.back()) {
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86'400;
    break;
  default:
    return std::nullopt;
  }
  std::int64_t n = 0;
  const auto digits = text.substr(0, text.size() - 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  // At most 100 years: longer is what --permanent is for.
  if (ec != std::errc{} || end != digits.data() + digits.size() || n <= 0 || n > std::int64_t{36'500} * 86'400 / unit) {
    return std::nullopt;
  }
  return n * unit;
}

http_answer ban_http(broker::ban_list& bans, std::string_view method, std::string_view target,
                     std::string_view body, std::string_view who) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (method == "GET" && path == "/bans") {
    boost::json::array list;
    for (const auto& b : bans.list(broker::ban_list::now_seconds())) {
      list.push_back(to_json(b));
    }
    return {200, boost::json::serialize(boost::json::object{{"bans", list}}) + "\n"};
  }
  if (method == "POST" && path == "/bans") {
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(body, ec);
    if (ec || !parsed.is_object()) {
      return {400, error_body("the body must be a JSON object")};
    }
    const auto& o = parsed.as_object();
    const auto text = [&](std::string_view key) -> std::optional<std::string> {
      const auto* v = o.if_contains(key);
      return v != nullptr && v->is_string() ? std::optional(std::string(v->as_string())) : std::nullopt;
    };
    for (const auto& member : o) {
      const std::string_view key = member.key();
      if (key != "kind" && key != "subject" && key != "reason" && key != "for" && key != "permanent") {
        return {400, error_body("unknown member \"" + std::string(key) + "\"")};
      }
    }
    const auto kind = registry::ban_kind_of(text("kind").value_or(""));
    if (!kind) {
      return {400, error_body("\"kind\" must be \"address\", \"client_id\", \"username\", \"certificate\" or \"token_subject\"")};
    }
    const auto subject = text("subject");
    if (!subject) {
      return {400, error_body("\"subject\" (a string) is missing")};
    }
    const auto* permanent = o.if_contains("permanent");
    const bool forever = permanent != nullptr && permanent->is_bool() && permanent->as_bool();
    std::optional<std::int64_t> seconds = default_ban_seconds;
    if (const auto span = text("for")) {
      seconds = parse_duration(*span);
      if (!seconds || forever) {
        return {400, error_body(forever ? "\"for\" and \"permanent\" exclude each other"
                                        : "\"for\" must be a duration: \"90s\", \"10m\", \"2h\", \"1d\"")};
      }
    } else if (forever) {
      seconds.reset();
    }
    try {
      auto b =
          make_ban(*kind, *subject, text("reason").value_or("manual"), seconds, "admin " + std::string(who));
      auto answer = boost::json::serialize(to_json(b)) + "\n";
      bans.add_stored(std::move(b));
      return {201, std::move(answer)};
    } catch (const std::invalid_argument& e) {
      return {400, error_body(e.what())};
    } catch (const registry::store_error& e) {
      return {500, error_body(std::string("the ban is in force but was not stored: ") + e.what())};
    }
  }
  if (method == "DELETE" && path.starts_with("/bans/")) {
    const auto rest = path.substr(6);
    const auto slash = rest.find('/');
    const auto kind = registry::ban_kind_of(rest.substr(0, slash));
    auto subject = slash == std::string_view::npos ? std::nullopt : percent_decoded(rest.substr(slash + 1));
    if (!kind || !subject || subject->empty()) {
      return {400, error_body(
                       "the path must be /bans/KIND/SUBJECT (KIND: address, client_id, username, certificate, token_subject)")};
    }
    std::string ignored;
    subject = registry::check_subject(*kind, *subject, ignored).value_or(*subject); // a fingerprint as stored
    if (!bans.remove(*kind, *subject, "admin " + std::string(who))) {
      return {404, error_body("no such ban")};
    }
    return {200, boost::json::serialize(boost::json::object{{"removed", *subject}}) + "\n"};
  }
  if (path == "/bans" || path.starts_with("/bans/")) {
    return {405, error_body("GET and POST /bans, DELETE /bans/KIND/SUBJECT")};
  }
  return {404, error_body("no such endpoint")};
}

ban_command::ban_command(CLI::App& app) {
  ban_ = app.add_subcommand(
      "ban", "ban an address or network, a client id, a user name or a client certificate (bans.db in the state dir)");
  ban_->require_subcommand(1);
  ban_->fallthrough();
  ban_->add_option("-c,--config", config_path_, "configuration file (TOML) naming the state dir");
  const auto selectors = [this](CLI::App* sub) {
    auto* address = sub->add_option("address", address_, "an IPv4 or IPv6 address or network (CIDR)");
    auto* client = sub->add_option("--client-id", client_id_, "a client id");
    auto* user = sub->add_option("--username", username_, "a user name");
    auto* cert = sub->add_option("--certificate", certificate_,
                                 "a client certificate's SHA-256 fingerprint (openssl x509 -fingerprint -sha256)");
    for (auto* a : {address, client, user}) {
      for (auto* b : {client, user, cert}) {
        if (a != b) {
          a->excludes(b);
        }
      }
    }
  };
  add_ = ban_->add_subcommand("add", "add a ban (or replace the one of the same subject)");
  selectors(add_);
  auto* span = add_->add_option("--for", for_, "how long: 90s, 10m, 2h, 1d (default 1h)");
  auto* forever = add_->add_flag("--permanent", permanent_, "until removed");
  span->excludes(forever);
  add_->add_option("--reason", reason_, "why, for the log and the list");
  list_ = ban_->add_subcommand("list", "list the bans in force");
  remove_ = ban_->add_subcommand("remove", "remove a ban");
  selectors(remove_);
}

bool ban_command::parsed() const {
  return ban_->parsed();
}

int ban_command::run(std::ostream& out, std::ostream& err) {
  const auto cfg = command_config(config_path_, err);
  if (!cfg) {
    return 1;
  }
  try {
    registry::ban_store store(cfg->broker.state_dir / "bans.db");
    const auto now = broker::ban_list::now_seconds();
    if (list_->parsed()) {
      for (const auto& b : store.list()) {
        if (!b.expired(now)) {
          out << registry::to_string(b.kind) << ' ' << b.subject << "  until "
              << broker::ban_list::until_text(b) << "  by " << b.source << "  reason: " << b.reason << '\n';
        }
      }
      return 0;
    }
    registry::ban_kind kind = registry::ban_kind::address;
    std::string subject = address_;
    if (!client_id_.empty()) {
      kind = registry::ban_kind::client_id;
      subject = client_id_;
    } else if (!username_.empty()) {
      kind = registry::ban_kind::username;
      subject = username_;
    } else if (!certificate_.empty()) {
      kind = registry::ban_kind::certificate;
      subject = certificate_;
    }
    if (subject.empty()) {
      err << "firehook ban: name an address or network, --client-id, --username or --certificate\n";
      return 1;
    }
    if (remove_->parsed()) {
      std::string ignored;
      subject = registry::check_subject(kind, subject, ignored).value_or(subject); // a fingerprint as stored
      if (!store.remove(kind, subject)) {
        err << "firehook ban: no ban of " << registry::to_string(kind) << " \"" << subject << "\"\n";
        return 1;
      }
      out << "removed the ban of " << registry::to_string(kind) << ' ' << subject << '\n';
      return 0;
    }
    std::optional<std::int64_t> seconds = default_ban_seconds;
    if (permanent_) {
      seconds.reset();
    } else if (!for_.empty()) {
      seconds = parse_duration(for_);
      if (!seconds) {
        err << "firehook ban: --for must be a duration: 90s, 10m, 2h, 1d (got \"" << for_ << "\")\n";
        return 1;
      }
    }
    const auto b = make_ban(kind, subject, reason_.empty() ? "manual" : reason_, seconds, "manual");
    store.put(b);
    out << "banned " << registry::to_string(kind) << ' ' << b.subject << " until "
        << broker::ban_list::until_text(b) << '\n';
    return 0;
  } catch (const std::exception& e) {
    err << "firehook ban: " << e.what() << '\n';
    return 1;
  }
}

} // namespace firehook::app
