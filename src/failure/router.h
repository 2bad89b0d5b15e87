// Failure routing, the notify_failure of daxfs (docs/failure.md): a failed device range ->
// the victims (mapped pages, by the chosen tracking design) and the owners (the filesystem's
// RecordMediaFailure: rmap, poison tree, retirement, shutdown) -> every victim fenced and its
// mapping's handler told where -> one event in the log. Also reports traps on fenced pages and
// device removal. Knows nothing of how failures are detected (signals.h, the bad-block scan).
#pragma once

#include <cstdint>

#include "dax/mapping_table.h"
#include "dax/tracker.h"
#include "daxfs/dax.h"
#include "failure/event_log.h"
#include "fs/face.h"

namespace daxfs::failure {

class Router {
 public:
  // Nothing is owned; all must outlive the router. `log` may be null.
  Router(fs::FsFace* fs, dax::MappingTable* table, dax::OwnerTracker* tracker, EventLog* log)
      : fs_(fs), table_(table), tracker_(tracker), log_(log) {}

  // See DaxFs::NotifyFailure. The range is checked here (fs::CheckFailedRange: EINVAL for an
  // empty range, ENXIO wholly past the device end, clipped to it), the one check of the path.
  Result<FailureReport> NotifyFailure(uint64_t offset, uint64_t length, uint32_t flags);
  // See DaxFs::InjectError: the checked range is made bad on the device, then routed.
  Result<FailureReport> InjectError(uint64_t offset, uint64_t length);

  // A load or store trapped on the fenced page `info` (a consumed access of lost data): the
  // mapping's handler hears it (consumed, action required) and the event is logged.
  FailureReport ReportTrap(const dax::AddressInfo& info);

 private:
  Result<FailureReport> Route(const DeviceRange& range, uint32_t flags);
  Result<FailureReport> Remove(FailureReport report);
  std::string PathOf(Ino ino);
  void Log(std::string_view event, const FailureReport& report);

  fs::FsFace* fs_;
  dax::MappingTable* table_;
  dax::OwnerTracker* tracker_;
  EventLog* log_;
};

}  // namespace daxfs::failure
