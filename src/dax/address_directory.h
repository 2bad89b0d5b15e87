// The process-wide directory of live daxfs mappings that a signal handler can read: for an
// address, which mapping, file page and device bytes it is, and whether the page is fenced.
// Readers are lock-free and async-signal-safe; writers (mapping tables) are serialised inside.
#pragma once

#include <cstddef>
#include <cstdint>

#include "daxfs/status.h"
#include "fs/mapping_hooks.h"

namespace daxfs::dax {

// What the signal handler learns about an address.
struct AddressInfo {
  uint64_t mapping_id = 0;
  Ino ino = 0;
  uint8_t* page = nullptr;                  // the 4 KiB page holding the address
  uint64_t file_offset = 0;                 // of `page`
  uint64_t device_offset = fs::kNoDevice;   // device bytes behind `page` (kData; kLost if known)
  fs::SegmentKind kind = fs::SegmentKind::kData;  // kLost: fenced; kBeyondEof: inaccessible
};

class AddressDirectory {
 public:
  static constexpr size_t kMaxLiveMappings = 65536;

  // Writers (a mapping table, under its own lock). `layout` covers exactly the mapping
  // ([file_offset, +length)); the directory keeps its own copy.
  // Returns the slot; ENOMEM when kMaxLiveMappings mappings are live.
  static Result<size_t> Register(uint64_t mapping_id, Ino ino, uint8_t* base, uint64_t file_offset,
                                 uint64_t length, const fs::MapLayout& layout);
  static void UpdateLayout(size_t slot, const fs::MapLayout& layout);
  static void Unregister(size_t slot);

  // Async-signal-safe: no locks, no allocation. False if `addr` is in no live daxfs mapping.
  static bool Lookup(const void* addr, AddressInfo* out);
};

}  // namespace daxfs::dax
