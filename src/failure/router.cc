// Failure routing: the range checked once (fs::CheckFailedRange); the filesystem plans the
// failure, naming the owners once, and while every mapping still maps the failed bytes the
// victims are found (from those owners, for the designs that ask the filesystem); then the
// filesystem records the loss; then every victim is fenced, the handlers told, the event logged.
//
// Fencing happens twice, on purpose: the filesystem's record of a loss re-lays the lost pages of
// every mapping of the owner files as fenced (through the mapping observer, like any layout
// change: that also covers mappings the tracking design does not see, e.g. design `none`, and
// every later mapping of the range); the router then fences each victim explicitly, so a mapping
// stops reading the failed bytes even when the filesystem could not record the loss (no space
// for the poison records, unreadable metadata, a shutdown). Fencing a fenced page is a no-op.
#include "failure/router.h"

#include <fmt/core.h>

#include <map>
#include <optional>

#include "base/log.h"
#include "device/device.h"

namespace daxfs::failure {

std::string Router::PathOf(Ino ino) {
  Result<std::string> p = fs_->PathOf(ino);
  return p.ok() ? *p : std::string();
}

void Router::Log(std::string_view event, const FailureReport& report) {
  if (log_ == nullptr) return;
  Status s = log_->Append(event, report);
  if (!s.ok()) base::Log(base::LogLevel::kError, "event log: {}", s.ToString());
}

namespace {

// Finds the victims at the moment the filesystem has planned the failure (under its lock).
class VictimsAtPlan final : public fs::FailurePlanObserver {
 public:
  explicit VictimsAtPlan(dax::OwnerTracker* tracker) : tracker_(tracker) {}
  void Planned(const DeviceRange& range, const std::vector<FileRangeLoss>& owners) override {
    found_ = tracker_->FindVictimsOf(range.offset, range.length, owners);
  }
  // The victims, or nullopt when the filesystem did not get to plan the owners.
  std::optional<Result<std::vector<Victim>>>& found() { return found_; }

