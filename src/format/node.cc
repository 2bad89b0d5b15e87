// Node header coding and block checksums. No I/O.
#include "format/node.h"

#include <fmt/core.h>

#include "base/checksum.h"
#include "base/coding.h"

namespace daxfs::format {

using base::DecodeU16;
using base::DecodeU32;
using base::DecodeU64;
using base::EncodeU16;
using base::EncodeU32;
using base::EncodeU64;

void EncodeNodeHeader(const NodeHeader& h, uint8_t* block) {
  EncodeU32(block + 0, h.magic);
  EncodeU16(block + 4, static_cast<uint16_t>(h.type));
  EncodeU16(block + 6, h.flags);
  EncodeU64(block + 8, h.checksum);
  EncodeU64(block + 16, h.blockno);
  EncodeU64(block + 24, h.generation);
}

NodeHeader DecodeNodeHeader(const uint8_t* block) {
  NodeHeader h;
  h.magic = DecodeU32(block + 0);
  h.type = static_cast<BlockType>(DecodeU16(block + 4));
  h.flags = DecodeU16(block + 6);
  h.checksum = DecodeU64(block + 8);
  h.blockno = DecodeU64(block + 16);
  h.generation = DecodeU64(block + 24);
  return h;
}

uint64_t ComputeBlockChecksum(const uint8_t* block) {
  return base::Checksum64(block + 16, kBlockSize - 16, DecodeU64(block));
}

void SealBlock(uint8_t* block) { EncodeU64(block + 8, ComputeBlockChecksum(block)); }

Status VerifyBlock(const uint8_t* block, BlockType expected_type, uint64_t expected_blockno) {
  NodeHeader h = DecodeNodeHeader(block);
  if (h.magic != kNodeMagic) {
    return Status::Corruption(
        fmt::format("block {}: bad magic 0x{:08x} (expected 0x{:08x})", expected_blockno, h.magic,
                    kNodeMagic));
  }
  uint64_t computed = ComputeBlockChecksum(block);
  if (computed != h.checksum) {
    return Status::Corruption(fmt::format("block {}: checksum mismatch (stored 0x{:016x}, computed 0x{:016x})",
                                          expected_blockno, h.checksum, computed));
  }
  if (h.type != expected_type) {
    return Status::Corruption(fmt::format("block {}: type {} where type {} was expected",
                                          expected_blockno, static_cast<unsigned>(h.type),
                                          static_cast<unsigned>(expected_type)));
  }
  if (h.blockno != expected_blockno) {
    return Status::Corruption(fmt::format("block {}: header says it is block {} (misdirected write?)",
                                          expected_blockno, h.blockno));
  }
  return Status::Ok();
}

}  // namespace daxfs::format
