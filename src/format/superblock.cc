// Superblock and chunk-record coding, validation and slot selection. No I/O.
#include "format/superblock.h"

#include <fmt/core.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/coding.h"
#include "format/node.h"

namespace daxfs::format {

uint64_t Superblock::ChunkBlockCount(uint64_t chunk) const {
  uint64_t first = ChunkFirstBlock(chunk);
  uint64_t total = total_blocks();
  if (first >= total) return 0;
  return std::min(chunk_blocks(), total - first);
}

const TwinTable& Superblock::twins() const {
  static const TwinTable kNone;
  return twin_table ? *twin_table : kNone;
}

int64_t Superblock::TwinOf(uint64_t chunk) const {
  for (const TwinPair& p : twins()) {
    if (p.primary == chunk) return p.twin;
  }
  return -1;
}

std::string Superblock::Label() const {
  return std::string(label.data(), strnlen(label.data(), label.size()));
}

std::string Superblock::UuidString() const {
  const auto& u = uuid;
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
      u[14], u[15]);
}

void EncodeSuperblock(const Superblock& sb, uint64_t slot_block, uint8_t* block) {
  std::memset(block, 0, kBlockSize);
  EncodeNodeHeader({.type = BlockType::kSuperblock, .blockno = slot_block, .generation = sb.generation},
                   block);
  base::Encoder e(block + kNodeHeaderSize, kBlockSize - kNodeHeaderSize);
  e.PutU64(kSuperblockMagic);
  e.PutU32(sb.version);
  e.PutU32(sb.block_size);
  e.PutU64(sb.compat);
  e.PutU64(sb.ro_compat);
  e.PutU64(sb.incompat);
  e.PutBytes(sb.uuid.data(), sb.uuid.size());
  e.PutU64(sb.device_size);
  e.PutU64(sb.chunk_size);
  e.PutU64(sb.chunk_count);
  e.PutU64(sb.state);
  e.PutU64(sb.create_time_ns);
  e.PutU64(sb.commit_time_ns);
  e.PutBytes(sb.label.data(), sb.label.size());
  base::Encoder r(block + kSbRootTableOffset, kMaxTrees * kSbRootEntrySize);
  for (const TreeRoot& t : sb.trees) {
    r.PutU64(t.root);
    r.PutU64(t.records);
    r.PutU16(t.key_words);
    r.PutU16(t.value_size);
    r.PutU16(t.flags);
    r.PutU16(0);
  }
  const TwinTable& twins = sb.twins();
  base::EncodeU32(block + kSbTwinTableOffset,
                  static_cast<uint32_t>(std::min<size_t>(twins.size(), kMaxTwinPairs)));
  for (size_t i = 0; i < twins.size() && i < kMaxTwinPairs; ++i) {
    uint8_t* pair = block + kSbTwinPairsOffset + i * kSbTwinPairSize;
    base::EncodeU32(pair, twins[i].primary);
    base::EncodeU32(pair + 4, twins[i].twin);
  }
  SealBlock(block);
}

