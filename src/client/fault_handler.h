// The client library's async-signal-safe directory of its mappings (address -> mapping, page
// state, the daemon socket to report on) and its SIGBUS/SIGSEGV handler: a trap on a fenced page
// or a hardware media error inside a client mapping is reported to the daemon (ReportFault, sent
// from the handler itself), then leaves through GuardClientMediaErrors or kills the process as
// the kernel's action-required kill would. Faults elsewhere go to the previous handler. Knows
// nothing of the client's threads or requests.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daxfs/status.h"

namespace daxfs::client {

// Per-page state as the handler reads it.
enum PageState : uint8_t {
  kPageData = 0,    // device memory
  kPageZero = 1,    // a read-only zero page (a hole)
  kPageFenced = 2,  // inaccessible: lost, past EOF, fenced by a notice, or the daemon is gone
  kPageFencedReported = 3,  // fenced, and a trap on it already reported (one report per fencing)
};

inline constexpr size_t kMaxDirectorySlots = 16384;

// Registers a mapping of `length` bytes at `base` (all pages kPageFenced until set), whose
// faults are reported on `sock` in protocol `version`. ENOMEM when the directory is full. The
// returned slot's page array stays valid until Unregister.
Result<size_t> RegisterMapping(uint8_t* base, uint64_t length, uint64_t mapping_id, int sock,
                               uint16_t version);
// Sets the state of pages [first, first + count) of the slot.
void SetPages(size_t slot, uint64_t first, uint64_t count, PageState state);
// Brackets every change of the slot's pages (remap, fence): a fault the handler finds on a page
// that is accessible by now may have hit it before the change, so the access is retried rather
// than handed to the previous handler (which would kill the process for nothing).
void BeginChange(size_t slot);
void EndChange(size_t slot);
PageState GetPage(size_t slot, uint64_t page);
// Removes the slot; waits until no handler reads it.
void UnregisterMapping(size_t slot);

// Installs the handler once per process (later calls do nothing).
Status InstallFaultHandler();
bool FaultHandlerInstalled();

}  // namespace daxfs::client
