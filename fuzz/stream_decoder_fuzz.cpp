// libFuzzer target for mqtt::stream_decoder and the encoder.
//
// Input layout (make_corpus.cpp writes seeds in this layout):
//   byte 0       decoder mode: bits 0-1 choose the version the decoder starts with
//                (0: none, so the stream must open with CONNECT as a server sees it; 1: 3.1; 2: 3.1.1;
//                3: 5.0, as a client-side decoder that sent its own CONNECT sees it). The other bits are
//                ignored.
//   bytes 1-2    max packet size, big-endian; 0 means the spec's largest (268,435,460)
//   byte 3       n, the number of chunk sizes that follow (taken modulo 16)
//   n bytes      chunk sizes: the stream is fed in pieces of these sizes (0 counts as 1), cycling
//   the rest     the byte stream
//
// Checks, each a crash (abort) when it fails:
//   1. Split invariance: the stream fed whole and fed in pieces yields the same packets and ends in the
//      same state (the same error, or need_more with the same bytes buffered).
//   2. Round trip: every decoded packet, encoded for the connection's version, decodes again to an equal
//      packet using every byte of its encoding, and re-encoding that gives the same bytes.
//   3. encoded_size() is the size encode() writes; for a PUBLISH, encode_publish_header() plus the payload
//      is what encode() writes.
// ASan and UBSan (the Asan build type) catch the memory and undefined-behaviour errors on the way.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "mqtt/codec.hpp"
#include "mqtt/error.hpp"

