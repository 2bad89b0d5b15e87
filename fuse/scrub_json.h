// The JSON summary of a scrub (ScrubReport), shared by `daxfs scrub IMAGE --json` and the daemon
// (which hands it to `daxfs scrub --mount` through kIocScrubSummary). docs/scrub.md lists the keys.
// Its lost ranges and device ranges have the form `daxfs errors --json` prints too.
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "daxfs/media.h"
#include "daxfs/scrub.h"

namespace daxfs::fusefs {

nlohmann::json ScrubReportJson(const ScrubReport& r);
// {ino, path, file_offset, length, device_offset, shared}
nlohmann::json LossJson(const FileRangeLoss& l);
// [{offset, length}, ...]
nlohmann::json RangesJson(const std::vector<DeviceRange>& ranges);

}  // namespace daxfs::fusefs
