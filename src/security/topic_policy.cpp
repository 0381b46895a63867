#include "security/topic_policy.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "mqtt/topic.hpp"

namespace firehook::security {
namespace {

using config::identity_source;
using config::pattern_level;
using level_kind = compiled_pattern::level::kind;

bool starts_with_dollar(std::string_view level) {
  return !level.empty() && level.front() == '$';
}

// Every value `source` has for this client; empty when it has none.
std::vector<std::string_view> values_of(const identity_source& source, const identity& who,
                                        std::string_view client_id) {
  using kind = identity_source::kind;
  std::vector<std::string_view> out;
  const auto add_all = [&](const std::vector<std::string>& list) {
    out.insert(out.end(), list.begin(), list.end());
  };
  const auto from_map = [&](const auto& map) {
    if (const auto it = map.find(source.name); it != map.end()) {
      out.push_back(it->second);
    }
  };
  const certificate_info* cert = who.certificate ? &*who.certificate : nullptr;
  switch (source.type) {
  case kind::client_id:
    // Only a client id the identity is entitled to (identity::client_id): one the client merely
    // chose would let it claim another device's topics by naming itself after it.
    if (who.client_id && *who.client_id == client_id) {
      out.push_back(client_id);
    }
    break;
  case kind::username:
    // Only a password proves a user name; one sent beside a certificate or a token proves nothing.
    if (who.method == "password") {
      out.push_back(who.name);
    }
    break;
  case kind::cert_cn:
    if (cert != nullptr && !cert->common_name.empty()) {
      out.push_back(cert->common_name);
    }
    break;
  case kind::cert_ou:
    if (cert != nullptr) {
      add_all(cert->organizational_units);
    }
    break;
  case kind::cert_san_dns:
    if (cert != nullptr) {
      add_all(cert->san_dns);
    }
    break;
  case kind::cert_san_uri:
    if (cert != nullptr) {
      add_all(cert->san_uri);
    }
    break;
  case kind::cert_san_email:
    if (cert != nullptr) {
      add_all(cert->san_email);
    }
    break;
  case kind::claim:
    from_map(who.claims);
    break;
  case kind::attribute:
    from_map(who.attributes);
    break;
  }
  return out;
}

// Why an identity value cannot stand for one topic level, or nullopt when it can. A value must
// match exactly one literal level: '+', '#' or '/' would widen the pattern (the injection cases),
// an empty level is never what a binding means, and a first level starting with '$' would reach
// the broker's own topics ($SYS).
std::optional<std::string> value_problem(std::string_view value, std::size_t level) {
  if (value.empty()) {
    return "is empty";
  }
  for (const char c : {'/', '+', '#', '\0'}) {
    if (value.find(c) != std::string_view::npos) {
      return c == '\0' ? std::string("contains a NUL character") : "contains '" + std::string(1, c) + "'";
    }
  }
  if (level == 0 && starts_with_dollar(value)) {
    return "starts with '$' in the first level";
  }
  if (!mqtt::is_valid_utf8(value)) {
    return "is not valid UTF-8";
  }
  return std::nullopt;
}

std::string shown(std::string_view value) {
  std::string out = "\"";
  for (const char c : value) {
    out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  }
  return out + "\"";
}

// The pattern with this client's values in place, or the reason it cannot apply to this client.
// `where` is null for a deny, whose placeholders the loader has already refused.
std::optional<compiled_pattern> substitute(const config::topic_pattern& pattern,
                                           const std::vector<config::binding>* where, const identity& who,
                                           std::string_view client_id, std::string& why_not) {
  compiled_pattern out;
  out.levels.reserve(pattern.levels.size());
  for (std::size_t i = 0; i < pattern.levels.size(); ++i) {
    const pattern_level& level = pattern.levels[i];
    compiled_pattern::level compiled;
    switch (level.type) {
    case pattern_level::kind::literal:
      compiled.values.push_back(level.text);
      break;
    case pattern_level::kind::single_wildcard:
      compiled.type = level_kind::any_level;
      break;
    case pattern_level::kind::multi_wildcard:
      compiled.type = level_kind::rest;
      break;
    case pattern_level::kind::placeholder: {
      const identity_source* source = level.source ? &*level.source : nullptr;
      if (source == nullptr && where != nullptr) {
        for (const auto& b : *where) {
          if (b.variable == level.text) {
            source = &b.source;
          }
        }
      }
      if (source == nullptr) {
        compiled.type = level_kind::any_level; // an unbound variable: any one level, like '+'
        break;
      }
      const auto values = values_of(*source, who, client_id);
      std::string rejected;
      for (const std::string_view value : values) {
        if (const auto problem = value_problem(value, i)) {
          rejected += (rejected.empty() ? "" : "; ") + source->text() + " " + shown(value) + " " + *problem;
        } else if (std::find(compiled.values.begin(), compiled.values.end(), value) ==
                   compiled.values.end()) {
          compiled.values.emplace_back(value);
        }
      }
      if (compiled.values.empty()) {
        if (!values.empty()) {
          why_not = rejected;
        } else if (source->type == identity_source::kind::client_id) {
          why_not = "client_id is not bound to the identity (only a certificate with "
                    "auth.certificate.client_id = \"must_match\" or \"assign\", or a token with a client_id claim, binds it)";
        } else {
          why_not = source->text() + " is missing";
        }
        return std::nullopt;
      }
      break;
    }
    }
    out.levels.push_back(std::move(compiled));
  }
  return out;
}

bool accepts(const compiled_pattern::level& level, std::string_view value) {
  return std::find(level.values.begin(), level.values.end(), value) != level.values.end();
}

std::vector<std::string_view> split_levels(std::string_view filter) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = filter.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(filter.substr(start));
      return out;
    }
    out.push_back(filter.substr(start, slash - start));
    start = slash + 1;
  }
}

