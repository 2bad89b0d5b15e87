// Direct (DAX) access and media-failure routing: a filesystem mounted together with its
// mapping table, its failure router and an owner-tracking design. Applications load and store
// file data straight in device memory through Map(); when device bytes go bad, NotifyFailure()
// (or the SIGBUS handler, or the bad-block list at mount) finds every owner of them, shared
// owners included, tells every mapping of each owner exactly where, fences those pages, records
// the loss and logs the event. docs/dax.md and docs/failure.md tell the whole story.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daxfs/filesystem.h"
#include "daxfs/media.h"
#include "daxfs/scrub.h"
#include "daxfs/status.h"

namespace daxfs {

enum class MapProt : uint8_t {
  kRead = 1,       // PROT_READ
  kReadWrite = 3,  // PROT_READ | PROT_WRITE: holes allocated and shared blocks unshared first
};

// What a mapping's handler is told: the part of *that* mapping that went bad.
struct MappingNotice {
  uint64_t mapping_id = 0;
  uint8_t* address = nullptr;  // inside the mapping, page-aligned
  uint64_t length = 0;         // bytes, whole pages
  Ino ino = 0;
  std::string path;            // one path of the file ("" if none)
  uint64_t file_offset = 0;    // of `address`
  uint64_t device_offset = 0;  // the bad device bytes behind `address`
  bool action_required = false;  // consumed (a load hit it), else detected in the background
  bool removal = false;          // the device is going away; the mapping is now dead
  bool consumed = false;         // this notice reports a load or store that trapped on a fence
  // The process that maps it (a client of `daxfs serve`, or this one), for the event log.
  int32_t pid = 0;
  uint32_t uid = 0;
  bool remote = false;  // a client process's mapping (a layout lease): `address` is the client's
};
// Called from the thread that routes the failure (never from a signal handler). It must not
// unmap its own mapping or call into the DaxFs it came from.
using MappingHandler = std::function<void(const MappingNotice&)>;

// One live mapping. Unmapped when destroyed (also after the DaxFs is gone: then it only releases
// its address range). Pages whose data went away (truncate, punch, removal) or went bad are
// replaced in place; docs/dax.md says what a load or store sees there.
class Mapping {
 public:
  virtual ~Mapping() = default;
  virtual uint8_t* data() const = 0;
  virtual uint64_t length() const = 0;
  virtual uint64_t id() const = 0;
  virtual Ino ino() const = 0;
  virtual uint64_t file_offset() const = 0;
  virtual bool writable() const = 0;
  // Makes stores to [offset, +length) of the mapping durable (flush + drain). EINVAL out of range.
  virtual Status Persist(uint64_t offset, uint64_t length) = 0;
  // Starts making them durable (flush); Drain() waits for every flush of the device.
  virtual Status Flush(uint64_t offset, uint64_t length) = 0;
  virtual Status Drain() = 0;
};

// A page of a mapping backed by failed device bytes, as a tracking design names it.
struct Victim {
  uint64_t mapping_id = 0;
  uint8_t* address = nullptr;  // page-aligned, inside the mapping
  uint64_t length = 0;         // whole pages; contiguous pieces of one mapping merged
  Ino ino = 0;
  uint64_t file_offset = 0;
  uint64_t device_offset = 0;
  bool operator==(const Victim&) const = default;
};

// What NotifyFailure found and did.
struct FailureReport {
  uint64_t offset = 0;  // the failed device range (clipped to the device)
  uint64_t length = 0;
  uint32_t flags = 0;   // FailureFlags
  MediaFailureRecord media;             // the filesystem's part: kinds, owners, retired, shutdown
  std::vector<MappingNotice> notices;   // one per (mapping, contiguous bad piece of it)
  std::vector<std::string> actions;     // what was done, one line each, in order
  bool shut_down = false;               // the filesystem is now read-only
  bool unmounted = false;               // device removal: the filesystem is gone
};

// The three owner-tracking designs of the 2020 argument (docs/failure.md), plus the baselines.
enum class Tracking : uint8_t {
  kFsRmap = 1,       // default: owners from the on-media rmap at failure time, then each
                     // owner file's mapping index; nothing per page
  kPageRmap = 2,     // the 2020 RFC: per device page, a tree of (mapping, page index)
  kExtentSpace = 3,  // one registry per mapped device extent that every mapper joins
  kFullScan = 4,     // fs-rmap without the rmap: owners by scanning every extent map
  kNone = 5,         // no tracking at all (benchmarks only: failures find no mappings)
};
const char* TrackingName(Tracking t);  // "fs-rmap", "page-rmap", "extent-space", "full-scan", "none"
Result<Tracking> ParseTracking(std::string_view name);

struct DaxOptions {
  MountOptions mount;
  Tracking tracking = Tracking::kFsRmap;
  // Designs kept up to date beside the chosen one, for differential tests and benchmarks
  // (FindVictims with any of them).
  std::vector<Tracking> shadow_tracking;
  // JSON-lines event log: one line per failure event. Empty: none.
  std::string event_log;
  // Install the process-wide SIGBUS/SIGSEGV handler that routes hardware and fence traps in
  // this filesystem's mappings (one DaxFs at a time may own it).
  bool handle_signals = false;
  // Read the device's bad-block list at mount and route every range not yet recorded.
  bool scan_bad_blocks = true;
};

class DaxFs {
 public:
  virtual ~DaxFs() = default;
  static Result<std::unique_ptr<DaxFs>> Open(const std::string& path, const DaxOptions& options = {});
  // Over an opened device that must outlive the DaxFs (tests; needs a device with an fd).
  static Result<std::unique_ptr<DaxFs>> Open(device::Device* device, const DaxOptions& options = {});

