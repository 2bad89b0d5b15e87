// What the filesystem tells the DAX layer (src/dax) about file layouts: the layout of a file
// range as device segments, and an observer called whenever the layout of a watched file
// changes. The filesystem knows nothing of mappings beyond this interface.
#pragma once

#include <cstdint>
#include <vector>

#include "daxfs/filesystem.h"
#include "format/layout.h"

namespace daxfs::fs {

// A page of a mapping is one filesystem block: layouts, mappings and trackers count in these.
inline constexpr uint64_t kPageBytes = format::kBlockSize;

// How one stretch of a file range is backed. Every segment is whole 4 KiB blocks.
enum class SegmentKind : uint8_t {
  kData = 1,       // device bytes at `device_offset`, readable (and writable if prepared so)
  kZero = 2,       // a hole or an unwritten extent inside EOF: reads as zeros
  kLost = 3,       // recorded lost (poison tree): must not be read; `device_offset` is the bad
                   // device range when the file still maps it, else kNoDevice
  kBeyondEof = 4,  // past the end of the file (rounded up to a block): no data at all
};
inline constexpr uint64_t kNoDevice = ~0ULL;
// LayoutChanged(ino, 0, kWholeFile, one kBeyondEof segment) means the file itself was removed
// (its inode number may be reused later): mappings of it can never see data again.
inline constexpr uint64_t kWholeFile = 1ULL << 63;

struct MapSegment {
  uint64_t file_offset = 0;  // bytes, block-aligned
  uint64_t length = 0;       // bytes, whole blocks
  SegmentKind kind = SegmentKind::kData;
  uint64_t device_offset = kNoDevice;  // kData: always; kLost: when known
  bool operator==(const MapSegment&) const = default;
};
// Segments in file order, contiguous, covering exactly the range asked for; neighbours of the
// same kind are merged when their device ranges are contiguous too.
using MapLayout = std::vector<MapSegment>;

// Registered by the DAX layer with FsFace::SetMappingObserver (fs/face.h).
class MappingObserver {
 public:
  virtual ~MappingObserver() = default;
  // Whether `ino` has live mappings. Called inside filesystem operations (under the filesystem
  // lock) on every extent change, so it must be cheap; thread-safe.
  virtual bool Watches(Ino ino) const = 0;
  // Whether `ino` has a live writable mapping: stores through it go straight to its blocks, so
  // the filesystem refuses to share them (clone, dedupe) while it lives.
  virtual bool HasWritableMappings(Ino ino) const { return false; }
  // The layout of [offset, offset + length) of `ino` changed to `layout` (a truncate, punch,
  // copy-on-write by write(), unwritten conversion, clone over it, a loss recorded or cleared,
  // the file removed: then the whole range is kBeyondEof). Called under the filesystem lock at
  // the end of the operation that changed it, before any block it stopped using can be reused,
  // so a mapping never points at a freed block. Must not call back into the filesystem.
  virtual void LayoutChanged(Ino ino, uint64_t offset, uint64_t length,
                             const MapLayout& layout) = 0;
  // After the last LayoutChanged of one operation, still under the filesystem lock and before any
  // block the operation freed can be reused: where remote mappings wait for their clients to
  // acknowledge every change of the operation, with one shared deadline (daxfs/layout.h).
  virtual void LayoutChangesDone() {}
};

}  // namespace daxfs::fs
