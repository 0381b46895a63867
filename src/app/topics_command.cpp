#include "app/topics_command.hpp"

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include <CLI/CLI.hpp>

#include "config/config.hpp"
#include "config/topics.hpp"
#include "security/topic_policy.hpp"

namespace firehook::app {
namespace {

using config::identity_source;

// Inline code that survives any content: a backtick inside needs a longer fence (CommonMark 6.1).
std::string code(std::string_view text) {
  const std::string fence = text.find('`') == std::string_view::npos ? "`" : "``";
  const bool pad = text.starts_with('`') || text.ends_with('`');
  return fence + (pad ? " " : "") + std::string(text) + (pad ? " " : "") + fence;
}

// Free text on one Markdown line: line breaks folded, so a description cannot end a list item.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') {
    out.pop_back();
  }
  return out;
}

// How an identity source reads in prose: "its credential attribute `building`".
std::string describe(const identity_source& source) {
  using kind = identity_source::kind;
  switch (source.type) {
  case kind::client_id:
    return "its client id";
  case kind::username:
    return "its user name (password login)";
  case kind::cert_cn:
    return "its certificate CN";
  case kind::cert_ou:
    return "an OU of its certificate";
  case kind::cert_san_dns:
    return "a DNS SAN of its certificate";
  case kind::cert_san_uri:
    return "a URI SAN of its certificate";
  case kind::cert_san_email:
    return "an e-mail SAN of its certificate";
  case kind::claim:
    return "its token claim " + code(source.name);
  case kind::attribute:
    return "its credential attribute " + code(source.name);
  }
  return source.text();
}

std::string describe_grants(const std::vector<config::grant>& grants) {
  if (grants.empty()) {
    return "nobody";
  }
  std::string out;
  for (const auto& g : grants) {
    out += out.empty() ? "" : "; ";
    out += code(g.role);
    if (!g.where.empty()) {
      std::string where;
      for (const auto& b : g.where) {
        where += (where.empty() ? "" : ", ") + code("{" + b.variable + "}") + " = " + describe(b.source);
      }
      out += ", where " + where;
    }
  }
  return out;
}

std::string role_sources(const config::role_definition& role) {
  std::string out;
  for (const auto& c : role.from) {
    out += (out.empty() ? "" : " or ") + code(c.source.text() + " = " + c.value);
  }
  return out;
}

// --identity 'cn=t1,ou=thermostats,attr.building=b1' as an authenticated identity.
std::optional<security::identity> parse_identity(std::string_view text, std::string& client_id,
                                                 std::string& error) {
  security::identity who;
  std::optional<std::string> method;
  std::optional<std::string> username;
  bool has_certificate = false;
  bool has_claims = false;
  const auto certificate = [&]() -> security::certificate_info& {
    has_certificate = true;
    if (!who.certificate) {
      who.certificate.emplace();
    }
    return *who.certificate;
  };
  std::size_t start = 0;
  while (start <= text.size() && !text.empty()) {
    const std::size_t comma = text.find(',', start);
    const std::string_view item =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) {
      continue;
    }
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      error = "--identity: " + std::string(item) + " is not key=value";
      return std::nullopt;
    }
    std::string key(item.substr(0, equals));
    const std::string value(item.substr(equals + 1));
    if (key.starts_with("cert.")) {
      key = key.substr(5); // cert.cn is cn, as in the topics file
    }
    if (key == "cn") {
      certificate().common_name = value;
    } else if (key == "ou") {
      certificate().organizational_units.push_back(value);
    } else if (key == "san_dns") {
      certificate().san_dns.push_back(value);
    } else if (key == "san_uri") {
      certificate().san_uri.push_back(value);
    } else if (key == "san_email") {
      certificate().san_email.push_back(value);
    } else if (key.starts_with("claim.") && key.size() > 6) {
      who.claims[key.substr(6)] = value;
      has_claims = true;
    } else if (key.starts_with("attr.") && key.size() > 5) {
      who.attributes[key.substr(5)] = value;
    } else if (key == "role") {
      who.roles.push_back(value);
    } else if (key == "username") {
      username = value;
    } else if (key == "client_id") {
      client_id = value;
    } else if (key == "method") {
      if (value != "certificate" && value != "password" && value != "jwt" && value != "anonymous") {
        error = "--identity: method must be certificate, password, jwt or anonymous";
        return std::nullopt;
      }
      method = value;
    } else {
      error =
          "--identity: unknown key '" + key +
          "' (use cn, ou, san_dns, san_uri, san_email, claim.<name>, attr.<name>, role, username, client_id, "
          "method)";
      return std::nullopt;
    }
  }
  who.method = method                                        ? *method
               : has_certificate                             ? "certificate"
               : has_claims                                  ? "jwt"
               : username                                    ? "password"
               : who.roles.empty() && who.attributes.empty() ? "anonymous"
                                                             : "password";
  who.name = username                                                   ? *username
             : who.certificate && !who.certificate->common_name.empty() ? who.certificate->common_name
             : who.claims.contains("sub")                               ? who.claims.at("sub")
                                                                        : "";
  if (client_id.empty()) {
    client_id = who.name.empty() ? "explain" : who.name;
  }
  return who;
}

