// firehook-bench: a load generator for any MQTT broker on loopback. See options.hpp for what each
// flag means and bench/compare.py for how `make bench` uses it.

#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "options.hpp"

namespace {

using firehook::bench::options;
using firehook::bench::scenario;

void add_common(CLI::App& cmd, options& opt) {
  cmd.add_option("--host", opt.host, "broker address; loopback only")->capture_default_str();
  cmd.add_option("--port", opt.port, "broker port")->capture_default_str();
  cmd.add_option("--mqtt", opt.mqtt, "protocol: 4 (3.1.1) or 5 (5.0)")
      ->check(CLI::IsMember({4, 5}))
      ->capture_default_str();
  cmd.add_flag("--tls", opt.tls, "connect with TLS");
  cmd.add_option("--cafile", opt.cafile, "verify the broker's certificate against this CA")
      ->check(CLI::ExistingFile);
  cmd.add_flag("--no-verify", opt.no_verify, "with --tls and no --cafile: accept any certificate");
  cmd.add_option("--threads", opt.threads, "generator threads (default: one per CPU it may run on)");
  cmd.add_option("--broker-pid", opt.broker_pid, "report this process's CPU use and resident memory");
  cmd.add_option("--label", opt.label, "copied into the JSON line");
  cmd.add_flag("--json", opt.json, "print only the JSON line (no table on stderr)");
  cmd.add_flag("--full-decode", opt.full_decode, "read every packet with mqtt::stream_decoder");
  cmd.add_option("--connect-delay-us", opt.connect_delay_us,
                 "TLS: microseconds between handshake and CONNECT (default 0, as real clients do; a "
                 "workaround for brokers that lose a CONNECT sent right after the handshake)")
      ->capture_default_str();
}

void add_traffic(CLI::App& cmd, options& opt) {
  cmd.add_option("--qos", opt.qos, "QoS of publications and subscriptions")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
  cmd.add_option("--payload", opt.payload, "payload bytes (at least 16)")->capture_default_str();
  cmd.add_flag("--persistent", opt.persistent,
               "subscribers keep their sessions (clean session 0 / Session Expiry Interval 300 s)");
  cmd.add_option("--duration", opt.duration, "seconds of publishing")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  cmd.add_option("--count", opt.count, "messages to publish in all (0: until --duration)")
      ->capture_default_str();
  cmd.add_option("--rate", opt.rate, "open loop: messages per second, all publishers together")
      ->check(CLI::Range(0.0, 1e8));
  cmd.add_option("--window", opt.window,
                 "closed loop: most undelivered messages per publisher (default 1000)");
  cmd.add_option("--drain", opt.drain, "most seconds to wait for messages in flight")
      ->check(CLI::Range(0.0, 120.0))
      ->capture_default_str();
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "firehook-bench: MQTT load generator (loopback only). One JSON line on stdout, a table on stderr.\n"
      "Exit status: 0 ok, 1 an acknowledged QoS 1/2 message was lost (or a QoS 2 one duplicated), "
      "2 the run could not be done."};
  app.require_subcommand(1);
  options opt;

  auto* fanin = app.add_subcommand("fanin", "N publishers to one wildcard subscriber");
  add_common(*fanin, opt);
  add_traffic(*fanin, opt);
  fanin->add_option("--publishers", opt.publishers, "publishers")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();

  auto* fanout = app.add_subcommand("fanout", "one publisher to N subscribers");
  add_common(*fanout, opt);
  add_traffic(*fanout, opt);
  fanout->add_option("--subscribers", opt.subscribers, "subscribers")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();

  auto* pairs = app.add_subcommand("pairs", "N publisher/subscriber pairs on distinct topics");
  add_common(*pairs, opt);
  add_traffic(*pairs, opt);
  pairs->add_option("--pairs", opt.pairs, "pairs")->check(CLI::Range(1, 100000))->capture_default_str();
  pairs
      ->add_option("--stalled", opt.stalled,
                   "further pairs whose subscribers stop reading their sockets for a while; the "
                   "report's figures are of the --pairs pairs, the stalled pairs' come apart (stalled_*)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  pairs->add_option("--stall-after", opt.stall_after, "seconds of publishing before the stall")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  pairs->add_option("--stall-for", opt.stall_for, "seconds the stalled subscribers read nothing")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();

  auto* conn =
      app.add_subcommand("conn", "open C connections, report connections/s and memory per idle connection");
  add_common(*conn, opt);
  conn->add_option("--connections", opt.connections, "connections")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  conn->add_option("--window", opt.window, "handshakes in progress at once (default 64)");
  conn->add_option("--hold", opt.hold,
                   "seconds to hold the connections idle before reading the broker's memory")
      ->check(CLI::Range(0.0, 120.0))
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (opt.stalled > 0 && opt.stall_after + opt.stall_for >= opt.duration) {
    std::cerr << "firehook-bench: the stall (--stall-after + --stall-for) must end before --duration, so "
                 "that the stalled pairs publish again before the run ends\n";
    return 2;
  }
  if (opt.tls && opt.cafile.empty() && !opt.no_verify) {
    std::cerr << "firehook-bench: --tls needs --cafile FILE to verify the broker, or --no-verify\n";
    return 2;
  }
  try {
    if (fanin->parsed()) {
      opt.scenario = scenario::fanin;
    } else if (fanout->parsed()) {
      opt.scenario = scenario::fanout;
    } else if (pairs->parsed()) {
      opt.scenario = scenario::pairs;
    } else {
      opt.scenario = scenario::conn;
      return firehook::bench::run_conn(opt);
    }
    return firehook::bench::run_traffic(opt);
  } catch (const std::exception& e) {
    std::cerr << "firehook-bench: " << e.what() << '\n';
    return 2;
  }
}
