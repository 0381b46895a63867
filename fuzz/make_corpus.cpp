// Writes the seed corpus of stream_decoder_fuzz into DIR/stream_decoder/ (see CMakeLists.txt for when to
// run it). Every file has the target's input layout (stream_decoder_fuzz.cpp): a 4-byte header (decoder
// mode, max packet size, number of chunk sizes), the chunk sizes, then a stream of encoded packets.
// The packets are the unit tests' samples (mqtt/test_packets.hpp), which carry every property their type
// allows, so the fuzzer starts from every packet type and property of every version.
//
// Files written, for each version:
//   <version>_<type>_<n>        one packet, decoded by a decoder already set to the version, fed whole
//   <version>_session           CONNECT then every other sample, as a server reads them, fed in pieces
//   <version>_too_large         a PUBLISH over a small maximum packet size
// and a few hand-written malformed streams (malformed_*).

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mqtt/codec.hpp"
#include "mqtt/test_packets.hpp"

namespace {

using namespace firehook::mqtt;
namespace fs = std::filesystem;

// Byte 0 of the input: the version the decoder starts with (0: none, CONNECT first).
std::byte mode_of(std::optional<protocol_version> v) {
  if (!v) {
    return std::byte{0};
  }
  switch (*v) {
  case protocol_version::v3_1:
    return std::byte{1};
  case protocol_version::v3_1_1:
    return std::byte{2};
  case protocol_version::v5:
    return std::byte{3};
  }
  return std::byte{0};
}

std::vector<std::byte> header(std::optional<protocol_version> v, std::uint16_t max_packet_size,
                              const std::vector<std::uint8_t>& chunk_sizes) {
  std::vector<std::byte> out{mode_of(v), static_cast<std::byte>(max_packet_size >> 8),
                             static_cast<std::byte>(max_packet_size & 0xFFu),
                             static_cast<std::byte>(chunk_sizes.size())};
  for (const std::uint8_t s : chunk_sizes) {
    out.push_back(static_cast<std::byte>(s));
  }
  return out;
}

bool write_file(const fs::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR   (writes DIR/stream_decoder/)\n");
    return 2;
  }
  const fs::path dir = fs::path(argv[1]) / "stream_decoder";
  fs::create_directories(dir);
  int written = 0;
  bool ok = true;
  const auto emit = [&](const std::string& name, const std::vector<std::byte>& bytes) {
    ok = write_file(dir / name, bytes) && ok;
    ++written;
  };

  for (const protocol_version v : test::all_versions) {
    const std::string version(test::version_name(v));
    std::map<std::string, int> seen;
    std::vector<std::byte> session = header(std::nullopt, 0, {1, 7, 64, 3, 255});
    for (const packet& p : test::sample_packets(v)) {
      const std::vector<std::byte> wire = test::encoded(p, v);
      session.insert(session.end(), wire.begin(), wire.end());
      if (type_of(p) == packet_type::connect) {
        emit(version + "_connect", test::concat(header(std::nullopt, 0, {}), wire));
        continue;
      }
      const std::string type(test::type_name(type_of(p)));
      emit(version + "_" + type + "_" + std::to_string(seen[type]++), test::concat(header(v, 0, {}), wire));
    }
    emit(version + "_session", session);
    emit(version + "_too_large",
         test::concat(header(v, 64, {2}), test::encoded(test::sample_publish(v, qos::at_least_once), v)));
  }

  // A few broken streams, so that the error paths are in the corpus from the start.
  const auto v5 = protocol_version::v5;
  emit("malformed_remaining_length",
       test::concat(header(v5, 0, {}), test::bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})));
  emit("malformed_reserved_flags",
       test::concat(header(v5, 0, {}), test::bytes({0x62, 0x02, 0x00, 0x01, 0x61, 0x02, 0x00, 0x01})));
  emit("malformed_first_not_connect", test::concat(header(std::nullopt, 0, {}), test::bytes({0xC0, 0x00})));
  emit("malformed_duplicate_property",
       test::concat(header(v5, 0, {}), test::bytes({0x40, 0x0C, 0x00, 0x01, 0x10, 0x08, 0x1F, 0x00, 0x01,
                                                    0x61, 0x1F, 0x00, 0x01, 0x62})));
  emit("malformed_invalid_utf8",
       test::concat(header(v5, 0, {}), test::bytes({0x30, 0x05, 0x00, 0x02, 0xC0, 0xAF, 0x00})));
  emit("partial_publish",
       test::concat(header(v5, 0, {3}), test::bytes({0x30, 0x20, 0x00, 0x03, 'a', '/', 'b'})));

  std::printf("wrote %d files into %s\n", written, dir.c_str());
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
