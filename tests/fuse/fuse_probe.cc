// fuse_probe: system calls against a mounted daxfs (or any directory) whose results the mount
// tests assert: the errno of one call, mmap coherence, SEEK_DATA/SEEK_HOLE, fallocate modes,
// copy_file_range, patterned files, and a concurrency smoke. Exit 0 when every check held,
// 1 with a line on stderr naming the first that did not. Knows only POSIX and Linux calls.
#include <fcntl.h>
#include <fmt/core.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

int failures = 0;

void Fail(const std::string& what) {
  fmt::print(stderr, "fuse_probe: FAILED: {}\n", what);
  ++failures;
}

void Check(bool ok, const std::string& what) {
  if (!ok) Fail(what);
}

std::string ErrName(int err) {
  if (err == 0) return "OK";
  const char* name = strerrorname_np(err);
  return name ? name : fmt::format("errno {}", err);
}

// Runs `call` (returns -1 and sets errno on error) and compares with `expected` ("OK", "ENOENT").
void Expect(const std::string& expected, const std::string& what,
            const std::function<long()>& call) {
  errno = 0;
  long r = call();
  std::string got = r < 0 ? ErrName(errno) : "OK";
  if (got != expected) Fail(fmt::format("{}: expected {}, got {}", what, expected, got));
}

int OpenOrDie(const std::string& path, int flags, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    fmt::print(stderr, "fuse_probe: open {}: {}\n", path, std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

uint8_t PatternByte(uint64_t seed, uint64_t offset) {
  uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ULL ^ (offset / 8) * 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 31;
  return static_cast<uint8_t>(x >> (8 * (offset % 8)));
}

bool WriteAll(int fd, const uint8_t* p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, off);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    off += w;
  }
  return true;
}

// ---- expect ERRNO OP ARGS...: one call and its errno.