struct candidate {
  const compiled_pattern* pattern;
  std::size_t pos;
};

// Whether every topic that the filter levels f[i..] match (after `depth` levels already matched)
// is matched by one of the candidates (each at its own position). A '+' in the filter stands for a
// value no literal names, which only wildcards cover; that is also the hardest value, so checking
// it is enough. '#' is the parent level (except at depth 0: a topic has at least one level) and
// then '+' followed by '#' again; candidates advance each round, so this ends. [MQTT-4.7.2-1]:
// wildcards in the first level (the filter's or a pattern's) do not match topics starting with '$'.
bool covered(const std::vector<std::string_view>& f, std::size_t i, std::size_t depth,
             const std::vector<candidate>& candidates) {
  if (candidates.empty()) {
    return false;
  }
  const bool at_end = i == f.size();
  const std::string_view token = at_end ? std::string_view() : f[i];
  const bool wildcard_token = token == "+" || token == "#";
  const bool dollar_literal = depth == 0 && !at_end && !wildcard_token && starts_with_dollar(token);
  for (const candidate& c : candidates) {
    if (c.pos < c.pattern->levels.size() && c.pattern->levels[c.pos].type == level_kind::rest &&
        !dollar_literal) {
      return true;
    }
  }
  const auto ended = [](const candidate& c) { return c.pos == c.pattern->levels.size(); };
  if (at_end) {
    return std::any_of(candidates.begin(), candidates.end(), ended);
  }
  std::vector<candidate> next;
  for (const candidate& c : candidates) {
    if (ended(c)) {
      continue;
    }
    const auto& level = c.pattern->levels[c.pos];
    const bool takes =
        level.type == level_kind::any_level ? !dollar_literal : !wildcard_token && accepts(level, token);
    if (takes) {
      next.push_back(candidate{c.pattern, c.pos + 1});
    }
  }
  if (token == "#") {
    if (depth > 0 && std::none_of(candidates.begin(), candidates.end(), ended)) {
      return false; // the parent level itself ("a" for "a/#") is not covered
    }
    return covered(f, i, depth + 1, next);
  }
  return covered(f, i + 1, depth + 1, next);
}

// Whether some topic matches both the filter levels f[i..] and p.levels[pos..].
bool overlaps(const std::vector<std::string_view>& f, std::size_t i, std::size_t depth,
              const compiled_pattern& p, std::size_t pos) {
  const bool f_end = i == f.size();
  const bool p_end = pos == p.levels.size();
  if (!f_end && f[i] == "#") {
    if (depth > 0 || p_end) {
      return true;
    }
    const auto& first = p.levels[pos];
    return first.type != level_kind::literal ||
           std::any_of(first.values.begin(), first.values.end(),
                       [](const std::string& v) { return !starts_with_dollar(v); });
  }
  if (!p_end && p.levels[pos].type == level_kind::rest) {
    return !(depth == 0 && !f_end && f[i] != "+" && starts_with_dollar(f[i]));
  }
  if (f_end || p_end) {
    return f_end && p_end;
  }
  const auto& level = p.levels[pos];
  if (f[i] == "+") {
    if (depth == 0 && level.type == level_kind::literal &&
        std::all_of(level.values.begin(), level.values.end(),
                    [](const std::string& v) { return starts_with_dollar(v); })) {
      return false;
    }
  } else if (level.type == level_kind::any_level ? depth == 0 && starts_with_dollar(f[i])
                                                 : !accepts(level, f[i])) {
    return false;
  }
  return overlaps(f, i + 1, depth + 1, p, pos + 1);
}

std::vector<candidate> candidates_of(const std::vector<compiled_pattern>& patterns) {
  std::vector<candidate> out;
  out.reserve(patterns.size());
  for (const auto& p : patterns) {
    out.push_back(candidate{&p, 0});
  }
  return out;
}

} // namespace

