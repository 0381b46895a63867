// stream_decoder: frames packets out of bytes that arrive in pieces of any size.
//
// The buffer holds the bytes fed but not yet decoded. Whenever next() runs out of whole packets it moves
// the start of the partial packet to the front, so the buffer holds at most one partial packet (plus
// whatever was fed since). A partial packet is re-read from its fixed header on each call, which is cheap:
// decode() returns need_more as soon as the header shows the body is incomplete.

#include "mqtt/codec.hpp"
#include "mqtt/error.hpp"

namespace firehook::mqtt {

void stream_decoder::feed(std::span<const std::byte> bytes) {
  if (error_) {
    return; // the connection is over; keeping its bytes would only grow memory
  }
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

decode_result stream_decoder::next() {
  if (error_) {
    decode_result res;
    res.status = decode_status::error;
    res.error = error_;
    return res;
  }
  const std::span<const std::byte> pending(buffer_.data() + start_, buffer_.size() - start_);
  decode_result res = decode(pending, version_, limits_);
  if (res.status == decode_status::complete && version_ && type_of(res.pkt) == packet_type::connect) {
    // [MQTT-3.1.0-2]: a second CONNECT is a Protocol Error, which ends the connection (and frees the
    // buffer) like any other error.
    res = decode_result{};
    res.status = decode_status::error;
    res.error = codec_errc::protocol_error;
  }
  switch (res.status) {
  case decode_status::complete:
    if (!version_) {
      // decode() accepts only CONNECT as a first packet; its protocol level rules the connection.
      version_ = std::get<connect>(res.pkt).version;
    }
    start_ += res.consumed;
    if (start_ == buffer_.size()) {
      // Everything fed has been decoded: the buffer is given back, so that an idle connection
      // holds none (nor one that grew for a big packet). It costs one allocation per read that
      // ends on a packet boundary.
      buffer_.clear();
      buffer_.shrink_to_fit();
      start_ = 0;
    }
    break;
  case decode_status::need_more:
    if (start_ != 0) {
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
      start_ = 0;
    }
    break;
  case decode_status::error:
    error_ = res.error;
    buffer_.clear();
    buffer_.shrink_to_fit();
    start_ = 0;
    break;
  }
  return res;
}

} // namespace firehook::mqtt