Result<Superblock> DecodeSuperblock(const uint8_t* block, uint64_t slot_block) {
  base::Decoder d(block + kNodeHeaderSize, kBlockSize - kNodeHeaderSize);
  if (d.GetU64() != kSuperblockMagic) {
    return Status::Corruption(fmt::format("superblock slot {} (block {}): wrong magic", slot_block,
                                          slot_block));
  }
  Status header = VerifyBlock(block, BlockType::kSuperblock, slot_block);
  if (!header.ok()) return header.WithContext(fmt::format("superblock slot {}", slot_block));
  Superblock sb;
  sb.generation = DecodeNodeHeader(block).generation;
  sb.version = d.GetU32();
  sb.block_size = d.GetU32();
  sb.compat = d.GetU64();
  sb.ro_compat = d.GetU64();
  sb.incompat = d.GetU64();
  d.GetBytes(sb.uuid.data(), sb.uuid.size());
  sb.device_size = d.GetU64();
  sb.chunk_size = d.GetU64();
  sb.chunk_count = d.GetU64();
  sb.state = d.GetU64();
  sb.create_time_ns = d.GetU64();
  sb.commit_time_ns = d.GetU64();
  d.GetBytes(sb.label.data(), sb.label.size());
  base::Decoder r(block + kSbRootTableOffset, kMaxTrees * kSbRootEntrySize);
  for (TreeRoot& t : sb.trees) {
    t.root = r.GetU64();
    t.records = r.GetU64();
    t.key_words = r.GetU16();
    t.value_size = r.GetU16();
    t.flags = r.GetU16();
    r.GetU16();
  }
  if (!d.ok() || !r.ok()) {
    return Status::Corruption(fmt::format("superblock slot {}: truncated", slot_block));
  }
  uint32_t pairs = base::DecodeU32(block + kSbTwinTableOffset);
  if (pairs > kMaxTwinPairs || base::DecodeU32(block + kSbTwinTableOffset + 4) != 0) {
    return Status::Corruption(
        fmt::format("superblock slot {}: twin table holds {} pairs (at most {})", slot_block, pairs,
                    kMaxTwinPairs));
  }
  if (pairs > 0) {
    TwinTable table(pairs);
    for (uint32_t i = 0; i < pairs; ++i) {
      const uint8_t* pair = block + kSbTwinPairsOffset + i * kSbTwinPairSize;
      table[i] = {.primary = base::DecodeU32(pair), .twin = base::DecodeU32(pair + 4)};
    }
    sb.SetTwins(std::move(table));
  }
  return sb;
}

Status CheckGeometry(const Superblock& sb) {
  auto bad = [&](std::string why) {
    return Status::Corruption(fmt::format("superblock (generation {}): {}", sb.generation, why));
  };
  if (sb.block_size != kBlockSize) return bad(fmt::format("block size {} is not 4096", sb.block_size));
  if (sb.device_size < 2 * kMinChunkSize || sb.device_size % kBlockSize != 0) {
    return bad(fmt::format("device size {} is invalid", sb.device_size));
  }
  if (!std::has_single_bit(sb.chunk_size) || sb.chunk_size < kMinChunkSize ||
      sb.chunk_size > kMaxChunkSize) {
    return bad(fmt::format("chunk size {} is invalid", sb.chunk_size));
  }
  uint64_t expected_chunks = (sb.device_size + sb.chunk_size - 1) / sb.chunk_size;
  if (sb.chunk_count != expected_chunks) {
    return bad(fmt::format("chunk count {} does not match device size {} (expected {})",
                           sb.chunk_count, sb.device_size, expected_chunks));
  }
  for (uint16_t id = 0; id < kMaxTrees; ++id) {
    const TreeRoot& t = sb.trees[id];
    if (t.root == 0 && t.records != 0) {
      return bad(fmt::format("tree {} is empty but claims {} records", id, t.records));
    }
    if (t.root != 0 && (t.root < kFirstNodeBlock || t.root >= sb.total_blocks())) {
      return bad(fmt::format("tree {} root block {} is outside the device", id, t.root));
    }
    if (t.root != 0 && (t.key_words == 0 || t.key_words > 4 || t.value_size > 1024)) {
      return bad(fmt::format("tree {} has an invalid shape ({} key words, {} value bytes)", id,
                             t.key_words, t.value_size));
    }
  }
  return CheckTwinTable(sb);
}

