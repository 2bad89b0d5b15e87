// What a daemon serving other processes (src/serve, docs/protocol.md) needs from the engine:
// remote mappings as layout leases. A lease is a DAX mapping whose pages live in another
// process: the engine keeps it in the file's mapping index like a local mapping (so fs-rmap,
// page-rmap and extent-space find it), tells its sink every layout change before the change
// completes (a layout recall) and every failure of its pages (a notice), and the daemon forwards
// both to the client. LayoutHost bundles everything the daemon asks of the engine, so the daemon
// is written against this header alone (tests use a fake host).
//
// The engine implements it over a mounted DaxFs (OpenLayoutHost, src/engine/layout_host.cc, in
// daxfs_engine); tests/client/fake_host.h is a scripted model of it.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daxfs/dax.h"
#include "daxfs/filesystem.h"
#include "daxfs/media.h"
#include "daxfs/status.h"

namespace daxfs {

// How a stretch of a leased range is backed (the codes of the engine's own segment kinds and of
// the protocol's; never renumbered).
enum class LayoutKind : uint8_t {
  kData = 1,       // device bytes at device_offset
  kZero = 2,       // a hole or unwritten extent inside EOF: reads as zeros
  kLost = 3,       // recorded lost: must not be read (device_offset when known)
  kBeyondEof = 4,  // past EOF (or the file was removed): no data
};
inline constexpr uint64_t kNoDeviceOffset = ~0ULL;

struct LayoutSegment {
  uint64_t file_offset = 0;  // bytes, page-aligned
  uint64_t length = 0;       // bytes, whole pages
  LayoutKind kind = LayoutKind::kData;
  uint64_t device_offset = kNoDeviceOffset;
  bool operator==(const LayoutSegment&) const = default;
};
// In file order, contiguous, covering exactly the range it describes.
using Layout = std::vector<LayoutSegment>;

// The process a lease belongs to, from SO_PEERCRED (for the event log and notices).
struct LeaseOwner {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t session_id = 0;
};

// What a lease's sink is told about a failure: the bad part of *that* lease.
struct LeaseNotice {
  uint64_t lease_id = 0;
  uint64_t offset = 0;  // inside the lease (lease byte 0 = file byte file_offset()), page-aligned
  uint64_t length = 0;  // whole pages
  uint64_t file_offset = 0;  // of `offset`
  uint64_t device_offset = kNoDeviceOffset;
  bool action_required = false;
  bool removal = false;   // device removal / unmount: the lease is dead after this
  bool consumed = false;  // reports a trap the client itself reported (ReportFault)
};

// When a recall's acknowledgement is due (see LayoutSink).
using RecallClock = std::chrono::steady_clock;
using RecallDeadline = RecallClock::time_point;

// Implemented by the daemon, one per lease; passed to MapLayout and alive until the lease is
// destroyed.
//
// A layout change reaches remote mappings in two phases, so that one operation touching N
// leases (of one client or many) waits at most one recall timeout in all, never N of them:
//   1. LayoutChanged on the sink of every lease the change touches: each sends its recall and
//      returns at once, with the time by which its client must have acknowledged it;
//   2. Settle on each of those sinks with ONE shared deadline (the latest phase 1 returned):
//      each returns when its client acknowledged, or at that deadline with the client cut off.
// Both phases run under the filesystem lock, from the operation that changes the extents, before
// any block a lease stopped using can be reused (the point of the local
// MappingObserver::LayoutChanged): phase 1 for every change of the operation, then phase 2 once.
// RecallLayouts below is exactly that sequence.
class LayoutSink {
 public:
  virtual ~LayoutSink() = default;
  // Phase 1: the layout of [file_offset, +length) of the leased range changed to `layout`
  // (exactly that range, already clipped to the lease). Queues the recall for the client and
  // returns without waiting for the client (never blocks on the socket); returns the recall's
  // deadline (now + the daemon's recall timeout), or now if nothing needs acknowledging (a dead
  // session, a lease whose client maps nothing yet: the map reply carries the new layout).
  // May be called before MapLayout returned (the lease is live in the index from inside
  // MapLayout). Must not call into the engine.
  virtual RecallDeadline LayoutChanged(uint64_t file_offset, uint64_t length,
                                       const Layout& layout) = 0;
  // Phase 2: returns once the client acknowledged every recall sent to this sink, or at
  // `deadline` at the latest; a client that has not acknowledged by then is cut off (its session
  // closed, its leases released soon after from another thread, the event logged) and, when the
  // daemon is configured to (ServerOptions::kill_on_cutoff), killed and reaped of its address
  // space before Settle returns. Calling it again, or with nothing outstanding, returns at once.
  // The engine may reuse the blocks the change freed as soon as every Settle returned: a
  // cut-off client that is hung (or hostile) rather than dead may still map them; only the kill
  // fences it (docs/protocol.md, "What a cut-off can and cannot do"). Must not call into the
  // engine.
  virtual void Settle(RecallDeadline deadline) = 0;
  // A failure of some of the lease's pages, on the routing thread (outside every engine lock),
  // after the engine recorded the loss (the lease also sees the pages become kLost through
  // the two phases above). Never blocks: the daemon queues the notice and returns.
  virtual void Failure(const LeaseNotice& notice) = 0;
  // Where the client mapped the lease (0 until it said so); the engine names client addresses
  // in the event log and in FailureReport notices with it. Thread-safe, cheap.
  virtual uint64_t ClientAddress() const = 0;
};

// One lease's part of a layout change.
struct LeaseChange {
  LayoutSink* sink = nullptr;
  uint64_t file_offset = 0;  // clipped to the lease
  uint64_t length = 0;
  Layout layout;  // exactly [file_offset, +length)
};

// Delivers one operation's layout changes to remote mappings: phase 1 for all, then phase 2 for
// all with one shared deadline. A sink may appear more than once (a lease touched by several
// ranges of the operation). Under the filesystem lock.
inline void RecallLayouts(const std::vector<LeaseChange>& changes) {
  RecallDeadline deadline = RecallClock::now();
  for (const LeaseChange& c : changes) {
    deadline = std::max(deadline, c.sink->LayoutChanged(c.file_offset, c.length, c.layout));
  }
  for (const LeaseChange& c : changes) c.sink->Settle(deadline);
}

// A live remote mapping. Destroying it releases it: it leaves the mapping index and every
// tracker; if a sink call for it is in flight on another thread, the destructor waits for it to
// return (a Settle returns promptly once the daemon has cut the session off, which it always
// does before releasing a session's leases); after the destructor returns the sink is never
// called again. The daemon destroys leases from a session's worker thread, never from the
// thread that reads the client's acknowledgements.
class LayoutLease {
 public:
  virtual ~LayoutLease() = default;
  virtual uint64_t id() const = 0;  // unique among the host's live leases
  virtual Ino ino() const = 0;
  virtual uint64_t file_offset() const = 0;  // block-aligned
  virtual uint64_t length() const = 0;       // whole pages
  virtual bool writable() const = 0;
  // The layout when the lease was made ([file_offset, +length)); later changes arrive through
  // the sink (possibly before MapLayout returned: apply them after this).
  virtual const Layout& initial_layout() const = 0;
  // The client trapped at lease byte `offset`: `fence_trap` for a load or store on a fenced
  // page (routed as a consumed, action-required event on lost data and logged with the owner),
  // else a hardware report (si_code BUS_MCEERR_AR, BUS_MCEERR_AO or BUS_ADRERR) of
  // 2^address_lsb bytes, routed as a failure of the device bytes behind it (AO: not action
  // required). EINVAL if `offset` is outside the lease. Called from the session's worker thread
  // (never its reader), so it may take the filesystem lock and recall leases of the same
  // client: their acknowledgements still get through.
  virtual Status ReportFault(uint64_t offset, int si_code, int address_lsb, bool fence_trap) = 0;
};

// The device as the daemon hands it out.
struct HostDevice {
  std::string path;  // the device file (its owner, group and mode decide who may map)
  uint64_t size = 0;
  uint32_t block_size = 4096;
  bool pmem = false;  // real persistent memory (cache-flush durability)
  uint32_t uid = 0;   // of the device file
  uint32_t gid = 0;
  uint32_t mode = 0;  // permission bits of the device file
};

// Counters for daxfs status.
struct HostStatus {
  bool read_only = false;
  uint64_t live_leases = 0;
  uint64_t live_local_mappings = 0;
};

// Everything the daemon asks of the engine. Thread-safe: the daemon calls it from one thread
// per client. No permission checks happen here: the daemon checks the peer's credentials.
class LayoutHost {
 public:
  virtual ~LayoutHost() = default;
  virtual HostDevice device() const = 0;
  // A new file descriptor of the device for a client: read-write when `writable` (a dup of the
  // engine's), else opened read-only (so that mmap PROT_WRITE of it fails). The caller closes it.
  virtual Result<int> OpenDeviceFd(bool writable) = 0;

