// `daxfs scrub IMAGE`: the online scrub (daxfs/scrub.h) of an image, with progress on a
// terminal (a plain line per phase when stdout is not one), --max-rate, a clean stop on SIGINT with
// a resume point kept in "<image>.scrub", and a summary or --json. Uses only include/daxfs/.
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli.h"
#include "fuse/control.h"
#include "fuse/scrub_json.h"

namespace daxfs::cli {
namespace {

std::atomic<bool> g_stop{false};
extern "C" void OnInterrupt(int) { g_stop.store(true); }

struct ScrubArgs {
  std::string image;
  std::string mount;
  std::string max_rate;
  bool json = false;
  bool resume = false;
};

std::string ResumePath(const std::string& image) { return image + ".scrub"; }

// The resume file: one line "<phase> <block>" (phase by name).
Result<ScrubPosition> ReadResume(const std::string& image) {
  std::ifstream in(ResumePath(image));
  if (!in) {
    return Status::NotFound(
        fmt::format("{}: no resume point (a stopped scrub leaves one)", ResumePath(image)));
  }
  std::string phase;
  uint64_t block = 0;
  if (!(in >> phase >> block)) {
    return Status::Invalid(fmt::format("{}: not a scrub resume point", ResumePath(image)));
  }
  for (ScrubPhase p : {ScrubPhase::kMetadata, ScrubPhase::kIndex, ScrubPhase::kData}) {
    if (phase == ScrubPhaseName(p)) return ScrubPosition{p, block};
  }
  return Status::Invalid(fmt::format("{}: unknown phase '{}'", ResumePath(image), phase));
}

Status WriteResume(const std::string& image, const ScrubPosition& at) {
  std::string path = ResumePath(image), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ScrubPhaseName(at.phase) << " " << at.block << "\n";
    if (!out) return HostError(tmp, errno);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return HostError(path, errno);
  return Status::Ok();
}

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

// Progress: on a terminal one line rewritten in place (bytes, rate, ETA); otherwise a plain
// line when each phase ends.
void ShowProgress(const ScrubProgress& p, bool tty, std::FILE* out) {
  double rate = p.seconds > 0 ? static_cast<double>(p.done_bytes) / p.seconds : 0;
  if (!tty) {
    if (!p.phase_done) return;
    if (p.phase == ScrubPhase::kIndex) {
      fmt::print(out, "scrub: phase index done in {:.2f} s\n", p.seconds);
    } else {
      double read_rate = p.seconds > 0 ? static_cast<double>(p.read_bytes) / p.seconds : 0;
      fmt::print(out, "scrub: phase {} done: {} read in {:.3f} s ({}/s)\n", ScrubPhaseName(p.phase),
                 Bytes(static_cast<double>(p.read_bytes)), p.seconds, Bytes(read_rate));
    }
    std::fflush(out);
    return;
  }
  double left =
      p.total_bytes > p.done_bytes ? static_cast<double>(p.total_bytes - p.done_bytes) : 0;
  std::string eta = rate > 0 ? fmt::format("{:.0f} s", left / rate) : "?";
  int pct = p.total_bytes ? static_cast<int>(100.0 * static_cast<double>(p.done_bytes) /
                                             static_cast<double>(p.total_bytes))
                          : 100;
  fmt::print(out, "\r\033[K{:<8} {:3d}%  {} / {}  {}/s  ETA {}", ScrubPhaseName(p.phase), pct,
             Bytes(static_cast<double>(p.done_bytes)), Bytes(static_cast<double>(p.total_bytes)),
             Bytes(rate), eta);
  if (p.phase_done) fmt::print(out, "\n");
  std::fflush(out);
}

// The summary, from the JSON form (fuse/scrub_json.h) both the image scrub and the daemon's give;
// `again` is the command that resumes a stopped scrub.
void PrintSummary(const std::string& name, const nlohmann::json& r, const std::string& again) {
  const bool stopped = r["stopped"].get<bool>();
  fmt::print("{}: scrub {}\n", name, stopped ? "stopped" : "finished");
  for (auto [phase, what] : {std::pair{"metadata", "node copies"}, {"index", "nodes"},
                             {"data", "blocks"}}) {
    const nlohmann::json& p = r[phase];
    if (!p["ran"].get<bool>()) {
      fmt::print("  {:<9} not run\n", phase);
      continue;
    }
    fmt::print("  {:<9} {} {} checked ({}), {} found, {} repaired, {} problem(s)\n", phase,
               p["checked"].get<uint64_t>(), what, Bytes(p["bytes"].get<double>()),
               p["found"].get<uint64_t>(), p["repaired"].get<uint64_t>(), p["problems"].size());
    for (const auto& problem : p["problems"]) fmt::print("    {}\n", problem.get<std::string>());
  }
  if (uint64_t unread = r["data"]["unread_bad"].get<uint64_t>(); unread > 0) {
    fmt::print("  data      {} bad block(s) outside allocated data (free space) routed\n", unread);
  }
  for (const auto& m : r["repairs"]) {
    const std::string tree = m["tree"].get<std::string>();
    const std::string kind = m["kind"].get<std::string>();
    fmt::print("  repaired: metadata node {} ({} copy bad{}): {}{}\n", m["block"].get<uint64_t>(),
               m["primary_bad"].get<bool>() ? "primary" : "twin",
               tree.empty() ? "" : ", tree " + tree, kind,
               kind == MetadataRepairKindName(MetadataRepair::Kind::kRelocated)
                   ? fmt::format(" to block {}", m["new_block"].get<uint64_t>())
                   : "");
  }
  for (const auto& l : r["lost"]) {
    const std::string path = l["path"].get<std::string>();
    fmt::print("  lost: {} file bytes {}+{} (device {}){}\n", path.empty() ? "(no path)" : path,
               l["file_offset"].get<uint64_t>(), l["length"].get<uint64_t>(),
               l["device_offset"].get<uint64_t>(), l["shared"].get<bool>() ? ", shared" : "");
  }
  for (const auto& d : r["retired"]) {
    fmt::print("  retired: free device bytes {}+{}\n", d["offset"].get<uint64_t>(),
               d["length"].get<uint64_t>());
  }
  if (r["read_only"].get<bool>()) {
    fmt::print("  the filesystem is read-only: {}\n", r["read_only_reason"].get<std::string>());
  }
  if (stopped) {
    fmt::print("  stopped in phase {} at block {}: '{}' goes on\n",
               r["resume"]["phase"].get<std::string>(), r["resume"]["block"].get<uint64_t>(), again);
  }
}

// Prints the summary (text or --json, with `key`: `name` added) and the command's status.
Status Finish(const ScrubArgs& a, const char* key, const std::string& name, nlohmann::json out,
              const std::string& again) {
  out[key] = name;
  if (a.json) {
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    PrintSummary(name, out, again);
  }
  if (!out["clean"].get<bool>() && !out["stopped"].get<bool>()) {
    return At(name, Status::Corruption("scrub found damage it could not repair"));
  }
  return Status::Ok();
}

// `daxfs scrub --mount MOUNTPOINT`: the daemon scrubs (fuse/control.h kIocScrub*); progress by
// polling its status, the summary read back as JSON. SIGINT/SIGTERM send a stop.
Status RunMountScrub(const ScrubArgs& a, const std::string& mountpoint) {
  fusefs::ScrubStartIoctl start;
  if (!a.max_rate.empty()) {
    ASSIGN_OR_RETURN(start.max_rate, ParseSizeArg("--max-rate", a.max_rate));
    if (start.max_rate == 0) return Status::Invalid("--max-rate: must be more than 0");
  }
  if (a.resume) start.flags |= fusefs::kScrubResume;
  int fd = ::open(mountpoint.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return HostError(mountpoint, errno);
  auto fail = [&](const char* what) {
    int err = errno;
    ::close(fd);
    return At(mountpoint, Errno(err, what));
  };
  if (::ioctl(fd, fusefs::kIocScrubStart, &start) != 0) return fail("scrub start through the daxfs daemon");
  g_stop.store(false);
  struct sigaction sa = {}, old_int = {}, old_term = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  const bool tty = ::isatty(STDOUT_FILENO);
  uint32_t shown = 0;
  bool stop_sent = false;
  fusefs::ScrubStatusIoctl st;
  int status_err = 0;  // a failed status request's errno
  while (true) {
    if (::ioctl(fd, fusefs::kIocScrubStatus, &st) != 0) {
      status_err = errno;
      break;
    }
    if (!a.json) {
      for (uint32_t p = 0; p < 3; ++p) {
        if ((st.phases_done & (1u << p)) && !(shown & (1u << p))) {
          shown |= 1u << p;
          ScrubProgress done;
          done.phase = static_cast<ScrubPhase>(p);
          done.read_bytes = done.done_bytes = done.total_bytes = st.phase_read_bytes[p];
          done.seconds = static_cast<double>(st.phase_seconds_ns[p]) / 1e9;
          done.phase_done = true;
          ShowProgress(done, tty, stdout);
        }
      }
      if (tty && st.state == fusefs::kScrubRunning && st.phase < 3 &&
          !(st.phases_done & (1u << st.phase))) {
        ScrubProgress now;
        now.phase = static_cast<ScrubPhase>(st.phase);
        now.done_bytes = st.done_bytes;
        now.total_bytes = st.total_bytes;
        now.read_bytes = st.read_bytes;
        now.seconds = static_cast<double>(st.seconds_ns) / 1e9;
        ShowProgress(now, tty, stdout);
      }
    }
    if (st.state != fusefs::kScrubRunning) break;
    if (g_stop.load() && !stop_sent) {
      ::ioctl(fd, fusefs::kIocScrubStop);
      stop_sent = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  if (st.state == fusefs::kScrubFailed) {
    ::close(fd);
    return At(mountpoint, Errno(static_cast<int>(st.error), "the daemon's scrub failed"));
  }
  if (st.state != fusefs::kScrubDone && st.state != fusefs::kScrubStopped) {
    ::close(fd);
    return At(mountpoint, Errno(status_err, "scrub status through the daxfs daemon"));
  }
  std::string text;
  auto chunk = std::make_unique<fusefs::ScrubSummaryIoctl>();
  do {
    chunk->offset = text.size();
    if (::ioctl(fd, fusefs::kIocScrubSummary, chunk.get()) != 0) return fail("scrub summary");
    text.append(chunk->data, chunk->length);
  } while (chunk->length > 0 && text.size() < chunk->total);
  ::close(fd);
  nlohmann::json out = nlohmann::json::parse(text, nullptr, false);
  if (out.is_discarded()) return At(mountpoint, Status::Corruption("the daemon's scrub summary is not JSON"));
  return Finish(a, "mount", mountpoint, std::move(out),
                fmt::format("daxfs scrub --mount {} --resume", mountpoint));
}

Status RunScrub(const ScrubArgs& a) {
  if (!a.mount.empty()) return RunMountScrub(a, a.mount);
  if (a.image.empty()) return Status::Invalid("give IMAGE or --mount MOUNTPOINT");
  if (IsDaxfsMount(a.image)) return RunMountScrub(a, a.image);
  ScrubOptions options;
  if (!a.max_rate.empty()) {
    ASSIGN_OR_RETURN(options.max_rate, ParseSizeArg("--max-rate", a.max_rate));
    if (options.max_rate == 0) return Status::Invalid("--max-rate: must be more than 0");
  }
  if (a.resume) {
    Result<ScrubPosition> at = ReadResume(a.image);
    if (!at.ok()) return at.status();
    options.resume = *at;
  }
  // Progress on stdout: rewritten in place on a terminal, a line per phase otherwise; none with
  // --json (stdout is the JSON then).
  const bool tty = ::isatty(STDOUT_FILENO);
  if (!a.json) options.progress = [tty](const ScrubProgress& p) { ShowProgress(p, tty, stdout); };
  g_stop.store(false);
  options.stop = &g_stop;
  struct sigaction sa = {}, old_int = {}, old_term = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  DaxOptions dax_options;
  // The bad-block list is the scrub's to find: not routed at mount.
  dax_options.scan_bad_blocks = false;
  Result<ScrubReport> got = Status::Ok();
  Status s = WithDax(a.image, Access::kReadWrite, dax_options, [&](DaxFs& dax) -> Status {
    got = dax.Scrub(options);
    return got.status();
  });
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  RETURN_IF_ERROR(s);
  const ScrubReport& r = *got;
  if (r.stopped) {
    RETURN_IF_ERROR(WriteResume(a.image, r.resume));
  } else {
    std::remove(ResumePath(a.image).c_str());
  }
  return Finish(a, "image", a.image, fusefs::ScrubReportJson(r),
                fmt::format("daxfs scrub {} --resume", a.image));
}

}  // namespace

Runner SetupScrub(CLI::App* sub) {
  auto a = std::make_shared<ScrubArgs>();
  sub->add_option("IMAGE", a->image, "The image file (or a directory where one is mounted)");
  sub->add_option("--mount", a->mount, "Scrub through the daemon of this daxfs mount point");
  sub->add_option("--max-rate", a->max_rate, "Bytes read per second at most, e.g. 200M");
  sub->add_flag("--json", a->json, "Print the summary as JSON");
  sub->add_flag("--resume", a->resume,
                "Go on from where an interrupted scrub stopped (IMAGE.scrub)");
  return [a](Reporter&) { return RunScrub(*a); };
}

}  // namespace daxfs::cli
