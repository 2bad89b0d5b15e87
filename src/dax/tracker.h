// The owner-tracking interface: how a failed device range is turned into the mapped pages it
// backs (victims). The designs implement it in src/tracking (docs/failure.md): fs-rmap (and its
// full-scan baseline), page-rmap, extent-space and none. Knows nothing of signals.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "daxfs/dax.h"
#include "daxfs/media.h"
#include "fs/mapping_hooks.h"

namespace daxfs::dax {

// A live mapping as trackers see it.
struct TrackedMapping {
  uint64_t id = 0;
  Ino ino = 0;
  uint8_t* base = nullptr;   // address of file_offset
  uint64_t file_offset = 0;  // bytes, block-aligned
  uint64_t length = 0;       // bytes, whole pages
};

class OwnerTracker {
 public:
  virtual ~OwnerTracker() = default;
  virtual Tracking design() const = 0;

  // The mapping table calls Join when pages of `m` become backed by device bytes (at map time,
  // and when a layout change maps them), and Leave when they stop (unmap, a layout change, the
  // page fenced as lost). `segments` are kData segments only (file offsets inside m's range),
  // in file order. Called with the table's lock held, never concurrently with each other;
  // FindVictims may run concurrently with them (trackers lock their own state).
  virtual void Join(const TrackedMapping& m, std::span<const fs::MapSegment> segments) = 0;
  virtual void Leave(const TrackedMapping& m, std::span<const fs::MapSegment> segments) = 0;

  // Every page currently backed by device bytes [offset, +length) in a live mapping: one Victim
  // per (mapping, contiguous run of pages), sorted by (mapping_id, address). The range is widened
  // to whole pages. Called without the table lock held.
  virtual Result<std::vector<Victim>> FindVictims(uint64_t offset, uint64_t length) = 0;
  // The same answer on the failure path, where the filesystem has just looked up `owners`, every
  // file owner of the failed data (fs::FailurePlanObserver): a design that asks the filesystem
  // for owners uses these instead of asking again (the owners are looked up once per failure).
  // Called under the filesystem lock, so it must not call into the filesystem. By default the
  // design's own FindVictims (which must not either).
  virtual Result<std::vector<Victim>> FindVictimsOf(uint64_t offset, uint64_t length,
                                                    std::span<const FileRangeLoss> owners) {
    return FindVictims(offset, length);
  }

  // Bytes of memory this design spends on tracking (not counting what every design shares: the
  // mappings' own layouts and the per-file index).
  virtual uint64_t TrackingBytes() const = 0;
};

// Sorts victims by (mapping_id, address) and merges contiguous pieces of one mapping whose file
// and device offsets are contiguous too. Every design returns its answer through this.
void NormalizeVictims(std::vector<Victim>* victims);

}  // namespace daxfs::dax
