// The daxfs FUSE daemon: checks the mount point, opens the image through DaxFs, mounts a libfuse
// session over the adapter, reports "mounted" (or the error) to the invoking shell, serves on
// fuse_session_loop_mt with a group-commit thread, and unmounts everything cleanly at the end.
// With -o socket it also serves client processes (src/serve over OpenLayoutHost). Also `daxfs
// umount`. Knows libfuse's session API, include/daxfs/ and the server; not the command line.
#include "daemon.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapter.h"
#include "committer.h"
#include "daxfs/dax.h"
#include "daxfs/layout.h"
#include "mountinfo.h"
#include "serve/server.h"

namespace daxfs::fusefs {
namespace {

// ---- libfuse's messages: to stderr as usual, the last error kept for the start-up report.

std::mutex log_mu;
std::string last_fuse_error;
// Until mounted, libfuse's errors become part of the start-up error instead of extra lines.
std::atomic<bool> print_fuse_log{false};

void FuseLog(enum fuse_log_level level, const char* format, va_list ap) {
  char line[1024];
  std::vsnprintf(line, sizeof line, format, ap);
  if (print_fuse_log.load() || level > FUSE_LOG_ERR) std::fputs(line, stderr);
  if (level <= FUSE_LOG_ERR) {
    std::lock_guard<std::mutex> lock(log_mu);
    last_fuse_error = line;
    while (!last_fuse_error.empty() && last_fuse_error.back() == '\n') last_fuse_error.pop_back();
  }
}

std::string LastFuseError() {
  std::lock_guard<std::mutex> lock(log_mu);
  return last_fuse_error.empty() ? "" : fmt::format(" ({})", last_fuse_error);
}

// ---- The start-up handshake. The daemon writes lines to the parent: "W text" (a warning),
// then "OK" or "E errno text". The parent prints the warnings and returns the outcome.

class Handshake {
 public:
  explicit Handshake(int fd) : fd_(fd) {}  // -1: foreground, print directly
  void Warn(const std::string& text) {
    if (fd_ < 0) {
      fmt::print(stderr, "daxfs: mount: {}\n", text);
    } else {
      Send("W " + OneLine(text));
    }
  }
  void Mounted() {
    if (fd_ < 0) return;
    Send("OK");
    ::close(fd_);
    fd_ = -1;
  }
  Status Failed(const Status& s) {
    if (fd_ >= 0) {
      Send(fmt::format("E {} {}", s.code(), OneLine(s.message())));
      ::close(fd_);
      fd_ = -1;
    }
    return s;
  }

