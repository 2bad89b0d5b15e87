// The assembled engine behind daxfs/dax.h: a mounted filesystem with its mapping table, the
// chosen owner-tracking design (and shadows), the failure router, the event log, the SIGBUS
// source and the bad-block scan at mount. Wiring only; every policy lives in its layer.
#include <fmt/core.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "base/log.h"
#include "dax/mapping_table.h"
#include "daxfs/dax.h"
#include "device/device.h"
#include "engine/engine_parts.h"
#include "failure/event_log.h"
#include "failure/router.h"
#include "failure/signals.h"
#include "fs/face.h"
#include "scrub/mount.h"
#include "tracking/trackers.h"

namespace daxfs {

const char* TrackingName(Tracking t) {
  switch (t) {
    case Tracking::kFsRmap:
      return "fs-rmap";
    case Tracking::kPageRmap:
      return "page-rmap";
    case Tracking::kExtentSpace:
      return "extent-space";
    case Tracking::kFullScan:
      return "full-scan";
    case Tracking::kNone:
      return "none";
  }
  return "unknown";
}

Result<Tracking> ParseTracking(std::string_view name) {
  for (Tracking t : {Tracking::kFsRmap, Tracking::kPageRmap, Tracking::kExtentSpace,
                     Tracking::kFullScan, Tracking::kNone}) {
    if (name == TrackingName(t)) return t;
  }
  return Status::Invalid(fmt::format(
      "unknown tracking design '{}' (fs-rmap, page-rmap, extent-space, full-scan, none)", name));
}

namespace {

// Writes each metadata repair to the event log (called under the filesystem lock).
class RepairLogger final : public fs::RepairObserver {
 public:
  explicit RepairLogger(failure::EventLog* log) : log_(log) {}
  void Repaired(const std::vector<MetadataRepair>& repairs) override {
    for (const MetadataRepair& r : repairs) {
      base::Log(base::LogLevel::kInfo, "metadata repair: node slot {} {} ({}), {}", r.block,
                MetadataRepairKindName(r.kind), r.reason,
                r.kind == MetadataRepair::Kind::kRelocated
                    ? fmt::format("moved to block {}", r.new_block)
                    : std::string("not moved"));
    }
    Status s = log_->AppendRepairs(repairs);
    if (!s.ok()) base::Log(base::LogLevel::kError, "event log: {}", s.ToString());
  }

 private:
  failure::EventLog* log_;
};

class DaxFsImpl final : public DaxFs {
 public:
  DaxFsImpl(std::unique_ptr<device::Device> owned, std::unique_ptr<fs::FsFace> fs)
      : owned_device_(std::move(owned)), fs_(std::move(fs)) {}

  ~DaxFsImpl() override {
    if (!unmounted_) {
      Status s = Unmount();
      if (!s.ok()) base::Log(base::LogLevel::kError, "unmount at close failed: {}", s.ToString());
    }
  }

  Status Start(const DaxOptions& options) {
    table_ = std::make_unique<dax::MappingTable>(fs_.get());
    // Without the rmap, fs-rmap falls back to its own baseline: owners by scanning extent maps.
    Tracking primary = options.tracking;
    if (primary == Tracking::kFsRmap && !fs_->has_rmap()) primary = Tracking::kFullScan;
    std::vector<Tracking> designs = {primary};
    for (Tracking t : options.shadow_tracking) {
      if (std::find(designs.begin(), designs.end(), t) == designs.end()) designs.push_back(t);
    }
    for (Tracking t : designs) {
      ASSIGN_OR_RETURN(std::unique_ptr<dax::OwnerTracker> tracker, NewTracker(t));
      table_->AddTracker(tracker.get());
      trackers_.push_back(std::move(tracker));
    }
    if (!options.event_log.empty()) {
      log_ = std::make_unique<failure::EventLog>(options.event_log);
      // Metadata repairs from twins (found by reads, failures, the mount) are events too.
      repair_logger_ = std::make_unique<RepairLogger>(log_.get());
      fs_->SetRepairObserver(repair_logger_.get());
    }
    router_ =
        std::make_unique<failure::Router>(fs_.get(), table_.get(), trackers_[0].get(), log_.get());
    if (options.scan_bad_blocks) {
      Status scanned = ScanBadBlocks();
      // A filesystem whose metadata is damaged mounts shut down (read-only) so that check and
      // errors still work; routing its bad list may then fail: that must not stop the mount.
      if (!scanned.ok()) {
        if (!fs_->read_only()) return scanned;
        base::Log(base::LogLevel::kError, "the bad-block list could not be routed: {}",
                  scanned.ToString());
      }
    }
    if (options.handle_signals) {
      RETURN_IF_ERROR(
          failure::InstallSignalHandler([this](const failure::SignalEvent& e) { OnSignal(e); }));
      signals_ = true;
    }
    return Status::Ok();
  }

