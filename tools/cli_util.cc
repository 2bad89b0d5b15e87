// Helpers shared by the `daxfs` subcommands: error reporting, arguments, opening an image,
// resolving in-image paths and formatting. Knows only the public API in include/daxfs/.
#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "cli.h"

#include <sys/stat.h>

#include <cstdlib>

namespace daxfs::cli {

void Reporter::Error(const Status& status) {
  fmt::print(stderr, "daxfs: {}: {}\n", command_, status.ToString());
  failed_ = true;
}

Status Errno(int err, std::string_view detail) {
  std::string message = std::strerror(err);
  if (!detail.empty()) message += fmt::format(" ({})", detail);
  return Status::Error(err, message);
}

Status At(std::string_view where, const Status& status) {
  if (status.ok()) return status;
  std::string prefix = fmt::format("{}: ", where);
  if (status.message().starts_with(prefix)) return status;
  return status.WithContext(where);
}

Status HostError(std::string_view path, int err) {
  return Status::Error(err, fmt::format("{}: {}", path, std::strerror(err)));
}

void AddImageArg(CLI::App* sub, std::string* image) {
  sub->add_option("IMAGE", *image, "The image file or pmem device")->required();
}

Result<uint64_t> ParseSizeArg(std::string_view what, const std::string& text) {
  Result<uint64_t> size = ParseSize(text);
  if (!size.ok()) return At(what, size.status());
  return size;
}

Result<uint32_t> ParseMode(const std::string& text) {
  uint32_t mode = 0;
  bool valid = !text.empty() && text.size() <= 5;
  for (char c : text) {
    if (c < '0' || c > '7') valid = false;
    mode = mode * 8 + (c - '0');
  }
  if (!valid || mode > 07777) {
    return Status::Invalid(fmt::format("'{}' is not an octal mode such as 755", text));
  }
  return mode;
}

// ---- The image.

std::string EventLogPath(const std::string& image) {
  if (const char* env = std::getenv("DAXFS_EVENT_LOG")) return env;
  struct stat st;
  if (::stat(image.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return image + ".events.jsonl";
  return "";
}

Status WithDax(const std::string& image, Access access, DaxOptions options,
               const std::function<Status(DaxFs&)>& body) {
  options.mount.read_only = access == Access::kReadOnly;
  if (options.event_log.empty()) options.event_log = EventLogPath(image);
  Result<std::unique_ptr<DaxFs>> opened = DaxFs::Open(image, options);
  if (!opened.ok()) return At(image, opened.status());
  for (const FailureReport& r : (*opened)->mount_reports()) {
    fmt::print(stderr, "daxfs: {}: the device's bad-block list names device bytes {}+{}:\n",
               image, r.offset, r.length);
    PrintFailureReport(r, stderr);
  }
  Status done = body(**opened);
  Status unmounted = (*opened)->Unmount();
  return done.ok() ? At(image, unmounted) : done;
}

Status WithImage(const std::string& image, Access access,
                 const std::function<Status(Filesystem&)>& body) {
  return WithDax(image, access, {}, [&](DaxFs& dax) { return body(dax.fs()); });
}

void PrintFailureReport(const FailureReport& r, std::FILE* out) {
  std::string flags;
  if (r.flags & kFailureActionRequired) flags += ", action required";
  if (r.flags & kFailureSimulated) flags += ", simulated";
  if (r.flags & kFailureRemove) flags += ", device removal";
  fmt::print(out, "media failure at device bytes {}+{}{}\n", r.offset, r.length, flags);
  for (const RangePiece& p : r.media.pieces) {
    fmt::print(out, "  {}+{}: {}\n", p.offset, p.length, RangeKindName(p.kind));
  }
  if (!r.media.owners.empty()) {
    fmt::print(out, "  owners ({}):\n", r.media.owners.size());
    for (const FileRangeLoss& o : r.media.owners) {
      fmt::print(out, "    {:<24} inode {:<5} file bytes {}+{}  device {}{}\n",
                 o.path.empty() ? "(no path)" : o.path, o.ino, o.file_offset, o.length,
                 o.device_offset, o.shared ? "  shared" : "");
    }
  }
  if (!r.notices.empty()) {
    fmt::print(out, "  mappings notified ({}):\n", r.notices.size());
    for (const MappingNotice& n : r.notices) {
      fmt::print(out, "    mapping #{:<3} {:<24} address {:#x}+{}  file offset {}{}{}\n",
                 n.mapping_id, n.path, reinterpret_cast<uintptr_t>(n.address), n.length,
                 n.file_offset, n.action_required ? "  action required" : "",
                 n.remote ? fmt::format("  in process {} (uid {})", n.pid, n.uid) : "");
    }
  }
  for (const MetadataRepair& m : r.media.repairs) {
    fmt::print(out, "  metadata repaired from its twin: node {} ({} copy bad{}), {}{}\n", m.block,
               m.primary_bad ? "primary" : "twin", m.tree.empty() ? "" : ", tree " + m.tree,
               MetadataRepairKindName(m.kind),
               m.kind == MetadataRepair::Kind::kRelocated
                   ? fmt::format(" to block {} (twin {})", m.new_block, m.new_twin_block)
                   : "");
  }
  for (const std::string& a : r.actions) fmt::print(out, "  - {}\n", a);
}

// ---- Paths.

Status CheckAbsolute(std::string_view path) {
  if (!path.empty() && path[0] == '/') return Status::Ok();
  return Status::Invalid("not an absolute path: paths in the image start with '/'");
}

std::string StripTrailingSlashes(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

std::string Basename(std::string_view path) {
  std::string stripped = StripTrailingSlashes(path);
  size_t slash = stripped.rfind('/');
  return slash == std::string::npos ? stripped : stripped.substr(slash + 1);
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  return dir.ends_with('/') ? fmt::format("{}{}", dir, name) : fmt::format("{}/{}", dir, name);
}

Result<ParentAndName> ResolveParent(Filesystem& fs, std::string_view path) {
  RETURN_IF_ERROR(CheckAbsolute(path));
  std::string stripped = StripTrailingSlashes(path);
  if (stripped == "/") return Errno(EINVAL, "not allowed on the root directory");
  size_t slash = stripped.rfind('/');
  std::string parent = slash == 0 ? "/" : stripped.substr(0, slash);
  ASSIGN_OR_RETURN(Attr dir, fs.Resolve(parent, /*follow=*/true));
  if (dir.type != FileType::kDirectory)
    return Errno(ENOTDIR, fmt::format("{} is not a directory", parent));
  return ParentAndName{.dir = dir, .name = stripped.substr(slash + 1)};
}

Result<std::string> DestinationPath(Filesystem& fs, std::string_view path,
                                    std::string_view inner_name) {
  RETURN_IF_ERROR(CheckAbsolute(path));
  Result<Attr> target = fs.Resolve(path, /*follow=*/true);
  if (target.ok() && target->type == FileType::kDirectory) {
    if (inner_name.empty()) return Errno(EISDIR, "give a file name inside the directory");
    return JoinPath(path, inner_name);
  }
  if (!target.ok() && !target.status().IsNotFound()) return target.status();
  if (path.ends_with('/')) return Errno(ENOTDIR);
  return std::string(path);
}

Result<std::vector<DirEntry>> ListDirectory(Filesystem& fs, Ino dir, bool with_dots) {
  std::vector<DirEntry> entries;
  RETURN_IF_ERROR(fs.ReadDir(dir, 0, [&](const DirEntry& e) {
    if (with_dots || (e.name != "." && e.name != "..")) entries.push_back(e);
    return true;
  }));
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return entries;
}

Result<Attr> ResolveRegular(Filesystem& fs, std::string_view path) {
  RETURN_IF_ERROR(CheckAbsolute(path));
  ASSIGN_OR_RETURN(Attr attr, fs.Resolve(path, /*follow=*/true));
  if (attr.type == FileType::kDirectory) return Errno(EISDIR);
  if (attr.type != FileType::kRegular) return Errno(EINVAL, "not a regular file");
  return attr;
}

// ---- Formatting.

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string TypeName(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return "regular file";
    case FileType::kDirectory:
      return "directory";
    case FileType::kSymlink:
      return "symbolic link";
    case FileType::kFifo:
      return "fifo";
    case FileType::kSocket:
      return "socket";
    case FileType::kCharDevice:
      return "character special file";
    case FileType::kBlockDevice:
      return "block special file";
  }
  return "unknown";
}

std::string ModeString(FileType type, uint32_t mode) {
  const auto t = static_cast<size_t>(type);
  std::string s(1, "?-dlpscb"[t < 8 ? t : 0]);
  const char* rwx = "rwx";
  for (int i = 0; i < 9; ++i) s += (mode & (0400 >> i)) ? rwx[i % 3] : '-';
  auto special = [&](uint32_t bit, size_t at, char set_x, char set_no_x) {
    if (mode & bit) s[at] = s[at] == 'x' ? set_x : set_no_x;
  };
  special(04000, 3, 's', 'S');
  special(02000, 6, 's', 'S');
  special(01000, 9, 't', 'T');
  return s;
}

namespace {
std::tm SplitTime(int64_t ns, bool local) {
  time_t seconds = static_cast<time_t>(ns / 1'000'000'000 - (ns % 1'000'000'000 < 0 ? 1 : 0));
  std::tm tm{};
  if (local) {
    localtime_r(&seconds, &tm);
  } else {
    gmtime_r(&seconds, &tm);
  }
  return tm;
}
}  // namespace

std::string IsoTime(int64_t ns) {
  std::tm tm = SplitTime(ns, /*local=*/false);
  int64_t frac = ((ns % 1'000'000'000) + 1'000'000'000) % 1'000'000'000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

std::string ShortTime(int64_t ns) {
  std::tm tm = SplitTime(ns, /*local=*/true);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min);
}

}  // namespace daxfs::cli
