#pragma once
// The command line of firehook-bench, parsed once into this struct (see main.cpp for the flags and
// their help text). Every run is bounded: --duration and --count bound the traffic, --drain the wait
// for messages still in flight, and the host must be a loopback address.

#include <cstdint>
#include <string>

namespace firehook::bench {

enum class scenario : std::uint8_t { fanin, fanout, pairs, conn };

struct options {
  bench::scenario scenario = scenario::fanin;
  std::string host = "127.0.0.1";
  std::uint16_t port = 1883;
  int mqtt = 5; // 4 = MQTT 3.1.1, 5 = MQTT 5.0
  bool tls = false;
  std::string cafile;     // verifies the broker's certificate against this CA (or self-signed cert)
  bool no_verify = false; // --tls without --cafile must say so explicitly

  // traffic scenarios
  unsigned publishers = 8;    // fanin
  unsigned subscribers = 100; // fanout
  unsigned pairs = 100;       // pairs
  // pairs: further pairs, on their own topics, whose subscribers stop reading their sockets
  // stall_after seconds into publishing, for stall_for seconds. Their publishers publish at the
  // same rate (--rate) or with the same window as the others. The report's figures are those of
  // the --pairs pairs; the stalled pairs' are reported apart (stalled_*), and their messages
  // count for the exit status like any other.
  unsigned stalled = 0;
  double stall_after = 1;
  double stall_for = 10;
  unsigned qos = 0;
  // Subscribers keep their sessions (3.1.1 clean session 0, 5.0 Session Expiry Interval 300 s):
  // the broker then keeps their QoS 1/2 messages durably (Firehook: acknowledged once on disk).
  bool persistent = false;
  std::size_t payload = 64; // bytes, at least the 16-byte stamp
  double duration = 5;      // seconds of publishing
  std::uint64_t count = 0;  // messages to publish in total, 0 = as many as the duration allows
  double rate = 0;          // open loop: messages per second, all publishers together; 0 = closed loop
  std::uint64_t window = 0; // closed loop: undelivered messages per publisher (0 = 1000);
                            // conn: handshakes in flight (0 = 64)
  double drain = 10;        // seconds to wait for messages in flight once publishing stops
  bool full_decode = false; // read every packet with mqtt::stream_decoder
  std::uint32_t connect_delay_us = 0; // TLS: wait between handshake and CONNECT (see client_settings)

  // conn
  unsigned connections = 1000;
  double hold = 2; // seconds the connections are held idle before the broker's memory is read

  unsigned threads = 0; // 0 = one per CPU this process may run on
  int broker_pid = 0;   // 0 = unknown: no broker CPU or memory figures
  std::string label;    // copied into the results, for scripts
  bool json = false;    // print only the JSON line
};

// Each returns the process exit code: 0 success, 1 a delivery guarantee was broken (an acknowledged
// QoS 1/2 message lost, a QoS 2 message duplicated), 2 the run could not be done (connection refused,
// timeout).
int run_traffic(const options& opt);
int run_conn(const options& opt);

} // namespace firehook::bench
