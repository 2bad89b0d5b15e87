// The superblock: geometry, features, and the root table of every tree. Two slots (blocks 0
// and 1) are written alternately; the valid slot with the highest generation is the current state.
// Pure encode/decode and selection logic; the I/O is done by the transaction layer.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daxfs/status.h"
#include "format/layout.h"

namespace daxfs::format {

inline constexpr uint64_t kSuperblockMagic = 0x0031425346584144ULL;  // "DAXFSB1\0"
inline constexpr uint32_t kFormatVersion = 1;

// Feature flags. An unknown incompat bit refuses the mount; an unknown ro_compat bit allows a
// read-only mount only; an unknown compat bit is ignored.
namespace feature {
inline constexpr uint64_t kRoCompatRmap = 1ULL << 0;     // reverse map kept
inline constexpr uint64_t kRoCompatReflink = 1ULL << 1;  // blocks may be shared
// Set by the first media failure recorded: a build that does not know the poison tree
// would serve lost data and hand out bad blocks, so it may only mount read-only.
inline constexpr uint64_t kRoCompatPoison = 1ULL << 2;
// Every committed metadata node has a twin copy in a METADATA_TWIN chunk. A build that
// writes without updating the twins would leave them stale, so an unaware build mounts read-only.
inline constexpr uint64_t kRoCompatMetadup = 1ULL << 3;
// (Bit 4 is the operation log's.) The POSIX additions of the mount (docs/format.md, bit 5): the
// inode table's header record (inode numbers that only grow, counts by type), the orphan tree,
// the xattr tree and the special file types. A build that does not know them would reuse inode numbers, leave the counts
// wrong, never reclaim orphans and leave xattrs behind, so it may only mount read-only.
inline constexpr uint64_t kRoCompatPosix = 1ULL << 5;
inline constexpr uint64_t kKnownCompat = 0;
inline constexpr uint64_t kKnownRoCompat =
    kRoCompatRmap | kRoCompatReflink | kRoCompatPoison | kRoCompatMetadup | kRoCompatPosix;
inline constexpr uint64_t kKnownIncompat = 0;
}  // namespace feature

// Superblock state flags.
inline constexpr uint64_t kStateClean = 1ULL << 0;  // written by a clean unmount

// One root-table entry: a tree's root node and what its nodes look like, so that any tree can
// be walked (for space accounting and checks) without knowing what its records mean.
struct TreeRoot {
  uint64_t root = 0;      // 0: empty tree
  uint64_t records = 0;   // number of records
  uint16_t key_words = 0;
  uint16_t value_size = 0;
  uint16_t flags = 0;     // kTreeInterval
  friend bool operator==(const TreeRoot&, const TreeRoot&) = default;
};
inline constexpr uint16_t kTreeInterval = 1;

// One entry of the twin table (metadup): the METADATA chunk `primary` and its METADATA_TWIN
// chunk `twin`. The twin of node block b = primary * chunk_blocks + i is twin * chunk_blocks + i.
struct TwinPair {
  uint32_t primary = 0;
  uint32_t twin = 0;
  friend bool operator==(const TwinPair&, const TwinPair&) = default;
};
using TwinTable = std::vector<TwinPair>;

struct Superblock {
  uint64_t generation = 0;
  uint32_t version = kFormatVersion;
  uint32_t block_size = kBlockSize;
  uint64_t compat = 0;
  uint64_t ro_compat = 0;
  uint64_t incompat = 0;
  std::array<uint8_t, 16> uuid{};
  uint64_t device_size = 0;   // bytes covered by the filesystem
  uint64_t chunk_size = 0;    // bytes, power of two
  uint64_t chunk_count = 0;   // the last chunk may be shorter
  uint64_t state = 0;         // kStateClean ...
  uint64_t create_time_ns = 0;
  uint64_t commit_time_ns = 0;
  std::array<char, 32> label{};
  std::array<TreeRoot, kMaxTrees> trees{};
  // The twin table (empty without metadup). Shared and immutable, so that copying a
  // Superblock (every read transaction does) stays cheap; change it with SetTwins.
  std::shared_ptr<const TwinTable> twin_table;

