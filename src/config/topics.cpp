#include "config/topics.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include "config/toml_reader.hpp"

namespace firehook::config {
namespace {

using detail::diagnostics_sink;
using detail::quoted_value;
using detail::suggestion;
using detail::table_reader;
using detail::type_name;
using detail::valid_name;

source_position position_of(const toml::source_region& where) {
  return {where.begin.line, where.begin.column};
}

constexpr std::string_view source_list =
    "client_id, username, cert.cn, cert.ou, cert.san_dns, cert.san_uri, cert.san_email, claim.<name> or "
    "attr.<name>";

// Parses a pattern; the error message when it is not one. `placeholders` is false for deny
// patterns, which bind nothing.
std::optional<std::string> parse_pattern(std::string_view text, bool placeholders, topic_pattern& out) {
  if (text.empty()) {
    return "must not be empty";
  }
  if (text.find('\0') != std::string_view::npos) {
    return "must not contain a NUL character";
  }
  if (text.size() > 65'535) {
    return "is longer than the 65,535 bytes of an MQTT topic";
  }
  if (text.starts_with("$share/")) {
    return "names a shared subscription ($share/...): write the topic itself; shared subscriptions are "
           "checked against it";
  }
  out.text = std::string(text);
  out.levels.clear();
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = text.find('/', start);
    const bool last = slash == std::string_view::npos;
    const std::string_view level = text.substr(start, (last ? text.size() : slash) - start);
    pattern_level parsed;
    if (level.find_first_of("{}") != std::string_view::npos) {
      if (level.size() < 3 || level.front() != '{' || level.back() != '}' ||
          level.substr(1, level.size() - 2).find_first_of("{}+#") != std::string_view::npos) {
        return "level " + quoted_value(level) + ": a placeholder is a whole level, {name}";
      }
      const std::string_view name = level.substr(1, level.size() - 2);
      if (!placeholders) {
        return "level " + quoted_value(level) + ": a deny binds nothing; write '+' for any one level";
      }
      parsed.type = pattern_level::kind::placeholder;
      parsed.text = std::string(name);
      parsed.source = parse_identity_source(name);
      if (!parsed.source && (name.find('.') != std::string_view::npos || !valid_name(name))) {
        return "placeholder {" + std::string(name) +
               "}: no identity source provides it (a placeholder is "
               "a variable name bound with `where`, or one of " +
               std::string(source_list) + ")";
      }
      for (const auto& earlier : out.levels) {
        if (earlier.type == pattern_level::kind::placeholder && earlier.text == name) {
          return "placeholder {" + std::string(name) + "} appears twice";
        }
      }
    } else if (level.find_first_of("+#") != std::string_view::npos) {
      if (level.size() != 1) {
        return "level " + quoted_value(level) + ": '+' and '#' must be a whole level";
      }
      if (level == "#" && !last) {
        return "'#' must be the last level";
      }
      parsed.type = level == "#" ? pattern_level::kind::multi_wildcard : pattern_level::kind::single_wildcard;
      parsed.text = std::string(level);
    } else {
      parsed.text = std::string(level);
    }
    out.levels.push_back(std::move(parsed));
    if (last) {
      return std::nullopt;
    }
    start = slash + 1;
  }
}

class topics_reader {
public:
  topics_reader(diagnostics_sink& sink, topics_file& out) : sink_(sink), out_(out) {}

  void read(const toml::table& document) {
    table_reader root(sink_, document, "");
    if (const auto* roles = root.table("roles")) {
      read_roles(*roles);
    }
    if (const auto* anonymous = root.table("anonymous")) {
      read_anonymous(*anonymous);
    }
    if (const auto* topics = root.array("topic", "an array of tables ([[topic]])")) {
      for (std::size_t i = 0; i < topics->size(); ++i) {
        if (const auto* table = table_at(*topics, i, "topic")) {
          read_topic(*table, "topic[" + std::to_string(i) + "]");
        }
      }
    }
    if (const auto* denies = root.array("deny", "an array of tables ([[deny]])")) {
      for (std::size_t i = 0; i < denies->size(); ++i) {
        if (const auto* table = table_at(*denies, i, "deny")) {
          read_deny(*table, "deny[" + std::to_string(i) + "]");
        }
      }
    }
    root.finish();
    warn_unused_roles();
  }

private:
  const toml::table* table_at(const toml::array& list, std::size_t i, std::string_view key) {
    const toml::node& node = *list.get(i);
    if (!node.is_table()) {
      sink_.error(node.source(), std::string(key) + "[" + std::to_string(i) + "]",
                  "must be a table (got " + std::string(type_name(node.type())) + ")");
      return nullptr;
    }
    return node.as_table();
  }

