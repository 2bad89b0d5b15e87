// The SIGBUS/SIGSEGV source of media failures: a process-wide handler that recognises
// BUS_MCEERR_AR, BUS_MCEERR_AO, BUS_ADRERR and fence traps (a load or store on a fenced page)
// inside a daxfs mapping, turns the address into a device offset with dax::AddressDirectory,
// and queues an event (doing only async-signal-safe work); a monitor thread hands each event to
// the owner's callback. Signals elsewhere go to the handler that was installed before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "dax/mapping_table.h"
#include "daxfs/status.h"

namespace daxfs::failure {

struct SignalEvent {
  int signo = 0;          // SIGBUS or SIGSEGV
  int code = 0;           // si_code (BUS_MCEERR_AR, BUS_MCEERR_AO, BUS_ADRERR, SEGV_ACCERR...)
  uintptr_t address = 0;  // si_addr
  int address_lsb = 12;   // log2 of the failed granule (si_addr_lsb; 12 when not given)
  bool fence_trap = false;       // the page was already fenced: a consumed access of lost data
  bool action_required = false;  // BUS_MCEERR_AR, BUS_ADRERR or a fence trap
  dax::AddressInfo info;         // what the address is
  // Events lost to a full queue (kSignalQueueSize pending) since the previous delivered event;
  // they were caught after the events still queued. DroppedSignalEvents() keeps the total.
  uint64_t dropped = 0;
};

// Events the handler can hold before the monitor thread takes them; more are counted, not kept.
inline constexpr size_t kSignalQueueSize = 1024;

// Installs the handler and starts the monitor thread, which calls `on_event` for every event in
// the order caught. One owner at a time: EBUSY if installed already.
Status InstallSignalHandler(std::function<void(const SignalEvent&)> on_event);
// Restores the previous handlers and stops the monitor thread (after draining its queue).
void UninstallSignalHandler();
// Waits until every event caught before the call has been handed to `on_event`. OK at once when
// no handler is installed; EDEADLK when called from `on_event` (the monitor thread).
Status WaitForSignalEvents();
// Events dropped because the queue was full, since the process started.
uint64_t DroppedSignalEvents();
// Gives the calling thread an alternate signal stack (64 KiB, freed at thread exit) unless it has
// one already, so the handler runs even when the fault is a stack overflow. The installing
// thread, the monitor thread and every GuardMediaErrors caller get one.
void EnsureSignalStack();

}  // namespace daxfs::failure
