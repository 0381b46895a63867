#include "client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include "mqtt/error.hpp"

namespace firehook::bench {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// A packet larger than this ends the connection: the generator never asks for large messages, so
// one can only be a broken stream.
constexpr std::size_t max_packet = 16 * 1024 * 1024;

constexpr std::byte puback_byte{0x40};
constexpr std::byte pubrec_byte{0x50};
constexpr std::byte pubrel_byte{0x62}; // [MQTT-3.6.1-1]: flags 0010
constexpr std::byte pubcomp_byte{0x70};

} // namespace

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

asio::ip::tcp::endpoint loopback_endpoint(const std::string& host, std::uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  error_code ec;
  const auto results =
      resolver.resolve(host, std::to_string(port), asio::ip::tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
  }
  for (const auto& r : results) {
    if (!r.endpoint().address().is_loopback()) {
      throw std::runtime_error(host + " resolves to " + r.endpoint().address().to_string() +
                               ", which is not a loopback address; firehook-bench only talks to loopback");
    }
  }
  return results.begin()->endpoint();
}

std::unique_ptr<asio::ssl::context> client_tls_context(const std::string& cafile) {
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                   asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  // Every connection does a full handshake: the conn scenario measures handshakes, not resumptions.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_OFF);
  // Ten thousand idle TLS connections would otherwise hold two 17 KB record buffers each.
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  if (cafile.empty()) {
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  error_code ec;
  ctx->load_verify_file(cafile, ec);
  if (ec) {
    throw std::runtime_error("cannot load CA file " + cafile + ": " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

client::client(asio::io_context& io, const client_settings& settings, client_events& events)
    : settings_(settings), events_(events), socket_(io) {}

client::~client() = default;

template <typename F>
void client::with_stream(F&& f) {
  if (tls_) {
    f(*tls_);
  } else {
    f(socket_);
  }
}

void client::start() {
  started_ns_ = now_ns();
  socket_.async_connect(settings_.endpoint, [this](const error_code& ec) { on_tcp_connected(ec); });
}

void client::on_tcp_connected(const error_code& ec) {
  if (closed_) {
    return;
  }
  if (ec) {
    fail("connect: " + ec.message());
    return;
  }
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (settings_.tls == nullptr) {
    send_connect();
    return;
  }
  tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(std::move(socket_), *settings_.tls);
  if (settings_.verify) {
    // The certificate must name the address connected to (an IP SAN): the CA file alone would
    // accept any certificate it signed.
    const std::string address = settings_.endpoint.address().to_string();
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls_->native_handle()), address.c_str());
  }
  tls_->async_handshake(asio::ssl::stream_base::client, [this](const error_code& e) { on_handshake(e); });
}

void client::on_handshake(const error_code& ec) {
  if (closed_) {
    return;
  }
  if (ec) {
    fail("TLS handshake: " + ec.message());
    return;
  }
  if (settings_.connect_delay_us > 0) {
    connect_delay_ = std::make_unique<asio::steady_timer>(
        tls_->get_executor(), std::chrono::microseconds(settings_.connect_delay_us));
    connect_delay_->async_wait([this](const error_code& e) {
      if (!e && !closed_) {
        send_connect();
      }
    });
    return;
  }
  send_connect();
}

void client::send_connect() {
  mqtt::connect c;
  c.version = settings_.version;
  c.clean_start = settings_.session_expiry == 0;
  c.keep_alive = settings_.keep_alive;
  c.client_id = settings_.client_id;
  if (settings_.version == mqtt::protocol_version::v5) {
    if (settings_.session_expiry != 0) {
      c.props.session_expiry_interval = settings_.session_expiry;
    }
    // Let the broker send as many unacknowledged QoS 1/2 messages as it likes: the subscriber
    // answers at once, so a small window would only measure the round trip.
    c.props.receive_maximum = 65535;
  }
  mqtt::encode(c, settings_.version, pending_);
  if (settings_.full_decode) {
    decoder_.emplace(mqtt::decode_limits{static_cast<std::uint32_t>(max_packet)});
    decoder_->set_version(settings_.version);
  }
  read_buffer_.resize(settings_.read_buffer);
  flush();
  read();
}

void client::read() {
  if (reading_paused_) {
    return;
  }
  if (filled_ == read_buffer_.size()) {
    read_buffer_.resize(read_buffer_.size() * 2);
  }
  const auto buffer = asio::buffer(read_buffer_.data() + filled_, read_buffer_.size() - filled_);
  read_active_ = true;
  with_stream([this, buffer](auto& stream) {
    stream.async_read_some(buffer, [this](const error_code& ec, std::size_t n) { on_read(ec, n); });
  });
}

void client::pause_reading() {
  reading_paused_ = true;
}

void client::resume_reading() {
  reading_paused_ = false;
  // Before CONNECT has gone out there is no buffer yet; send_connect() starts the first read.
  if (!closed_ && !read_active_ && !read_buffer_.empty()) {
    read();
  }
}

void client::on_read(const error_code& ec, std::size_t n) {
  read_active_ = false;
  if (closed_) {
    return;
  }
  if (ec) {
    fail(ec == asio::error::eof ? std::string("closed by the broker") : "read: " + ec.message());
    return;
  }
  filled_ += n;
  handle_buffer(now_ns());
  if (closed_) {
    return;
  }
  events_.on_read_done(*this);
  flush();
  if (!closed_) {
    read();
  }
}

void client::handle_buffer(std::int64_t now) {
  if (decoder_) {
    decoder_->feed(std::span<const std::byte>(read_buffer_.data(), filled_));
    filled_ = 0;
    for (;;) {
      mqtt::decode_result r = decoder_->next();
      if (r.status == mqtt::decode_status::need_more) {
        return;
      }
      if (r.status == mqtt::decode_status::error) {
        fail("bad packet from the broker: " + r.error.message());
        return;
      }
      if (!handle_decoded(r.pkt, now)) {
        return;
      }
    }
  }
  std::size_t pos = 0;
  for (;;) {
    const std::span<const std::byte> rest(read_buffer_.data() + pos, filled_ - pos);
    frame f;
    const frame_status status = read_frame(rest, f);
    if (status == frame_status::malformed) {
      fail("bad remaining length from the broker");
      return;
    }
    if (status == frame_status::need_more) {
      if (f.packet_size > max_packet) {
        fail("packet of " + std::to_string(f.packet_size) + " bytes from the broker");
        return;
      }
      if (f.packet_size > read_buffer_.size()) {
        read_buffer_.resize(f.packet_size);
      }
      break;
    }
    if (!handle_packet(rest.first(f.packet_size), f, now)) {
      return;
    }
    pos += f.packet_size;
  }
  if (pos > 0) {
    std::memmove(read_buffer_.data(), read_buffer_.data() + pos, filled_ - pos);
    filled_ -= pos;
  }
}

bool client::handle_packet(std::span<const std::byte> packet, const frame& f, std::int64_t now) {
  const std::uint8_t type = f.type();
  if (type == 3) {
    publish_view p;
    if (!read_publish(packet, f, settings_.version == mqtt::protocol_version::v5, p)) {
      fail("malformed PUBLISH from the broker");
      return false;
    }
    return handle_incoming_publish(p, now);
  }
  if (type >= 4 && type <= 7) {
    ack_view a;
    if (!read_ack(packet, f, a)) {
      fail("malformed acknowledgement from the broker");
      return false;
    }
    return handle_ack(type, a);
  }
  mqtt::decode_result r = mqtt::decode(packet, settings_.version, mqtt::decode_limits{});
  if (r.status != mqtt::decode_status::complete) {
    fail("bad packet from the broker: " + r.error.message());
    return false;
  }
  return handle_decoded(r.pkt, now);
}

bool client::handle_decoded(mqtt::packet& p, std::int64_t now) {
  switch (mqtt::type_of(p)) {
  case mqtt::packet_type::connack: {
    const auto& ack = std::get<mqtt::connack>(p);
    if (ack.reason != mqtt::reason_code::success) {
      fail("CONNACK refused: " + std::string(mqtt::to_string(ack.reason)));
      return false;
    }
    if (ack.props.receive_maximum) {
      receive_maximum_ = *ack.props.receive_maximum;
    }
    connected_ = true;
    events_.on_connected(*this);
    return !closed_;
  }
  case mqtt::packet_type::publish: {
    const auto& pub = std::get<mqtt::publish>(p);
    publish_view v;
    v.qos = static_cast<std::uint8_t>(pub.qos);
    v.dup = pub.dup;
    v.retain = pub.retain;
    v.packet_id = pub.packet_id;
    v.topic = pub.topic;
    v.payload = std::as_bytes(std::span(pub.payload));
    return handle_incoming_publish(v, now);
  }
  case mqtt::packet_type::puback:
    return handle_ack(4, {std::get<mqtt::puback>(p).packet_id,
                          static_cast<std::uint8_t>(std::get<mqtt::puback>(p).reason)});
  case mqtt::packet_type::pubrec:
    return handle_ack(5, {std::get<mqtt::pubrec>(p).packet_id,
                          static_cast<std::uint8_t>(std::get<mqtt::pubrec>(p).reason)});
  case mqtt::packet_type::pubrel:
    return handle_ack(6, {std::get<mqtt::pubrel>(p).packet_id,
                          static_cast<std::uint8_t>(std::get<mqtt::pubrel>(p).reason)});
  case mqtt::packet_type::pubcomp:
    return handle_ack(7, {std::get<mqtt::pubcomp>(p).packet_id,
                          static_cast<std::uint8_t>(std::get<mqtt::pubcomp>(p).reason)});
  case mqtt::packet_type::suback:
    events_.on_suback(*this, std::get<mqtt::suback>(p));
    return !closed_;
  case mqtt::packet_type::pingresp:
    return true;
  case mqtt::packet_type::disconnect:
    fail("DISCONNECT from the broker: " + std::string(mqtt::to_string(std::get<mqtt::disconnect>(p).reason)));
    return false;
  default:
    fail("unexpected packet type " + std::to_string(static_cast<int>(mqtt::type_of(p))) + " from the broker");
    return false;
  }
}

bool client::handle_incoming_publish(const publish_view& p, std::int64_t now) {
  if (p.qos == 1) {
    const std::size_t at = pending_.size();
    pending_.resize(at + ack_size);
    append_ack(puback_byte, p.packet_id, &pending_[at]);
  } else if (p.qos == 2) {
    if (!qos2_pending_) {
      qos2_pending_ = std::make_unique<std::vector<bool>>(65536, false);
    }
    const std::size_t at = pending_.size();
    pending_.resize(at + ack_size);
    append_ack(pubrec_byte, p.packet_id, &pending_[at]);
    if ((*qos2_pending_)[p.packet_id]) {
      return true; // a resend of a message already delivered, before its PUBREL
    }
    (*qos2_pending_)[p.packet_id] = true;
  }
  events_.on_publish(*this, p, now);
  return !closed_;
}

bool client::handle_ack(std::uint8_t type, const ack_view& a) {
  switch (type) {
  case 4: // PUBACK
  case 7: // PUBCOMP
    events_.on_acked(*this, a.packet_id, a.reason);
    break;
  case 5: // PUBREC: an error reason code ends the flow (5.0 section 4.3.3); otherwise release
    if (a.reason >= 0x80) {
      events_.on_acked(*this, a.packet_id, a.reason);
    } else {
      const std::size_t at = pending_.size();
      pending_.resize(at + ack_size);
      append_ack(pubrel_byte, a.packet_id, &pending_[at]);
    }
    break;
  case 6: { // PUBREL
    const std::size_t at = pending_.size();
    pending_.resize(at + ack_size);
    append_ack(pubcomp_byte, a.packet_id, &pending_[at]);
    if (qos2_pending_) {
      (*qos2_pending_)[a.packet_id] = false;
    }
    break;
  }
  default:
    break;
  }
  return !closed_;
}

void client::flush() {
  if (writing_active_ || pending_.empty() || closed_) {
    return;
  }
  std::swap(pending_, writing_);
  writing_active_ = true;
  with_stream([this](auto& stream) {
    asio::async_write(stream, asio::buffer(writing_),
                      [this](const error_code& ec, std::size_t) { on_write(ec); });
  });
}

void client::on_write(const error_code& ec) {
  writing_active_ = false;
  if (closed_) {
    return;
  }
  if (ec) {
    fail("write: " + ec.message());
    return;
  }
  writing_.clear();
  flush();
  events_.on_written(*this);
}

void client::close(bool reset) {
  if (closed_) {
    return;
  }
  closed_ = true;
  if (connect_delay_) {
    connect_delay_->cancel();
  }
  auto& socket = tls_ ? tls_->next_layer() : socket_;
  error_code ignored;
  if (reset) {
    socket.set_option(asio::socket_base::linger(true, 0), ignored);
  }
  socket.close(ignored);
}

void client::fail(const std::string& why) {
  if (closed_) {
    return;
  }
  close(false);
  events_.on_closed(*this, why);
}

} // namespace firehook::bench
