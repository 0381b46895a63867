#include "admin/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace firehook::admin {

namespace {

void append_number(std::string& out, double v) {
  char buf[32];
  if (std::floor(v) == v && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  out += buf;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  // Text format 0.0.4 declares a family under the name its samples carry, _total included (only
  // OpenMetrics drops the suffix there): declared without it, the samples are read as untyped.
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void render_labelled(std::string& out, std::string_view name, std::string_view help, std::string_view first_label,
                     const std::map<std::tuple<std::string, std::string>, std::uint64_t>& values) {
  header(out, name, "counter", help);
  for (const auto& [k, n] : values) {
    out += name;
    out += '{';
    out += first_label;
    out += "=\"";
    append_label_value(out, std::get<0>(k));
    out += "\",reason_code=\"";
    append_label_value(out, std::get<1>(k));
    out += "\"} ";
    append_number(out, static_cast<double>(n));
    out += '\n';
  }
}

std::string reason_text(const events::event& e) {
  if (!e.reason_code) {
    return "none";
  }
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned>(*e.reason_code));
  return buf;
}

} // namespace

void append_label_value(std::string& out, std::string_view v) {
  for (const char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void event_counts::consume(const events::event& e) {
  if (e.type == events::event_type::auth_denied) {
    const std::lock_guard lock(mutex_);
    ++auth_failures_[{e.method.empty() ? "none" : e.method, reason_text(e)}];
  } else if (e.type == events::event_type::client_disconnected) {
    const std::lock_guard lock(mutex_);
    ++disconnects_[{e.initiator.empty() ? "unknown" : e.initiator, reason_text(e)}];
  } else if (e.type == events::event_type::alert) {
    const std::lock_guard lock(mutex_);
    ++alerts_[e.subject];
  }
}

void event_counts::render(std::string& out) const {
  const std::lock_guard lock(mutex_);
  render_labelled(out, "firehook_auth_failures_total", "CONNECTs refused, by authentication method and reason code",
                  "method", auth_failures_);
  render_labelled(out, "firehook_disconnects_total",
                  "connected clients' connections ended, by who ended them and the reason code", "initiator",
                  disconnects_);
  header(out, "firehook_alerts_total", "counter", "alerts raised, by detector");
  for (const auto& [detector, n] : alerts_) {
    out += "firehook_alerts_total{detector=\"";
    append_label_value(out, detector);
    out += "\"} ";
    append_number(out, static_cast<double>(n));
    out += '\n';
  }
}

void append_metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
                   double value) {
  header(out, name, type, help);
  out += name;
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void append_gauges(std::string& out, std::string_view name, std::string_view help, std::string_view label,
                   const std::vector<std::pair<std::string, double>>& samples) {
  header(out, name, "gauge", help);
  for (const auto& [value_of_label, v] : samples) {
    out += name;
    out += '{';
    out += label;
    out += "=\"";
    append_label_value(out, value_of_label);
    out += "\"} ";
    append_number(out, v);
    out += '\n';
  }
}

std::string prometheus_text(const events::statistics& stats, const events::hub& hub, const event_counts& counts,
                            const std::function<void(std::string&)>& more) {
  std::string out;
  out.reserve(8192);
  for (const auto& s : events::all_stats()) {
    append_metric(out, s.metric, s.kind == events::stat_kind::counter ? "counter" : "gauge", s.help,
                  static_cast<double>(stats.get(s.id)));
  }
  header(out, "firehook_events_total", "counter", "events emitted, by type (docs/events.md)");
  for (const auto t : events::all_event_types()) {
    out += "firehook_events_total{event=\"";
    out += events::to_string(t);
    out += "\"} ";
    append_number(out, static_cast<double>(hub.count_of(t)));
    out += '\n';
  }
  counts.render(out);
  if (more) {
    more(out);
  }
  return out;
}

} // namespace firehook::admin
