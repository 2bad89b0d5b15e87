// The fs-rmap design (Linux's choice: xfs_dax_notify_failure + mf_dax_kill_procs): nothing is
// kept per mapping or per page. At failure time the filesystem names every (file, offset) owner
// of the bad range from its reverse map (or, as the no-rmap baseline, by scanning every extent
// map), and each owner file's mapping index names the pages mapped there.
// The owner lookup is the filesystem's (fs/face.h); knows nothing of signals or of what is done
// to the victims. Also the null design (tracks and finds nothing).
#include <algorithm>

#include "dax/mapping_table.h"
#include "fs/face.h"
#include "tracking/trackers.h"

namespace daxfs::tracking {
namespace {

using dax::MappingTable;
using dax::NormalizeVictims;
using dax::TrackedMapping;

class FsRmapTracker final : public dax::OwnerTracker {
 public:
  FsRmapTracker(fs::FsFace* fs, const MappingTable* table, bool full_scan)
      : fs_(fs), table_(table), full_scan_(full_scan) {}

  Tracking design() const override { return full_scan_ ? Tracking::kFullScan : Tracking::kFsRmap; }
  void Join(const TrackedMapping&, std::span<const fs::MapSegment>) override {}
  void Leave(const TrackedMapping&, std::span<const fs::MapSegment>) override {}
  uint64_t TrackingBytes() const override { return 0; }

  Result<std::vector<Victim>> FindVictims(uint64_t offset, uint64_t length) override {
    if (length == 0) return std::vector<Victim>{};
    PageRange pages = Pages(offset, length);
    // The owners first (under the filesystem lock), then the mappings (under the table lock).
    Result<std::vector<FsmapRecord>> owners =
        full_scan_ ? fs_->FsmapByFullScan(pages.first, pages.end, std::nullopt, 0)
                   : fs_->Fsmap(pages.first, pages.end, std::nullopt, 0);
    if (!owners.ok()) return owners.status();
    std::vector<Victim> victims;
    for (const FsmapRecord& r : *owners) {
      if (r.flags & kFsmapSpecialOwner) continue;  // metadata: no mapping maps it
      AddVictims(pages, r.owner, r.offset, r.length, &victims);
    }
    NormalizeVictims(&victims);
    return victims;
  }

  // On the failure path the filesystem has named the owners already: only the mappings remain.
  Result<std::vector<Victim>> FindVictimsOf(uint64_t offset, uint64_t length,
                                            std::span<const FileRangeLoss> owners) override {
    if (length == 0) return std::vector<Victim>{};
    PageRange pages = Pages(offset, length);
    std::vector<Victim> victims;
    for (const FileRangeLoss& o : owners) {
      AddVictims(pages, o.ino, o.file_offset, o.length, &victims);
    }
    NormalizeVictims(&victims);
    return victims;
  }

 private:
  struct PageRange {
    uint64_t first, end;  // device bytes, whole pages
  };
  static PageRange Pages(uint64_t offset, uint64_t length) {
    uint64_t first = offset / fs::kPageBytes * fs::kPageBytes;
    uint64_t end = offset + std::min<uint64_t>(length, ~0ULL - offset);
    end = end > ~0ULL - (fs::kPageBytes - 1)
              ? ~0ULL / fs::kPageBytes * fs::kPageBytes
              : (end + fs::kPageBytes - 1) / fs::kPageBytes * fs::kPageBytes;
    return {first, end};
  }

  // The mapped pages of the owner range [file_offset, +length) of `ino` whose device bytes (as
  // the mapping holds them) are in `pages`. Owner ranges are disjoint, so no page is named twice.
  void AddVictims(PageRange pages, Ino ino, uint64_t file_offset, uint64_t length,
                  std::vector<Victim>* victims) const {
    for (const Victim& v : table_->MappedPages(ino, file_offset, length)) {
      uint64_t a = std::max(v.device_offset, pages.first);
      uint64_t b = std::min(v.device_offset + v.length, pages.end);
      if (a >= b) continue;
      uint64_t skip = a - v.device_offset;
      victims->push_back({.mapping_id = v.mapping_id,
                          .address = v.address + skip,
                          .length = b - a,
                          .ino = v.ino,
                          .file_offset = v.file_offset + skip,
                          .device_offset = a});
    }
  }

  fs::FsFace* fs_;
  const MappingTable* table_;
  bool full_scan_;
};

class NullTracker final : public dax::OwnerTracker {
 public:
  Tracking design() const override { return Tracking::kNone; }
  void Join(const TrackedMapping&, std::span<const fs::MapSegment>) override {}
  void Leave(const TrackedMapping&, std::span<const fs::MapSegment>) override {}
  Result<std::vector<Victim>> FindVictims(uint64_t, uint64_t) override {
    return std::vector<Victim>{};
  }
  uint64_t TrackingBytes() const override { return 0; }
};

}  // namespace

std::unique_ptr<dax::OwnerTracker> NewFsRmapTracker(fs::FsFace* fs, const dax::MappingTable* table,
                                                    bool full_scan) {
  return std::make_unique<FsRmapTracker>(fs, table, full_scan);
}

std::unique_ptr<dax::OwnerTracker> NewNullTracker() { return std::make_unique<NullTracker>(); }

}  // namespace daxfs::tracking