int CmdExpect(std::vector<std::string> a) {
  if (a.size() < 2) return 2;
  const std::string want = a[0], op = a[1];
  auto arg = [&](size_t i) -> const char* { return i + 2 < a.size() ? a[i + 2].c_str() : ""; };
  const std::string what = fmt::format("{} {} {}", op, arg(0), arg(1));
  std::map<std::string, std::function<long()>> ops = {
      {"open",
       [&] {
         int flags = 0;
         std::string f = arg(1);
         if (f.find("rdonly") != std::string::npos) flags |= O_RDONLY;
         if (f.find("wronly") != std::string::npos) flags |= O_WRONLY;
         if (f.find("rdwr") != std::string::npos) flags |= O_RDWR;
         if (f.find("creat") != std::string::npos) flags |= O_CREAT;
         if (f.find("excl") != std::string::npos) flags |= O_EXCL;
         if (f.find("trunc") != std::string::npos) flags |= O_TRUNC;
         if (f.find("directory") != std::string::npos) flags |= O_DIRECTORY;
         if (f.find("nofollow") != std::string::npos) flags |= O_NOFOLLOW;
         int fd = ::open(arg(0), flags, 0644);
         if (fd >= 0) ::close(fd);
         return static_cast<long>(fd);
       }},
      {"mkdir", [&] { return static_cast<long>(::mkdir(arg(0), 0755)); }},
      {"rmdir", [&] { return static_cast<long>(::rmdir(arg(0))); }},
      {"unlink", [&] { return static_cast<long>(::unlink(arg(0))); }},
      {"rename", [&] { return static_cast<long>(::rename(arg(0), arg(1))); }},
      {"rename-noreplace",
       [&] {
         return static_cast<long>(
             ::renameat2(AT_FDCWD, arg(0), AT_FDCWD, arg(1), RENAME_NOREPLACE));
       }},
      {"rename-exchange",
       [&] {
         return static_cast<long>(::renameat2(AT_FDCWD, arg(0), AT_FDCWD, arg(1), RENAME_EXCHANGE));
       }},
      {"link", [&] { return static_cast<long>(::link(arg(0), arg(1))); }},
      {"symlink", [&] { return static_cast<long>(::symlink(arg(0), arg(1))); }},
      {"readlink",
       [&] {
         char buf[4096];
         return static_cast<long>(::readlink(arg(0), buf, sizeof buf));
       }},
      {"stat",
       [&] {
         struct stat st;
         return static_cast<long>(::stat(arg(0), &st));
       }},
      {"truncate", [&] { return static_cast<long>(::truncate(arg(0), std::atoll(arg(1)))); }},
      {"mkfifo", [&] { return static_cast<long>(::mkfifo(arg(0), 0644)); }},
      {"mknod-char",
       [&] { return static_cast<long>(::mknod(arg(0), S_IFCHR | 0644, makedev(1, 3))); }},
      {"setxattr", [&] { return static_cast<long>(::setxattr(arg(0), "user.k", "v", 1, 0)); }},
      {"getxattr",
       [&] {
         char buf[64];
         return static_cast<long>(::getxattr(arg(0), "user.k", buf, sizeof buf));
       }},
      {"listxattr",
       [&] {
         char buf[256];
         return static_cast<long>(::listxattr(arg(0), buf, sizeof buf));
       }},
      {"removexattr", [&] { return static_cast<long>(::removexattr(arg(0), "user.k")); }},
      {"setxattr-acl",  // a POSIX ACL: the mount has none
       [&] {
         return static_cast<long>(::setxattr(arg(0), "system.posix_acl_access", "\2\0\0\0", 4, 0));
       }},
      {"chdir", [&] { return static_cast<long>(::chdir(arg(0))); }},
      {"write",
       [&] {  // write ARG1 to the file (opened for writing, no create)
         int fd = ::open(arg(0), O_WRONLY);
         if (fd < 0) return -1L;
         long r = ::write(fd, arg(1), std::strlen(arg(1)));
         int err = errno;
         ::close(fd);
         errno = err;
         return r;
       }},
  };
  auto it = ops.find(op);
  if (it == ops.end()) {
    fmt::print(stderr, "fuse_probe: unknown op {}\n", op);
    return 2;
  }
  Expect(want, what, it->second);
  return failures ? 1 : 0;
}

// ---- mmap: stores through a shared mapping are seen by read(), writes by the mapping.

