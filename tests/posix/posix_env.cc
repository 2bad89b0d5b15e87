// The POSIX suite's helpers: files, clocks, checks as another uid in a forked child, and the
// once-only probes of what the filesystem under test supports. Plain syscalls; knows no daxfs.
#include "posix_env.h"

#include <dirent.h>
#include <ftw.h>
#include <grp.h>
#include <linux/falloc.h>
#include <sched.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace posix {

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name != nullptr ? name : "errno " + std::to_string(err)) + " (" +
         std::strerror(err) + ")";
}

std::string Outcome(long r, int err) {
  if (r == -1) return ErrnoName(err);
  return "success (" + std::to_string(r) + ")";
}

// ---- files ---------------------------------------------------------------------------------

std::string Pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>('!' + x % 90);  // printable, never zero
  }
  return s;
}

void WriteAt(int fd, std::string_view data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = pwrite(fd, data.data() + done, data.size() - done, offset + off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ADD_FAILURE() << "pwrite(" << data.size() - done << " bytes at " << offset + off_t(done)
                    << ") failed: " << (n < 0 ? ErrnoName(errno) : "returned 0");
      return;
    }
    done += size_t(n);
  }
}

std::string ReadAt(int fd, size_t n, off_t offset) {
  std::string s(n, '\0');
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, s.data() + done, n - done, offset + off_t(done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      ADD_FAILURE() << "pread(" << n - done << " bytes at " << offset + off_t(done)
                    << ") failed: " << ErrnoName(errno);
      break;
    }
    if (r == 0) break;
    done += size_t(r);
  }
  s.resize(done);
  return s;
}

void MakeFile(const std::string& path, std::string_view data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) {
    ADD_FAILURE() << "create " << path << ": " << ErrnoName(errno);
    return;
  }
  if (fchmod(fd, mode) != 0) ADD_FAILURE() << "fchmod " << path << ": " << ErrnoName(errno);
  WriteAt(fd, data, 0);
  close(fd);
}

std::string ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoName(errno);
    return "";
  }
  std::string s;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ADD_FAILURE() << "read " << path << ": " << ErrnoName(errno);
    if (n <= 0) break;
    s.append(buf, size_t(n));
  }
  close(fd);
  return s;
}

namespace {
struct stat StatWith(int (*fn)(const char*, struct stat*), const char* what,
                     const std::string& path) {
  struct stat st {};
  if (fn(path.c_str(), &st) != 0) {
    ADD_FAILURE() << what << " " << path << ": " << ErrnoName(errno);
    st = {};
  }
  return st;
}
}  // namespace

