// Shared pieces of the `daxfs` command: the subcommand table entry, error reporting, opening an
// image, in-image path helpers and formatting. Uses only the public API in include/daxfs/.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daxfs/dax.h"
#include "daxfs/filesystem.h"
#include "daxfs/image.h"
#include "daxfs/status.h"

namespace daxfs::cli {

// Prints errors as "daxfs: <command>: <path>: <reason>" and remembers that one happened, so a
// command over several paths can go on after a failure and still exit 1 (like rm or cat).
class Reporter {
 public:
  explicit Reporter(std::string command) : command_(std::move(command)) {}
  void Error(const Status& status);
  bool failed() const { return failed_; }
  const std::string& command() const { return command_; }

 private:
  std::string command_;
  bool failed_ = false;
};

// What a subcommand runs once its arguments are parsed. Errors it returns are reported too.
using Runner = std::function<Status(Reporter&)>;

// One row of the subcommand table: `setup` adds the arguments to `sub` and returns the runner.
struct Command {
  const char* name;
  const char* help;
  const char* example;
  Runner (*setup)(CLI::App* sub);
};

// ---- The subcommands (commands_image.cc, commands_namespace.cc, commands_data.cc).
Runner SetupMkfs(CLI::App* sub);
Runner SetupTune(CLI::App* sub);
Runner SetupInfo(CLI::App* sub);
Runner SetupDf(CLI::App* sub);
Runner SetupCheck(CLI::App* sub);
Runner SetupLs(CLI::App* sub);
Runner SetupStat(CLI::App* sub);
Runner SetupMkdir(CLI::App* sub);
Runner SetupRm(CLI::App* sub);
Runner SetupRmdir(CLI::App* sub);
Runner SetupMv(CLI::App* sub);
Runner SetupLn(CLI::App* sub);
Runner SetupPut(CLI::App* sub);
Runner SetupGet(CLI::App* sub);
Runner SetupCat(CLI::App* sub);
Runner SetupWrite(CLI::App* sub);
Runner SetupTruncate(CLI::App* sub);
Runner SetupPunch(CLI::App* sub);
Runner SetupFallocate(CLI::App* sub);
Runner SetupBmap(CLI::App* sub);
// commands_reflink.cc
Runner SetupReflink(CLI::App* sub);
Runner SetupDedupe(CLI::App* sub);
Runner SetupUnshare(CLI::App* sub);
Runner SetupFsmap(CLI::App* sub);
Runner SetupRepair(CLI::App* sub);
// commands_media.cc
Runner SetupInjectError(CLI::App* sub);
Runner SetupErrors(CLI::App* sub);
Runner SetupMap(CLI::App* sub);
// commands_serve.cc: the daemon for other processes, and the client modes (--socket).
Runner SetupServe(CLI::App* sub);
struct ClientMapArgs {
  std::string socket;
  std::vector<std::string> paths;
  std::string inject, inject_at, length = "4096", ready_file;
  bool writable = false, load = false;
  size_t wait_notices = 0;  // wait until this many notices arrived (--load: at least one)
  int timeout_s = 60;
};
Status MapThroughSocket(const ClientMapArgs& a);
Status InjectErrorThroughSocket(const std::string& socket, const std::string& offset,
                                const std::string& length, const std::string& at);
// commands_scrub.cc
Runner SetupScrub(CLI::App* sub);
// commands_mount.cc: the FUSE front end (fuse/).
Runner SetupMount(CLI::App* sub);
Runner SetupUmount(CLI::App* sub);
// `path` is a directory where a daxfs image is mounted (inject-error then goes to its daemon).
bool IsDaxfsMount(const std::string& path);
Status InjectErrorThroughMount(const std::string& mountpoint, const std::string& offset,
                               const std::string& length, const std::string& at, bool latent = false);

// ---- Errors.

// An error whose message is the errno text, with `detail` in parentheses when given; so
// Status::ToString() prints it once ("Is a directory (use -r)").
Status Errno(int err, std::string_view detail = {});
// `status` with "where: " in front, unless its message already starts with it.
Status At(std::string_view where, const Status& status);
// An error about a host file from errno `err`.
Status HostError(std::string_view path, int err);

// ---- Arguments.

void AddImageArg(CLI::App* sub, std::string* image);
// ParseSize with the argument's name in the error ("--offset: '12Q' has an unknown ...").
Result<uint64_t> ParseSizeArg(std::string_view what, const std::string& text);
// An octal mode such as 755 or 0644 (at most 07777).
Result<uint32_t> ParseMode(const std::string& text);

// ---- The image.

enum class Access { kReadOnly, kReadWrite };
// Opens `image`, runs `body` and unmounts, so a changed image is clean and durable on return.
// The first error wins; errors from opening and unmounting name the image.
// Every command opens the image through the DAX engine (daxfs/dax.h), so the device's
// bad-block list is routed at mount (reports go to stderr) and failure events go to the JSON-lines
// log "<image>.events.jsonl" (or $DAXFS_EVENT_LOG).
Status WithImage(const std::string& image, Access access,
                 const std::function<Status(Filesystem&)>& body);
Status WithDax(const std::string& image, Access access, DaxOptions options,
               const std::function<Status(DaxFs&)>& body);
std::string EventLogPath(const std::string& image);
// A failure report as indented lines (inject-error, map, the bad-block scan).
void PrintFailureReport(const FailureReport& report, std::FILE* out);

// ---- Paths inside the image: always absolute.

Status CheckAbsolute(std::string_view path);
// The path without trailing slashes ("/" stays "/").
std::string StripTrailingSlashes(std::string_view path);
std::string Basename(std::string_view path);
std::string JoinPath(std::string_view dir, std::string_view name);

// The directory holding the last component of `path`, and that component's name.
struct ParentAndName {
  Attr dir;
  std::string name;
};
Result<ParentAndName> ResolveParent(Filesystem& fs, std::string_view path);
// Where a new entry for `path` goes, like cp/mv/ln: `path`/`inner_name` when `path` is an
// existing directory (`inner_name` empty: an error), else `path` itself.
Result<std::string> DestinationPath(Filesystem& fs, std::string_view path,
                                    std::string_view inner_name);
// A directory's entries sorted by name; "." and ".." only when `with_dots`.
Result<std::vector<DirEntry>> ListDirectory(Filesystem& fs, Ino dir, bool with_dots);
// The regular file `path` resolves to (following symlinks); EISDIR / EINVAL otherwise.
Result<Attr> ResolveRegular(Filesystem& fs, std::string_view path);

// ---- Formatting.

std::string HumanSize(uint64_t bytes);
std::string TypeName(FileType type);  // "regular file", "directory", "symbolic link"
std::string ModeString(FileType type, uint32_t mode);  // "drwxr-xr-x"
std::string IsoTime(int64_t ns);                       // "2024-05-01T12:34:56.123456789Z"
std::string ShortTime(int64_t ns);                     // "2024-05-01 12:34" (local time)

inline constexpr size_t kChunkBytes = 1 << 20;  // streaming unit of put, get, cat, write

}  // namespace daxfs::cli