void print_diagnostics(const std::vector<config::diagnostic>& diagnostics, std::ostream& err) {
  for (const auto& d : diagnostics) {
    err << d.to_string() << '\n';
  }
}

} // namespace

std::string render_topics_markdown(const config::topics_file& file, const std::string& source_name) {
  std::ostringstream out;
  out << "# Topics\n\n"
      << "<!-- Generated by `firehook topics doc` from " << source_name
      << ". Edit that file, not this one. -->\n\n"
      << "Every topic a client may use is listed here; anything else is refused. A placeholder such as "
      << "`{building}` stands for one topic level; where a grant binds it to a value of the client's "
      << "identity, the client may use only its own value, otherwise any value.\n\n";

  out << "## Roles\n\n";
  for (const auto& role : file.roles) {
    out << "- **" << code(role.name) << "**";
    if (!role.description.empty()) {
      out << ": " << one_line(role.description);
    }
    out << ". Held by clients whose credential lists it";
    const std::string from = role_sources(role);
    if (!from.empty()) {
      out << ", and by those with " << from;
    }
    if (file.anonymous_role == role.name) {
      out << ", and by anonymous clients where a listener admits them";
    }
    out << ".";
    if (role.service) {
      out << " A back-end service.";
    }
    out << "\n";
  }
  if (!file.anonymous_role) {
    out << "\nAnonymous clients, where a listener admits them, get no role and may use no topic.\n";
  }

  out << "\n## Topics\n";
  for (const auto& topic : file.topics) {
    out << "\n### " << code(topic.pattern.text) << "\n\n";
    if (!topic.description.empty()) {
      out << one_line(topic.description) << "\n\n";
    }
    for (const auto& level : topic.pattern.levels) {
      if (level.type == config::pattern_level::kind::placeholder && level.source) {
        out << "- " << code("{" + level.text + "}")
            << " is bound for every client: " << describe(*level.source) << ".\n";
      }
    }
    const auto& p = topic.payload;
    if (!p.format.empty() || !p.units.empty()) {
      out << "- **Payload:** " << one_line(p.format.empty() ? "-" : p.format);
      if (!p.units.empty()) {
        out << ", in " << one_line(p.units);
      }
      out << "\n";
    }
    if (!p.example.empty()) {
      out << "- **Example:** " << code(one_line(p.example)) << "\n";
    }
    if (!p.schema.empty()) {
      out << "- **Schema:** " << one_line(p.schema) << "\n";
    }
    out << "- **Max QoS:** " << static_cast<unsigned>(topic.max_qos) << "; **retained messages:** "
        << (topic.retain ? "allowed" : "refused") << "\n"
        << "- **Publish:** " << describe_grants(topic.publish) << "\n"
        << "- **Subscribe:** " << describe_grants(topic.subscribe) << "\n";
  }

  if (!file.denies.empty()) {
    out << "\n## Denied\n\nThese win over every grant above: a publish there is refused, a subscription "
           "that lies wholly inside is refused, and one that overlaps receives everything else.\n\n";
    for (const auto& deny : file.denies) {
      std::string roles;
      for (const auto& r : deny.roles) {
        roles += (roles.empty() ? "" : ", ") + (r == "*" ? std::string("every client") : code(r));
      }
      const char* what = deny.publish && deny.subscribe ? "publishing or subscribing"
                         : deny.publish                 ? "publishing"
                                                        : "subscribing";
      out << "- " << code(deny.pattern.text) << ": no " << what << " for " << roles;
      if (!deny.description.empty()) {
        out << ". " << one_line(deny.description);
      }
      out << "\n";
    }
  }
  return out.str();
}

bool report_topics_file(const config::config& cfg, std::ostream& err) {
  const auto loaded = config::load_topics_file(cfg.topics);
  print_diagnostics(loaded.diagnostics, err);
  if (!loaded.ok()) {
    return false;
  }
  print_diagnostics(config::client_id_grant_warnings(cfg, *loaded.topics), err);
  return true;
}