struct stat Stat(const std::string& path) {
  return StatWith(stat, "stat", path);
}
struct stat Lstat(const std::string& path) {
  return StatWith(lstat, "lstat", path);
}
struct stat Fstat(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ADD_FAILURE() << "fstat(" << fd << "): " << ErrnoName(errno);
    st = {};
  }
  return st;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    ADD_FAILURE() << "opendir " << dir << ": " << ErrnoName(errno);
    return names;
  }
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void RemoveTree(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return;
  nftw(
      path.c_str(),
      [](const char* p, const struct stat*, int, FTW*) {
        remove(p);
        return 0;
      },
      32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

uint64_t FreeBytes(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoName(errno);
    return 0;
  }
  if (syncfs(fd) != 0) ADD_FAILURE() << "syncfs " << path << ": " << ErrnoName(errno);
  struct statfs sf {};
  if (fstatfs(fd, &sf) != 0) ADD_FAILURE() << "fstatfs " << path << ": " << ErrnoName(errno);
  close(fd);
  return uint64_t(sf.f_bfree) * uint64_t(sf.f_bsize);
}

uint64_t FreeBytesReaching(const std::string& path, uint64_t at_least) {
  timespec deadline = ClockNow(CLOCK_MONOTONIC);
  deadline.tv_sec += 10;
  for (;;) {
    uint64_t free = FreeBytes(path);
    if (free >= at_least || deadline < ClockNow(CLOCK_MONOTONIC)) return free;
    timespec pause{0, 10 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
}

uint64_t FreeBytesSettled(const std::string& path) {
  timespec deadline = ClockNow(CLOCK_MONOTONIC);
  deadline.tv_sec += 10;
  uint64_t last = FreeBytes(path);
  int same = 0;
  while (same < 2 && ClockNow(CLOCK_MONOTONIC) < deadline) {
    timespec pause{0, 50 * 1000 * 1000};
    nanosleep(&pause, nullptr);
    uint64_t free = FreeBytes(path);
    same = free == last ? same + 1 : 0;
    last = free;
  }
  return last;
}

// ---- time ----------------------------------------------------------------------------------

timespec ClockNow(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return t;
}

std::string ToString(const timespec& t) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
  return buf;
}

void WaitForClockPast(const timespec& t) {
  timespec limit = ClockNow(CLOCK_REALTIME);
  limit.tv_sec += 2;
  if (limit < t) {
    ADD_FAILURE() << "timestamp " << t << " is in the future";
    return;
  }
  while (ClockNow(CLOCK_REALTIME_COARSE) <= t) sched_yield();
}

void WaitPastTimes(const std::string& path) {
  struct stat st = Lstat(path);
  timespec latest =
      std::max({st.st_atim, st.st_mtim, st.st_ctim}, [](auto& a, auto& b) { return a < b; });
  WaitForClockPast(latest);
}

// ---- another uid ---------------------------------------------------------------------------

void Child::Fail(const char* file, int line, const std::string& what) {
  ++failures_;
  std::string msg = std::string(file) + ":" + std::to_string(line) + ": " + what + "\n";
  ssize_t ignored = write(fd_, msg.data(), msg.size());
  (void)ignored;
}

void RunAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups,
           const std::function<void(Child&)>& body) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0) << ErrnoName(errno);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0) << "fork: " << ErrnoName(errno);
  if (pid == 0) {
    close(p[0]);
    Child c(p[1]);
    if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      c.Fail(__FILE__, __LINE__, "cannot switch identity: " + ErrnoName(errno));
      _exit(2);
    }
    body(c);
    _exit(c.failures() == 0 ? 0 : 1);
  }
  close(p[1]);
  std::string report;
  char buf[4096];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    report.append(buf, size_t(n));
  }
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  EXPECT_TRUE(clean && report.empty())
      << "as uid " << uid << " gid " << gid << " (child " << how << "):\n"
      << report;
}

const std::string& WhyNoOtherUsers() {
  static const std::string why = []() -> std::string {
    if (geteuid() != 0) return "not root (runs as uid " + std::to_string(geteuid()) + ")";
    int p[2];
    if (pipe(p) != 0) return "pipe: " + ErrnoName(errno);
    pid_t pid = fork();
    if (pid < 0) return "fork: " + ErrnoName(errno);
    if (pid == 0) {
      close(p[0]);
      int err = 0;
      if (setgroups(0, nullptr) != 0 || setgid(kNogroup) != 0 || setuid(kNobody) != 0) {
        err = errno;
      } else if (access(RootDir().c_str(), X_OK) != 0) {
        err = errno;
      }
      ssize_t ignored = write(p[1], &err, sizeof err);
      (void)ignored;
      _exit(0);
    }
    close(p[1]);
    int err = -1;
    ssize_t n = read(p[0], &err, sizeof err);
    close(p[0]);
    waitpid(pid, nullptr, 0);
    if (n != sizeof err) return "the probe child died";
    if (err == 0) return "";
    return "uid 65534 cannot search " + RootDir() + ": " + ErrnoName(err) +
           " (a parent not searchable by others, or a FUSE mount without allow_other)";
  }();
  return why;
}

// ---- probes --------------------------------------------------------------------------------

const std::string& RootDir() {
  static const std::string dir = [] {
    const char* d = std::getenv("DAXFS_POSIX_DIR");
    return std::string(d != nullptr ? d : "");
  }();
  return dir;
}

const std::string& OtherDir() {
  static const std::string dir = [] {
    const char* d = std::getenv("DAXFS_POSIX_OTHER_DIR");
    return std::string(d != nullptr ? d : "");
  }();
  return dir;
}

bool Required(std::string_view feature) {
  static const std::vector<std::string> required = [] {
    std::vector<std::string> v;
    const char* r = std::getenv("DAXFS_POSIX_REQUIRE");
    std::stringstream in(r != nullptr ? r : "");
    for (std::string item; std::getline(in, item, ',');) {
      if (!item.empty()) v.push_back(item);
    }
    return v;
  }();
  return std::find_if(required.begin(), required.end(), [&](const std::string& r) {
           return r == "all" || r == feature;
         }) != required.end();
}