  // The namespace, without permission checks (the daemon walks paths itself, checking search
  // permission on every directory).
  virtual Result<Attr> GetAttr(Ino ino) = 0;
  virtual Result<Attr> Lookup(Ino dir, std::string_view name) = 0;
  virtual Result<std::string> ReadLink(Ino ino) = 0;
  virtual Result<std::vector<FileExtent>> Bmap(Ino ino) = 0;

  // DaxFs::Map for another process: the same checks and errors (offset block-aligned, range
  // inside the file size rounded up to a block, EISDIR, EINVAL for symlinks, EROFS for a
  // writable lease on a read-only filesystem, ENOSPC, ENOMEM at the engine's mapping limit);
  // a writable lease allocates holes and unshares first, and the file's blocks then cannot be
  // shared (ETXTBSY) while it lives, exactly as a local writable mapping. The lease is in the
  // file's mapping index before MapLayout returns; `sink` must outlive it.
  virtual Result<std::unique_ptr<LayoutLease>> MapLayout(Ino ino, uint64_t offset, uint64_t length,
                                                         MapProt prot, const LeaseOwner& owner,
                                                         LayoutSink* sink) = 0;

  // DaxFs::InjectError (its report's notices include every lease told, with client addresses).
  virtual Result<FailureReport> InjectError(uint64_t offset, uint64_t length) = 0;
  // Filesystem::MediaErrors.
  virtual Result<MediaErrorList> MediaErrors() = 0;
  virtual HostStatus GetStatus() = 0;
};

// The engine's LayoutHost over a mounted DaxFs (which must outlive it and every lease) whose
// device is the file `device_path` (its owner, group and mode decide who may map). daxfs_engine.
Result<std::unique_ptr<LayoutHost>> OpenLayoutHost(DaxFs& fs, const std::string& device_path);

}  // namespace daxfs