  virtual Filesystem& fs() = 0;

  // Maps [offset, +length) of regular file `ino` (offset block-aligned; the range inside the file
  // size rounded up to a block) as one contiguous address range. `handler` (may be empty) hears
  // about failures in it. EINVAL, ENOENT, EISDIR, EROFS (writable on a read-only fs), ENOSPC,
  // ENOMEM (address space or the 65,536-mapping limit).
  virtual Result<std::unique_ptr<Mapping>> Map(Ino ino, uint64_t offset, uint64_t length,
                                               MapProt prot, MappingHandler handler = {}) = 0;

  // notify_failure: routes a failure of device bytes [offset, +length) (FailureFlags) to every
  // owner and every mapping of each. kFailureRemove: every mapping of every file is notified and
  // killed, then the filesystem unmounts.
  virtual Result<FailureReport> NotifyFailure(uint64_t offset, uint64_t length, uint32_t flags) = 0;
  // Marks the range bad on the device (inject-error) and routes it (simulated).
  virtual Result<FailureReport> InjectError(uint64_t offset, uint64_t length) = 0;
  // Marks the range's 4 KiB blocks bad on the device only (a latent error, as the hardware would
  // leave one): nothing routes it, so a later read fails with EIO and a scrub finds it. Returns
  // the device range marked. EINVAL for an empty range or one past the device; EOPNOTSUPP on
  // real pmem (use ndctl inject-error).
  virtual Result<DeviceRange> InjectLatentError(uint64_t offset, uint64_t length) = 0;
  // What the bad-block scan at mount routed.
  virtual std::vector<FailureReport> mount_reports() const = 0;
  // `observer` hears every file range recorded lost from now on, whatever routed it
  // (NotifyFailure, InjectError, a SIGBUS, a scrub, a client's report through a layout host),
  // once per owner, after the routing finished, on the routing thread, with no engine lock held.
  // A front end with its own cache of file data drops the range there (the FUSE daemon
  // invalidates the kernel's pages). Empty: none. Set it before the filesystem is shared.
  using LossObserver = std::function<void(const FileRangeLoss&)>;
  virtual void SetLossObserver(LossObserver observer) = 0;
  // The online scrub (daxfs/scrub.h, docs/scrub.md): the filesystem stays usable while it runs;
  // every bad data range it finds is routed like NotifyFailure (simulated on emulated devices),
  // mappings included, and logged.
  virtual Result<ScrubReport> Scrub(const ScrubOptions& options) = 0;
  // Waits until every signal caught so far has been routed (handle_signals).
  virtual Status WaitForSignals() = 0;

  // The victims of device bytes [offset, +length) as `design` names them (it must be the chosen
  // design or a shadow). Sorted by (mapping_id, address).
  virtual Result<std::vector<Victim>> FindVictims(Tracking design, uint64_t offset,
                                                  uint64_t length) = 0;
  // Memory the design keeps for its tracking, in bytes.
  virtual uint64_t TrackingBytes(Tracking design) const = 0;
  virtual uint64_t live_mappings() const = 0;

  virtual Status Unmount() = 0;
};

// Runs `fn`; a load or store in it that traps on a fenced (bad) page of a daxfs mapping makes
// GuardMediaErrors return EIO naming the address instead of killing the process (this needs the
// signal handler: DaxOptions::handle_signals; without it the trap is a plain SIGSEGV). The trap is
// also routed as a consumed, action-required failure. `fn` must not own objects with
// destructors across the faulting access (the trap leaves it by siglongjmp).
Status GuardMediaErrors(const std::function<void()>& fn);

}  // namespace daxfs
