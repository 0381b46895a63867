#pragma once
// Who may connect. This issue has no authentication methods yet, only the listener's
// allow_anonymous switch; the next one replaces the body with a chain of authenticators (each
// allows, denies or abstains; all abstaining denies: STYLE.md, fail closed).

#include "mqtt/packet.hpp"
#include "mqtt/reason_code.hpp"

namespace firehook::broker {

struct connection_info;

// Success, or the CONNACK reason code refusing `c` (5.0 codes; 3.1.1 gets to_v3_connack()):
//  - allow_anonymous: every client is accepted, credentials or not (none can be checked yet);
//  - otherwise a client with a user name or password gets 0x86 (3.1.1: 0x04) since nothing can
//    verify them, and one without gets 0x87 (3.1.1: 0x05).
mqtt::reason_code authenticate(const connection_info& info, const mqtt::connect& c);

} // namespace firehook::broker