  void read_roles(const toml::table& roles) {
    // toml++ keeps a table's keys sorted; roles are listed (in `explain`, in the document) in the
    // order the file declares them.
    std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order;
    for (const auto& [key, node] : roles) {
      in_file_order.emplace_back(&key, &node);
    }
    std::sort(in_file_order.begin(), in_file_order.end(), [](const auto& a, const auto& b) {
      const auto& x = a.first->source().begin;
      const auto& y = b.first->source().begin;
      return std::pair(x.line, x.column) < std::pair(y.line, y.column);
    });
    for (const auto& [key_pointer, node_pointer] : in_file_order) {
      const toml::key& key = *key_pointer;
      const toml::node& node = *node_pointer;
      const std::string path = "roles." + std::string(key.str());
      if (!valid_name(key.str())) {
        sink_.error(key.source(), path, "a role name is letters, digits, '_' or '-'");
        continue;
      }
      if (!node.is_table()) {
        sink_.error(node.source(), path, "must be a table (got " + std::string(type_name(node.type())) + ")");
        continue;
      }
      role_definition role;
      role.name = std::string(key.str());
      role.at = position_of(key.source());
      table_reader section(sink_, *node.as_table(), path);
      section.text("description", role.description);
      section.boolean("service", role.service);
      if (const toml::table* rates = section.table("rate_limits")) {
        // A burst of 0 would hold a client back for ever under a rate of the listener's.
        table_reader rate_section(sink_, *rates, section.key_path("rate_limits"));
        detail::read_rate_overrides(rate_section, role.rates, 1);
        rate_section.finish();
      }
      if (const auto* from = section.array("from", "an array of strings (\"cert.ou = thermostats\")")) {
        for (std::size_t i = 0; i < from->size(); ++i) {
          read_condition(*from->get(i), section.key_path("from") + "[" + std::to_string(i) + "]", role);
        }
      }
      section.finish();
      out_.roles.push_back(std::move(role));
      role_used_.push_back(false);
      role_at_.push_back(key.source());
    }
  }

  void read_condition(const toml::node& node, const std::string& path, role_definition& role) {
    const auto* text = node.as_string();
    if (text == nullptr) {
      sink_.error(node.source(), path, "must be a string such as \"cert.ou = thermostats\"");
      return;
    }
    const std::string_view all = text->get();
    const std::size_t equals = all.find('=');
    const auto trim = [](std::string_view s) {
      const std::size_t first = s.find_first_not_of(' ');
      const std::size_t last = s.find_last_not_of(' ');
      return first == std::string_view::npos ? std::string_view() : s.substr(first, last - first + 1);
    };
    if (equals == std::string_view::npos) {
      sink_.error(node.source(), path,
                  "must read \"<source> = <value>\", e.g. \"cert.ou = thermostats\" (got " +
                      quoted_value(all) + ")");
      return;
    }
    const std::string_view name = trim(all.substr(0, equals));
    const std::string_view value = trim(all.substr(equals + 1));
    const auto source = parse_identity_source(name);
    if (!source) {
      sink_.error(node.source(), path,
                  "no identity source provides " + quoted_value(name) + " (use one of " +
                      std::string(source_list) + ")");
      return;
    }
    if (source->type == identity_source::kind::client_id) {
      sink_.error(
          node.source(), path,
          "client_id is chosen by the client, so it cannot give a role; use something the client proves "
          "(a certificate field, a token claim, a credential attribute)");
      return;
    }
    if (value.empty() || value.find('\0') != std::string_view::npos) {
      sink_.error(node.source(), path, "needs a value after '=' (e.g. \"cert.ou = thermostats\")");
      return;
    }
    role.from.push_back(role_condition{*source, std::string(value), position_of(node.source())});
  }

  void read_anonymous(const toml::table& table) {
    table_reader section(sink_, table, "anonymous");
    if (const auto* role = section.string("role")) {
      if (check_role(*role, section.key_path("role"))) {
        out_.anonymous_role = role->get();
        out_.anonymous_at = position_of(role->source());
      }
    }
    section.finish();
  }

