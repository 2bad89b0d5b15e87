#include "scrub_json.h"

#include <set>
#include <string>

namespace daxfs::fusefs {
namespace {

nlohmann::json PhaseJson(const ScrubPhaseReport& r) {
  return {{"ran", r.ran},
          {"checked", r.checked},
          {"bytes", r.bytes},
          {"found", r.found},
          {"repaired", r.repaired},
          {"problems", r.problems},
          {"unread_bad", r.unread_bad},
          {"seconds", r.seconds}};
}

}  // namespace

nlohmann::json LossJson(const FileRangeLoss& l) {
  return {{"ino", l.ino},
          {"path", l.path},
          {"file_offset", l.file_offset},
          {"length", l.length},
          {"device_offset", l.device_offset},
          {"shared", l.shared}};
}

nlohmann::json RangesJson(const std::vector<DeviceRange>& ranges) {
  nlohmann::json out = nlohmann::json::array();
  for (const DeviceRange& d : ranges) out.push_back({{"offset", d.offset}, {"length", d.length}});
  return out;
}

nlohmann::json ScrubReportJson(const ScrubReport& r) {
  nlohmann::json out;
  out["stopped"] = r.stopped;
  if (r.stopped) {
    out["resume"] = {{"phase", ScrubPhaseName(r.resume.phase)}, {"block", r.resume.block}};
  }
  out["metadata"] = PhaseJson(r.metadata);
  out["index"] = PhaseJson(r.index);
  out["data"] = PhaseJson(r.data);
  out["repairs"] = nlohmann::json::array();
  for (const MetadataRepair& m : r.repairs) {
    out["repairs"].push_back({{"kind", MetadataRepairKindName(m.kind)},
                              {"block", m.block},
                              {"twin_block", m.twin_block},
                              {"primary_bad", m.primary_bad},
                              {"twin_bad", m.twin_bad},
                              {"tree", m.tree},
                              {"new_block", m.new_block},
                              {"reason", m.reason}});
  }
  out["lost"] = nlohmann::json::array();
  std::set<std::string> paths;
  for (const FileRangeLoss& l : r.lost) {
    out["lost"].push_back(LossJson(l));
    paths.insert(l.path);
  }
  out["lost_paths"] = paths;
  out["retired"] = RangesJson(r.retired);
  out["read_only"] = r.read_only;
  if (r.read_only) out["read_only_reason"] = r.read_only_reason;
  out["clean"] = r.clean();
  return out;
}

}  // namespace daxfs::fusefs