Status CheckTwinTable(const Superblock& sb) {
  auto bad = [&](std::string why) {
    return Status::Corruption(
        fmt::format("superblock (generation {}): twin table: {}", sb.generation, why));
  };
  const TwinTable& twins = sb.twins();
  if (!sb.metadup()) {
    if (!twins.empty())
      return bad(fmt::format("{} pairs without the metadup feature", twins.size()));
    return Status::Ok();
  }
  if (sb.TwinOf(0) < 0) return bad("chunk 0 has no twin");
  std::vector<uint32_t> chunks;
  for (const TwinPair& p : twins) {
    if (p.primary >= sb.chunk_count || p.twin >= sb.chunk_count) {
      return bad(fmt::format("pair ({}, {}) is beyond the last chunk {}", p.primary, p.twin,
                             sb.chunk_count - 1));
    }
    if (p.primary == p.twin) return bad(fmt::format("chunk {} is its own twin", p.primary));
    if (p.twin == 0) return bad("chunk 0 is a twin");
    if (sb.ChunkBlockCount(p.twin) < sb.ChunkBlockCount(p.primary)) {
      return bad(
          fmt::format("twin chunk {} is shorter than its primary chunk {}", p.twin, p.primary));
    }
    chunks.push_back(p.primary);
    chunks.push_back(p.twin);
  }
  std::sort(chunks.begin(), chunks.end());
  auto dup = std::adjacent_find(chunks.begin(), chunks.end());
  if (dup != chunks.end()) return bad(fmt::format("chunk {} is in more than one pair", *dup));
  return Status::Ok();
}

Status CheckSupported(const Superblock& sb, bool* read_only_only) {
  *read_only_only = false;
  if (sb.version != kFormatVersion) {
    return Status::NotSupported(fmt::format(
        "unsupported format version {} (this build reads version {})", sb.version, kFormatVersion));
  }
  if (uint64_t unknown = sb.incompat & ~feature::kKnownIncompat) {
    return Status::NotSupported(
        fmt::format("unsupported incompatible features 0x{:x}; refusing to mount", unknown));
  }
  if (uint64_t unknown = sb.ro_compat & ~feature::kKnownRoCompat) {
    *read_only_only = true;
    return Status::ReadOnly(fmt::format(
        "unsupported read-only-compatible features 0x{:x}; only a read-only mount is possible",
        unknown));
  }
  return Status::Ok();
}

Result<Superblock> SelectSuperblock(const uint8_t* slot0, const uint8_t* slot1, int* chosen_slot) {
  Result<Superblock> a = DecodeSuperblock(slot0, kSuperblockSlots[0]);
  Result<Superblock> b = DecodeSuperblock(slot1, kSuperblockSlots[1]);
  if (a.ok() && !CheckGeometry(*a).ok()) a = CheckGeometry(*a);
  if (b.ok() && !CheckGeometry(*b).ok()) b = CheckGeometry(*b);
  if (!a.ok() && !b.ok()) {
    auto wrong_magic = [](const Status& s) {
      return s.message().find("wrong magic") != std::string::npos;
    };
    if (wrong_magic(a.status()) && wrong_magic(b.status())) {
      return Status::Corruption("not a daxfs image: no superblock magic in block 0 or block 1");
    }
    return Status::Corruption(fmt::format("no valid superblock: {}; {}", a.status().message(),
                                          b.status().message()));
  }
  bool pick_b = b.ok() && (!a.ok() || b->generation > a->generation);
  if (chosen_slot) *chosen_slot = pick_b ? 1 : 0;
  return pick_b ? std::move(b) : std::move(a);
}

void EncodeChunkRecord(const ChunkRecord& rec, uint8_t* value) {
  base::EncodeU32(value, static_cast<uint32_t>(rec.type));
  base::EncodeU32(value + 4, rec.partner);
}

Result<ChunkRecord> DecodeChunkRecord(uint64_t chunk, const uint8_t* value) {
  ChunkRecord rec;
  uint32_t type = base::DecodeU32(value);
  if (type != static_cast<uint32_t>(ChunkType::kMetadata) &&
      type != static_cast<uint32_t>(ChunkType::kData) &&
      type != static_cast<uint32_t>(ChunkType::kMetadataTwin)) {
    return Status::Corruption(fmt::format("chunk table: chunk {} has unknown type {}", chunk, type));
  }
  rec.type = static_cast<ChunkType>(type);
  rec.partner = base::DecodeU32(value + 4);
  return rec;
}

const char* ChunkTypeName(ChunkType type) {
  switch (type) {
    case ChunkType::kMetadata:
      return "METADATA";
    case ChunkType::kData:
      return "DATA";
    case ChunkType::kMetadataTwin:
      return "METADATA_TWIN";
  }
  return "UNKNOWN";
}

}  // namespace daxfs::format