  // Marks the role used; false (reported) when it is not declared.
  bool check_role(const toml::value<std::string>& name, const std::string& path) {
    for (std::size_t i = 0; i < out_.roles.size(); ++i) {
      if (out_.roles[i].name == name.get()) {
        role_used_[i] = true;
        return true;
      }
    }
    std::vector<std::string_view> names;
    std::string declared;
    for (const auto& role : out_.roles) {
      names.push_back(role.name);
      declared += (declared.empty() ? "" : ", ") + role.name;
    }
    sink_.error(name.source(), path,
                "unknown role " + quoted_value(name.get()) + suggestion(name.get(), names) +
                    (declared.empty() ? "; no role is declared under [roles]" : "; declared: " + declared));
    return false;
  }

  bool read_pattern(table_reader& section, const toml::table& table, bool placeholders, topic_pattern& out) {
    const auto* pattern = section.string("pattern");
    if (pattern == nullptr) {
      if (section.find("pattern") == nullptr) {
        sink_.error(table.source(), section.key_path("pattern"), "is required");
      }
      return false;
    }
    if (const auto problem = parse_pattern(pattern->get(), placeholders, out)) {
      section.error(*pattern, "pattern", *problem);
      return false;
    }
    return true;
  }

  void read_topic(const toml::table& table, const std::string& path) {
    topic_definition topic;
    topic.at = position_of(table.source());
    table_reader section(sink_, table, path);
    const bool pattern_ok = read_pattern(section, table, true, topic.pattern);
    if (pattern_ok) {
      for (const auto& [earlier, line] : patterns_seen_) {
        if (earlier == topic.pattern.text) {
          section.error(*section.find("pattern"), "pattern",
                        "topic " + quoted_value(earlier) + " is already defined on line " +
                            std::to_string(line));
        }
      }
      patterns_seen_.emplace_back(topic.pattern.text, topic.at.line);
    }
    section.text("description", topic.description);
    if (const auto* payload = section.table("payload")) {
      table_reader notes(sink_, *payload, section.key_path("payload"));
      notes.text("format", topic.payload.format);
      notes.text("units", topic.payload.units);
      notes.text("example", topic.payload.example);
      notes.text("schema", topic.payload.schema);
      notes.finish();
    }
    if (const auto* qos = section.typed<toml::value<std::int64_t>>("max_qos", "an integer (0, 1 or 2)")) {
      if (qos->get() < 0 || qos->get() > 2) {
        section.error(*qos, "max_qos", "must be 0, 1 or 2 (got " + std::to_string(qos->get()) + ")");
      } else {
        topic.max_qos = static_cast<std::uint8_t>(qos->get());
      }
    }
    section.boolean("retain", topic.retain);
    read_grants(section, "publish", pattern_ok ? &topic.pattern : nullptr, topic.publish);
    read_grants(section, "subscribe", pattern_ok ? &topic.pattern : nullptr, topic.subscribe);
    section.finish();
    if (topic.description.empty() && pattern_ok) {
      sink_.warning(
          table.source(), path,
          "topic " + quoted_value(topic.pattern.text) +
              " has no description: say what it carries, for the people who read the generated document");
    }
    out_.topics.push_back(std::move(topic));
  }

  // `pattern` is null when it was invalid: the grants are still checked for their own mistakes.
  void read_grants(table_reader& section, std::string_view key, const topic_pattern* pattern,
                   std::vector<grant>& out) {
    const auto* list =
        section.array(key, "an array of roles (\"dashboard\") or { role = ..., where = {...} }");
    if (list == nullptr) {
      return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
      const toml::node& node = *list->get(i);
      const std::string path = section.key_path(key) + "[" + std::to_string(i) + "]";
      grant g;
      g.at = position_of(node.source());
      bool ok = true;
      if (const auto* name = node.as_string()) {
        ok = check_role(*name, path);
        g.role = name->get();
      } else if (const auto* table = node.as_table()) {
        table_reader entry(sink_, *table, path);
        const auto* role = entry.string("role");
        if (role == nullptr) {
          if (entry.find("role") == nullptr) {
            sink_.error(table->source(), entry.key_path("role"), "is required");
          }
          ok = false;
        } else {
          ok = check_role(*role, entry.key_path("role"));
          g.role = role->get();
        }
        if (const auto* where = entry.table("where")) {
          ok = read_where(*where, entry.key_path("where"), pattern, g) && ok;
        }
        entry.finish();
      } else {
        sink_.error(node.source(), path,
                    "must be a role name or a table { role = ..., where = {...} } (got " +
                        std::string(type_name(node.type())) + ")");
        ok = false;
      }
      if (ok && pattern != nullptr) {
        warn_if_broad(node, path, *pattern, g);
      }
      out.push_back(std::move(g));
    }
  }