 private:
  dax::OwnerTracker* tracker_;
  std::optional<Result<std::vector<Victim>>> found_;
};

}  // namespace

Result<FailureReport> Router::NotifyFailure(uint64_t offset, uint64_t length, uint32_t flags) {
  ASSIGN_OR_RETURN(DeviceRange range, fs::CheckFailedRange(*fs_->device(), offset, length));
  return Route(range, flags);
}

Result<FailureReport> Router::InjectError(uint64_t offset, uint64_t length) {
  ASSIGN_OR_RETURN(DeviceRange range, fs::CheckFailedRange(*fs_->device(), offset, length));
  RETURN_IF_ERROR(fs_->device()->InjectPoison(range.offset, range.length));
  return Route(range, kFailureSimulated);
}

Result<FailureReport> Router::Route(const DeviceRange& range, uint32_t flags) {
  FailureReport report;
  report.offset = range.offset;
  report.length = range.length;
  report.flags = flags;
  if (flags & kFailureRemove) return Remove(std::move(report));

  // 1 and 2. The filesystem's part (owners recorded lost, free space retired, metadata ->
  // shutdown), and at its plan the victims, while the mappings still map the bad bytes.
  VictimsAtPlan at_plan(tracker_);
  Result<MediaFailureRecord> media = fs_->RecordCheckedFailure(range, flags, &at_plan);
  if (!at_plan.found()) {
    // No owners planned (a metadata hit, unreadable trees, an early error): nothing was recorded
    // lost, so the layouts are as they were; the design looks the victims up itself.
    at_plan.found() = tracker_->FindVictims(report.offset, report.length);
  }
  // (A tracker reading damaged metadata must not stop the rest: the failure is still recorded.)
  std::vector<Victim> victims;
  if (at_plan.found()->ok()) {
    victims = std::move(**at_plan.found());
  } else {
    report.actions.push_back("could not look up the mappings of the range: " +
                             at_plan.found()->status().ToString());
  }
  if (!media.ok()) {
    report.actions.push_back("the filesystem could not record the failure: " +
                             media.status().ToString());
  } else {
    report.media = std::move(*media);
  }
  // 3. Notices, one per victim piece, and the fence.
  std::map<Ino, std::string> paths;
  for (const FileRangeLoss& o : report.media.owners) paths.emplace(o.ino, o.path);
  size_t fenced_pages = 0;
  for (const Victim& v : victims) {
    auto it = paths.find(v.ino);
    if (it == paths.end()) it = paths.emplace(v.ino, PathOf(v.ino)).first;
    Status fenced = table_->Fence(v.mapping_id, v.address, v.length);
    if (fenced.ok()) {
      fenced_pages += v.length / fs::kPageBytes;
    } else {
      report.actions.push_back(fmt::format("could not fence {:#x}+{} of mapping {}: {}",
                                           reinterpret_cast<uintptr_t>(v.address), v.length,
                                           v.mapping_id, fenced.ToString()));
    }
    report.notices.push_back({.mapping_id = v.mapping_id,
                              .address = v.address,
                              .length = v.length,
                              .ino = v.ino,
                              .path = it->second,
                              .file_offset = v.file_offset,
                              .device_offset = v.device_offset,
                              .action_required = (flags & kFailureActionRequired) != 0});
  }
  // 4. What was done, in order.
  for (const RangePiece& p : report.media.pieces) {
    report.actions.push_back(
        fmt::format("device bytes {}+{}: {}", p.offset, p.length, RangeKindName(p.kind)));
  }
  if (!report.media.owners.empty()) {
    report.actions.push_back(
        fmt::format("recorded {} lost file range{} {}", report.media.owners.size(),
                    report.media.owners.size() == 1 ? "" : "s",
                    report.media.recorded ? "in the poison tree" : "in memory only (read-only)"));
  }
  for (const DeviceRange& d : report.media.retired) {
    report.actions.push_back(fmt::format("retired free device bytes {}+{}", d.offset, d.length));
  }
  if (report.media.metadata_hit) {
    report.shut_down = true;
    report.actions.push_back("metadata hit: " + report.media.message);
  }
  if (!victims.empty()) {
    std::map<uint64_t, int> mappings;
    for (const Victim& v : victims) mappings[v.mapping_id]++;
    report.actions.push_back(fmt::format("fenced {} page{} in {} mapping{}", fenced_pages,
                                         fenced_pages == 1 ? "" : "s", mappings.size(),
                                         mappings.size() == 1 ? "" : "s"));
  }
  table_->ResolveNotices(&report.notices);  // client addresses and processes
  size_t told = table_->Notify(report.notices);
  if (!report.notices.empty()) {
    report.actions.push_back(
        fmt::format("notified {} mapping handler call{}", told, told == 1 ? "" : "s"));
  }
  Log("failure", report);
  return report;
}

Result<FailureReport> Router::Remove(FailureReport report) {
  std::vector<MappingNotice> notices = table_->RemovalNotices();
  std::map<Ino, std::string> paths;
  for (MappingNotice& n : notices) {
    auto it = paths.find(n.ino);
    if (it == paths.end()) it = paths.emplace(n.ino, PathOf(n.ino)).first;
    n.path = it->second;
  }
  table_->ResolveNotices(&notices);
  report.notices = notices;
  size_t told = table_->Notify(notices);
  report.actions.push_back(
      fmt::format("device removal: notified {} mapping{}", told, told == 1 ? "" : "s"));
  table_->KillAll();
  report.actions.push_back(fmt::format("made {} mapping{} inaccessible", notices.size(),
                                       notices.size() == 1 ? "" : "s"));
  Status s = fs_->Unmount();
  report.unmounted = true;
  report.actions.push_back(s.ok() ? std::string("unmounted the filesystem")
                                  : "unmount: " + s.ToString());
  Log("removal", report);
  return report;
}

FailureReport Router::ReportTrap(const dax::AddressInfo& info) {
  FailureReport report;
  report.offset = info.device_offset == fs::kNoDevice ? 0 : info.device_offset;
  report.length = fs::kPageBytes;
  report.flags = kFailureActionRequired;
  MappingNotice n{.mapping_id = info.mapping_id,
                  .address = info.page,
                  .length = fs::kPageBytes,
                  .ino = info.ino,
                  .path = PathOf(info.ino),
                  .file_offset = info.file_offset,
                  .device_offset = report.offset,
                  .action_required = true,
                  .consumed = true};
  report.notices.push_back(n);
  table_->ResolveNotices(&report.notices);
  const MappingNotice& r = report.notices.front();
  report.actions.push_back(fmt::format(
      "a load or store trapped on the fenced page {:#x} of mapping {} ({} at file offset {}){}",
      reinterpret_cast<uintptr_t>(r.address), info.mapping_id, n.path.empty() ? "?" : n.path,
      info.file_offset, r.remote ? fmt::format(" in process {} (uid {})", r.pid, r.uid) : ""));
  table_->Notify(report.notices);
  Log("trap", report);
  return report;
}

}  // namespace daxfs::failure
