// Minimal leveled logging to stderr through fmt. Knows nothing about the engine.
#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <utility>

namespace daxfs::base {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

LogLevel GetLogLevel();
void SetLogLevel(LogLevel level);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < GetLogLevel()) return;
  static constexpr const char* kNames[] = {"debug", "info", "warning", "error"};
  fmt::print(stderr, "daxfs: {}: {}\n", kNames[static_cast<int>(level)],
             fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace daxfs::base