int CmdMmap(const std::string& path) {
  const size_t kSize = 64 * 1024;
  int fd = OpenOrDie(path, O_RDWR | O_CREAT | O_TRUNC);
  std::vector<uint8_t> data(kSize);
  for (size_t i = 0; i < kSize; ++i) data[i] = PatternByte(1, i);
  Check(WriteAll(fd, data.data(), kSize, 0), "write before mapping");
  auto* map =
      static_cast<uint8_t*>(::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (map == MAP_FAILED) {
    Fail(fmt::format("mmap: {}", std::strerror(errno)));
    return 1;
  }
  Check(std::memcmp(map, data.data(), kSize) == 0, "the mapping shows what write() wrote");
  // write() after mapping: the mapping sees it at once (same page cache).
  const char text[] = "written with pwrite";
  Check(::pwrite(fd, text, sizeof text, 5000) == static_cast<ssize_t>(sizeof text), "pwrite");
  Check(std::memcmp(map + 5000, text, sizeof text) == 0, "the mapping shows a later pwrite");
  // A store through the mapping: read() sees it at once, and after msync so does a new open.
  std::memcpy(map + 40000, "stored through mmap", 19);
  char back[19];
  Check(::pread(fd, back, sizeof back, 40000) == 19 &&
            std::memcmp(back, "stored through mmap", 19) == 0,
        "pread shows a store through the mapping");
  Check(::msync(map, kSize, MS_SYNC) == 0, "msync");
  ::munmap(map, kSize);
  ::close(fd);
  int again = OpenOrDie(path, O_RDONLY);
  Check(::pread(again, back, sizeof back, 40000) == 19 &&
            std::memcmp(back, "stored through mmap", 19) == 0,
        "a new open after msync reads the stored bytes");
  ::close(again);
  return failures ? 1 : 0;
}

// ---- SEEK_DATA / SEEK_HOLE over data at 0 and 1 MiB in a 2 MiB file.

int CmdSeek(const std::string& path) {
  int fd = OpenOrDie(path, O_RDWR | O_CREAT | O_TRUNC);
  std::vector<uint8_t> block(4096, 0xab);
  Check(WriteAll(fd, block.data(), block.size(), 0), "write at 0");
  Check(WriteAll(fd, block.data(), block.size(), 1 << 20), "write at 1 MiB");
  Check(::ftruncate(fd, 2 << 20) == 0, "ftruncate 2 MiB");
  Check(::lseek(fd, 0, SEEK_DATA) == 0, "SEEK_DATA 0");
  Check(::lseek(fd, 0, SEEK_HOLE) == 4096, "SEEK_HOLE 0 -> 4096");
  Check(::lseek(fd, 4096, SEEK_DATA) == (1 << 20), "SEEK_DATA 4096 -> 1 MiB");
  Check(::lseek(fd, (1 << 20) + 1, SEEK_HOLE) == (1 << 20) + 4096, "SEEK_HOLE in the second block");
  Check(::lseek(fd, (1 << 20) + 4096, SEEK_HOLE) == (1 << 20) + 4096, "SEEK_HOLE at a hole");
  Expect("ENXIO", "SEEK_DATA past the last data",
         [&] { return static_cast<long>(::lseek(fd, (1 << 20) + 4096, SEEK_DATA)); });
  Expect("ENXIO", "SEEK_HOLE at EOF",
         [&] { return static_cast<long>(::lseek(fd, 2 << 20, SEEK_HOLE)); });
  struct stat st;
  ::fstat(fd, &st);
  Check(st.st_size == (2 << 20), "size 2 MiB");
  Check(st.st_blocks == 2 * 8, fmt::format("st_blocks {} is two 4 KiB blocks", st.st_blocks));
  ::close(fd);
  return failures ? 1 : 0;
}

// ---- fallocate: plain, KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE, and refused modes.

int CmdFallocate(const std::string& path) {
  int fd = OpenOrDie(path, O_RDWR | O_CREAT | O_TRUNC);
  struct stat st;
  Check(::fallocate(fd, 0, 0, 64 * 1024) == 0, "fallocate plain");
  ::fstat(fd, &st);
  Check(st.st_size == 64 * 1024 && st.st_blocks == 16 * 8, "plain sets size and allocates");
  Check(::fallocate(fd, FALLOC_FL_KEEP_SIZE, 64 * 1024, 64 * 1024) == 0, "fallocate KEEP_SIZE");
  ::fstat(fd, &st);
  Check(st.st_size == 64 * 1024 && st.st_blocks == 32 * 8,
        "KEEP_SIZE allocates past EOF, size kept");
  std::vector<uint8_t> ones(64 * 1024, 1);
  Check(WriteAll(fd, ones.data(), ones.size(), 0), "write");
  Check(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192) == 0, "PUNCH_HOLE");
  // A host filesystem under test of the test (tmpfs) may lack ZERO_RANGE: zero by writing.
  bool zeroed = ::fallocate(fd, FALLOC_FL_ZERO_RANGE, 32768, 4096) == 0;
  if (!zeroed && errno == EOPNOTSUPP && std::getenv("FUSE_PROBE_HOST_FS") != nullptr) {
    std::vector<uint8_t> zeros(4096, 0);
    zeroed = WriteAll(fd, zeros.data(), zeros.size(), 32768);
  }
  Check(zeroed, "ZERO_RANGE");
  std::vector<uint8_t> back(64 * 1024);
  Check(::pread(fd, back.data(), back.size(), 0) == static_cast<ssize_t>(back.size()), "read back");
  for (size_t i = 0; i < back.size(); ++i) {
    bool zero = (i >= 4096 && i < 12288) || (i >= 32768 && i < 36864);
    if (back[i] != (zero ? 0 : 1)) {
      Fail(fmt::format("byte {} is {} after punch and zero range", i, back[i]));
      break;
    }
  }
  Check(::lseek(fd, 4096, SEEK_HOLE) == 4096, "the punched range is a hole");
  Expect("EOPNOTSUPP", "fallocate COLLAPSE_RANGE",
         [&] { return static_cast<long>(::fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096)); });
  Expect("EOPNOTSUPP", "fallocate PUNCH_HOLE without KEEP_SIZE",
         [&] { return static_cast<long>(::fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)); });
  ::close(fd);
  return failures ? 1 : 0;
}

