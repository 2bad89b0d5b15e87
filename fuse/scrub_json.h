// The JSON summary of a scrub (ScrubReport), shared by `daxfs scrub IMAGE --json` and the daemon
// (which hands it to `daxfs scrub --mount` through kIocScrubSummary). docs/scrub.md lists the keys.
#pragma once

#include <nlohmann/json.hpp>

#include "daxfs/scrub.h"

namespace daxfs::fusefs {

nlohmann::json ScrubReportJson(const ScrubReport& r);

}  // namespace daxfs::fusefs