namespace {

// The filesystem type of the mount holding `path`, matched by device number in mountinfo.
std::string FsName(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "?";
  std::string dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string id, parent, majmin;
    f >> id >> parent >> majmin;
    if (majmin != dev) continue;
    size_t sep = line.find(" - ");
    if (sep == std::string::npos) continue;
    std::istringstream rest(line.substr(sep + 3));
    std::string type;
    rest >> type;
    return type;
  }
  return "?";
}

Feature FromCall(int r, const std::string& what) {
  if (r == 0) return {true, ""};
  return {false, what + " failed: " + ErrnoName(errno)};
}

Probes RunProbes() {
  Probes p;
  const std::string dir = RootDir() + "/.posix-probe." + std::to_string(getpid());
  RemoveTree(dir);
  if (mkdir(dir.c_str(), 0755) != 0) {
    std::fprintf(stderr, "posix_test: cannot create %s: %s\n", dir.c_str(),
                 ErrnoName(errno).c_str());
    std::exit(2);
  }
  p.fs_name = FsName(dir);
  const std::string file = dir + "/file", link = dir + "/link";
  int fd = open(file.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0 || symlink("file", link.c_str()) != 0) {
    std::fprintf(stderr, "posix_test: cannot create files in %s: %s\n", dir.c_str(),
                 ErrnoName(errno).c_str());
    std::exit(2);
  }
  p.user_xattr = FromCall(setxattr(file.c_str(), "user.probe", "1", 1, 0), "setxattr(user.*)");
  if (geteuid() != 0) {
    p.trusted_xattr = p.trusted_xattr_link = {false, "needs root"};
  } else {
    p.trusted_xattr =
        FromCall(setxattr(file.c_str(), "trusted.probe", "1", 1, 0), "setxattr(trusted.*)");
    p.trusted_xattr_link = FromCall(lsetxattr(link.c_str(), "trusted.probe", "1", 1, 0),
                                    "lsetxattr(trusted.*) on a symlink");
  }
  const std::string one(4096, 'x');
  if (pwrite(fd, one.data(), one.size(), 1 << 20) != ssize_t(one.size())) {
    p.holes = {false, "pwrite failed: " + ErrnoName(errno)};
  } else {
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    if (hole == 0) {
      p.holes = {true, ""};
    } else {
      p.holes = {false, "SEEK_HOLE from 0 in a file whose first MiB was never written returned " +
                            std::to_string(hole) + " (the generic whole-file-is-data answer)"};
    }
  }
  p.zero_range = FromCall(fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096), "fallocate(ZERO_RANGE)");
  close(fd);
  struct statvfs sv {};
  statvfs(dir.c_str(), &sv);
  p.atime = (sv.f_flag & ST_NOATIME) ? Feature{false, "mounted noatime"} : Feature{true, ""};
  p.diratime = (sv.f_flag & (ST_NOATIME | ST_NODIRATIME)) ? Feature{false, "mounted nodiratime"}
                                                          : Feature{true, ""};
  p.devices = (sv.f_flag & ST_NODEV) ? Feature{false, "mounted nodev"} : Feature{true, ""};
  std::ifstream ph("/proc/sys/fs/protected_hardlinks");
  int v = 0;
  p.protected_hardlinks = (ph >> v) && v == 1;
  RemoveTree(dir);
  return p;
}

}  // namespace

const Probes& GetProbes() {
  static const Probes probes = RunProbes();
  return probes;
}

// ---- the fixture ---------------------------------------------------------------------------

void PosixTest::SetUp() {
  ASSERT_FALSE(RootDir().empty()) << "set DAXFS_POSIX_DIR to the directory under test";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  std::replace(name.begin(), name.end(), '/', '_');
  dir_ = RootDir() + "/" + name + "." + std::to_string(getpid());
  RemoveTree(dir_);
  ASSERT_EQ(mkdir(dir_.c_str(), 0755), 0) << "mkdir " << dir_ << ": " << ErrnoName(errno);
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0) << ErrnoName(errno);
}

void PosixTest::TearDown() {
  if (dir_.empty()) return;
  RemoveTree(dir_);
  EXPECT_FALSE(Exists(dir_)) << "could not remove " << dir_;
}

}  // namespace posix

std::ostream& operator<<(std::ostream& os, const timespec& t) { return os << posix::ToString(t); }