  bool read_where(const toml::table& where, const std::string& path, const topic_pattern* pattern, grant& g) {
    bool ok = true;
    for (const auto& [key, node] : where) {
      const std::string variable(key.str());
      const std::string key_path = path + "." + variable;
      const auto* value = node.as_string();
      if (value == nullptr) {
        sink_.error(node.source(), key_path,
                    "must be an identity source such as \"attr.building\" (got " +
                        std::string(type_name(node.type())) + ")");
        ok = false;
        continue;
      }
      const auto source = parse_identity_source(value->get());
      if (!source) {
        sink_.error(node.source(), key_path,
                    "no identity source provides " + quoted_value(value->get()) + " (use one of " +
                        std::string(source_list) + ")");
        ok = false;
        continue;
      }
      if (pattern != nullptr) {
        const auto level =
            std::find_if(pattern->levels.begin(), pattern->levels.end(), [&](const pattern_level& l) {
              return l.type == pattern_level::kind::placeholder && l.text == variable;
            });
        if (level == pattern->levels.end()) {
          std::vector<std::string_view> names;
          for (const auto& l : pattern->levels) {
            if (l.type == pattern_level::kind::placeholder && !l.source) {
              names.push_back(l.text);
            }
          }
          sink_.error(key.source(), key_path,
                      "pattern " + quoted_value(pattern->text) + " has no placeholder {" + variable + "}" +
                          suggestion(variable, names));
          ok = false;
          continue;
        }
        if (level->source) {
          sink_.error(key.source(), key_path,
                      "{" + variable + "} is always bound to " + level->source->text() +
                          "; it takes no `where`");
          ok = false;
          continue;
        }
      }
      g.where.push_back(binding{variable, *source});
    }
    return ok;
  }

  // The seed's least-privilege advice: a device role granted the whole tree, or a wildcard over the
  // first level (usually the tenant or building), is nearly always a mistake.
  void warn_if_broad(const toml::node& node, const std::string& path, const topic_pattern& pattern,
                     const grant& g) {
    const auto* role = out_.find_role(g.role);
    if (role == nullptr || role->service || pattern.levels.empty()) {
      return;
    }
    const pattern_level& first = pattern.levels.front();
    const bool unbound = first.type == pattern_level::kind::placeholder && !first.source &&
                         std::none_of(g.where.begin(), g.where.end(),
                                      [&](const binding& b) { return b.variable == first.text; });
    std::string what;
    if (first.type == pattern_level::kind::multi_wildcard) {
      what = "the whole topic tree ('#')";
    } else if (first.type == pattern_level::kind::single_wildcard || unbound) {
      what = "a wildcard over the first level (" + quoted_value(pattern.text) + ")";
    } else {
      return;
    }
    sink_.warning(node.source(), path,
                  "grants role '" + g.role + "' " + what +
                      "; if the role is not a device but a back-end service, say so with `service = true` "
                      "under [roles." +
                      g.role + "]");
  }

  void read_deny(const toml::table& table, const std::string& path) {
    deny_rule deny;
    deny.at = position_of(table.source());
    table_reader section(sink_, table, path);
    read_pattern(section, table, false, deny.pattern);
    section.text("description", deny.description);
    if (const auto* roles = section.array("roles", "an array of role names, or [\"*\"] for every client")) {
      for (std::size_t i = 0; i < roles->size(); ++i) {
        const toml::node& node = *roles->get(i);
        const std::string element = section.key_path("roles") + "[" + std::to_string(i) + "]";
        const auto* name = node.as_string();
        if (name == nullptr) {
          sink_.error(node.source(), element,
                      "must be a role name (got " + std::string(type_name(node.type())) + ")");
        } else if (name->get() == "*") {
          if (roles->size() != 1) {
            sink_.error(node.source(), element, "\"*\" means every client and stands alone");
          }
          deny.roles.push_back("*");
        } else if (check_role(*name, element)) {
          deny.roles.push_back(name->get());
        }
      }
      if (roles->empty()) {
        section.error(*roles, "roles",
                      "is empty, so the deny applies to no one; write [\"*\"] for every client");
      }
    } else if (section.find("roles") == nullptr) {
      sink_.error(table.source(), section.key_path("roles"), "is required: the roles denied, or [\"*\"]");
    }
    if (const auto* only = section.string("only")) {
      if (only->get() == "publish") {
        deny.subscribe = false;
      } else if (only->get() == "subscribe") {
        deny.publish = false;
      } else {
        section.error(*only, "only",
                      "must be \"publish\" or \"subscribe\" (got " + quoted_value(only->get()) + ")");
      }
    }
    section.finish();
    out_.denies.push_back(std::move(deny));
  }

