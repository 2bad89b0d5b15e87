// Handing a SIGBUS or SIGSEGV that is not ours to the action installed before us: shared by the
// engine's handler (failure/signals) and the client library's (client/fault_handler).
// Async-signal-safe. Knows nothing of mappings or of who installed what.
#pragma once

#include <signal.h>

namespace daxfs::base {

// Resets `signo` to its default action and unblocks it (so that a re-executed fault or a raise
// meets the default action at once).
void RestoreDefaultAndUnblock(int signo);

// Passes the signal to `prev` (the action before ours): its handler is called; without one, an
// ignored signal that would not repeat stays ignored, otherwise the default action is restored and
// a signal that was sent, or an action-optional report, is raised again (a fault re-executes on
// return and meets the default action itself).
void ChainSignal(const struct sigaction& prev, int signo, siginfo_t* si, void* context);

}  // namespace daxfs::base
