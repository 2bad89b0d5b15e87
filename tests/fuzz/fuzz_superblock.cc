// libFuzzer target: the superblock decoders. Input: up to two 4 KiB slots (shorter input is
// zero-padded). Selection, geometry and feature checks must never crash or read out of bounds.
#include <cstdint>
#include <cstring>
#include <vector>

#include "format/layout.h"
#include "format/superblock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace daxfs::format;
  std::vector<uint8_t> slots(2 * kBlockSize, 0);
  std::memcpy(slots.data(), data, std::min(size, slots.size()));
  int slot = -1;
  daxfs::Result<Superblock> sb = SelectSuperblock(slots.data(), slots.data() + kBlockSize, &slot);
  if (sb.ok()) {
    bool ro = false;
    CheckSupported(*sb, &ro).IgnoreError();
    (void)sb->UuidString();
    (void)sb->Label();
    for (uint64_t c = 0; c < std::min<uint64_t>(sb->chunk_count, 4); ++c) (void)sb->ChunkBlockCount(c);
    // Re-encoding a decoded superblock must give a block that decodes to the same thing.
    std::vector<uint8_t> again(kBlockSize);
    EncodeSuperblock(*sb, slot, again.data());
    daxfs::Result<Superblock> back = DecodeSuperblock(again.data(), slot);
    if (!back.ok() || back->generation != sb->generation || back->trees != sb->trees ||
        back->twins() != sb->twins()) {
      __builtin_trap();
    }
  }
  return 0;
}
