// Cost of the codec on the packets that dominate a broker's traffic: a PUBLISH with a 64-byte payload
// (3.1.1 and 5.0) decoded and encoded, a 5.0 CONNECT with properties decoded and encoded, and a stream
// of PUBLISH packets framed by stream_decoder as they arrive in TCP-segment-sized pieces.
// Prints bytes/s (wire bytes) and items/s (packets); a timing never fails a build (STYLE.md).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mqtt/codec.hpp"

namespace firehook::mqtt {
namespace {

constexpr std::size_t payload_size = 64;

protocol_version version_arg(const benchmark::State& state) {
  return static_cast<protocol_version>(state.range(0));
}

// A telemetry PUBLISH at QoS 1; in 5.0 with the properties a device typically sets.
publish sample_publish(protocol_version v, std::uint16_t packet_id = 4711) {
  publish p;
  p.qos = qos::at_least_once;
  p.topic = "fleet/building-7/room-42/temperature";
  p.packet_id = packet_id;
  p.payload = std::string(payload_size, 'x');
  if (v == protocol_version::v5) {
    p.props.payload_format_indicator = 1;
    p.props.message_expiry_interval = 3600;
    p.props.content_type = "application/json";
  }
  return p;
}

connect sample_connect() {
  connect c;
  c.version = protocol_version::v5;
  c.clean_start = false;
  c.keep_alive = 60;
  c.client_id = "device-00042";
  c.username = "device-00042";
  c.password = std::string(32, 's');
  c.props.session_expiry_interval = 86400;
  c.props.receive_maximum = 32;
  c.props.maximum_packet_size = 256 * 1024;
  c.props.topic_alias_maximum = 16;
  c.props.request_problem_information = 1;
  c.props.authentication_method = "SCRAM-SHA-256";
  c.props.authentication_data = std::string(48, 'a');
  c.props.user = {{"firmware", "2.4.1"}, {"model", "th-sensor"}};
  will w;
  w.topic = "fleet/building-7/room-42/status";
  w.payload = "offline";
  w.qos = qos::at_least_once;
  w.retain = true;
  w.props.will_delay_interval = 10;
  c.will_message = w;
  return c;
}

std::vector<std::byte> wire_of(const packet& p, protocol_version v) {
  std::vector<std::byte> out;
  encode(p, v, out);
  return out;
}

void set_counters(benchmark::State& state, std::size_t bytes_per_item, std::size_t items_per_iteration = 1) {
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(items_per_iteration));
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(bytes_per_item * items_per_iteration));
}

void decode_one(benchmark::State& state, const packet& p, protocol_version v,
                std::optional<protocol_version> context) {
  const std::vector<std::byte> wire = wire_of(p, v);
  for (auto _ : state) {
    decode_result r = decode(wire, context, decode_limits{});
    benchmark::DoNotOptimize(r);
    if (r.status != decode_status::complete) {
      state.SkipWithError("the sample did not decode");
      return;
    }
  }
  set_counters(state, wire.size());
}

void encode_one(benchmark::State& state, const packet& p, protocol_version v) {
  std::vector<std::byte> out;
  out.reserve(1024); // a connection's write buffer is reused, so its growth is not part of the cost
  for (auto _ : state) {
    out.clear();
    encode(p, v, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, out.size());
}

void bm_decode_publish(benchmark::State& state) {
  const protocol_version v = version_arg(state);
  decode_one(state, sample_publish(v), v, v);
}

void bm_encode_publish(benchmark::State& state) {
  const protocol_version v = version_arg(state);
  encode_one(state, sample_publish(v), v);
}

// The broker's delivery path: the header is encoded and the payload is sent from where it is.
void bm_encode_publish_header(benchmark::State& state) {
  const protocol_version v = version_arg(state);
  const publish p = sample_publish(v);
  std::vector<std::byte> out;
  out.reserve(1024);
  for (auto _ : state) {
    out.clear();
    encode_publish_header(p, p.payload.size(), v, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, out.size() + p.payload.size());
}

void bm_decode_connect_v5(benchmark::State& state) {
  decode_one(state, sample_connect(), protocol_version::v5, std::nullopt);
}

void bm_encode_connect_v5(benchmark::State& state) {
  encode_one(state, sample_connect(), protocol_version::v5);
}

// 1000 PUBLISH packets fed to a stream decoder in pieces of range(1) bytes (1460: one TCP segment of an
// Ethernet frame, so packets straddle pieces; 65536: a full read buffer), each piece drained at once.
void bm_stream_decode_publish(benchmark::State& state) {
  const protocol_version v = version_arg(state);
  const auto piece = static_cast<std::size_t>(state.range(1));
  constexpr std::size_t packets = 1000;
  std::vector<std::byte> stream;
  for (std::size_t i = 0; i < packets; ++i) {
    encode(sample_publish(v, static_cast<std::uint16_t>(i + 1)), v, stream);
  }
  for (auto _ : state) {
    stream_decoder d;
    d.set_version(v);
    std::size_t decoded = 0;
    for (std::size_t pos = 0; pos < stream.size(); pos += piece) {
      d.feed(std::span(stream).subspan(pos, std::min(piece, stream.size() - pos)));
      for (decode_result r = d.next(); r.status == decode_status::complete; r = d.next()) {
        benchmark::DoNotOptimize(r);
        ++decoded;
      }
    }
    if (decoded != packets) {
      state.SkipWithError("the stream did not decode");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(packets));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(stream.size()));
}

constexpr auto v3_1_1 = static_cast<std::int64_t>(protocol_version::v3_1_1);
constexpr auto v5 = static_cast<std::int64_t>(protocol_version::v5);

BENCHMARK(bm_decode_publish)->ArgName("version")->Arg(v3_1_1)->Arg(v5);
BENCHMARK(bm_encode_publish)->ArgName("version")->Arg(v3_1_1)->Arg(v5);
BENCHMARK(bm_encode_publish_header)->ArgName("version")->Arg(v3_1_1)->Arg(v5);
BENCHMARK(bm_decode_connect_v5);
BENCHMARK(bm_encode_connect_v5);
BENCHMARK(bm_stream_decode_publish)
    ->ArgNames({"version", "piece"})
    ->ArgsProduct({{v3_1_1, v5}, {1460, 65536}});

} // namespace
} // namespace firehook::mqtt
