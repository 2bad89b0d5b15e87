// The POSIX conformance suite's fixture and helpers: a fresh directory per test under
// $DAXFS_POSIX_DIR, errno assertions, checks run as another uid in a forked child, and probes of
// what the filesystem under test supports. Plain Linux syscalls only: knows nothing of daxfs.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace posix {

// Identities for the checks as non-root users. Neither user is a member of kGroup, nor of root's
// group, unless a test passes extra groups.
inline constexpr uid_t kNobody = 65534;
inline constexpr gid_t kNogroup = 65534;
inline constexpr uid_t kOtherUser = 65533;
inline constexpr gid_t kOtherGroup = 65533;
inline constexpr gid_t kGroup = 4242;

// "ENOENT (No such file or directory)".
std::string ErrnoName(int err);

// An owned file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept {
    Reset(o.Release());
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// "success (N)" or "ENOENT (...)" for a call that returned `r` with errno `err`.
std::string Outcome(long r, int err);

}  // namespace posix

namespace posix {
// What a system call returned, and errno right after it.
struct CallResult {
  long value;
  int err;
};
inline ::testing::AssertionResult Succeeded(const CallResult& r, const char* expr) {
  if (r.value != -1) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " failed: " << ErrnoName(r.err);
}
inline ::testing::AssertionResult FailedWith(const CallResult& r, int want, const char* expr) {
  if (r.value == -1 && r.err == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << expr << ": want " << ErrnoName(want) << ", got " << Outcome(r.value, r.err);
}
inline ::testing::AssertionResult FailedWithEither(const CallResult& r, int a, int b,
                                                   const char* expr) {
  if (r.value == -1 && (r.err == a || r.err == b)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << ": want " << ErrnoName(a) << " or "
                                       << ErrnoName(b) << ", got " << Outcome(r.value, r.err);
}
}  // namespace posix

// Evaluates a system call expression once and captures errno right after it.
#define POSIX_CALL_(expr)                    \
  ([&]() -> ::posix::CallResult {            \
    errno = 0;                               \
    long posix_r_ = static_cast<long>(expr); \
    return {posix_r_, errno};                \
  }())

// ASSERT_SYS(expr) / EXPECT_SYS(expr): the call did not return -1 (prints errno otherwise).
// EXPECT_FAILS(err, expr): the call returned -1 with errno `err`. All three take `<< message`.
#define ASSERT_SYS(expr) ASSERT_TRUE(::posix::Succeeded(POSIX_CALL_(expr), #expr))
#define EXPECT_SYS(expr) EXPECT_TRUE(::posix::Succeeded(POSIX_CALL_(expr), #expr))
#define EXPECT_FAILS(err, expr) EXPECT_TRUE(::posix::FailedWith(POSIX_CALL_(expr), (err), #expr))
// EXPECT_FAILS_EITHER(a, b, expr): where POSIX allows two codes and filesystems differ (renaming a
// directory over a non-empty one: ENOTEMPTY on tmpfs, EEXIST on XFS).
#define EXPECT_FAILS_EITHER(a, b, expr) \
  EXPECT_TRUE(::posix::FailedWithEither(POSIX_CALL_(expr), (a), (b), #expr))

// ASSERT_OPEN(var, expr): declares `posix::Fd var` from expr (an open-like call), which must work.
#define ASSERT_OPEN(var, expr) \
  errno = 0;                   \
  ::posix::Fd var(expr);       \
  ASSERT_TRUE(var.ok()) << #expr << " failed: " << ::posix::ErrnoName(errno)

// Comparison and printing of timestamps (global, where timespec lives, so that lookup finds them).
inline bool operator<(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec < b.tv_sec : a.tv_nsec < b.tv_nsec;
}
inline bool operator==(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
inline bool operator<=(const timespec& a, const timespec& b) { return !(b < a); }
std::ostream& operator<<(std::ostream& os, const timespec& t);
inline void PrintTo(const timespec& t, std::ostream* os) { *os << t; }

namespace posix {

// ---- files ---------------------------------------------------------------------------------

// `n` bytes that depend on `seed` and on the position, never a run of zeros.
std::string Pattern(size_t n, uint32_t seed);
// Writes all of `data` at `offset` (pwrite, retried on short writes); a test failure otherwise.
void WriteAt(int fd, std::string_view data, off_t offset);
// Reads up to `n` bytes at `offset` (fewer only at end of file).
std::string ReadAt(int fd, size_t n, off_t offset);
// Creates (or truncates) `path` with `data` and exactly `mode` (not masked by the umask); a test
// failure if it cannot.
void MakeFile(const std::string& path, std::string_view data = "", mode_t mode = 0644);
std::string ReadFile(const std::string& path);
// stat / lstat / fstat; a test failure and a zeroed struct if the call fails.
struct stat Stat(const std::string& path);
struct stat Lstat(const std::string& path);
struct stat Fstat(int fd);
bool Exists(const std::string& path);  // lstat succeeds
// Names in `dir` except "." and "..", sorted.
std::vector<std::string> ListDir(const std::string& dir);
// Removes `path` and everything under it (as far as it can; never crosses a mount).
void RemoveTree(const std::string& path);
// Free bytes of the filesystem holding `path` (statfs f_bfree * f_bsize) after syncfs.
uint64_t FreeBytes(const std::string& path);
// FreeBytes once it has reached `at_least`, or after 10 s (space may be freed in the background,
// as XFS inactivates unlinked inodes and a FUSE daemon hears the last close asynchronously).
uint64_t FreeBytesReaching(const std::string& path, uint64_t at_least);
// FreeBytes once it has stopped changing: three readings 50 ms apart agree (at most 10 s, then the
// last reading). Space that earlier tests' unlinks are still giving back in the background (XFS's
// inode inactivation) would otherwise be mistaken for space freed, or not consumed, by this test.
uint64_t FreeBytesSettled(const std::string& path);

// ---- time ----------------------------------------------------------------------------------

timespec ClockNow(clockid_t clock);
std::string ToString(const timespec& t);
// Returns once the kernel's coarse clock (what inode timestamps are taken from, at the finest a
// later value) has passed `t`, so that any timestamp taken afterwards is later than `t`. A wait
// for a condition, not a sleep: at most one clock tick.
void WaitForClockPast(const timespec& t);
// Waits until every timestamp of `path` (lstat) is in the past as above: the next change of any
// of them is visible as an increase.
void WaitPastTimes(const std::string& path);

// ---- another uid ---------------------------------------------------------------------------

// What a check as another user reports back to the parent: one line per failure.
class Child {
 public:
  explicit Child(int report_fd) : fd_(report_fd) {}
  void Fail(const char* file, int line, const std::string& what);
  int failures() const { return failures_; }

 private:
  int fd_;
  int failures_ = 0;
};

// Runs `body` in a forked child after setgroups(groups), setgid(gid), setuid(uid). Every failure
// the child records, and a child that dies or cannot switch identity, becomes a failure of the
// calling test. Needs root (SKIP_UNLESS_OTHER_USERS first).
void RunAs(uid_t uid, gid_t gid, const std::vector<gid_t>& groups,
           const std::function<void(Child&)>& body);
inline void RunAs(uid_t uid, gid_t gid, const std::function<void(Child&)>& body) {
  RunAs(uid, gid, {}, body);
}
// Why checks as uid kNobody cannot run in $DAXFS_POSIX_DIR ("" when they can): not root, or the
// directory not reachable by other users (a parent not searchable, or a FUSE mount without
// allow_other).
const std::string& WhyNoOtherUsers();

}  // namespace posix

// Child-side checks, used inside a RunAs body with its `Child& c`.
#define CHILD_EXPECT(c, cond) \
  ((cond) ? (void)0 : (c).Fail(__FILE__, __LINE__, std::string("expected: ") + #cond))
#define CHILD_EXPECT_SYS(c, expr)                                                \
  do {                                                                           \
    errno = 0;                                                                   \
    long posix_r_ = static_cast<long>(expr);                                     \
    int posix_e_ = errno;                                                        \
    if (posix_r_ == -1)                                                          \
      (c).Fail(__FILE__, __LINE__,                                               \
               std::string(#expr) + " failed: " + ::posix::ErrnoName(posix_e_)); \
  } while (0)
#define CHILD_EXPECT_FAILS(c, err, expr)                                             \
  do {                                                                               \
    errno = 0;                                                                       \
    long posix_r_ = static_cast<long>(expr);                                         \
    int posix_e_ = errno;                                                            \
    if (posix_r_ != -1 || posix_e_ != (err))                                         \
      (c).Fail(__FILE__, __LINE__,                                                   \
               std::string(#expr) + ": want " + ::posix::ErrnoName(err) + ", got " + \
                   ::posix::Outcome(posix_r_, posix_e_));                            \
  } while (0)

namespace posix {

// ---- what the filesystem under test supports (probed once, in $DAXFS_POSIX_DIR) -----------

// A feature is either supported, or not with the reason (what the probe saw).
struct Feature {
  bool ok = false;
  std::string why;
};

struct Probes {
  std::string fs_name;               // the mount's type from /proc/self/mountinfo ("tmpfs", "xfs")
  Feature user_xattr;                // setxattr("user.*") on a regular file
  Feature trusted_xattr;             // setxattr("trusted.*") on a regular file (as root)
  Feature trusted_xattr_link;        // lsetxattr("trusted.*") on a symlink (as root)
  Feature holes;                     // SEEK_HOLE finds the hole in a sparse file (not the generic
                                     // "everything is data" answer)
  Feature zero_range;                // fallocate(FALLOC_FL_ZERO_RANGE)
  Feature atime;                     // reads may update atime (not mounted noatime)
  Feature diratime;                  // readdir may update atime (neither noatime nor nodiratime)
  Feature devices;                   // device nodes can be opened (not mounted nodev)
  bool protected_hardlinks = false;  // /proc/sys/fs/protected_hardlinks is 1
};
const Probes& GetProbes();

// The directory under test ($DAXFS_POSIX_DIR) and the optional one on another filesystem
// ($DAXFS_POSIX_OTHER_DIR, "" when unset).
const std::string& RootDir();
const std::string& OtherDir();

// Whether $DAXFS_POSIX_REQUIRE (a comma-separated list of feature names, or "all") requires
// `feature`: a required feature that is missing fails the test instead of skipping it.
bool Required(std::string_view feature);

// Every test runs in a fresh directory (mode 0755) of its own, removed afterwards.
class PosixTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // `rel` inside this test's directory.
  std::string P(std::string_view rel) const { return dir_ + "/" + std::string(rel); }
  const std::string& dir() const { return dir_; }

  std::string dir_;
};

}  // namespace posix

// Skips the test with the reason, or fails it when $DAXFS_POSIX_REQUIRE names the feature.
#define REQUIRE_FEATURE(name, feature)                                   \
  do {                                                                   \
    const ::posix::Feature& posix_f_ = (feature);                        \
    if (!posix_f_.ok) {                                                  \
      if (::posix::Required(name))                                       \
        FAIL() << "required feature " name " missing: " << posix_f_.why; \
      GTEST_SKIP() << "filesystem lacks " name ": " << posix_f_.why;     \
    }                                                                    \
  } while (0)
#define SKIP_UNLESS_ROOT()                                                                     \
  do {                                                                                         \
    if (geteuid() != 0) {                                                                      \
      if (::posix::Required("root")) FAIL() << "needs root (runs as uid " << geteuid() << ")"; \
      GTEST_SKIP() << "needs root (runs as uid " << geteuid() << ")";                          \
    }                                                                                          \
  } while (0)
#define SKIP_UNLESS_OTHER_USERS()                                                                \
  do {                                                                                           \
    const std::string& posix_why_ = ::posix::WhyNoOtherUsers();                                  \
    if (!posix_why_.empty()) {                                                                   \
      if (::posix::Required("other_users")) FAIL() << "cannot run as uid 65534: " << posix_why_; \
      GTEST_SKIP() << "cannot run checks as uid 65534: " << posix_why_;                          \
    }                                                                                            \
  } while (0)