  const TwinTable& twins() const;
  void SetTwins(TwinTable table) {
    twin_table = std::make_shared<const TwinTable>(std::move(table));
  }
  bool metadup() const { return (ro_compat & feature::kRoCompatMetadup) != 0; }
  // The twin chunk of `chunk` in the table, or -1.
  int64_t TwinOf(uint64_t chunk) const;
  uint64_t total_blocks() const { return device_size / kBlockSize; }
  uint64_t chunk_blocks() const { return chunk_size / kBlockSize; }
  uint64_t ChunkFirstBlock(uint64_t chunk) const { return chunk * chunk_blocks(); }
  uint64_t ChunkBlockCount(uint64_t chunk) const;
  std::string Label() const;
  std::string UuidString() const;
  TreeRoot& tree(TreeId id) { return trees[static_cast<uint16_t>(id)]; }
  const TreeRoot& tree(TreeId id) const { return trees[static_cast<uint16_t>(id)]; }
};

// Byte offsets inside the superblock block (after the 32-byte node header); see docs/format.md.
inline constexpr uint32_t kSbRootTableOffset = 256;
inline constexpr uint32_t kSbRootEntrySize = 24;
static_assert(kSbRootTableOffset + kMaxTrees * kSbRootEntrySize <= kBlockSize);
// The twin table: a u32 count and a u32 reserved word at 640, then (u32 primary, u32 twin) pairs
// to the end of the block. Bytes 168..255 stay reserved (kept free for the operation log).
inline constexpr uint32_t kSbTwinTableOffset = kSbRootTableOffset + kMaxTrees * kSbRootEntrySize;
inline constexpr uint32_t kSbTwinPairsOffset = kSbTwinTableOffset + 8;
inline constexpr uint32_t kSbTwinPairSize = 8;
inline constexpr uint32_t kMaxTwinPairs = (kBlockSize - kSbTwinPairsOffset) / kSbTwinPairSize;
static_assert(kSbTwinTableOffset == 640 && kMaxTwinPairs == 431);

// Writes the whole block (header, fields, zero padding, checksum). `slot_block` is 0 or 1.
void EncodeSuperblock(const Superblock& sb, uint64_t slot_block, uint8_t* block);

// Decodes and checks one slot: header (magic, checksum, type, own block number), superblock
// magic and geometry. Does not judge version or features (see CheckSupported).
Result<Superblock> DecodeSuperblock(const uint8_t* block, uint64_t slot_block);

// Geometry sanity: block size, chunk size power of two within bounds, chunk count consistent
// with device size, tree root entries within bounds; the twin table empty without metadup, and
// with it: chunk 0 paired, every chunk in at most one pair, no chunk its own twin, every twin
// inside the device and at least as long as its primary.
Status CheckGeometry(const Superblock& sb);
Status CheckTwinTable(const Superblock& sb);  // the twin-table part of CheckGeometry

// Whether this build can mount the image: version and feature bits. Sets *read_only_only when
// only unknown ro_compat bits stand in the way.
Status CheckSupported(const Superblock& sb, bool* read_only_only);

// Picks the current superblock from the two slot blocks: the valid one with the highest
// generation. When neither is valid, the error says why for each slot ("not a daxfs image" when
// neither has the superblock magic).
Result<Superblock> SelectSuperblock(const uint8_t* slot0, const uint8_t* slot1, int* chosen_slot);

// Chunk table records (tree kChunks): key = chunk index, value = 8 bytes.
inline constexpr uint16_t kChunkValueSize = 8;
struct ChunkRecord {
  ChunkType type = ChunkType::kMetadata;
  // With metadup: a METADATA chunk's twin chunk, a METADATA_TWIN chunk's primary; else 0.
  uint32_t partner = 0;
};
void EncodeChunkRecord(const ChunkRecord& rec, uint8_t* value);
Result<ChunkRecord> DecodeChunkRecord(uint64_t chunk, const uint8_t* value);
const char* ChunkTypeName(ChunkType type);

}  // namespace daxfs::format