// ---- copy_file_range SRC DST: the whole file, in the calls the kernel takes.

int CmdCopyRange(const std::string& src, const std::string& dst) {
  int in = OpenOrDie(src, O_RDONLY);
  int out = OpenOrDie(dst, O_WRONLY | O_CREAT | O_TRUNC);
  struct stat st;
  ::fstat(in, &st);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
    if (n <= 0) {
      Fail(fmt::format("copy_file_range: {}", n == 0 ? "returned 0" : std::strerror(errno)));
      break;
    }
    left -= n;
  }
  ::close(in);
  ::close(out);
  return failures ? 1 : 0;
}

// ---- pattern write|verify FILE SIZE SEED [fsync]: a file of known bytes.

int CmdPattern(const std::string& mode, const std::string& path, uint64_t size, uint64_t seed,
               bool sync) {
  std::vector<uint8_t> buf(1 << 20);
  if (mode == "write") {
    int fd = OpenOrDie(path, O_WRONLY | O_CREAT | O_TRUNC);
    for (uint64_t off = 0; off < size; off += buf.size()) {
      size_t n = std::min<uint64_t>(buf.size(), size - off);
      for (size_t i = 0; i < n; ++i) buf[i] = PatternByte(seed, off + i);
      Check(WriteAll(fd, buf.data(), n, static_cast<off_t>(off)), "pattern write");
    }
    if (sync) Check(::fsync(fd) == 0, "fsync");
    ::close(fd);
    return failures ? 1 : 0;
  }
  int fd = OpenOrDie(path, O_RDONLY);
  struct stat st;
  ::fstat(fd, &st);
  Check(static_cast<uint64_t>(st.st_size) == size,
        fmt::format("{}: size {} != {}", path, st.st_size, size));
  for (uint64_t off = 0; off < size && failures == 0; off += buf.size()) {
    size_t n = std::min<uint64_t>(buf.size(), size - off);
    ssize_t got = ::pread(fd, buf.data(), n, static_cast<off_t>(off));
    if (got != static_cast<ssize_t>(n)) {
      Fail(fmt::format("{}: short read at {}", path, off));
      break;
    }
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] != PatternByte(seed, off + i)) {
        Fail(fmt::format("{}: byte {} differs", path, off + i));
        break;
      }
    }
  }
  ::close(fd);
  return failures ? 1 : 0;
}

// ---- stress DIR THREADS ROUNDS: writers on their own files, readers on a shared one, metadata
// changes in between; every read must show the bytes last written.