  Filesystem& fs() override { return *fs_; }
  engine::EngineParts parts() { return {fs_.get(), table_.get(), router_.get()}; }

  Result<std::unique_ptr<Mapping>> Map(Ino ino, uint64_t offset, uint64_t length, MapProt prot,
                                       MappingHandler handler) override {
    if (unmounted_) return Status::IoError("the filesystem is unmounted");
    return table_->Map(ino, offset, length, prot, std::move(handler));
  }

  Result<FailureReport> NotifyFailure(uint64_t offset, uint64_t length, uint32_t flags) override {
    if (unmounted_) return Status::IoError("the filesystem is unmounted");
    Result<FailureReport> r = router_->NotifyFailure(offset, length, flags);
    if (r.ok() && r->unmounted) unmounted_ = true;
    Observe(r);
    return r;
  }

  Result<FailureReport> InjectError(uint64_t offset, uint64_t length) override {
    if (unmounted_) return Status::IoError("the filesystem is unmounted");
    Result<FailureReport> r = router_->InjectError(offset, length);
    if (r.ok() && r->unmounted) unmounted_ = true;
    Observe(r);
    return r;
  }

  void SetLossObserver(LossObserver observer) override {
    auto held = observer ? std::make_shared<const LossObserver>(std::move(observer)) : nullptr;
    std::lock_guard<std::mutex> lock(observer_mu_);
    observer_ = std::move(held);
  }

  Result<DeviceRange> InjectLatentError(uint64_t offset, uint64_t length) override {
    if (unmounted_) return Status::IoError("the filesystem is unmounted");
    if (length == 0) return Status::Invalid("inject latent error: empty range");
    const uint64_t block = 4096;
    uint64_t start = offset & ~(block - 1);
    if (offset > UINT64_MAX - length) return Status::Invalid("inject latent error: range overflows");
    uint64_t end = offset + length;
    if (end % block != 0) {
      if (end > UINT64_MAX - block) return Status::Invalid("inject latent error: range overflows");
      end = (end | (block - 1)) + 1;
    }
    RETURN_IF_ERROR(fs_->device()->InjectPoison(start, end - start));
    return DeviceRange{start, end - start};
  }

  std::vector<FailureReport> mount_reports() const override { return mount_reports_; }

  Result<ScrubReport> Scrub(const ScrubOptions& options) override {
    if (unmounted_) return Status::IoError("the filesystem is unmounted");
    uint32_t flags = fs_->device()->IsPmem() ? 0u : uint32_t{kFailureSimulated};
    return fs_->Scrub(options, [&](uint64_t offset, uint64_t length) -> Result<MediaFailureRecord> {
      Result<FailureReport> r = router_->NotifyFailure(offset, length, flags);
      Observe(r);
      if (!r.ok()) return r.status();
      return r->media;
    });
  }

  Status WaitForSignals() override {
    if (!signals_) return Status::Invalid("this filesystem does not handle signals");
    return failure::WaitForSignalEvents();
  }

  Result<std::vector<Victim>> FindVictims(Tracking design, uint64_t offset,
                                          uint64_t length) override {
    for (auto& t : trackers_) {
      if (t->design() == design) return t->FindVictims(offset, length);
    }
    return Status::Invalid(
        fmt::format("tracking design {} is not attached (add it to "
                    "DaxOptions::shadow_tracking)",
                    TrackingName(design)));
  }

  uint64_t TrackingBytes(Tracking design) const override {
    for (auto& t : trackers_) {
      if (t->design() == design) return t->TrackingBytes();
    }
    return 0;
  }

  uint64_t live_mappings() const override { return table_ ? table_->live_mappings() : 0; }

  Status Unmount() override {
    if (unmounted_) return Status::IoError("the filesystem is already unmounted");
    if (signals_) {
      failure::UninstallSignalHandler();
      signals_ = false;
    }
    if (table_) table_->KillAll();
    Status s = fs_->Unmount();
    if (repair_logger_) fs_->SetRepairObserver(nullptr);
    unmounted_ = true;
    return s;
  }

 private:
  Result<std::unique_ptr<dax::OwnerTracker>> NewTracker(Tracking t) {
    switch (t) {
      case Tracking::kFsRmap:
        if (!fs_->has_rmap()) {
          return Status::NotSupported(
              "fs-rmap tracking needs a filesystem made with the rmap "
              "(use full-scan)");
        }
        return tracking::NewFsRmapTracker(fs_.get(), table_.get(), false);
      case Tracking::kFullScan:
        return tracking::NewFsRmapTracker(fs_.get(), table_.get(), true);
      case Tracking::kPageRmap:
        return tracking::NewPageRmapTracker();
      case Tracking::kExtentSpace:
        return tracking::NewExtentSpaceTracker();
      case Tracking::kNone:
        return tracking::NewNullTracker();
    }
    return Status::Invalid("unknown tracking design");
  }

