// Inode, directory-entry and extent record coding. No I/O.
#include "format/records.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>

#include "base/checksum.h"
#include "base/coding.h"

namespace daxfs::format {

const char* FileTypeName(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return "file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "socket";
    case FileType::kCharDevice:
      return "char device";
    case FileType::kBlockDevice:
      return "block device";
  }
  return "unknown";
}

namespace {
bool KnownType(uint8_t t) { return t >= 1 && t <= 7; }
}  // namespace

//   0 type u8 | 1 reserved u8 | 2 mode u16 | 4 uid | 8 gid | 12 nlink | 16 size u64 | 24 blocks
//   32 atime | 40 mtime | 48 ctime | 56 btime (i64 ns) | 64 parent | 72 flags u32 | 76 generation
//   80 rdev u64 (device nodes) | 88..127 reserved
void EncodeInode(const Inode& n, uint8_t* v) {
  std::memset(v, 0, kInodeValueSize);
  base::Encoder e(v, kInodeValueSize);
  e.PutU8(static_cast<uint8_t>(n.type));
  e.PutU8(0);
  e.PutU16(n.mode);
  e.PutU32(n.uid);
  e.PutU32(n.gid);
  e.PutU32(n.nlink);
  e.PutU64(n.size);
  e.PutU64(n.blocks);
  e.PutU64(static_cast<uint64_t>(n.atime_ns));
  e.PutU64(static_cast<uint64_t>(n.mtime_ns));
  e.PutU64(static_cast<uint64_t>(n.ctime_ns));
  e.PutU64(static_cast<uint64_t>(n.btime_ns));
  e.PutU64(n.parent);
  e.PutU32(n.flags);
  e.PutU32(n.generation);
  e.PutU64(n.rdev);
}

Result<Inode> DecodeInode(uint64_t ino, const uint8_t* v) {
  base::Decoder d(v, kInodeValueSize);
  Inode n;
  n.ino = ino;
  uint8_t type = d.GetU8();
  d.GetU8();
  n.mode = d.GetU16();
  n.uid = d.GetU32();
  n.gid = d.GetU32();
  n.nlink = d.GetU32();
  n.size = d.GetU64();
  n.blocks = d.GetU64();
  n.atime_ns = static_cast<int64_t>(d.GetU64());
  n.mtime_ns = static_cast<int64_t>(d.GetU64());
  n.ctime_ns = static_cast<int64_t>(d.GetU64());
  n.btime_ns = static_cast<int64_t>(d.GetU64());
  n.parent = d.GetU64();
  n.flags = d.GetU32();
  n.generation = d.GetU32();
  n.rdev = d.GetU64();
  if (!KnownType(type)) {
    return Status::Corruption(fmt::format("inode {}: unknown file type {}", ino, type));
  }
  if (n.rdev != 0 && !IsDevice(static_cast<FileType>(type))) {
    return Status::Corruption(fmt::format("inode {}: a {} with a device number", ino,
                                          FileTypeName(static_cast<FileType>(type))));
  }
  if (n.mode & ~07777) {
    return Status::Corruption(fmt::format("inode {}: invalid mode 0{:o}", ino, n.mode));
  }
  if (n.flags & ~kInodeFlagReflinked) {
    return Status::Corruption(fmt::format("inode {}: unknown flags 0x{:x}", ino, n.flags));
  }
  n.type = static_cast<FileType>(type);
  return n;
}

//   0 zero u8 | 1..7 reserved | 8 next_ino u64 | 16 + 8 * (type - 1): count of type 1..7 (u64)
//   72..127 reserved
void EncodeInodeTableHeader(const InodeTableHeader& h, uint8_t* v) {
  std::memset(v, 0, kInodeValueSize);
  base::EncodeU64(v + 8, h.next_ino);
  for (size_t t = 1; t < kFileTypeSlots; ++t) base::EncodeU64(v + 8 + 8 * t, h.counts[t]);
}

Result<InodeTableHeader> DecodeInodeTableHeader(const uint8_t* v) {
  InodeTableHeader h;
  h.next_ino = base::DecodeU64(v + 8);
  for (size_t t = 1; t < kFileTypeSlots; ++t) h.counts[t] = base::DecodeU64(v + 8 + 8 * t);
  bool reserved_clear = std::all_of(v, v + 8, [](uint8_t b) { return b == 0; }) &&
                        std::all_of(v + 72, v + kInodeValueSize, [](uint8_t b) { return b == 0; });
  if (!reserved_clear || h.next_ino <= kRootIno) {
    return Status::Corruption(fmt::format(
        "the inode table's header (key 0) is malformed (next inode number {})", h.next_ino));
  }
  return h;
}

