// The live DAX mappings of one filesystem: creating them (one reserved address range, each
// extent's device range mapped into it with MAP_FIXED, holes as zero pages, lost pages fenced),
// keeping them right when the filesystem changes extents under them (the fs::MappingObserver),
// the per-file interval index of mappings (the kernel's i_mmap), notifying their handlers, and
// an async-signal-safe address directory for the SIGBUS handler. Knows nothing of failure
// routing policy (src/failure) or of the tracking designs beyond the OwnerTracker interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dax/address_directory.h"
#include "dax/tracker.h"
#include "daxfs/dax.h"
#include "fs/face.h"

namespace daxfs::dax {

struct MappingTableState;  // mapping_table.cc: the table's state, shared with mapping handles

class MappingTable final : public fs::MappingObserver {
 public:
  // Registers itself as `fs`'s mapping observer. `fs` must outlive the table.
  explicit MappingTable(fs::FsFace* fs);
  ~MappingTable() override;  // kills every live mapping (KillAll) and detaches from fs

  // Every tracker hears Join/Leave of every mapping; add them before the first Map.
  void AddTracker(OwnerTracker* tracker);

  // See DaxFs::Map. Uses FsFace::PrepareMapping, so the layout cannot change in between.
  Result<std::unique_ptr<Mapping>> Map(Ino ino, uint64_t offset, uint64_t length, MapProt prot,
                                       MappingHandler handler = {});

  // fs::MappingObserver: re-lays the affected pages of every mapping of `ino` in the range:
  // kData -> the (new) device bytes, kZero -> zero pages (a writable mapping: private zero pages
  // whose stores are lost; the filesystem never makes them in a writable mapping except by
  // punch/truncate), kLost -> fenced (PROT_NONE), kBeyondEof -> inaccessible (PROT_NONE).
  bool Watches(Ino ino) const override;
  bool HasWritableMappings(Ino ino) const override;
  void LayoutChanged(Ino ino, uint64_t offset, uint64_t length,
                     const fs::MapLayout& layout) override;

  // The per-file mapping index: every page of a live mapping of `ino` in [file_offset, +length)
  // that is currently backed by device bytes (kData), as victims (unsorted, unmerged). Used by the
  // fs-rmap design after the rmap named (ino, file range).
  std::vector<Victim> MappedPages(Ino ino, uint64_t file_offset, uint64_t length) const;

  // Calls each notice's mapping handler (in order; outside the table lock). Notices of mappings
  // gone meanwhile (unmapped or killed: notify before KillAll) are skipped. Returns how many
  // handlers ran.
  size_t Notify(const std::vector<MappingNotice>& notices);

  // Device removal: one notice per live mapping (the whole mapping, removal = true, no path).
  std::vector<MappingNotice> RemovalNotices() const;
  // Every mapping dies: its pages become inaccessible (PROT_NONE), it leaves the index and the
  // trackers, and its handle only releases the address range when destroyed.
  void KillAll();

  // Fences [address, +length) of mapping `id` (PROT_NONE) now, before the filesystem relays it.
  Status Fence(uint64_t mapping_id, uint8_t* address, uint64_t length);

  uint64_t live_mappings() const;
  // Tests: a lower limit than AddressDirectory::kMaxLiveMappings (65,536), so that ENOMEM can be
  // reached without exhausting the process's address-space map count.
  void SetMappingLimitForTesting(size_t limit);
  // Every live mapping (for removal notices and benchmarks).
  std::vector<TrackedMapping> LiveMappings() const;

 private:
  std::shared_ptr<MappingTableState> impl_;  // shared with the Mapping handles
};

}  // namespace daxfs::dax