 private:
  static std::string OneLine(std::string text) {
    for (char& c : text) {
      if (c == '\n') c = ' ';
    }
    return text;
  }
  void Send(const std::string& line) {
    std::string out = line + "\n";
    const char* p = out.data();
    size_t left = out.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the parent is gone: nothing to tell
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  int fd_;
};

// The parent's side: reads the daemon's lines until "OK", an error, or the end (the daemon died).
Status AwaitDaemon(int fd, pid_t child) {
  std::string pending;
  char chunk[512];
  for (;;) {
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line == "OK") return Status::Ok();
      if (line.starts_with("W ")) {
        fmt::print(stderr, "daxfs: mount: {}\n", line.substr(2));
      } else if (line.starts_with("E ")) {
        int err = std::atoi(line.c_str() + 2);
        size_t space = line.find(' ', 2);
        return Status::Error(err, space == std::string::npos ? "" : line.substr(space + 1));
      }
    }
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(chunk, static_cast<size_t>(n));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  std::string how = WIFSIGNALED(status) ? fmt::format("killed by signal {}", WTERMSIG(status))
                                        : fmt::format("exit status {}", WEXITSTATUS(status));
  return Status::IoError(fmt::format("the daemon exited before mounting ({})", how));
}

// ---- Checks before anything is opened.

std::string Absolute(const std::string& path) {
  if (path.starts_with("/")) return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return fmt::format("{}/{}", cwd, path);
}

Result<std::string> CheckMountpoint(const std::string& given) {
  struct stat st;
  if (::stat(given.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT)
      return Status::Error(err, fmt::format("mount point {} does not exist", given));
    if (err == ENOTCONN) {
      return Status::Error(
          err, fmt::format(
                   "mount point {}: a daemon died there (Transport endpoint is not connected): run "
                   "'daxfs umount {}' or 'fusermount3 -u {}' first",
                   given, given, given));
    }
    return Status::Error(err, fmt::format("mount point {}: {}", given, std::strerror(err)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::Error(ENOTDIR, fmt::format("mount point {} is not a directory", given));
  }
  char real[PATH_MAX];
  if (::realpath(given.c_str(), real) == nullptr) {
    return Status::Error(errno, fmt::format("mount point {}: {}", given, std::strerror(errno)));
  }
  ASSIGN_OR_RETURN(std::vector<MountEntry> mounts, ReadMountInfo());
  const MountEntry* top = FindMount(mounts, real);
  if (top != nullptr && top->fstype == kDaxfsFsType) {
    return Status::Busy(
        fmt::format("mount point {} is busy: daxfs already mounts {} there", real, top->source));
  }
  return std::string(real);
}

std::string EventLogPath(const std::string& image) {
  if (const char* env = std::getenv("DAXFS_EVENT_LOG")) return env;
  struct stat st;
  if (::stat(image.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return image + ".events.jsonl";
  return "";
}

// ---- Opening the image.

// Opens the image; a writable mount of an image that can only be read (damaged metadata, unknown
// read-only features) falls back to read-only, and says why.
Result<std::unique_ptr<DaxFs>> OpenImage(MountConfig* c, Handshake* hs) {
  DaxOptions d;
  d.mount.read_only = c->read_only;
  d.mount.durability = c->sync ? Durability::kOnReturn : Durability::kGroupCommit;
  d.mount.group_commit_ops = c->commit_ops;
  d.event_log = EventLogPath(c->image);
  Result<std::unique_ptr<DaxFs>> dax = DaxFs::Open(c->image, d);
  const int code = dax.ok() ? 0 : dax.status().code();
  if (!dax.ok() && !c->read_only && (code == EUCLEAN || code == EROFS)) {
    Status why = dax.status();
    d.mount.read_only = true;
    dax = DaxFs::Open(c->image, d);
    if (!dax.ok()) return why;
    c->read_only = true;
    hs->Warn(fmt::format("{}: mounted read-only: {}", c->image, why.ToString()));
  }
  if (!dax.ok()) return dax.status();
  for (const FailureReport& r : (*dax)->mount_reports()) {
    hs->Warn(fmt::format(
        "{}: the device's bad-block list names device bytes {}+{}: {} file "
        "range(s) lost{}",
        c->image, r.offset, r.length, r.media.owners.size(), r.shut_down ? ", metadata hit" : ""));
  }
  if (!c->read_only && (*dax)->fs().read_only()) {
    std::string reason = "the filesystem shut down at mount";
    Result<MediaErrorList> errors = (*dax)->fs().MediaErrors();
    if (errors.ok() && !errors->metadata_damage.empty()) {
      reason = fmt::format("media error in metadata at device bytes {}+{}",
                           errors->metadata_damage[0].offset, errors->metadata_damage[0].length);
    }
    c->read_only = true;
    hs->Warn(fmt::format("{}: mounted read-only: {}", c->image, reason));
  }
  return dax;
}

// ---- The session.

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};
using Session = std::unique_ptr<fuse_session, SessionDeleter>;

// Whether reads update access times (of directories, with `dir`): the last of noatime and
// atime/relatime/strictatime wins, as for mount(8); nodiratime/diratime likewise for directories.
bool AtimeWanted(const MountConfig& c, bool dir) {
  bool atime = true, diratime = true;
  for (const std::string& f : c.kernel_flags) {
    if (f == "noatime") atime = false;
    if (f == "atime" || f == "relatime" || f == "strictatime") atime = true;
    if (f == "nodiratime") diratime = false;
    if (f == "diratime") diratime = true;
  }
  return atime && (!dir || diratime);
}

Result<Session> NewSession(const MountConfig& c, Adapter* adapter) {
  std::vector<std::string> argv = {"daxfs", "-o", FuseOptionString(c)};
  if (c.debug) argv.push_back("-d");
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  fuse_args fa = FUSE_ARGS_INIT(static_cast<int>(args.size()), args.data());
  fuse_session* se =
      fuse_session_new(&fa, &Adapter::Operations(), sizeof(fuse_lowlevel_ops), adapter);
  fuse_opt_free_args(&fa);
  if (se == nullptr) {
    return Status::Invalid(
        fmt::format("libfuse refused the options '{}'{}", argv[2], LastFuseError()));
  }
  return Session(se);
}

// Daemon mode, once mounted: stdin and stdout to /dev/null, stderr to the log file or there.
void DetachStdio(const std::string& log_file) {
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int err = log_file.empty()
                ? -1
                : ::open(log_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(err >= 0 ? err : null, STDERR_FILENO);
    ::close(null);
  }
  if (err >= 0) ::close(err);
}

// Everything from the mount point check to the image unmounted. Errors before "mounted" go to
// the handshake; after it, they are logged.
Status Serve(MountConfig c, Handshake* hs) {
  Result<std::string> mountpoint = CheckMountpoint(c.mountpoint);
  if (!mountpoint.ok()) return hs->Failed(mountpoint.status());
  c.mountpoint = *mountpoint;
  Result<std::unique_ptr<DaxFs>> opened = OpenImage(&c, hs);
  if (!opened.ok()) return hs->Failed(opened.status());
  std::unique_ptr<DaxFs> dax = std::move(*opened);

  Adapter adapter(dax.get(), {.timeout = c.timeout,
                              .default_permissions = c.default_permissions,
                              .debug = c.debug,
                              .max_io = kMaxIoBytes,
                              .keep_cache = !c.serve_clients,
                              .atime = AtimeWanted(c, false),
                              .diratime = AtimeWanted(c, true)});
  Result<Session> session = NewSession(c, &adapter);
  if (!session.ok()) {
    dax->Unmount().IgnoreError();
    return hs->Failed(session.status());
  }
  fuse_session* se = session->get();
  if (fuse_set_signal_handlers(se) != 0) {
    dax->Unmount().IgnoreError();
    return hs->Failed(Status::IoError("cannot install the signal handlers" + LastFuseError()));
  }
  if (fuse_session_mount(se, c.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(se);
    dax->Unmount().IgnoreError();
    return hs->Failed(
        Status::IoError(fmt::format("cannot mount on {}{}", c.mountpoint, LastFuseError())));
  }
  adapter.Attach(se);
  // -o socket: client processes map files directly through this daemon (docs/protocol.md).
  std::unique_ptr<LayoutHost> host;
  std::unique_ptr<serve::Server> server;
  if (c.serve_clients) {
    std::string socket = c.socket.empty() ? c.image + ".sock" : c.socket;
    Result<std::unique_ptr<LayoutHost>> h = OpenLayoutHost(*dax, c.image);
    Result<std::unique_ptr<serve::Server>> s =
        h.ok() ? serve::Server::Start(h->get(), {.socket_path = socket}) : h.status();
    if (!s.ok()) {
      fuse_session_unmount(se);
      fuse_remove_signal_handlers(se);
      dax->Unmount().IgnoreError();
      return hs->Failed(s.status().WithContext("-o socket=" + socket));
    }
    host = std::move(*h);
    server = std::move(*s);
  }
  hs->Mounted();
  print_fuse_log = true;
  if (!c.foreground) DetachStdio(c.log_file);

  std::optional<Committer> committer;
  if (!c.read_only && !c.sync) {
    committer.emplace(&dax->fs(), std::chrono::seconds(c.commit_seconds));
  }
  fuse_loop_config* loop = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(loop, 1);
  fuse_loop_cfg_set_max_threads(loop, c.max_threads);
  fuse_loop_cfg_set_idle_threads(loop, c.max_threads);  // no thread churn under load
  int served = fuse_session_loop_mt(se, loop);
  fuse_loop_cfg_destroy(loop);

  // Every request thread has finished: no engine call is in flight.
  if (c.debug) {
    fmt::print(stderr, "daxfs: mount: inodes the kernel still knew: {}, forgets of unknown "
               "lookups: {}\n", adapter.lookups().known(), adapter.lookups().underflows());
  }
  fuse_session_unmount(se);
  adapter.Detach();
  adapter.scrub().Shutdown();  // a running scrub stops at its next slice
  if (server) server->Stop();  // every client lease released before the engine goes
  server.reset();
  host.reset();
  if (committer) committer->Stop();
  Status unmounted = dax->Unmount();
  dax.reset();  // releases the image's lock
  fuse_remove_signal_handlers(se);
  session->reset();
  if (!unmounted.ok()) {
    fmt::print(stderr, "daxfs: mount: {}: unmount failed: {}\n", c.image, unmounted.ToString());
    return unmounted;
  }
  if (served < 0 && served != -ENODEV) {
    fmt::print(stderr, "daxfs: mount: {}: the request loop ended with {}\n", c.image,
               std::strerror(-served));
  }
  return Status::Ok();
}

// ---- Unmounting.

Status RunFusermount(const std::string& mountpoint, bool lazy) {
  pid_t pid = ::fork();
  if (pid < 0) return Status::Error(errno, "fork");
  if (pid == 0) {
    if (lazy) {
      ::execlp("fusermount3", "fusermount3", "-u", "-z", "--", mountpoint.c_str(), nullptr);
    } else {
      ::execlp("fusermount3", "fusermount3", "-u", "--", mountpoint.c_str(), nullptr);
    }
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  return Status::IoError(fmt::format("fusermount3 -u {} failed", mountpoint));
}

// Waits until nobody holds the image's lock (the daemon unmounted it), at most `limit`.
Status WaitForImage(const std::string& image, std::chrono::seconds limit) {
  int fd = ::open(image.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Ok();  // gone or unreadable: nothing to wait for
  auto deadline = std::chrono::steady_clock::now() + limit;
  Status s = Status::Ok();
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) break;
    if (std::chrono::steady_clock::now() > deadline) {
      s = Status::Error(ETIMEDOUT, fmt::format("the daemon has not released {} after {} s", image,
                                               limit.count()));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::close(fd);  // drops the lock at once
  return s;
}

}  // namespace

Status Mount(const MountConfig& given) {
  MountConfig c = given;
  RETURN_IF_ERROR(ValidateConfig(c));
  c.image = Absolute(c.image);
  c.mountpoint = Absolute(c.mountpoint);
  if (!c.log_file.empty()) c.log_file = Absolute(c.log_file);
  if (c.debug) c.foreground = true;
  print_fuse_log = c.debug;
  fuse_set_log_func(FuseLog);
  if (c.foreground) {
    Handshake direct(-1);
    return Serve(c, &direct);
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::Error(errno, "pipe");
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Status::Error(errno, "fork");
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ::setsid();
    if (::chdir("/") != 0) std::_Exit(1);
    Handshake to_parent(pipe_fds[1]);
    Status s = Serve(c, &to_parent);
    std::_Exit(s.ok() ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  Status s = AwaitDaemon(pipe_fds[0], pid);
  ::close(pipe_fds[0]);
  return s;
}

Status Unmount(const std::string& given, bool lazy) {
  std::string mountpoint = Absolute(given);
  char real[PATH_MAX];
  if (::realpath(mountpoint.c_str(), real) != nullptr) {
    mountpoint = real;  // (a dead daemon's mount point cannot be resolved: ENOTCONN)
  } else if (errno == ENOENT) {
    return Status::Error(ENOENT, fmt::format("{} does not exist", given));
  }
  while (mountpoint.size() > 1 && mountpoint.back() == '/') mountpoint.pop_back();
  ASSIGN_OR_RETURN(std::vector<MountEntry> mounts, ReadMountInfo());
  const MountEntry* top = FindMount(mounts, mountpoint);
  if (top == nullptr) return Status::Invalid(fmt::format("{} is not mounted", mountpoint));
  if (top->fstype != kDaxfsFsType) {
    return Status::Invalid(
        fmt::format("{} is not a daxfs mount (it is {})", mountpoint, top->fstype));
  }
  const std::string image = top->source;
  if (::geteuid() == 0) {
    if (::umount2(mountpoint.c_str(), lazy ? MNT_DETACH : 0) != 0) {
      int err = errno;
      if (err == EBUSY) {
        return Status::Busy(fmt::format(
            "{} is busy: a process has a file open or its working directory there (-l detaches "
            "it now; the daemon finishes when they are done)",
            mountpoint));
      }
      return Status::Error(err, fmt::format("umount {}: {}", mountpoint, std::strerror(err)));
    }
  } else {
    RETURN_IF_ERROR(RunFusermount(mountpoint, lazy));
  }
  if (lazy) return Status::Ok();
  return WaitForImage(image, std::chrono::seconds(60));
}

}  // namespace daxfs::fusefs