  void warn_unused_roles() {
    for (std::size_t i = 0; i < out_.roles.size(); ++i) {
      if (!role_used_[i]) {
        const auto& name = out_.roles[i].name;
        sink_.warning(role_at_[i], "roles." + name,
                      "role '" + name + "' is declared but nothing grants or denies it anything");
      }
    }
  }

  diagnostics_sink& sink_;
  topics_file& out_;
  std::vector<bool> role_used_;
  std::vector<toml::source_region> role_at_;
  std::vector<std::pair<std::string, unsigned>> patterns_seen_;
};

} // namespace

std::string identity_source::text() const {
  switch (type) {
  case kind::client_id:
    return "client_id";
  case kind::username:
    return "username";
  case kind::cert_cn:
    return "cert.cn";
  case kind::cert_ou:
    return "cert.ou";
  case kind::cert_san_dns:
    return "cert.san_dns";
  case kind::cert_san_uri:
    return "cert.san_uri";
  case kind::cert_san_email:
    return "cert.san_email";
  case kind::claim:
    return "claim." + name;
  case kind::attribute:
    return "attr." + name;
  }
  return "";
}

std::optional<identity_source> parse_identity_source(std::string_view text) {
  using kind = identity_source::kind;
  static constexpr std::array<std::pair<std::string_view, kind>, 7> fixed{{
      {"client_id", kind::client_id},
      {"username", kind::username},
      {"cert.cn", kind::cert_cn},
      {"cert.ou", kind::cert_ou},
      {"cert.san_dns", kind::cert_san_dns},
      {"cert.san_uri", kind::cert_san_uri},
      {"cert.san_email", kind::cert_san_email},
  }};
  for (const auto& [name, type] : fixed) {
    if (text == name) {
      return identity_source{type, ""};
    }
  }
  // Claim and attribute names are the keys the token or the credential store uses; any printable
  // name without spaces, braces or '/' keeps a pattern unambiguous.
  const auto named = [&](std::string_view prefix, kind type) -> std::optional<identity_source> {
    if (!text.starts_with(prefix)) {
      return std::nullopt;
    }
    const std::string_view name = text.substr(prefix.size());
    const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return c > ' ' && c != 0x7f && c != '{' && c != '}' && c != '/' && c != '+' && c != '#' && c != '=';
    });
    return ok ? std::optional(identity_source{type, std::string(name)}) : std::nullopt;
  };
  if (auto claim = named("claim.", kind::claim)) {
    return claim;
  }
  return named("attr.", kind::attribute);
}

const role_definition* topics_file::find_role(std::string_view name) const {
  const auto it =
      std::find_if(roles.begin(), roles.end(), [&](const role_definition& r) { return r.name == name; });
  return it == roles.end() ? nullptr : &*it;
}

bool topics_load_result::ok() const {
  return topics != nullptr &&
         std::none_of(diagnostics.begin(), diagnostics.end(), [](const diagnostic& d) { return !d.warning; });
}

topics_load_result load_topics_string(std::string_view toml_text, std::string_view file_name) {
  diagnostics_sink sink{std::string(file_name)};
  toml::table document;
  if (!detail::parse_document(sink, toml_text, file_name, document)) {
    return topics_load_result{.topics = nullptr, .diagnostics = sink.take()};
  }
  topics_file out;
  out.file = std::string(file_name);
  topics_reader reader(sink, out);
  reader.read(document);

  topics_load_result result;
  if (!sink.has_errors()) {
    result.topics = std::make_shared<const topics_file>(std::move(out));
  }
  result.diagnostics = sink.take();
  return result;
}

namespace {

bool binds_client_id(const topic_pattern& pattern, const grant& g) {
  const auto is_client_id = [](const std::optional<identity_source>& s) {
    return s && s->type == identity_source::kind::client_id;
  };
  const bool in_pattern = std::any_of(pattern.levels.begin(), pattern.levels.end(),
                                      [&](const pattern_level& l) { return is_client_id(l.source); });
  return in_pattern || std::any_of(g.where.begin(), g.where.end(),
                                   [&](const binding& b) { return is_client_id(b.source); });
}

} // namespace

