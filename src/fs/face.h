// The filesystem's face to the layers above it (src/dax, src/failure, src/tracking, src/engine,
// bench/): a mounted filesystem plus the few things those layers use beyond the public
// Filesystem API. The mirror of mapping_hooks.h (what the filesystem tells them); together the
// only fs headers those layers can see (the build enforces it: cmake/daxfs.cmake, FACE).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "daxfs/filesystem.h"
#include "daxfs/media.h"
#include "daxfs/scrub.h"
#include "fs/mapping_hooks.h"

namespace daxfs::device {
class Device;
}

namespace daxfs::fs {

// The one check of a failed device range, wherever a failure enters (DaxFs::NotifyFailure and
// DaxFs::InjectError through the failure router, Filesystem::RecordMediaFailure directly):
// EINVAL for an empty range, ENXIO for one starting at or past the end of the device; a range
// crossing the end is clipped to it. (Device::InjectPoison keeps its own stricter precondition:
// it is handed only ranges checked here.)
Result<DeviceRange> CheckFailedRange(const device::Device& device, uint64_t offset,
                                     uint64_t length);

// Hears the moment a failure is planned (RecordCheckedFailure): under the filesystem lock, once
// the owners of the failed data are known and before anything is recorded, so every mapping
// still maps the failed bytes. Not called when the plan cannot name the owners (a metadata hit,
// unreadable trees): then nothing is recorded lost. Must not call back into the filesystem.
class FailurePlanObserver {
 public:
  virtual ~FailurePlanObserver() = default;
  // `owners`: every file owner of the failed data pieces (MediaFailureRecord::owners).
  virtual void Planned(const DeviceRange& range, const std::vector<FileRangeLoss>& owners) = 0;
};

// Hears every metadata repair from a twin (metadup): a node whose copy was bad moved to a new
// slot, or a bad slot taken out of service. Called under the filesystem lock, right after the
// commit that made the repairs durable; must not call back into the filesystem.
class RepairObserver {
 public:
  virtual ~RepairObserver() = default;
  virtual void Repaired(const std::vector<MetadataRepair>& repairs) = 0;
};

// Routes a bad device range found by scrub through the failure chain (the DAX layer's router:
// owners recorded lost, mappings notified, free space retired); called without the lock.
using ScrubRoute = std::function<Result<MediaFailureRecord>(uint64_t offset, uint64_t length)>;

class FsFace : public Filesystem {
 public:
  // The device the filesystem is mounted on (its size is the one range every device offset is
  // checked against: RecordMediaFailure, Fsmap).
  virtual device::Device* device() const = 0;
  // Whether the filesystem keeps the reverse map (the fs-rmap tracking design needs it).
  virtual bool has_rmap() const = 0;

  // The DAX layer's observer of watched files (null: none). Set before the first mapping.
  virtual void SetMappingObserver(MappingObserver* observer) = 0;
  // The observer of metadata repairs (null: none); it hears the repairs done since mount at once.
  virtual void SetRepairObserver(RepairObserver* observer) = 0;
  // The online scrub (daxfs/scrub.h), in slices under the lock; every bad range it finds goes
  // through `route` (the failure chain).
  virtual Result<ScrubReport> Scrub(const ScrubOptions& options, const ScrubRoute& route) = 0;
  // One operation that makes [offset, +length) of regular file `ino` mappable and hands its
  // layout to `install` under the filesystem lock (so no extent changes in between; `install`
  // must not call back into the filesystem; its error is returned and, for a writable mapping,
  // the preparation stays done). offset block-aligned, length > 0, the range within the file
  // size rounded up to a block: else EINVAL. writable: first allocates holes (zeroed, written),
  // zeroes and converts unwritten extents and unshares shared blocks, so the layout is all kData
  // of private blocks (kLost stays kLost); EROFS on a read-only filesystem, ENOSPC. Read-only:
  // unwritten and holes are kZero.
  virtual Status PrepareMapping(Ino ino, uint64_t offset, uint64_t length, bool writable,
                                const std::function<Status(const MapLayout&)>& install) = 0;

  // RecordMediaFailure of a range CheckFailedRange returned, telling `observer` (may be null) the
  // plan: the owners are looked up once per failure, by the filesystem.
  virtual Result<MediaFailureRecord> RecordCheckedFailure(const DeviceRange& range, uint32_t flags,
                                                          FailurePlanObserver* observer) = 0;

  // The full-scan owner lookup: Fsmap answered without the reverse map, by scanning every extent
  // map and the chunk table (O(all extents)). What Fsmap itself does on a filesystem made without
  // the rmap; on any filesystem, the owner lookup of the `full-scan` tracking design (the
  // baseline that shows what the rmap buys) and of the benchmarks. Same contract as Fsmap.
  virtual Result<std::vector<FsmapRecord>> FsmapByFullScan(uint64_t start, uint64_t end,
                                                           const std::optional<FsmapKey>& after,
                                                           size_t max) = 0;
};

}  // namespace daxfs::fs
