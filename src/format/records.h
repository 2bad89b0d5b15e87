// Records of the filesystem trees: inodes, directory entries and extents. Pure encode/decode on
// value bytes (keys are B+tree words); no I/O, no knowledge of how the trees are searched.
// Layouts: docs/format.md ("Inode record", "Directory entry", "Extent record").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "daxfs/status.h"

namespace daxfs::format {

inline constexpr uint64_t kRootIno = 1;
inline constexpr size_t kMaxNameLen = 255;
inline constexpr size_t kMaxPathLen = 4096;
inline constexpr size_t kMaxSymlinkLen = 4095;

// File types (inode `type`; also in directory entries). Never renumbered.
enum class FileType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kFifo = 4,         // special files (ro_compat posix): an inode, no data
  kSocket = 5,
  kCharDevice = 6,   // with rdev
  kBlockDevice = 7,  // with rdev
};
inline constexpr bool IsSpecial(FileType t) { return t >= FileType::kFifo; }
inline constexpr bool IsDevice(FileType t) {
  return t == FileType::kCharDevice || t == FileType::kBlockDevice;
}
const char* FileTypeName(FileType type);

// ---- Inode tree (TreeId::kInodes): key = {ino}, value = kInodeValueSize bytes.
inline constexpr uint16_t kInodeValueSize = 128;
struct Inode {
  uint64_t ino = 0;  // from the key, not stored in the value
  FileType type = FileType::kRegular;
  uint16_t mode = 0644;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 1;
  uint64_t size = 0;     // bytes (directories: number of entries)
  uint64_t blocks = 0;   // 4 KiB blocks mapped (written or unwritten)
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t btime_ns = 0;
  uint64_t parent = 0;   // directories: the directory that holds this one ("..")
  uint32_t flags = 0;    // kInodeFlag*
  uint32_t generation = 0;
  uint64_t rdev = 0;     // device nodes: the device number (Linux dev_t encoding); others: 0
};
inline constexpr uint32_t kInodeFlagReflinked = 1;  // may share blocks

void EncodeInode(const Inode& inode, uint8_t* value);
// EUCLEAN naming the inode on an unknown type, mode bits or flags.
Result<Inode> DecodeInode(uint64_t ino, const uint8_t* value);

// ---- The inode table's header: the record at key {0} of the inode tree (no inode has number
// 0; its first byte, where an inode has its type, is 0). With ro_compat posix. Inode numbers
// only grow: a new inode takes next_ino, so a number never names two inodes in one filesystem's
// life. `counts` are the inodes by type (index: the type code; 0 unused), so that statfs needs
// no walk.
inline constexpr uint64_t kInodeTableHeaderIno = 0;
inline constexpr size_t kFileTypeSlots = 8;  // type codes 1..7, index 0 unused
struct InodeTableHeader {
  uint64_t next_ino = kRootIno + 1;
  uint64_t counts[kFileTypeSlots] = {};
  uint64_t total() const {
    uint64_t n = 0;
    for (uint64_t c : counts) n += c;
    return n;
  }
};
void EncodeInodeTableHeader(const InodeTableHeader& header, uint8_t* value);
// EUCLEAN when the first byte is not 0, a reserved byte is set or next_ino is not above the root.
Result<InodeTableHeader> DecodeInodeTableHeader(const uint8_t* value);

// ---- Orphan tree (TreeId::kOrphans): key = {ino}, value = kOrphanValueSize bytes, all 0
// (reserved). An inode whose last link went while it was open (referenced) stays, with nlink 0,
// exactly as long as it has an orphan record; mount frees every orphan.
inline constexpr uint16_t kOrphanValueSize = 8;