int CmdStress(const std::string& dir, int threads, int rounds) {
  const std::string shared = dir + "/shared";
  const size_t kShared = 256 * 1024;
  {
    int fd = OpenOrDie(shared, O_WRONLY | O_CREAT | O_TRUNC);
    std::vector<uint8_t> b(kShared);
    for (size_t i = 0; i < kShared; ++i) b[i] = PatternByte(99, i);
    Check(WriteAll(fd, b.data(), kShared, 0), "shared write");
    ::close(fd);
  }
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::vector<uint8_t> buf(64 * 1024);
      for (int r = 0; r < rounds; ++r) {
        if (t % 2 == 0) {  // writer: own file, rewritten, read back, renamed, unlinked
          std::string f = fmt::format("{}/w{}.{}", dir, t, r);
          int fd = ::open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
          if (fd < 0) {
            ++errors;
            continue;
          }
          for (size_t i = 0; i < buf.size(); ++i) buf[i] = PatternByte(t * 1000 + r, i);
          if (!WriteAll(fd, buf.data(), buf.size(), 0)) ++errors;
          std::vector<uint8_t> back(buf.size());
          if (::pread(fd, back.data(), back.size(), 0) != static_cast<ssize_t>(back.size()) ||
              back != buf)
            ++errors;
          ::close(fd);
          std::string g = f + ".renamed";
          if (::rename(f.c_str(), g.c_str()) != 0) ++errors;
          if (r % 2 == 0 && ::unlink(g.c_str()) != 0) ++errors;
        } else {  // reader: the shared file, and a listing
          int fd = ::open(shared.c_str(), O_RDONLY);
          if (fd < 0) {
            ++errors;
            continue;
          }
          for (size_t off = 0; off < kShared; off += buf.size()) {
            if (::pread(fd, buf.data(), buf.size(), static_cast<off_t>(off)) !=
                static_cast<ssize_t>(buf.size())) {
              ++errors;
              break;
            }
            for (size_t i = 0; i < buf.size(); i += 511) {
              if (buf[i] != PatternByte(99, off + i)) {
                ++errors;
                break;
              }
            }
          }
          ::close(fd);
          struct stat st;
          if (::stat(dir.c_str(), &st) != 0) ++errors;
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  Check(errors == 0, fmt::format("{} errors under concurrency", errors.load()));
  return failures ? 1 : 0;
}

// ---- unlink-open FILE: whether a file unlinked while open keeps its data (it does since the
// engine has open-file references and orphans, ENGINE_NEEDS.md 1; before, reads gave ESTALE).

int CmdUnlinkOpen(const std::string& path) {
  int fd = OpenOrDie(path, O_RDWR | O_CREAT | O_TRUNC);
  Check(::write(fd, "abc", 3) == 3, "write");
  Check(::unlink(path.c_str()) == 0, "unlink while open");
  char b[3];
  errno = 0;
  ssize_t r = ::pread(fd, b, 3, 0);
  fmt::print("read after unlink: {}\n", r == 3 ? "OK (data kept)" : ErrName(errno));
  ::close(fd);
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  if (a.empty()) {
    fmt::print(stderr,
               "usage: fuse_probe expect ERRNO OP ARGS | mmap F | seek F | fallocate F | "
               "copy-range SRC DST | pattern write|verify F SIZE SEED [fsync] | "
               "stress DIR THREADS ROUNDS | unlink-open F\n");
    return 2;
  }
  const std::string cmd = a[0];
  a.erase(a.begin());
  if (cmd == "expect") return CmdExpect(a);
  if (cmd == "mmap" && a.size() == 1) return CmdMmap(a[0]);
  if (cmd == "seek" && a.size() == 1) return CmdSeek(a[0]);
  if (cmd == "fallocate" && a.size() == 1) return CmdFallocate(a[0]);
  if (cmd == "copy-range" && a.size() == 2) return CmdCopyRange(a[0], a[1]);
  if (cmd == "pattern" && a.size() >= 4) {
    return CmdPattern(a[0], a[1], std::strtoull(a[2].c_str(), nullptr, 0),
                      std::strtoull(a[3].c_str(), nullptr, 0), a.size() > 4 && a[4] == "fsync");
  }
  if (cmd == "stress" && a.size() == 3)
    return CmdStress(a[0], std::atoi(a[1].c_str()), std::atoi(a[2].c_str()));
  if (cmd == "unlink-open" && a.size() == 1) return CmdUnlinkOpen(a[0]);
  fmt::print(stderr, "fuse_probe: bad command {}\n", cmd);
  return 2;
}
