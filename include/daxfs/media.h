// Media failures as the filesystem sees them: which device bytes went bad, what they held, which
// file ranges are now lost and which free space was retired. The filesystem half of
// notify_failure (docs/failure.md); the DAX half (mappings, signals) is in daxfs/dax.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace daxfs {

using Ino = uint64_t;

// Flags of a failure notification (the kernel's MF_ACTION_REQUIRED, MF_MEM_PRE_REMOVE and
// MF_SW_SIMULATED).
enum FailureFlags : uint32_t {
  kFailureActionRequired = 1u << 0,  // the data was consumed (a load hit it): act now
  kFailureRemove = 1u << 1,          // the device is about to be removed (not corruption)
  kFailureSimulated = 1u << 2,       // injected by software (inject-error, tests)
};

// What a device byte range holds, by address (the chunk table and the data allocator).
enum class RangeKind : uint8_t {
  kSuperblock = 1,  // the two superblock slots
  kMetadata = 2,    // a METADATA chunk (tree nodes, used or free)
  kData = 3,        // DATA chunk blocks owned by files (or already retired)
  kFree = 4,        // free DATA blocks or an unallocated chunk
  kOutside = 5,     // past the end of the device
};
const char* RangeKindName(RangeKind kind);  // "superblock", "metadata", "data", "free", "outside"

struct DeviceRange {
  uint64_t offset = 0;  // bytes
  uint64_t length = 0;
};

// A piece of a failed range with one kind.
struct RangePiece {
  uint64_t offset = 0;
  uint64_t length = 0;
  RangeKind kind = RangeKind::kData;
};

// One lost file range: the bytes [file_offset, +length) of `ino` sit on bad device bytes starting
// at `device_offset`. Whole 4 KiB blocks. Reads of it fail with EIO until a write replaces it.
struct FileRangeLoss {
  Ino ino = 0;
  std::string path;          // one path of the inode ("" if it has none any more)
  uint64_t file_offset = 0;  // bytes, block-aligned
  uint64_t length = 0;       // bytes, whole blocks
  uint64_t device_offset = 0;
  bool shared = false;       // the bad block has other owners too
};

// What Filesystem::RecordMediaFailure did with a failed device range.
struct MediaFailureRecord {
  std::vector<RangePiece> pieces;     // the range cut by kind, in device order
  std::vector<FileRangeLoss> owners;  // every file owner of the data pieces (shared ones too)
  std::vector<DeviceRange> retired;   // free space taken out of service
  bool metadata_hit = false;          // the filesystem shut down read-only
  bool recorded = true;               // false: read-only, so kept in memory for this mount only
  std::string message;                // one line for logs, e.g. the shutdown reason
};

// Everything known to be bad (daxfs errors).
struct MediaErrorList {
  std::vector<FileRangeLoss> lost;          // lost file ranges, by (ino, file offset)
  std::vector<DeviceRange> retired;         // bad device space no file owns (never allocated)
  std::vector<RangePiece> metadata_damage;  // bad bytes in the superblock or METADATA chunks
  std::vector<DeviceRange> bad;             // every bad device range known (media list + routed)
  // Non-empty when damaged metadata kept lost/retired from being read: why.
  std::string incomplete;
};

}  // namespace daxfs