// ---- Xattr tree (TreeId::kXattrs): key = {ino, slot, part}, value = kXattrValueSize bytes.
// slot = NameHashSlot(name) | collision index (as directory entries: up to 256 names of one
// inode may share a hash). Part 0 is the head: 0 name length u8 | 1..3 reserved | 4 value
// length u32 | 8 name | then the first value bytes; parts 1..n hold the rest of the value,
// kXattrValueSize bytes each (the last zero padded). XattrParts says how many parts there are.
inline constexpr uint16_t kXattrValueSize = 512;
inline constexpr size_t kXattrHeadSize = 8;
inline constexpr size_t kMaxXattrNameLen = 255;
inline constexpr size_t kMaxXattrValueLen = 65536;
struct XattrHead {
  std::string name;
  uint32_t value_len = 0;
};
// Value bytes the head holds after a name of `name_len` bytes.
inline constexpr size_t XattrHeadValueBytes(size_t name_len) {
  return kXattrValueSize - kXattrHeadSize - name_len;
}
// Parts (head included) of an attribute of these sizes.
uint64_t XattrParts(size_t name_len, size_t value_len);
// The head of `name` = `value` (its first value bytes; the rest goes to parts 1..).
void EncodeXattrHead(std::string_view name, const uint8_t* value, size_t value_len, uint8_t* v);
Result<XattrHead> DecodeXattrHead(uint64_t ino, uint64_t slot, const uint8_t* v);
bool XattrNameIs(const uint8_t* v, std::string_view name);

// ---- Directory-entry tree (TreeId::kDirents): key = {dir ino, slot}, value = kDirentValueSize.
// slot = (hash(name) with the top bit set and the low 8 bits cleared) | collision index, so
// entries of one directory sort by hash, every slot is > 2 (1 and 2 are the readdir cookies of
// "." and ".."), and up to 256 names may share a hash. The slot is the readdir resume cookie.
inline constexpr uint16_t kDirentValueSize = 272;
struct Dirent {
  uint64_t ino = 0;
  FileType type = FileType::kRegular;
  std::string name;
};
uint64_t NameHashSlot(std::string_view name);  // collision index 0
inline constexpr uint64_t kSlotCollisionMask = 0xff;

void EncodeDirent(const Dirent& dirent, uint8_t* value);
Result<Dirent> DecodeDirent(uint64_t dir, uint64_t slot, const uint8_t* value);
// Compares the stored name with `name` without building a string.
bool DirentNameIs(const uint8_t* value, std::string_view name);

// ---- Extent-map tree (TreeId::kExtents): key = {ino, file block}, value = kExtentValueSize.
inline constexpr uint16_t kExtentValueSize = 16;
inline constexpr uint32_t kExtentUnwritten = 1;  // allocated, reads as zeros
inline constexpr uint32_t kExtentKnownFlags = kExtentUnwritten;
inline constexpr uint64_t kMaxExtentBlocks = 0xffffffffULL;
struct ExtentRecord {
  uint64_t device_block = 0;
  uint32_t blocks = 0;
  uint32_t flags = 0;
};
void EncodeExtent(const ExtentRecord& extent, uint8_t* value);
Result<ExtentRecord> DecodeExtent(uint64_t ino, uint64_t file_block, const uint8_t* value);

// ---- Reverse map (TreeId::kRmap), an interval tree: key = {device block, owner, file block},
// value = kRmapValueSize bytes; the record covers device blocks [key.w[0], key.w[0] + blocks).
// For file data there is exactly one rmap record per extent record (same device range, owner =
// inode, file block = the extent's first file block, same flags): the rmap is the extent map
// turned around. Non-file space has special owners (file block 0).
inline constexpr uint16_t kRmapValueSize = 16;
inline constexpr uint64_t kOwnerSuperblock = 0xfffffffffffffff0ULL;  // blocks 0-1
inline constexpr uint64_t kOwnerMetadata = 0xfffffffffffffff1ULL;    // a METADATA chunk's nodes
inline constexpr uint64_t kOwnerBad = 0xfffffffffffffff2ULL;         // retired (bad) space
inline constexpr uint64_t kOwnerSpecialMin = 0xfffffffffffffff0ULL;
inline bool IsSpecialOwner(uint64_t owner) { return owner >= kOwnerSpecialMin; }
const char* SpecialOwnerName(uint64_t owner);  // "superblock", "metadata", "bad", or nullptr
inline constexpr uint32_t kRmapUnwritten = 1;  // same bit as kExtentUnwritten
inline constexpr uint32_t kRmapKnownFlags = kRmapUnwritten;
struct RmapRecord {
  uint64_t device_block = 0;
  uint64_t owner = 0;
  uint64_t file_block = 0;
  uint64_t blocks = 0;
  uint32_t flags = 0;
};
//   value: 0 blocks u64 | 8 flags u32 | 12 reserved u32
void EncodeRmapValue(const RmapRecord& r, uint8_t* value);
Result<RmapRecord> DecodeRmap(uint64_t device_block, uint64_t owner, uint64_t file_block,
                              const uint8_t* value);
