// What a daemon serving other processes (src/serve, docs/protocol.md) needs from the engine:
// remote mappings as layout leases. A lease is a DAX mapping whose pages live in another
// process: the engine keeps it in the file's mapping index like a local mapping (so fs-rmap,
// page-rmap and extent-space find it), tells its sink every layout change before the change
// completes (a layout recall) and every failure of its pages (a notice), and the daemon forwards
// both to the client. LayoutHost bundles everything the daemon asks of the engine, so the daemon
// is written against this header alone (tests use a fake host).
//
// Status: the interface is part 1 of issue 10; OpenLayoutHost (the engine's implementation over
// a DaxFs) is part 2 and is not linked yet.
#pragma once

#include <sys/types.h>

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
  uint64_t offset = 0;          // inside the lease (lease byte 0 = file byte file_offset()), page-aligned
  uint64_t length = 0;          // whole pages
  uint64_t file_offset = 0;     // of `offset`
  uint64_t device_offset = kNoDeviceOffset;
  bool action_required = false;
  bool removal = false;         // device removal / unmount: the lease is dead after this
  bool consumed = false;        // reports a trap the client itself reported (ReportFault)
};

// Implemented by the daemon, one per lease; passed to MapLayout and alive until the lease is
// destroyed.
class LayoutSink {
 public:
  virtual ~LayoutSink() = default;
  // The layout of [file_offset, +length) of the leased range changed to `layout` (exactly that
  // range, already clipped to the lease). Called synchronously under the filesystem lock, from
  // the operation that changes the extents, before any block the lease stopped using can be
  // reused (the same point as the local MappingObserver::LayoutChanged), and with no engine lock
  // but the filesystem lock held. Returns once the client acknowledged the new layout or was cut
  // off (the daemon's recall timeout bounds the wait). May be called before MapLayout returned
  // (the lease is live in the index from inside MapLayout). Must not call into the engine.
  virtual void LayoutChanged(uint64_t file_offset, uint64_t length, const Layout& layout) = 0;
  // A failure of some of the lease's pages, on the routing thread (outside every engine lock),
  // after the engine recorded the loss (the lease also sees the pages become kLost through
  // LayoutChanged). Must not block for long: the daemon queues the notice and returns.
  virtual void Failure(const LeaseNotice& notice) = 0;
  // Where the client mapped the lease (0 until it said so); the engine names client addresses
  // in the event log and in FailureReport notices with it. Thread-safe, cheap.
  virtual uint64_t ClientAddress() const = 0;
};

// A live remote mapping. Destroying it releases it: it leaves the mapping index and every
// tracker; if a sink call for it is in flight on another thread, the destructor waits for it to
// return; after the destructor returns the sink is never called again.
class LayoutLease {
 public:
  virtual ~LayoutLease() = default;
  virtual uint64_t id() const = 0;           // unique among the host's live leases
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
  // required). EINVAL if `offset` is outside the lease.
  virtual Status ReportFault(uint64_t offset, int si_code, int address_lsb, bool fence_trap) = 0;
};

// The device as the daemon hands it out.
struct HostDevice {
  std::string path;         // the device file (its owner, group and mode decide who may map)
  uint64_t size = 0;
  uint32_t block_size = 4096;
  bool pmem = false;        // real persistent memory (cache-flush durability)
  uint32_t uid = 0;         // of the device file
  uint32_t gid = 0;
  uint32_t mode = 0;        // permission bits of the device file
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
  virtual Result<std::unique_ptr<LayoutLease>> MapLayout(Ino ino, uint64_t offset,
                                                         uint64_t length, MapProt prot,
                                                         const LeaseOwner& owner,
                                                         LayoutSink* sink) = 0;

  // DaxFs::InjectError (its report's notices include every lease told, with client addresses).
  virtual Result<FailureReport> InjectError(uint64_t offset, uint64_t length) = 0;
  // Filesystem::MediaErrors.
  virtual Result<MediaErrorList> MediaErrors() = 0;
  virtual HostStatus GetStatus() = 0;
};

// Part 2 (not linked yet): the engine's LayoutHost over a mounted DaxFs (which must outlive it)
// whose device is the file `device_path`.
Result<std::unique_ptr<LayoutHost>> OpenLayoutHost(DaxFs& fs, const std::string& device_path);

}  // namespace daxfs