uint64_t NameHashSlot(std::string_view name) {
  uint64_t h = base::Checksum64(name.data(), name.size(), 0x6469726e616d65ULL);
  return (h | (1ULL << 63)) & ~kSlotCollisionMask;
}

//   0 ino u64 | 8 type u8 | 9 name length u8 | 10 name (255 bytes, zero padded) | 265..271 reserved
void EncodeDirent(const Dirent& d, uint8_t* v) {
  std::memset(v, 0, kDirentValueSize);
  base::EncodeU64(v, d.ino);
  v[8] = static_cast<uint8_t>(d.type);
  v[9] = static_cast<uint8_t>(d.name.size());
  std::memcpy(v + 10, d.name.data(), std::min(d.name.size(), kMaxNameLen));
}

Result<Dirent> DecodeDirent(uint64_t dir, uint64_t slot, const uint8_t* v) {
  Dirent d;
  d.ino = base::DecodeU64(v);
  uint8_t type = v[8];
  uint8_t len = v[9];
  if (!KnownType(type) || len == 0 || d.ino == 0) {
    return Status::Corruption(fmt::format(
        "directory {}: entry at slot 0x{:x} is malformed (type {}, name length {}, inode {})", dir,
        slot, type, len, d.ino));
  }
  d.type = static_cast<FileType>(type);
  d.name.assign(reinterpret_cast<const char*>(v + 10), len);
  return d;
}

bool DirentNameIs(const uint8_t* v, std::string_view name) {
  return v[9] == name.size() && std::memcmp(v + 10, name.data(), name.size()) == 0;
}

//   0 name length u8 | 1..3 reserved | 4 value length u32 | 8 name | first value bytes
uint64_t XattrParts(size_t name_len, size_t value_len) {
  size_t head = XattrHeadValueBytes(name_len);
  if (value_len <= head) return 1;
  return 1 + (value_len - head + kXattrValueSize - 1) / kXattrValueSize;
}

void EncodeXattrHead(std::string_view name, const uint8_t* value, size_t value_len, uint8_t* v) {
  std::memset(v, 0, kXattrValueSize);
  size_t len = std::min(name.size(), kMaxXattrNameLen);
  v[0] = static_cast<uint8_t>(len);
  base::EncodeU32(v + 4, static_cast<uint32_t>(value_len));
  std::memcpy(v + kXattrHeadSize, name.data(), len);
  size_t first = std::min(value_len, XattrHeadValueBytes(len));
  if (first > 0) std::memcpy(v + kXattrHeadSize + len, value, first);
}

Result<XattrHead> DecodeXattrHead(uint64_t ino, uint64_t slot, const uint8_t* v) {
  XattrHead h;
  uint8_t len = v[0];
  h.value_len = base::DecodeU32(v + 4);
  if (len == 0 || v[1] != 0 || v[2] != 0 || v[3] != 0 || h.value_len > kMaxXattrValueLen) {
    return Status::Corruption(fmt::format(
        "xattr of inode {} at slot 0x{:x}: malformed head (name length {}, value length {})", ino,
        slot, len, h.value_len));
  }
  h.name.assign(reinterpret_cast<const char*>(v + kXattrHeadSize), len);
  return h;
}

bool XattrNameIs(const uint8_t* v, std::string_view name) {
  return v[0] == name.size() && std::memcmp(v + kXattrHeadSize, name.data(), name.size()) == 0;
}

//   0 device block u64 | 8 length in blocks u32 | 12 flags u32
void EncodeExtent(const ExtentRecord& x, uint8_t* v) {
  base::EncodeU64(v, x.device_block);
  base::EncodeU32(v + 8, x.blocks);
  base::EncodeU32(v + 12, x.flags);
}

Result<ExtentRecord> DecodeExtent(uint64_t ino, uint64_t file_block, const uint8_t* v) {
  ExtentRecord x{base::DecodeU64(v), base::DecodeU32(v + 8), base::DecodeU32(v + 12)};
  if (x.blocks == 0 || x.device_block == 0 || (x.flags & ~kExtentKnownFlags)) {
    return Status::Corruption(fmt::format(
        "extent of inode {} at file block {}: malformed (device block {}, {} blocks, flags 0x{:x})",
        ino, file_block, x.device_block, x.blocks, x.flags));
  }
  return x;
}

