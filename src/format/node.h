// The header every metadata block starts with, and its checksum. Pure encode/decode, no I/O.
//
//   offset size field
//   0      4    magic       kNodeMagic
//   4      2    type        BlockType
//   6      2    flags       reserved, 0
//   8      8    checksum    XXH3-64 of bytes [16, 4096) seeded with the u64 at [0, 8)
//   16     8    blockno     the block's own number (catches misdirected reads and writes)
//   24     8    generation  the transaction that wrote the block
//   32     ...  type-specific payload
#pragma once

#include <cstdint>
#include <string>

#include "daxfs/status.h"
#include "format/layout.h"

namespace daxfs::format {

inline constexpr uint32_t kNodeHeaderSize = 32;

struct NodeHeader {
  uint32_t magic = kNodeMagic;
  BlockType type = BlockType::kBTreeNode;
  uint16_t flags = 0;
  uint64_t checksum = 0;
  uint64_t blockno = 0;
  uint64_t generation = 0;
};

// Writes magic, type, flags, blockno and generation; leaves the checksum for SealBlock.
void EncodeNodeHeader(const NodeHeader& header, uint8_t* block);
NodeHeader DecodeNodeHeader(const uint8_t* block);

// Computes and stores the checksum of a 4 KiB block (call after the last change to it).
void SealBlock(uint8_t* block);
uint64_t ComputeBlockChecksum(const uint8_t* block);

// Verifies magic, checksum, type and own block number. The error is EUCLEAN and names what is
// wrong and where, e.g. "block 1234: checksum mismatch (stored 0x.., computed 0x..)".
Status VerifyBlock(const uint8_t* block, BlockType expected_type, uint64_t expected_blockno);

}  // namespace daxfs::format