topics_command::topics_command(CLI::App& app) {
  topics_ = app.add_subcommand("topics", "the topics file: render its document, explain a decision");
  topics_->require_subcommand(1);

  doc_ = topics_->add_subcommand("doc", "render the topics file as Markdown");
  auto* source = doc_->add_option_group("source", "where the topics file is named");
  source->add_option("-c,--config", config_path_, "configuration file (TOML) naming the topics file");
  source->add_option("--topics", topics_path_, "the topics file itself");
  source->require_option(1);
  doc_->add_option("-o,--output", output_path_, "write the document to this file instead of stdout");

  explain_ = topics_->add_subcommand("explain",
                                     "say whether a client may publish or subscribe, and which rule decides "
                                     "(exit 0 allowed, 1 refused, 2 invalid input)");
  auto* explain_source = explain_->add_option_group("source", "where the topics file is named");
  explain_source->add_option("-c,--config", config_path_, "configuration file (TOML) naming the topics file");
  explain_source->add_option("--topics", topics_path_, "the topics file itself");
  explain_source->require_option(1);
  explain_
      ->add_option(
          "--identity", identity_,
          "the client, as key=value,...: cn, ou, san_dns, san_uri, san_email, claim.<name>, attr.<name>, "
          "role, username, client_id, method")
      ->required();
  auto* action = explain_->add_option_group("action", "what the client does");
  action->add_option("--publish", publish_, "a topic name");
  action->add_option("--subscribe", subscribe_, "a topic filter");
  action->require_option(1);
  explain_->add_option("--qos", qos_, "the PUBLISH QoS")->check(CLI::Range(0, 2));
  explain_->add_flag("--retain", retain_, "the PUBLISH carries the retain flag");
}

bool topics_command::parsed() const {
  return topics_->parsed();
}

int topics_command::run() const {
  std::filesystem::path path = topics_path_;
  // Which client id a certificate binds (docs/security.md): the configuration's, else the default.
  auto binding = config::certificate_auth_settings{}.client_id;
  if (path.empty()) {
    const auto cfg = config::load_file(config_path_);
    print_diagnostics(cfg.diagnostics, std::cerr);
    if (!cfg.ok()) {
      return 2;
    }
    if (cfg.cfg->topics.empty()) {
      std::cerr << config_path_ << ": names no topics file (topics = \"...\")\n";
      return 2;
    }
    path = cfg.cfg->topics;
    binding = cfg.cfg->auth.certificate.client_id;
  }
  const auto loaded = config::load_topics_file(path);
  print_diagnostics(loaded.diagnostics, std::cerr);
  if (!loaded.ok()) {
    return 2;
  }

  if (doc_->parsed()) {
    const std::string document = render_topics_markdown(*loaded.topics, path.filename().string());
    if (output_path_.empty()) {
      std::cout << document;
      return 0;
    }
    std::ofstream file(output_path_, std::ios::binary | std::ios::trunc);
    file << document;
    file.close();
    if (!file) {
      std::cerr << output_path_ << ": cannot write\n";
      return 2;
    }
    return 0;
  }

  std::string client_id;
  std::string error;
  auto who = parse_identity(identity_, client_id, error);
  if (!who) {
    std::cerr << error << '\n';
    return 2;
  }
  if (who->method == "certificate" && !who->name.empty() && binding != config::client_id_binding::any) {
    // As the certificate method binds it: must_match refuses another client id, assign imposes it.
    who->client_id = who->name;
    if (binding == config::client_id_binding::assign) {
      client_id = who->name;
    }
  }
  const auto policy = security::topic_policy::compile(loaded.topics);
  const security::topic_access access(policy, *who, client_id);

  std::string roles;
  for (const auto& r : access.roles()) {
    roles += (roles.empty() ? "" : ", ") + r;
  }
  std::cout << "identity: method " << who->method << ", client id " << client_id << "\n"
            << "roles: " << (roles.empty() ? "none" : roles) << "\n";
  for (const auto& skipped : access.skipped()) {
    std::cout << "not applied: " << skipped.rule->location() << " " << skipped.rule->describe() << ": "
              << skipped.reason << "\n";
  }

  security::topic_decision d;
  if (!publish_.empty()) {
    d = access.may_publish(publish_, static_cast<std::uint8_t>(qos_), retain_);
    std::cout << "publish " << publish_ << " (QoS " << qos_ << (retain_ ? ", retained" : "") << "): ";
  } else {
    d = access.may_subscribe(subscribe_);
    std::cout << "subscribe " << subscribe_ << ": ";
  }
  std::cout << (d.allowed() ? "allowed" : "refused") << "\n";
  if (d.rule != nullptr) {
    std::cout << "  by " << d.rule->location() << " " << d.rule->describe();
    if (!d.allowed() && d.verdict != security::topic_verdict::denied) {
      std::cout << ": " << security::to_string(d.verdict);
    }
    std::cout << "\n";
  } else if (!d.allowed()) {
    std::cout << "  no "
              << (publish_.empty() ? "subscribe grant of the client's roles covers every topic it matches"
                                   : "publish grant of the client's roles matches it")
              << " (deny by default)\n";
  }
  if (d.withheld) {
    std::cout << "  topics in a denied area are withheld from its deliveries\n";
  }
  return d.allowed() ? 0 : 1;
}

} // namespace firehook::app
