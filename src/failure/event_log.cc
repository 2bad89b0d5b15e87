// The JSON-lines event log (nlohmann-json for the encoding).
#include "failure/event_log.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

namespace daxfs::failure {

namespace {

std::string Hex(const void* p) { return fmt::format("{:#x}", reinterpret_cast<uintptr_t>(p)); }

nlohmann::json FlagsJson(uint32_t flags) {
  nlohmann::json out = nlohmann::json::array();
  if (flags & kFailureActionRequired) out.push_back("action_required");
  if (flags & kFailureRemove) out.push_back("remove");
  if (flags & kFailureSimulated) out.push_back("simulated");
  return out;
}

std::string UtcNow() {
  auto now = std::chrono::system_clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, (ns % 1000000000) / 1000);
}

}  // namespace

std::string EventJson(std::string_view event, const FailureReport& r) {
  nlohmann::json j;
  j["time"] = UtcNow();
  j["event"] = std::string(event);
  j["device"] = {{"offset", r.offset}, {"length", r.length}};
  j["flags"] = FlagsJson(r.flags);
  nlohmann::json pieces = nlohmann::json::array();
  for (const RangePiece& p : r.media.pieces) {
    pieces.push_back({{"offset", p.offset}, {"length", p.length}, {"kind", RangeKindName(p.kind)}});
  }
  j["pieces"] = pieces;
  nlohmann::json owners = nlohmann::json::array();
  for (const FileRangeLoss& o : r.media.owners) {
    owners.push_back({{"ino", o.ino}, {"path", o.path}, {"file_offset", o.file_offset},
                      {"length", o.length}, {"device_offset", o.device_offset},
                      {"shared", o.shared}});
  }
  j["owners"] = owners;
  nlohmann::json retired = nlohmann::json::array();
  for (const DeviceRange& d : r.media.retired) {
    retired.push_back({{"offset", d.offset}, {"length", d.length}});
  }
  j["retired"] = retired;
  nlohmann::json mappings = nlohmann::json::array();
  for (const MappingNotice& n : r.notices) {
    mappings.push_back({{"mapping", n.mapping_id}, {"address", Hex(n.address)},
                        {"length", n.length}, {"ino", n.ino}, {"path", n.path},
                        {"file_offset", n.file_offset}, {"device_offset", n.device_offset},
                        {"action_required", n.action_required}, {"removal", n.removal},
                        {"consumed", n.consumed}, {"pid", n.pid}, {"uid", n.uid},
                        {"client", n.remote}});
  }
  j["mappings"] = mappings;
  j["actions"] = r.actions;
  j["metadata_hit"] = r.media.metadata_hit;
  j["recorded"] = r.media.recorded;
  j["shut_down"] = r.shut_down;
  j["unmounted"] = r.unmounted;
  if (!r.media.message.empty()) j["message"] = r.media.message;
  if (!r.media.repairs.empty()) {
    nlohmann::json repairs = nlohmann::json::array();
    for (const MetadataRepair& m : r.media.repairs)
      repairs.push_back(nlohmann::json::parse(RepairJson(m)));
    j["repairs"] = repairs;
  }
  return j.dump();
}

std::string RepairJson(const MetadataRepair& m) {
  nlohmann::json j;
  j["time"] = UtcNow();
  j["event"] = "repair";
  j["kind"] = MetadataRepairKindName(m.kind);
  j["block"] = m.block;
  j["device_offset"] = m.block * 4096;
  j["twin_block"] = m.twin_block;
  nlohmann::json bad = nlohmann::json::array();
  if (m.primary_bad) bad.push_back("primary");
  if (m.twin_bad) bad.push_back("twin");
  j["bad_copies"] = bad;
  j["used_copy"] = m.primary_bad ? (m.twin_bad ? "none" : "twin") : "primary";
  if (!m.reason.empty()) j["reason"] = m.reason;
  if (!m.tree.empty()) j["tree"] = m.tree;
  if (m.level >= 0) j["level"] = m.level;
  if (m.kind == MetadataRepair::Kind::kRelocated) {
    j["new_block"] = m.new_block;
    j["new_twin_block"] = m.new_twin_block;
    j["generation"] = m.generation;
  }
  return j.dump();
}

EventLog::~EventLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status EventLog::Append(std::string_view event, const FailureReport& report) {
  return AppendLine(EventJson(event, report));
}

Status EventLog::AppendRepairs(const std::vector<MetadataRepair>& repairs) {
  if (repairs.empty()) return Status::Ok();
  std::string lines;
  for (const MetadataRepair& m : repairs) lines += (lines.empty() ? "" : "\n") + RepairJson(m);
  return AppendLine(std::move(lines));
}

Status EventLog::AppendLine(std::string line) {
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      return Status::Error(errno, fmt::format("{}: cannot open the event log: {}", path_,
                                              std::strerror(errno)));
    }
  }
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::Error(errno, fmt::format("{}: write: {}", path_, std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    return Status::Error(errno, fmt::format("{}: fdatasync: {}", path_, std::strerror(errno)));
  }
  return Status::Ok();
}

}  // namespace daxfs::failure
