// Geometry constants and type codes of the on-media format. Documented in docs/format.md.
// Tags and type codes are written to media: never renumber them, only add.
#pragma once

#include <cstdint>

namespace daxfs::format {

inline constexpr uint32_t kBlockSize = 4096;
inline constexpr uint32_t kBlockShift = 12;

// Every metadata block starts with this magic ("DXFS" read as little-endian bytes).
inline constexpr uint32_t kNodeMagic = 0x53465844;

// Metadata block types (node header `type`).
enum class BlockType : uint16_t {
  kSuperblock = 1,
  kBTreeNode = 2,
};

// The two superblock slots: blocks 0 and 1 of chunk 0.
inline constexpr uint64_t kSuperblockSlots[2] = {0, 1};
inline constexpr uint64_t kFirstNodeBlock = 2;  // first block of chunk 0 usable for nodes

// Tree identifiers: slot index in the superblock root table and the tree_id in every node.
enum class TreeId : uint16_t {
  kChunks = 1,     // chunk table: chunk index -> type
  kInodes = 2,     // inode records
  kDirents = 3,    // directory entries
  kExtents = 4,    // file extent maps
  kRmap = 5,       // reverse map (feature rmap)
  kRefcount = 6,   // shared-block counts (feature reflink)
  kPoison = 7,     // lost file ranges and bad device ranges
  kXattrs = 8,     // extended attributes (ro_compat posix)
  kOrphans = 9,    // inodes without a link kept for open references (ro_compat posix)
  kScratch = 15,   // a key/value tree for tests and benchmarks of the engine itself
};
inline constexpr uint16_t kMaxTrees = 16;  // root table entries 0..15 (0 unused)

// Chunk types in the chunk table. A chunk with no record is unallocated.
enum class ChunkType : uint32_t {
  kMetadata = 1,
  kData = 2,
  // With ro_compat metadup: the twin of one METADATA chunk, holding a byte-identical copy of
  // each of its nodes at the same index (docs/format.md, "Metadata twins").
  kMetadataTwin = 3,
};

// Chunk size bounds (bytes, powers of two).
inline constexpr uint64_t kMinChunkSize = 256 * 1024;
inline constexpr uint64_t kMaxChunkSize = 1ULL << 30;
inline constexpr uint64_t kDefaultChunkSize = 64ULL << 20;

}  // namespace daxfs::format
