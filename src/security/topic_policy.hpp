#pragma once

// Authorization: which topics an authenticated client may publish to and receive, as the topics
// file (config/topics.hpp, docs/topics.md) says. Deny by default; publish and subscribe are
// separate rights; a deny entry wins over every grant.
//
// Two objects, compiled once so that the data path parses no patterns:
//
//   topic_policy  the topics file compiled: immutable, shared by every shard through a
//                 std::shared_ptr<const topic_policy>. Built at start-up and on each reload.
//   topic_access  one client's rights: its roles resolved and the placeholders of its grants
//                 substituted with its identity values. Immutable; it keeps its policy alive, so
//                 the topic_rule pointers in its decisions stay valid as long as it lives.
//
// How the broker uses them:
//   start-up, reload:  policy = topic_policy::compile(load_topics_file(...).topics)
//   CONNECT:           session.access = topic_access(policy, identity, client_id)  (after the
//                      client id is final: assigned ids included)
//   PUBLISH:           d = access.may_publish(topic, qos, retain); refused: 5.0 PUBACK/PUBREC 0x87,
//                      3.1.1 acknowledge and drop (or disconnect, if so configured); audit d.rule.
//   SUBSCRIBE:         per filter, d = access.may_subscribe(filter); refused: SUBACK 0x87 (5.0) /
//                      0x80 (3.1.1). Granted with d.withheld: subscribe normally; deliveries filter.
//   delivery:          access.may_receive(topic) for each message before it is queued to the
//                      subscriber; false: skip it (and count it).
//   reload:            compile the new policy, build a new topic_access per session, call
//                      may_subscribe on each live filter and remove the refused ones (log, count).
//
// Threading: both types are immutable after construction; every const member may be called from any
// thread at once. Errors: none on the data path (no exceptions but std::bad_alloc); a topic or
// filter that is not valid MQTT is simply never allowed. An identity value that would widen a
// pattern (containing '+', '#' or '/', empty, or '$...' in the first level) never matches.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/topics.hpp"
#include "security/authenticator.hpp"

namespace firehook::security {

// One place in the topics file that can decide: a grant of a topic to a role, or a deny entry.
struct topic_rule {
  enum class kind : std::uint8_t { publish_grant, subscribe_grant, deny };
  kind type = kind::deny;
  std::string pattern; // as written
  std::string role;    // the granted role; for a deny, its roles joined with ", "
  std::string file;
  config::source_position at;
  std::size_t index = 0; // into topics_file::topics (grants) or topics_file::denies

  std::string location() const; // "topics.toml:12:13"
  // "publish grant of \"a/{b}\" to role thermostat", "deny of \"internal/#\" for dashboard"
  std::string describe() const;
};

enum class topic_verdict : std::uint8_t {
  allowed,
  no_grant,          // deny by default: no grant of the identity's roles matches (or covers, for subscribe)
  denied,            // a deny entry matches (publish, receive) or contains the whole filter (subscribe)
  qos_too_high,      // publish: granted, but above the topic's max_qos
  retain_not_allowed // publish: granted, but the topic has retain = false
};

std::string_view to_string(topic_verdict verdict);

struct topic_decision {
  topic_verdict verdict = topic_verdict::no_grant;
  // The grant that allowed, the deny that refused, or the grant whose limits refused; null for
  // no_grant. For a subscription covered by several grants together: the first of them.
  const topic_rule* rule = nullptr;
  // Subscribe only: granted, but some topics it matches lie in a denied area and are withheld from its
  // deliveries by may_receive().
  bool withheld = false;

  bool allowed() const { return verdict == topic_verdict::allowed; }
};

class topic_access;

class topic_policy {
public:
  // `file` comes from a successful load (config::topics_load_result::ok()). Never null.
  static std::shared_ptr<const topic_policy> compile(std::shared_ptr<const config::topics_file> file);

  const config::topics_file& file() const { return *file_; }
  const std::vector<topic_rule>& rules() const { return rules_; }

  // The roles of the topics file that `who` has, in file order: an anonymous client gets only
  // [anonymous].role; any other gets the declared roles its credential lists (identity::roles) and
  // those whose `from` conditions hold.
  std::vector<std::string> roles_of(const identity& who) const;

  // Construct through compile(): rule pointers must not move.
  struct private_tag {};
  topic_policy(private_tag, std::shared_ptr<const config::topics_file> file);

private:
  friend class topic_access;
  std::shared_ptr<const config::topics_file> file_;
  std::vector<topic_rule> rules_;           // stable: decisions point into it
  std::vector<std::size_t> publish_rule_;   // topics[i].publish[0] is rules_[publish_rule_[i]]
  std::vector<std::size_t> subscribe_rule_; // likewise
  std::vector<std::size_t> deny_rule_;      // denies[i] is rules_[deny_rule_[i]]
};

// A grant or deny with the identity's values substituted, ready to match.
struct compiled_pattern {
  struct level {
    enum class kind : std::uint8_t { literal, any_level, rest };
    kind type = kind::literal;
    std::vector<std::string> values; // literal: the accepted values (several for a multi-valued
                                     // identity source such as cert.ou)
  };
  std::vector<level> levels;
  const topic_rule* rule = nullptr;
  std::uint8_t max_qos = 2;
  bool retain = false;

  bool matches(std::string_view topic) const; // a valid topic name
};

// A grant that did not apply to this identity, and why (for `firehook topics explain`).
struct skipped_grant {
  const topic_rule* rule = nullptr;
  std::string reason; // "attr.room is missing", "cert.cn \"a/b\" contains '/'"
};

class topic_access {
public:
  // No rights at all (before CONNECT completes).
  topic_access() = default;
  // `policy` must not be null. `client_id` is the session's final client identifier (the
  // {client_id} placeholder). Costs about a microsecond per dozen grants: once per CONNECT or reload.
  topic_access(std::shared_ptr<const topic_policy> policy, const identity& who, std::string_view client_id);

  // A PUBLISH of `topic` (a valid topic name, not an alias) at `qos` with the retain flag `retain`.
  // Deny entries first, then the grants in file order: the first that matches and whose max_qos and
  // retain admit the message allows it.
  topic_decision may_publish(std::string_view topic, std::uint8_t qos, bool retain) const;

  // A SUBSCRIBE filter (a "$share/group/" prefix is checked as the filter after it). Granted only if
  // every topic the filter could match is covered by subscribe grants or lies in a denied area (those
  // are withheld); refused as `denied` when the whole filter lies in denied areas. Not narrowed: a
  // filter larger than the grants is refused.
  topic_decision may_subscribe(std::string_view filter) const;

  // Whether a message on `topic` may be delivered to this client: not denied, and matched by a
  // subscribe grant. One call per delivery.
  topic_decision may_receive(std::string_view topic) const;

  const std::vector<std::string>& roles() const { return roles_; }
  const std::vector<skipped_grant>& skipped() const { return skipped_; }
  const topic_policy* policy() const { return policy_.get(); }
  const std::shared_ptr<const topic_policy>& shared_policy() const { return policy_; }

private:
  std::shared_ptr<const topic_policy> policy_;
  std::vector<std::string> roles_;
  std::vector<compiled_pattern> publish_, subscribe_;           // file order
  std::vector<compiled_pattern> deny_publish_, deny_subscribe_; // file order
  std::vector<skipped_grant> skipped_;
};

} // namespace firehook::security
