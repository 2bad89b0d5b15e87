// Pieces shared by pool.cc and twins.cc: helpers and the superblock-copy selection at mount.
// Not part of the txn layer's interface; knows nothing beyond what pool.h knows.
#pragma once

#include <cstdint>
#include <string>

#include "btree/btree.h"
#include "daxfs/status.h"
#include "device/device.h"
#include "format/superblock.h"

namespace daxfs::txn::internal {

// Free nodes kept back so that the chunk table can always record a new metadata chunk (with
// metadup: the chunk and its twin).
inline constexpr uint64_t kNodeReserve = 16;

uint64_t NowNs();
std::string TreeName(uint16_t id);
format::TreeRoot ShapeOf(const btree::TreeSpec& spec);
// A chunk_types_ entry for messages: the type's name, or "unallocated" for -1.
std::string ChunkTypeLabel(int8_t type);

// The superblock mount takes: the valid copy with the highest generation among the two slots
// and, with metadup, their twins (blocks 0 and 1 of chunk 0's twin, found from the newest valid
// slot, or when neither slot is readable by scanning chunk starts).
struct SuperblockChoice {
  format::Superblock sb;
  int slot = 0;
  // With metadup: the other copy of the chosen slot when it is invalid or differs (a crash
  // between the two copies), to be rewritten from `good_copy`; UINT64_MAX when none.
  uint64_t stale_copy = UINT64_MAX;
  uint64_t good_copy = 0;
};
Result<SuperblockChoice> ChooseSuperblock(device::Device* device);

// Format: zeroes (and flushes, without draining) every block 0 or 1 of a chunk start that holds
// the superblock magic, so that no twin superblock of an older image can be found by the scan.
Status ClearStaleSuperblockCopies(device::Device* device);

}  // namespace daxfs::txn::internal
