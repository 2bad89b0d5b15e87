// The filesystem's trees, each defined here once: its shape (TreeSpec), which filesystems keep
// it, its key builders and its value codec. A new tree (xattrs, orphans) is one FsTree value, one
// entry in trees.cc and its TreeId in format/layout.h. Knows record layouts (format/records.h)
// and the B+tree's key and cursor types; nothing of what operations do with the records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>

#include "btree/btree.h"
#include "daxfs/filesystem.h"
#include "format/records.h"

namespace daxfs::fs {

// A tree's slot in an operation's tree set (op.h), in the order of FsTrees().
enum class FsTree : uint8_t { kInodes, kDirents, kExtents, kRmap, kRefcount, kPoison, kOrphans,
                             kXattrs };
inline constexpr size_t kFsTreeCount = 8;

// Which filesystems keep a tree (the feature bits it needs).
enum class TreeKept : uint8_t { kAlways, kWithRmap, kWithReflink };

struct FsTreeDef {
  FsTree slot;
  btree::TreeSpec spec;
  TreeKept kept;
};

// Every filesystem tree, in FsTree order.
std::span<const FsTreeDef> FsTrees();
const btree::TreeSpec& SpecOf(FsTree tree);
inline bool IsKept(const FsTreeDef& def, bool has_rmap, bool has_reflink) {
  return def.kept == TreeKept::kAlways || (def.kept == TreeKept::kWithRmap && has_rmap) ||
         (def.kept == TreeKept::kWithReflink && has_reflink);
}
// The name of any tree id of the pool ("inodes", ..., "chunks", "scratch", "tree9").
std::string TreeName(uint16_t id);

// ---- Keys.
inline btree::Key InodeKey(Ino ino) { return btree::Key{{ino}}; }
inline btree::Key DirentKey(Ino dir, uint64_t slot) { return btree::Key{{dir, slot}}; }
inline btree::Key ExtentKey(Ino ino, uint64_t file_block) { return btree::Key{{ino, file_block}}; }
inline btree::Key RmapKey(uint64_t device_block, uint64_t owner, uint64_t file_block) {
  return btree::Key{{device_block, owner, file_block}};
}
inline btree::Key RmapKey(const format::RmapRecord& r) {
  return RmapKey(r.device_block, r.owner, r.file_block);
}
// Rmap records compared in key order.
inline auto RmapOrder(const format::RmapRecord& r) {
  return std::tie(r.device_block, r.owner, r.file_block);
}
inline bool RmapKeyLess(const format::RmapRecord& a, const format::RmapRecord& b) {
  return RmapOrder(a) < RmapOrder(b);
}
inline btree::Key RefcountKey(uint64_t device_block) { return btree::Key{{device_block}}; }
inline btree::Key OrphanKey(Ino ino) { return btree::Key{{ino}}; }
inline btree::Key XattrKey(Ino ino, uint64_t slot, uint64_t part) {
  return btree::Key{{ino, slot, part}};
}
inline btree::Key LostKey(Ino ino, uint64_t file_block) {
  return btree::Key{{format::kPoisonLost, ino, file_block}};
}
inline btree::Key BadKey(uint64_t device_block) {
  return btree::Key{{format::kPoisonBad, device_block, 0}};
}

// ---- Values, encoded on the stack: tree->Insert(key, ExtentValue(x).bytes).
struct InodeValue {
  uint8_t bytes[format::kInodeValueSize];
  explicit InodeValue(const format::Inode& n) { format::EncodeInode(n, bytes); }
};
struct DirentValue {
  uint8_t bytes[format::kDirentValueSize];
  explicit DirentValue(const format::Dirent& d) { format::EncodeDirent(d, bytes); }
};
struct ExtentValue {
  uint8_t bytes[format::kExtentValueSize];
  explicit ExtentValue(const format::ExtentRecord& x) { format::EncodeExtent(x, bytes); }
};
struct RmapValue {
  uint8_t bytes[format::kRmapValueSize];
  explicit RmapValue(const format::RmapRecord& r) { format::EncodeRmapValue(r, bytes); }
  RmapValue(uint64_t blocks, uint32_t flags)
      : RmapValue(format::RmapRecord{.blocks = blocks, .flags = flags}) {}
  // The rmap record of an extent: its length, unwritten flag carried over.
  explicit RmapValue(const format::ExtentRecord& x)
      : RmapValue(x.blocks, (x.flags & format::kExtentUnwritten) ? format::kRmapUnwritten : 0) {}
};
struct RefcountValue {
  uint8_t bytes[format::kRefcountValueSize];
  explicit RefcountValue(const format::RefcountRecord& r) { format::EncodeRefcountValue(r, bytes); }
};
struct LostValue {
  uint8_t bytes[format::kPoisonValueSize];
  explicit LostValue(const format::LostRecord& r) { format::EncodeLostValue(r, bytes); }
};
struct BadValue {
  uint8_t bytes[format::kPoisonValueSize];
  explicit BadValue(const format::BadRecord& r) { format::EncodeBadValue(r, bytes); }
};

// ---- Decoding a record from its key and value (a cursor's position or an Overlaps callback).
inline Result<format::Inode> InodeAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeInode(k.w[0], v.data());
}
inline Result<format::Dirent> DirentAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeDirent(k.w[0], k.w[1], v.data());
}
inline Result<format::ExtentRecord> ExtentAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeExtent(k.w[0], k.w[1], v.data());
}
inline Result<format::RmapRecord> RmapAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeRmap(k.w[0], k.w[1], k.w[2], v.data());
}
inline Result<format::RefcountRecord> RefcountAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeRefcount(k.w[0], v.data());
}
inline Result<format::LostRecord> LostAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeLost(k.w[1], k.w[2], v.data());
}
inline Result<format::BadRecord> BadAt(const btree::Key& k, std::span<const uint8_t> v) {
  return format::DecodeBad(k.w[1], k.w[2], v.data());
}
// The same at a cursor's position.
inline Result<format::Inode> InodeAt(const btree::Cursor& c) { return InodeAt(c.key(), c.value()); }
inline Result<format::Dirent> DirentAt(const btree::Cursor& c) {
  return DirentAt(c.key(), c.value());
}
inline Result<format::ExtentRecord> ExtentAt(const btree::Cursor& c) {
  return ExtentAt(c.key(), c.value());
}
inline Result<format::RmapRecord> RmapAt(const btree::Cursor& c) {
  return RmapAt(c.key(), c.value());
}
inline Result<format::RefcountRecord> RefcountAt(const btree::Cursor& c) {
  return RefcountAt(c.key(), c.value());
}
inline Result<format::LostRecord> LostAt(const btree::Cursor& c) {
  return LostAt(c.key(), c.value());
}
inline Result<format::BadRecord> BadAt(const btree::Cursor& c) { return BadAt(c.key(), c.value()); }

}  // namespace daxfs::fs