// The interval end for the B+tree's TreeSpec::interval_end.
uint64_t RmapIntervalEnd(uint64_t device_block, const uint8_t* value);

// ---- Refcount tree (TreeId::kRefcount): key = {device block}, value = kRefcountValueSize.
// A record exists only where a range has two or more owners (no record: one owner or free), as
// in XFS. Records never overlap; adjacent records with equal counts are merged.
inline constexpr uint16_t kRefcountValueSize = 16;
struct RefcountRecord {
  uint64_t device_block = 0;
  uint64_t blocks = 0;
  uint32_t refcount = 0;  // >= 2
};
//   value: 0 blocks u64 | 8 refcount u32 | 12 reserved u32
void EncodeRefcountValue(const RefcountRecord& r, uint8_t* value);
Result<RefcountRecord> DecodeRefcount(uint64_t device_block, const uint8_t* value);

// ---- Poison tree (TreeId::kPoison): media damage that must survive remount (docs/media.md).
// key = {kind, a, b}, value = kPoisonValueSize bytes. Two record kinds:
// - a lost file range, key {kPoisonLost, ino, file block}: file blocks [file block, +blocks) of
//   `ino` sit on bad device blocks [device block, +blocks); reads of them fail with EIO until a
//   whole-block write replaces them. One inode's records never overlap.
// - a bad device range, key {kPoisonBad, device block, 0}: device blocks [device block, +blocks)
//   are bad; they are never allocated again (owned by files that lost them, or retired: owner
//   `bad` in the rmap). Bad-range records never overlap. With kBadMetadata the range is one block
//   of a METADATA or METADATA_TWIN chunk: a copy of a metadata node slot that a twin repair took
//   out of service (metadup); no file owns it and the rmap keeps it under owner `metadata`.
// So the losses of an inode's file range and the bad ranges overlapping a device range are each
// one seek and a short forward scan.
inline constexpr uint16_t kPoisonValueSize = 16;
inline constexpr uint64_t kPoisonLost = 1;
inline constexpr uint64_t kPoisonBad = 2;
inline constexpr uint32_t kBadHitFree = 1;       // the range was free space when it went bad
inline constexpr uint32_t kBadSimulated = 2;     // injected by software (kFailureSimulated)
inline constexpr uint32_t kBadMetadata = 4;      // a retired metadata node slot's bad copy
inline constexpr uint32_t kBadChecksum = 8;      // kBadMetadata found by checksum, not on bad media
inline constexpr uint32_t kBadKnownFlags =
    kBadHitFree | kBadSimulated | kBadMetadata | kBadChecksum;
struct LostRecord {
  uint64_t ino = 0;
  uint64_t file_block = 0;
  uint64_t blocks = 0;
  uint64_t device_block = 0;
};
struct BadRecord {
  uint64_t device_block = 0;
  uint64_t blocks = 0;
  uint32_t flags = 0;
};
//   lost value: 0 blocks u64 | 8 device block u64
void EncodeLostValue(const LostRecord& r, uint8_t* value);
Result<LostRecord> DecodeLost(uint64_t ino, uint64_t file_block, const uint8_t* value);
//   bad value:  0 blocks u64 | 8 flags u32 | 12 reserved u32
void EncodeBadValue(const BadRecord& r, uint8_t* value);
Result<BadRecord> DecodeBad(uint64_t device_block, uint64_t zero, const uint8_t* value);

}  // namespace daxfs::format