std::vector<diagnostic> client_id_grant_warnings(const config& cfg, const topics_file& topics) {
  std::string unbound; // the listeners whose clients may choose their client id
  for (const auto& l : cfg.listeners) {
    const auto uses = [&](auth_method m) {
      return std::find(l.auth.begin(), l.auth.end(), m) != l.auth.end();
    };
    if (l.allow_anonymous || uses(auth_method::password) || uses(auth_method::jwt) ||
        (uses(auth_method::certificate) && cfg.auth.certificate.client_id == client_id_binding::any)) {
      unbound += (unbound.empty() ? "\"" : ", \"") + l.name + "\"";
    }
  }
  std::vector<diagnostic> out;
  if (unbound.empty()) {
    return out;
  }
  for (std::size_t i = 0; i < topics.topics.size(); ++i) {
    const topic_definition& topic = topics.topics[i];
    const auto check = [&](const std::vector<grant>& grants, std::string_view kind) {
      for (std::size_t j = 0; j < grants.size(); ++j) {
        if (binds_client_id(topic.pattern, grants[j])) {
          out.push_back(diagnostic{
              topics.file, grants[j].at.line, grants[j].at.column,
              "topic[" + std::to_string(i) + "]." + std::string(kind) + "[" + std::to_string(j) + "]",
              "binds {client_id}, which only a certificate with auth.certificate.client_id = \"must_match\" "
              "or "
              "\"assign\" fixes: clients of listener " +
                  unbound +
                  " choose their own client id (password, token, anonymous, or client_id = \"any\"), so this "
                  "grant never applies to them",
              true});
        }
      }
    };
    check(topic.publish, "publish");
    check(topic.subscribe, "subscribe");
  }
  return out;
}

namespace {

// Whether some topic matches both patterns from levels a[i..] and b[j..]. A placeholder matches
// any one level, like '+' (a grant's bindings only narrow it).
bool may_meet(const std::vector<pattern_level>& a, std::size_t i, const std::vector<pattern_level>& b,
              std::size_t j) {
  using kind = pattern_level::kind;
  if ((i < a.size() && a[i].type == kind::multi_wildcard) || (j < b.size() && b[j].type == kind::multi_wildcard)) {
    return true; // '#' matches whatever the other has left, nothing included ("a/#" matches "a")
  }
  if (i == a.size() || j == b.size()) {
    return i == a.size() && j == b.size();
  }
  const bool fixed = a[i].type == kind::literal && b[j].type == kind::literal;
  return (!fixed || a[i].text == b[j].text) && may_meet(a, i + 1, b, j + 1);
}

} // namespace

std::vector<diagnostic> idle_deny_warnings(const topics_file& topics) {
  std::vector<diagnostic> out;
  for (std::size_t i = 0; i < topics.denies.size(); ++i) {
    const deny_rule& deny = topics.denies[i];
    const auto reaches = [&](const std::vector<grant>& grants) {
      return std::any_of(grants.begin(), grants.end(), [&](const grant& g) {
        return deny.roles == std::vector<std::string>{"*"} ||
               std::find(deny.roles.begin(), deny.roles.end(), g.role) != deny.roles.end();
      });
    };
    const bool effective = std::any_of(topics.topics.begin(), topics.topics.end(), [&](const topic_definition& t) {
      return ((deny.publish && reaches(t.publish)) || (deny.subscribe && reaches(t.subscribe))) &&
             may_meet(deny.pattern.levels, 0, t.pattern.levels, 0);
    });
    if (!effective) {
      out.push_back(diagnostic{topics.file, deny.at.line, deny.at.column, "deny[" + std::to_string(i) + "]",
                               "the deny rule for \"" + deny.pattern.text +
                                   "\" has no effect: nothing grants its roles a topic it matches, so that is "
                                   "denied already (a typo in its pattern or roles?)",
                               true});
    }
  }
  return out;
}

topics_load_result load_topics_file(const std::filesystem::path& path) {
  std::string text;
  if (auto unreadable = detail::read_file(path, text)) {
    return topics_load_result{.topics = nullptr, .diagnostics = {std::move(*unreadable)}};
  }
  return load_topics_string(text, path.string());
}

} // namespace firehook::config