const char* SpecialOwnerName(uint64_t owner) {
  switch (owner) {
    case kOwnerSuperblock:
      return "superblock";
    case kOwnerMetadata:
      return "metadata";
    case kOwnerBad:
      return "bad";
  }
  return nullptr;
}

void EncodeRmapValue(const RmapRecord& r, uint8_t* v) {
  base::EncodeU64(v, r.blocks);
  base::EncodeU32(v + 8, r.flags);
  base::EncodeU32(v + 12, 0);
}

Result<RmapRecord> DecodeRmap(uint64_t device_block, uint64_t owner, uint64_t file_block,
                              const uint8_t* v) {
  RmapRecord r{device_block, owner, file_block, base::DecodeU64(v), base::DecodeU32(v + 8)};
  bool special = IsSpecialOwner(owner);
  if (r.blocks == 0 || r.blocks > UINT64_MAX - device_block || (r.flags & ~kRmapKnownFlags) ||
      (special && SpecialOwnerName(owner) == nullptr) || (special && file_block != 0) ||
      owner == 0) {
    return Status::Corruption(
        fmt::format("rmap record at device block {}: malformed (owner {}, file block {}, {} "
                    "blocks, flags 0x{:x})",
        device_block, owner, file_block, r.blocks, r.flags));
  }
  return r;
}

uint64_t RmapIntervalEnd(uint64_t device_block, const uint8_t* v) {
  uint64_t blocks = base::DecodeU64(v);
  return blocks > UINT64_MAX - device_block ? UINT64_MAX
                                            : device_block + std::max<uint64_t>(blocks, 1);
}

void EncodeRefcountValue(const RefcountRecord& r, uint8_t* v) {
  base::EncodeU64(v, r.blocks);
  base::EncodeU32(v + 8, r.refcount);
  base::EncodeU32(v + 12, 0);
}

Result<RefcountRecord> DecodeRefcount(uint64_t device_block, const uint8_t* v) {
  RefcountRecord r{device_block, base::DecodeU64(v), base::DecodeU32(v + 8)};
  if (r.blocks == 0 || r.blocks > UINT64_MAX - device_block || r.refcount < 2) {
    return Status::Corruption(
        fmt::format("refcount record at device block {}: malformed ({} blocks, count {})",
                    device_block, r.blocks, r.refcount));
  }
  return r;
}

static_assert(sizeof(uint64_t) + sizeof(uint64_t) == kPoisonValueSize,
              "lost value: blocks, device block");
static_assert(sizeof(uint64_t) + 2 * sizeof(uint32_t) == kPoisonValueSize,
              "bad value: blocks, flags, reserved");

void EncodeLostValue(const LostRecord& r, uint8_t* v) {
  base::EncodeU64(v, r.blocks);
  base::EncodeU64(v + 8, r.device_block);
}

Result<LostRecord> DecodeLost(uint64_t ino, uint64_t file_block, const uint8_t* v) {
  LostRecord r{ino, file_block, base::DecodeU64(v), base::DecodeU64(v + 8)};
  if (ino == 0 || r.blocks == 0 || r.blocks > UINT64_MAX - file_block ||
      r.blocks > UINT64_MAX - r.device_block || r.device_block == 0) {
    return Status::Corruption(fmt::format(
        "poison: lost-range record of inode {} at file block {} is malformed ({} blocks at device "
        "block {})",
        ino, file_block, r.blocks, r.device_block));
  }
  return r;
}

void EncodeBadValue(const BadRecord& r, uint8_t* v) {
  base::EncodeU64(v, r.blocks);
  base::EncodeU32(v + 8, r.flags);
  base::EncodeU32(v + 12, 0);
}

Result<BadRecord> DecodeBad(uint64_t device_block, uint64_t zero, const uint8_t* v) {
  BadRecord r{device_block, base::DecodeU64(v), base::DecodeU32(v + 8)};
  if (zero != 0 || r.blocks == 0 || r.blocks > UINT64_MAX - device_block ||
      (r.flags & ~kBadKnownFlags)) {
    return Status::Corruption(fmt::format(
        "poison: bad-range record at device block {} is malformed ({} blocks, flags 0x{:x}, key "
        "word {})",
        device_block, r.blocks, r.flags, zero));
  }
  return r;
}

}  // namespace daxfs::format