std::string topic_rule::location() const {
  return file + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
}

std::string topic_rule::describe() const {
  switch (type) {
  case kind::publish_grant:
    return "publish grant of \"" + pattern + "\" to role " + role;
  case kind::subscribe_grant:
    return "subscribe grant of \"" + pattern + "\" to role " + role;
  case kind::deny:
    return "deny of \"" + pattern + "\" for " + role;
  }
  return "";
}

std::string_view to_string(topic_verdict verdict) {
  switch (verdict) {
  case topic_verdict::allowed:
    return "allowed";
  case topic_verdict::no_grant:
    return "no grant";
  case topic_verdict::denied:
    return "denied";
  case topic_verdict::qos_too_high:
    return "QoS above the topic's max_qos";
  case topic_verdict::retain_not_allowed:
    return "retain not allowed on this topic";
  }
  return "?";
}

bool compiled_pattern::matches(std::string_view topic) const {
  const bool dollar = starts_with_dollar(topic);
  std::size_t pos = 0;
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const level& l = levels[i];
    if (l.type == level_kind::rest) {
      return !(i == 0 && dollar); // [MQTT-4.7.2-1]
    }
    const std::size_t slash = topic.find('/', pos);
    const std::string_view value =
        topic.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (l.type == level_kind::any_level ? i == 0 && dollar : !accepts(l, value)) {
      return false;
    }
    if (slash == std::string_view::npos) {
      // The topic ends here: so must the pattern, or go on with a '#', which matches the parent.
      return i + 1 == levels.size() || (i + 2 == levels.size() && levels[i + 1].type == level_kind::rest);
    }
    pos = slash + 1;
  }
  return false; // the topic has more levels than the pattern
}

topic_policy::topic_policy(private_tag, std::shared_ptr<const config::topics_file> file)
    : file_(std::move(file)) {
  std::size_t count = file_->denies.size();
  for (const auto& topic : file_->topics) {
    count += topic.publish.size() + topic.subscribe.size();
  }
  rules_.reserve(count); // decisions point into rules_: it must never reallocate
  const auto add_grants = [&](const config::topic_definition& topic, std::size_t index,
                              const std::vector<config::grant>& grants, topic_rule::kind type) {
    const std::size_t first = rules_.size();
    for (const auto& g : grants) {
      rules_.push_back(topic_rule{type, topic.pattern.text, g.role, file_->file, g.at, index});
    }
    return first;
  };
  for (std::size_t i = 0; i < file_->topics.size(); ++i) {
    const auto& topic = file_->topics[i];
    publish_rule_.push_back(add_grants(topic, i, topic.publish, topic_rule::kind::publish_grant));
    subscribe_rule_.push_back(add_grants(topic, i, topic.subscribe, topic_rule::kind::subscribe_grant));
  }
  for (std::size_t i = 0; i < file_->denies.size(); ++i) {
    const auto& deny = file_->denies[i];
    std::string roles;
    for (const auto& r : deny.roles) {
      roles += (roles.empty() ? "" : ", ") + r;
    }
    deny_rule_.push_back(rules_.size());
    rules_.push_back(topic_rule{topic_rule::kind::deny, deny.pattern.text, roles, file_->file, deny.at, i});
  }
}

std::shared_ptr<const topic_policy> topic_policy::compile(std::shared_ptr<const config::topics_file> file) {
  return std::make_shared<const topic_policy>(private_tag{}, std::move(file));
}

std::vector<std::string> topic_policy::roles_of(const identity& who) const {
  std::vector<std::string> out;
  if (who.method == "anonymous") {
    if (file_->anonymous_role) {
      out.push_back(*file_->anonymous_role);
    }
    return out;
  }
  for (const auto& role : file_->roles) {
    bool has = std::find(who.roles.begin(), who.roles.end(), role.name) != who.roles.end();
    for (std::size_t i = 0; !has && i < role.from.size(); ++i) {
      const auto values = values_of(role.from[i].source, who, {});
      has = std::find(values.begin(), values.end(), role.from[i].value) != values.end();
    }
    if (has) {
      out.push_back(role.name);
    }
  }
  return out;
}

