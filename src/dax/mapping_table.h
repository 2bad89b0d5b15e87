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
#include "daxfs/layout.h"
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

  // A layout lease (daxfs/layout.h): a mapping whose pages live in another process. It is in the
  // per-file index and every tracker like a local mapping, with a placeholder address range
  // (kLeaseBase + offset inside the lease; never a real address) and no address-directory entry.
  // Layout changes reach `sink` in two phases (LayoutChanged while the filesystem re-lays, Settle
  // once per operation in LayoutChangesDone); Notify calls sink->Failure. Uses PrepareMapping,
  // exactly as Map. `sink` must outlive the lease; destroy the lease with ReleaseLease.
  static constexpr uint64_t kLeaseBase = uint64_t{1} << 60;
  struct LeaseInfo {
    uint64_t id = 0;
    Layout initial_layout;
  };
  Result<LeaseInfo> MapLease(Ino ino, uint64_t offset, uint64_t length, MapProt prot,
                             const LeaseOwner& owner, LayoutSink* sink);
  // Takes the lease out of the table and waits for a sink call in flight; the sink is never
  // called again.
  void ReleaseLease(uint64_t id);
  // The lease's layout of the page at lease byte `offset` (EINVAL outside it), as the signal
  // handler's AddressInfo for a local mapping.
  Result<AddressInfo> LeasePage(uint64_t id, uint64_t offset) const;
  // Rewrites the notices of leases to the client's own addresses (ClientAddress + offset; the
  // offset alone while the client has not said where it mapped) and fills in every notice's
  // process (the lease owner's, or this process's for a local mapping).
  void ResolveNotices(std::vector<MappingNotice>* notices) const;
  size_t live_leases() const;
  void LayoutChangesDone() override;

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
