#include "broker/persistence.hpp"

#include <cstring>
#include <span>

#include "mqtt/codec.hpp"

namespace firehook::broker::persist {

namespace {

constexpr std::uint8_t format = 1;

class writer {
public:
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(std::uint16_t v) { raw(&v, sizeof v); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  void bytes(const std::vector<std::byte>& b) {
    u32(static_cast<std::uint32_t>(b.size()));
    out_.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  std::string take() { return std::move(out_); }

private:
  void raw(const void* p, std::size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

// Every read checks the bytes left; after a failed read `ok()` is false and reads return zeros.
class reader {
public:
  explicit reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }
  std::uint8_t u8() { return fixed<std::uint8_t>(); }
  std::uint16_t u16() { return fixed<std::uint16_t>(); }
  std::uint32_t u32() { return fixed<std::uint32_t>(); }
  std::int64_t i64() { return fixed<std::int64_t>(); }
  std::string str() {
    const std::uint32_t n = u32();
    if (!ok_ || n > in_.size()) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }

private:
  template <class T>
  T fixed() {
    T v{};
    if (!ok_ || in_.size() < sizeof v) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, in_.data(), sizeof v);
    in_.remove_prefix(sizeof v);
    return v;
  }
  std::string_view in_;
  bool ok_ = true;
};

std::int64_t wall_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The PUBLISH (5.0) that carries topic, payload, QoS, retain and the message's properties.
std::vector<std::byte> publish_bytes(const std::string& topic, const std::string& payload, mqtt::qos q,
                                     bool retain, const mqtt::properties& props) {
  mqtt::publish p;
  p.topic = topic;
  p.payload = payload;
  p.qos = q;
  p.retain = retain;
  p.packet_id = q == mqtt::qos::at_most_once ? 0 : 1;
  p.props.payload_format_indicator = props.payload_format_indicator;
  p.props.content_type = props.content_type;
  p.props.response_topic = props.response_topic;
  p.props.correlation_data = props.correlation_data;
  p.props.user = props.user;
  std::vector<std::byte> out;
  mqtt::encode(p, mqtt::protocol_version::v5, out);
  return out;
}

std::optional<mqtt::publish> read_publish(reader& r) {
  const std::string bytes = r.str();
  if (!r.ok()) {
    return std::nullopt;
  }
  auto d = mqtt::decode(std::as_bytes(std::span(bytes.data(), bytes.size())), mqtt::protocol_version::v5, {});
  auto* p = std::get_if<mqtt::publish>(&d.pkt);
  if (d.status != mqtt::decode_status::complete || p == nullptr) {
    return std::nullopt;
  }
  return std::move(*p);
}

// A message or a will from the PUBLISH that carried it.
template <class T>
T from_publish(mqtt::publish&& p) {
  T out;
  out.topic = std::move(p.topic);
  out.payload = std::move(p.payload);
  out.qos = p.qos;
  out.retain = p.retain;
  out.props = std::move(p.props);
  return out;
}

void write_message(writer& w, const mqtt::message& m, const instant& now) {
  w.i64(m.expires_at ? wall_ms(now.wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                              *m.expires_at - now.steady))
                     : -1);
  w.str(m.origin_client_id);
  w.bytes(publish_bytes(m.topic, m.payload, m.qos, m.retain, m.props));
}

std::optional<mqtt::message> read_message(reader& r, const instant& now) {
  const std::int64_t expires = r.i64();
  std::string origin = r.str();
  auto p = read_publish(r);
  if (!p) {
    return std::nullopt;
  }
  auto m = from_publish<mqtt::message>(std::move(*p));
  m.origin_client_id = std::move(origin);
  if (expires >= 0) {
    const auto left = std::chrono::milliseconds(expires - wall_ms(now.wall));
    if (left.count() <= 0) {
      return std::nullopt; // expired while the broker was down [MQTT-3.3.2-5]
    }
    m.expires_at = now.steady + left;
  }
  return m;
}

void write_map(writer& w, const std::map<std::string, std::string, std::less<>>& m) {
  w.u32(static_cast<std::uint32_t>(m.size()));
  for (const auto& [k, v] : m) {
    w.str(k);
    w.str(v);
  }
}

std::map<std::string, std::string, std::less<>> read_map(reader& r) {
  std::map<std::string, std::string, std::less<>> m;
  const std::uint32_t n = r.u32();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    std::string k = r.str();
    m.emplace(std::move(k), r.str());
  }
  return m;
}

} // namespace

std::string encode_message(const mqtt::message& m, const instant& now) {
  writer w;
  w.u8(format);
  write_message(w, m, now);
  return w.take();
}

std::optional<mqtt::message> decode_message(std::string_view blob, const instant& now) {
  reader r(blob);
  if (r.u8() != format) {
    return std::nullopt;
  }
  auto m = read_message(r, now);
  return m && r.done() ? m : std::nullopt;
}

namespace {

// The delivery record's second byte: its QoS, and what it is in flight as. Records written before
// the flags existed have them clear and read as before.
constexpr std::uint8_t qos_mask = 0x03;
constexpr std::uint8_t in_flight_flag = 0x04; // a packet identifier follows
constexpr std::uint8_t released_flag = 0x08;  // PUBREL sent: no message follows

std::string write_delivery(const session::delivery& d, std::optional<std::uint16_t> packet_id, bool released,
                           const instant& now) {
  writer w;
  w.u8(format);
  w.u8(static_cast<std::uint8_t>(static_cast<std::uint8_t>(d.qos) | (packet_id ? in_flight_flag : 0) |
                                 (released ? released_flag : 0)));
  if (packet_id) {
    w.u16(*packet_id);
  }
  w.u8(d.retain ? 1 : 0);
  w.u32(static_cast<std::uint32_t>(d.subscription_ids.size()));
  for (const std::uint32_t id : d.subscription_ids) {
    w.u32(id);
  }
  if (!released) {
    write_message(w, *d.message, now);
  }
  return w.take();
}

} // namespace

std::string encode_delivery(const session::delivery& d, const instant& now) {
  return write_delivery(d, std::nullopt, false, now);
}

std::string encode_in_flight(const session::delivery& d, std::uint16_t packet_id, bool released,
                             const instant& now) {
  return write_delivery(d, packet_id, released, now);
}

std::optional<stored_delivery> decode_delivery(std::string_view blob, const instant& now) {
  reader r(blob);
  if (r.u8() != format) {
    return std::nullopt;
  }
  stored_delivery out;
  session::delivery& d = out.what;
  const std::uint8_t flags = r.u8();
  const std::uint8_t q = flags & qos_mask;
  if ((flags & in_flight_flag) != 0) {
    out.packet_id = r.u16();
  }
  out.released = (flags & released_flag) != 0;
  d.retain = r.u8() != 0;
  const std::uint32_t ids = r.u32();
  for (std::uint32_t i = 0; i < ids && r.ok(); ++i) {
    d.subscription_ids.push_back(r.u32());
  }
  if (q < 1 || q > 2 || (flags & ~(qos_mask | in_flight_flag | released_flag)) != 0 ||
      (out.released && (!out.packet_id || q != 2)) || (out.packet_id && *out.packet_id == 0)) {
    return std::nullopt;
  }
  d.qos = static_cast<mqtt::qos>(q);
  if (!out.released) {
    auto m = read_message(r, now);
    if (!m) {
      return std::nullopt;
    }
    d.message = std::make_shared<const mqtt::message>(std::move(*m));
  }
  if (!r.done()) {
    return std::nullopt;
  }
  return out;
}

std::string encode_session(const session_record& s) {
  writer w;
  w.u8(format);
  w.str(s.owner.method);
  w.str(s.owner.name);
  w.u32(static_cast<std::uint32_t>(s.owner.roles.size()));
  for (const auto& role : s.owner.roles) {
    w.str(role);
  }
  write_map(w, s.owner.attributes);
  write_map(w, s.owner.claims);
  w.u8(s.owner.client_id ? 1 : 0);
  w.str(s.owner.client_id.value_or(""));
  w.u32(s.expiry_interval);
  w.u32(static_cast<std::uint32_t>(s.subscriptions.size()));
  for (const auto& [filter, sub] : s.subscriptions) {
    w.str(filter);
    w.u8(static_cast<std::uint8_t>(sub.options.max_qos));
    w.u8(sub.options.no_local ? 1 : 0);
    w.u8(sub.options.retain_as_published ? 1 : 0);
    w.u8(static_cast<std::uint8_t>(sub.options.retain_handling));
    w.u8(sub.identifier ? 1 : 0);
    w.u32(sub.identifier.value_or(0));
  }
  w.u32(static_cast<std::uint32_t>(s.awaiting_pubrel.size()));
  for (const std::uint16_t id : s.awaiting_pubrel) {
    w.u16(id);
  }
  w.u8(s.will ? 1 : 0);
  if (s.will) {
    w.u32(s.will_delay);
    w.bytes(publish_bytes(s.will->topic, s.will->payload, s.will->qos, s.will->retain, s.will->props));
  }
  return w.take();
}

std::optional<session_record> decode_session(std::string_view blob) {
  reader r(blob);
  if (r.u8() != format) {
    return std::nullopt;
  }
  session_record s;
  s.owner.method = r.str();
  s.owner.name = r.str();
  const std::uint32_t roles = r.u32();
  for (std::uint32_t i = 0; i < roles && r.ok(); ++i) {
    s.owner.roles.push_back(r.str());
  }
  s.owner.attributes = read_map(r);
  s.owner.claims = read_map(r);
  const bool entitled = r.u8() != 0;
  std::string entitled_id = r.str();
  if (entitled) {
    s.owner.client_id = std::move(entitled_id);
  }
  s.expiry_interval = r.u32();
  const std::uint32_t subs = r.u32();
  for (std::uint32_t i = 0; i < subs && r.ok(); ++i) {
    std::string filter = r.str();
    session::stored_subscription sub;
    const std::uint8_t q = r.u8();
    sub.options.no_local = r.u8() != 0;
    sub.options.retain_as_published = r.u8() != 0;
    const std::uint8_t rh = r.u8();
    const bool has_id = r.u8() != 0;
    const std::uint32_t id = r.u32();
    if (q > 2 || rh > 2) {
      return std::nullopt;
    }
    sub.options.max_qos = static_cast<mqtt::qos>(q);
    sub.options.retain_handling = static_cast<mqtt::retain_handling>(rh);
    if (has_id) {
      sub.identifier = id;
    }
    s.subscriptions.emplace(std::move(filter), sub);
  }
  const std::uint32_t awaiting = r.u32();
  for (std::uint32_t i = 0; i < awaiting && r.ok(); ++i) {
    s.awaiting_pubrel.push_back(r.u16());
  }
  if (r.u8() != 0) {
    s.will_delay = r.u32();
    auto p = read_publish(r);
    if (!p) {
      return std::nullopt;
    }
    s.will = from_publish<mqtt::will>(std::move(*p));
  }
  if (!r.done()) {
    return std::nullopt;
  }
  return s;
}

} // namespace firehook::broker::persist