namespace {

using namespace firehook::mqtt;

[[noreturn]] void fail(std::string_view what) {
  std::fprintf(stderr, "stream_decoder_fuzz: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

void check(bool ok, std::string_view what) {
  if (!ok) {
    fail(what);
  }
}

struct fuzz_input {
  std::optional<protocol_version> version;
  decode_limits limits;
  std::vector<std::size_t> chunk_sizes;
  std::span<const std::byte> stream;
};

std::optional<fuzz_input> parse_input(std::span<const std::byte> data) {
  constexpr std::size_t header_size = 4;
  if (data.size() < header_size) {
    return std::nullopt;
  }
  fuzz_input in;
  switch (static_cast<unsigned>(data[0]) & 0x03u) {
  case 1:
    in.version = protocol_version::v3_1;
    break;
  case 2:
    in.version = protocol_version::v3_1_1;
    break;
  case 3:
    in.version = protocol_version::v5;
    break;
  default:
    break;
  }
  const unsigned max_size = (static_cast<unsigned>(data[1]) << 8) | static_cast<unsigned>(data[2]);
  if (max_size != 0) {
    in.limits.max_packet_size = max_size;
  }
  const std::size_t chunks = static_cast<unsigned>(data[3]) % 16u;
  if (data.size() < header_size + chunks) {
    return std::nullopt;
  }
  for (std::size_t i = 0; i < chunks; ++i) {
    const std::size_t size = static_cast<unsigned>(data[header_size + i]);
    in.chunk_sizes.push_back(size == 0 ? 1 : size);
  }
  in.stream = data.subspan(header_size + chunks);
  return in;
}

// What a decoder yielded from a whole stream: its packets and the state it ended in.
struct outcome {
  std::vector<packet> packets;
  std::vector<std::optional<protocol_version>> versions; // the connection's version after each packet
  decode_status final_status = decode_status::need_more;
  std::error_code error;
  std::size_t buffered = 0;
};

stream_decoder make_decoder(const fuzz_input& in) {
  stream_decoder d(in.limits);
  if (in.version) {
    d.set_version(*in.version);
  }
  return d;
}

// Takes every packet the decoder has; returns false once it reported an error.
bool drain(stream_decoder& d, outcome& out) {
  for (;;) {
    decode_result r = d.next();
    switch (r.status) {
    case decode_status::complete:
      check(r.consumed >= 2, "a complete packet used fewer than 2 bytes");
      out.packets.push_back(std::move(r.pkt));
      out.versions.push_back(d.version());
      break;
    case decode_status::need_more:
      check(r.consumed == 0, "need_more used bytes");
      out.final_status = decode_status::need_more;
      out.buffered = d.buffered();
      return true;
    case decode_status::error:
      check(static_cast<bool>(r.error), "error status without an error code");
      check(r.error.category() == codec_category(), "error outside the codec category");
      // Every codec error must map to a reason code a server can send (0x80 and above).
      check(static_cast<unsigned>(to_reason_code(r.error)) >= 0x80u, "error maps to a success reason code");
      out.final_status = decode_status::error;
      out.error = r.error;
      out.buffered = d.buffered();
      // An error is final: the decoder keeps reporting it and drops what it is fed.
      check(d.next().error == r.error, "error state not sticky");
      return false;
    }
  }
}

outcome decode_whole(const fuzz_input& in) {
  stream_decoder d = make_decoder(in);
  outcome out;
  d.feed(in.stream);
  drain(d, out);
  return out;
}

outcome decode_in_pieces(const fuzz_input& in) {
  stream_decoder d = make_decoder(in);
  outcome out;
  std::size_t pos = 0;
  std::size_t next_chunk = 0;
  while (pos < in.stream.size()) {
    const std::size_t size = std::min(in.chunk_sizes[next_chunk], in.stream.size() - pos);
    next_chunk = (next_chunk + 1) % in.chunk_sizes.size();
    d.feed(in.stream.subspan(pos, size));
    pos += size;
    if (!drain(d, out)) {
      d.feed(in.stream.subspan(pos)); // must be dropped: the error stays as it was
      check(d.buffered() == 0, "decoder kept bytes after an error");
      break;
    }
  }
  if (in.stream.empty()) {
    drain(d, out);
  }
  return out;
}

void check_same(const outcome& whole, const outcome& pieces) {
  check(whole.packets.size() == pieces.packets.size(), "split changed the number of packets");
  for (std::size_t i = 0; i < whole.packets.size(); ++i) {
    check(whole.packets[i] == pieces.packets[i], "split changed a packet");
    check(whole.versions[i] == pieces.versions[i], "split changed the version");
  }
  check(whole.final_status == pieces.final_status, "split changed the final status");
  check(whole.error == pieces.error, "split changed the error");
  check(whole.buffered == pieces.buffered, "split changed the bytes left buffered");
}

void check_round_trip(const packet& p, protocol_version v) {
  std::vector<std::byte> first;
  const std::size_t written = encode(p, v, first);
  check(written == first.size(), "encode() returned a size other than what it appended");
  check(encoded_size(p, v) == first.size(), "encoded_size() differs from encode()");

  // CONNECT carries its own version and is only valid as the first packet of a connection.
  const bool is_connect = type_of(p) == packet_type::connect;
  const std::optional<protocol_version> context = is_connect ? std::nullopt : std::optional(v);
  const decode_result again = decode(first, context, decode_limits{});
  if (again.status != decode_status::complete) {
    std::fprintf(stderr, "re-decoding failed: status %d, error %s\n", static_cast<int>(again.status),
                 again.error.message().c_str());
    fail("the encoding of a decoded packet does not decode");
  }
  check(again.consumed == first.size(), "re-decoding did not use the whole encoding");
  check(again.pkt == p, "decode(encode(p)) != p");

  std::vector<std::byte> second;
  encode(again.pkt, v, second);
  check(second == first, "re-encoding is not byte-identical");

  if (const auto* pub = std::get_if<publish>(&p)) {
    std::vector<std::byte> header;
    encode_publish_header(*pub, pub->payload.size(), v, header);
    const auto* payload = reinterpret_cast<const std::byte*>(pub->payload.data());
    header.insert(header.end(), payload, payload + pub->payload.size());
    check(header == first, "encode_publish_header() + payload differs from encode()");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = parse_input({reinterpret_cast<const std::byte*>(data), size});
  if (!input) {
    return -1; // not a usable input: keep it out of the corpus
  }
  const outcome whole = decode_whole(*input);
  if (!input->chunk_sizes.empty()) {
    check_same(whole, decode_in_pieces(*input));
  }
  for (std::size_t i = 0; i < whole.packets.size(); ++i) {
    check(whole.versions[i].has_value(), "a packet decoded without a version");
    check_round_trip(whole.packets[i], *whole.versions[i]);
  }
  return 0;
}