topic_access::topic_access(std::shared_ptr<const topic_policy> policy, const identity& who,
                           std::string_view client_id)
    : policy_(std::move(policy)), roles_(policy_->roles_of(who)) {
  const config::topics_file& file = policy_->file();
  const auto has_role = [&](std::string_view role) {
    return std::find(roles_.begin(), roles_.end(), role) != roles_.end();
  };
  const auto add = [&](const config::topic_definition& topic, const config::grant& g, const topic_rule& rule,
                       std::vector<compiled_pattern>& out) {
    if (!has_role(g.role)) {
      return;
    }
    std::string why_not;
    auto compiled = substitute(topic.pattern, &g.where, who, client_id, why_not);
    if (!compiled) {
      skipped_.push_back(skipped_grant{&rule, std::move(why_not)});
      return;
    }
    compiled->rule = &rule;
    compiled->max_qos = topic.max_qos;
    compiled->retain = topic.retain;
    out.push_back(std::move(*compiled));
  };
  for (std::size_t i = 0; i < file.topics.size(); ++i) {
    const auto& topic = file.topics[i];
    for (std::size_t j = 0; j < topic.publish.size(); ++j) {
      add(topic, topic.publish[j], policy_->rules_[policy_->publish_rule_[i] + j], publish_);
    }
    for (std::size_t j = 0; j < topic.subscribe.size(); ++j) {
      add(topic, topic.subscribe[j], policy_->rules_[policy_->subscribe_rule_[i] + j], subscribe_);
    }
  }
  for (std::size_t i = 0; i < file.denies.size(); ++i) {
    const auto& deny = file.denies[i];
    const bool applies = (deny.roles.size() == 1 && deny.roles.front() == "*") ||
                         std::any_of(deny.roles.begin(), deny.roles.end(), has_role);
    if (!applies) {
      continue;
    }
    std::string unused;
    auto compiled = substitute(deny.pattern, nullptr, who, client_id, unused);
    if (!compiled) {
      continue; // cannot happen: a deny has no placeholders
    }
    compiled->rule = &policy_->rules_[policy_->deny_rule_[i]];
    if (deny.publish) {
      deny_publish_.push_back(*compiled);
    }
    if (deny.subscribe) {
      deny_subscribe_.push_back(std::move(*compiled));
    }
  }
}

topic_decision topic_access::may_publish(std::string_view topic, std::uint8_t qos, bool retain) const {
  if (topic.empty() || mqtt::has_wildcard(topic)) {
    return {};
  }
  for (const auto& deny : deny_publish_) {
    if (deny.matches(topic)) {
      return {topic_verdict::denied, deny.rule};
    }
  }
  topic_decision limited;
  for (const auto& grant : publish_) {
    if (!grant.matches(topic)) {
      continue;
    }
    if (qos > grant.max_qos) {
      if (limited.rule == nullptr) {
        limited = {topic_verdict::qos_too_high, grant.rule};
      }
    } else if (retain && !grant.retain) {
      if (limited.rule == nullptr) {
        limited = {topic_verdict::retain_not_allowed, grant.rule};
      }
    } else {
      return {topic_verdict::allowed, grant.rule};
    }
  }
  return limited;
}

topic_decision topic_access::may_receive(std::string_view topic) const {
  if (topic.empty() || mqtt::has_wildcard(topic)) {
    return {};
  }
  for (const auto& deny : deny_subscribe_) {
    if (deny.matches(topic)) {
      return {topic_verdict::denied, deny.rule};
    }
  }
  for (const auto& grant : subscribe_) {
    if (grant.matches(topic)) {
      return {topic_verdict::allowed, grant.rule};
    }
  }
  return {};
}

topic_decision topic_access::may_subscribe(std::string_view filter) const {
  if (const auto shared = mqtt::parse_shared_filter(filter)) {
    filter = shared->filter; // [MQTT-4.8.2]: a shared subscription receives what its filter matches
  }
  if (!mqtt::is_valid_topic_filter(filter) || filter.starts_with("$share/")) {
    return {};
  }
  const auto levels = split_levels(filter);
  const auto first_overlapping = [&](const std::vector<compiled_pattern>& list) -> const compiled_pattern* {
    const auto it = std::find_if(list.begin(), list.end(),
                                 [&](const compiled_pattern& p) { return overlaps(levels, 0, 0, p, 0); });
    return it == list.end() ? nullptr : &*it;
  };
  if (covered(levels, 0, 0, candidates_of(deny_subscribe_))) {
    const compiled_pattern* deny = first_overlapping(deny_subscribe_);
    return {topic_verdict::denied, deny != nullptr ? deny->rule : nullptr};
  }
  // Topics in a denied area need no grant: they are withheld from the deliveries anyway.
  auto all = candidates_of(subscribe_);
  const auto denies = candidates_of(deny_subscribe_);
  all.insert(all.end(), denies.begin(), denies.end());
  if (!covered(levels, 0, 0, all)) {
    return {};
  }
  topic_decision out{topic_verdict::allowed, nullptr, first_overlapping(deny_subscribe_) != nullptr};
  for (const auto& grant : subscribe_) {
    if (covered(levels, 0, 0, {candidate{&grant, 0}})) {
      out.rule = grant.rule;
      return out;
    }
  }
  if (const compiled_pattern* grant = first_overlapping(subscribe_)) {
    out.rule = grant->rule;
  }
  return out;
}

} // namespace firehook::security
