// Global log threshold (default: warnings and errors).
#include "base/log.h"

#include <atomic>

namespace daxfs::base {
namespace {
std::atomic<LogLevel> g_level{LogLevel::kWarning};
}
LogLevel GetLogLevel() { return g_level.load(std::memory_order_relaxed); }
void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
}  // namespace daxfs::base
