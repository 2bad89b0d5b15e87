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

// One metadata repair from a twin (metadup, docs/media.md): a copy of a node was bad (on bad media
// or failing its checksum); the good copy served the reads and the node moved to a new slot and
// twin in the next commit, the bad slot retired (never allocated again, recorded in the poison
// tree so it survives remount).
struct MetadataRepair {
  enum class Kind : uint8_t {
    kRelocated = 1,  // the node moved from `block` to `new_block` (durable at `generation`)
    kRetired = 2,    // the slot held no node: it was only taken out of service
    kLost = 3,       // no good copy: not repaired (`reason`); the filesystem shuts down
  };
  Kind kind = Kind::kRelocated;
  uint64_t block = 0;        // the node slot: device block of its primary copy
  uint64_t twin_block = 0;   // device block of its twin copy
  bool primary_bad = false;  // which copy was bad (the other one was used)
  bool twin_bad = false;
  std::string reason;           // what was wrong with the bad copy
  std::string tree;             // the tree the node belongs to ("" when unknown)
  int level = -1;               // its level in the tree (0: leaf; -1 unknown)
  uint64_t new_block = 0;       // kRelocated: the new primary block ...
  uint64_t new_twin_block = 0;  // ... and its twin
  uint64_t generation = 0;      // kRelocated: the commit that made the move durable
};
const char* MetadataRepairKindName(MetadataRepair::Kind kind);  // "relocated", "retired", "lost"

// What Filesystem::RecordMediaFailure did with a failed device range.
struct MediaFailureRecord {
  std::vector<RangePiece> pieces;     // the range cut by kind, in device order
  std::vector<FileRangeLoss> owners;  // every file owner of the data pieces (shared ones too)
  std::vector<DeviceRange> retired;   // free space taken out of service
  bool metadata_hit = false;          // the filesystem shut down read-only
  bool recorded = true;               // false: read-only, so kept in memory for this mount only
  std::string message;                // one line for logs, e.g. the shutdown reason
  // Metadata with a good twin that the failure hit: repaired instead of a shutdown (metadup).
  std::vector<MetadataRepair> repairs;
};

// Everything known to be bad (daxfs errors).
struct MediaErrorList {
  std::vector<FileRangeLoss> lost;          // lost file ranges, by (ino, file offset)
  std::vector<DeviceRange> retired;         // bad device space no file owns (never allocated)
  std::vector<RangePiece> metadata_damage;  // bad bytes in the superblock or METADATA chunks
  // Metadata node slots whose bad copy a repair took out of service (metadup; one block each).
  std::vector<DeviceRange> retired_metadata;
  std::vector<DeviceRange> bad;             // every bad device range known (media list + routed)
  // Non-empty when damaged metadata kept lost/retired from being read: why.
  std::string incomplete;
};

}  // namespace daxfs