  // Tells the loss observer (if any) about every owner `r` recorded lost.
  void Observe(const Result<FailureReport>& r) {
    if (!r.ok() || r->media.owners.empty()) return;
    std::shared_ptr<const LossObserver> observer;
    {
      std::lock_guard<std::mutex> lock(observer_mu_);
      observer = observer_;
    }
    if (!observer) return;
    for (const FileRangeLoss& lost : r->media.owners) (*observer)(lost);
  }

  // Routes every bad range of the device's list that the filesystem has not recorded yet (at
  // mount no mapping exists, so this is the filesystem's part only, plus the log).
  Status ScanBadBlocks() {
    std::vector<device::BadRange> bad = fs_->device()->BadRanges();
    if (bad.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(MediaErrorList known, fs_->MediaErrors());
    std::vector<DeviceRange> recorded = known.retired;
    for (const FileRangeLoss& l : known.lost) recorded.push_back({l.device_offset, l.length});
    for (const RangePiece& m : known.metadata_damage) recorded.push_back({m.offset, m.length});
    for (const DeviceRange& m : known.retired_metadata) recorded.push_back(m);
    for (const device::BadRange& r : bad) {
      if (Covered(recorded, r.offset, r.length)) continue;
      ASSIGN_OR_RETURN(FailureReport report,
                       router_->NotifyFailure(r.offset, r.length, kFailureSimulated));
      mount_reports_.push_back(std::move(report));
    }
    return Status::Ok();
  }

  // Whether every 4 KiB block of [offset, +length) overlaps one of `ranges`.
  static bool Covered(const std::vector<DeviceRange>& ranges, uint64_t offset, uint64_t length) {
    uint64_t first = offset / 4096, end = (offset + length + 4095) / 4096;
    for (uint64_t b = first; b < end; ++b) {
      bool hit = false;
      for (const DeviceRange& d : ranges) {
        if (d.offset < (b + 1) * 4096 && b * 4096 < d.offset + d.length) {
          hit = true;
          break;
        }
      }
      if (!hit) return false;
    }
    return true;
  }

  void OnSignal(const failure::SignalEvent& e) {
    if (e.dropped > 0) {
      base::Log(base::LogLevel::kError, "{} SIGBUS events were dropped (the queue of {} was full)",
                e.dropped, failure::kSignalQueueSize);
    }
    if (e.fence_trap) {
      router_->ReportTrap(e.info);
      return;
    }
    if (e.info.device_offset == fs::kNoDevice) return;  // a zero page: nothing on the device
    uint64_t granule = uint64_t{1} << std::clamp(e.address_lsb, 12, 30);
    uint64_t start = e.info.device_offset & ~(granule - 1);
    uint32_t flags = e.action_required ? uint32_t{kFailureActionRequired} : 0u;
    Result<FailureReport> r = NotifyFailure(start, granule, flags);
    if (!r.ok())
      base::Log(base::LogLevel::kError, "routing a SIGBUS failed: {}", r.status().ToString());
  }

  std::unique_ptr<device::Device> owned_device_;
  std::unique_ptr<fs::FsFace> fs_;
  // Destroyed in reverse order: the table (which tells the trackers every mapping left) before
  // the trackers, both before the filesystem.
  std::vector<std::unique_ptr<dax::OwnerTracker>> trackers_;
  std::unique_ptr<dax::MappingTable> table_;
  std::unique_ptr<failure::EventLog> log_;
  std::unique_ptr<RepairLogger> repair_logger_;
  std::unique_ptr<failure::Router> router_;
  std::vector<FailureReport> mount_reports_;
  bool signals_ = false;
  bool unmounted_ = false;
  std::mutex observer_mu_;
  std::shared_ptr<const LossObserver> observer_;  // SetLossObserver
};

Result<std::unique_ptr<DaxFs>> OpenOn(device::Device* device, std::unique_ptr<device::Device> owned,
                                      const DaxOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<fs::FsFace> fs, scrub::Mount(device, nullptr, options.mount));
  auto dax = std::make_unique<DaxFsImpl>(std::move(owned), std::move(fs));
  RETURN_IF_ERROR(dax->Start(options));
  return std::unique_ptr<DaxFs>(std::move(dax));
}

}  // namespace

engine::EngineParts engine::PartsOf(DaxFs& dax) { return static_cast<DaxFsImpl&>(dax).parts(); }

Result<std::unique_ptr<DaxFs>> DaxFs::Open(const std::string& path, const DaxOptions& options) {
  Result<std::unique_ptr<device::Device>> dev =
      device::OpenDevice(path, {.read_only = options.mount.read_only});
  if (!dev.ok()) return dev.status();
  device::Device* raw = dev->get();
  Result<std::unique_ptr<DaxFs>> r = OpenOn(raw, std::move(*dev), options);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

Result<std::unique_ptr<DaxFs>> DaxFs::Open(device::Device* device, const DaxOptions& options) {
  return OpenOn(device, nullptr, options);
}

}  // namespace daxfs
