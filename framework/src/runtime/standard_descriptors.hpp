// File descriptors 0, 1 and 2 at start (plugin.h, "Standard descriptors").
#pragma once

namespace pg2kafka::runtime {

// Opens every one of descriptors 0, 1 and 2 that is closed on /dev/null (stdin write-only,
// stdout and stderr read-only), so that no socket or file opened later takes its number: with
// `pg2kafka run >&-`, the database connection would otherwise become descriptor 1 and receive
// what the stdout sink prints. Reads and writes through such a descriptor fail (EBADF). Call
// first thing in main, before any thread starts.
void keep_standard_descriptors_open();

}  // namespace pg2kafka::runtime
