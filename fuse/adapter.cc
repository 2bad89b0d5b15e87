// The FUSE low-level operations over the public daxfs API: arguments in, one engine call, one
// reply out; the kernel's lookup counts kept on every entry reply and forget. Each callback may
// run on any of the session's threads at once; nothing here serialises engine calls.
// Knows libfuse's low-level API and include/daxfs/ only.
#include "adapter.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "control.h"

namespace daxfs::fusefs {
namespace {

static_assert(kFallocKeepSize == FALLOC_FL_KEEP_SIZE && kFallocPunchHole == FALLOC_FL_PUNCH_HOLE &&
              kFallocZeroRange == FALLOC_FL_ZERO_RANGE);
static_assert(kRootIno == FUSE_ROOT_ID && LookupTable::kRoot == FUSE_ROOT_ID);

constexpr int64_t kNsPerSecond = 1'000'000'000;
// A FUSE write reply carries a 32-bit count: copy_file_range asks the engine for at most this.
constexpr size_t kMaxCopyBytes = 0xfffff000;

Adapter& A(fuse_req_t req) { return *static_cast<Adapter*>(fuse_req_userdata(req)); }

// ---- Errors.

void ReplyError(fuse_req_t req, const char* op, uint64_t ino, const Status& s) {
  if (A(req).options().debug) {
    fuse_log(FUSE_LOG_DEBUG, "daxfs: %s (inode %" PRIu64 "): %s\n", op, ino, s.ToString().c_str());
  }
  fuse_reply_err(req, s.code());
}

void ReplyStatus(fuse_req_t req, const char* op, uint64_t ino, const Status& s) {
  if (s.ok()) {
    fuse_reply_err(req, 0);
  } else {
    ReplyError(req, op, ino, s);
  }
}

// For an operation on an inode the kernel holds: ENOENT means the inode went away under an open
// file (the engine deletes a file at its last unlink, see ENGINE_NEEDS.md): ESTALE, as NFS says.
Status Stale(const Status& s) {
  return s.code() == ENOENT ? Status::Error(ESTALE, s.message()) : s;
}

// ---- Attributes.

mode_t TypeBits(FileType type) {
  switch (type) {
    case FileType::kRegular:
      return S_IFREG;
    case FileType::kDirectory:
      return S_IFDIR;
    case FileType::kSymlink:
      return S_IFLNK;
    case FileType::kFifo:
      return S_IFIFO;
    case FileType::kSocket:
      return S_IFSOCK;
    case FileType::kCharDevice:
      return S_IFCHR;
    case FileType::kBlockDevice:
      return S_IFBLK;
  }
  return S_IFREG;
}

timespec ToTimespec(int64_t ns) {
  int64_t s = ns / kNsPerSecond, rest = ns % kNsPerSecond;
  if (rest < 0) {
    rest += kNsPerSecond;
    --s;
  }
  return timespec{.tv_sec = static_cast<time_t>(s), .tv_nsec = static_cast<long>(rest)};
}

int64_t ToNs(const timespec& t) { return int64_t{t.tv_sec} * kNsPerSecond + t.tv_nsec; }

void FillStat(const Attr& a, struct stat* st) {
  *st = {};
  st->st_ino = a.ino;
  st->st_mode = TypeBits(a.type) | (a.mode & 07777);
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = 4096;
  st->st_blocks = static_cast<blkcnt_t>(a.blocks * (4096 / 512));
  st->st_atim = ToTimespec(a.atime_ns);
  st->st_mtim = ToTimespec(a.mtime_ns);
  st->st_ctim = ToTimespec(a.ctime_ns);
  st->st_rdev = static_cast<dev_t>(a.rdev);
}

// FUSE names an inode by (number, generation). The engine never gives a number to a second
// inode (the inode table's header, docs/format.md), so its generation (0 today) is enough.
uint64_t Generation(const Attr& a) { return a.generation; }

fuse_entry_param Entry(fuse_req_t req, const Attr& a) {
  fuse_entry_param e{};
  e.ino = a.ino;
  e.generation = Generation(a);
  FillStat(a, &e.attr);
  e.attr_timeout = e.entry_timeout = A(req).options().timeout;
  return e;
}

// An inode the kernel knows (lookup count above zero) holds one engine reference, so that its
// last unlink keeps it as an orphan while the kernel may still use it (open files, mappings,
// working directories); the last forget releases it, which frees an orphan. A Retain that fails
// (the inode went meanwhile) leaves the kernel with a stale number, answered with ESTALE. A
// forget racing a new lookup of the same inode may release before the new reference is taken:
// the release then fails (EINVAL, ignored) and the reference stays until unmount.
void Known(Adapter& a, Ino ino, uint64_t n = 1) {
  if (a.lookups().Add(ino, n) && ino != kRootIno) a.fs().Retain(ino).IgnoreError();
}
void Forgotten(Adapter& a, Ino ino, uint64_t n) {
  if (a.lookups().Forget(ino, n) == 0 && ino != kRootIno) a.fs().Release(ino).IgnoreError();
}

// Counts the lookup before replying (a forget may follow the reply at once on another thread)
// and takes it back when the kernel did not get the reply (an interrupted request).
void ReplyEntry(fuse_req_t req, const Attr& a) {
  fuse_entry_param e = Entry(req, a);
  Known(A(req), a.ino);
  if (fuse_reply_entry(req, &e) != 0) Forgotten(A(req), a.ino, 1);
}

void ReplyAttr(fuse_req_t req, const Attr& a) {
  struct stat st;
  FillStat(a, &st);
  fuse_reply_attr(req, &st, A(req).options().timeout);
}

// The caller of a request, for the engine to own new inodes by (set-gid directories included).
// Supplementary groups matter only for a set-gid file made in a set-gid directory.
Credentials CallerOf(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Credentials c{.uid = ctx->uid, .gid = ctx->gid, .groups = {}};
  if (c.uid != 0) {
    gid_t groups[64];
    int n = fuse_req_getgroups(req, 64, groups);
    for (int i = 0; i < std::min(n, 64); ++i) c.groups.push_back(groups[i]);
  }
  return c;
}

// A per-thread buffer for reads, writes from pipes and directory listings (up to 1 MiB).
uint8_t* ThreadBuffer(size_t size) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

// ---- Operations.

void OpInit(void* userdata, fuse_conn_info* conn) {
  Adapter* a = static_cast<Adapter*>(userdata);
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  auto refuse = [conn](unsigned cap) { conn->want &= ~cap; };
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ATOMIC_O_TRUNC);   // open(O_TRUNC) arrives as one open, truncated here
  want(FUSE_CAP_PARALLEL_DIROPS);  // lookups and readdirs of one directory run at once
  want(FUSE_CAP_AUTO_INVAL_DATA);  // cached pages dropped when mtime or size changes
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_READDIRPLUS_AUTO);
  want(FUSE_CAP_CACHE_SYMLINKS);  // symlink targets never change
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_IOCTL_DIR);  // control ioctls on directories too
  // The daemon must see every write when it happens (durability), suid/sgid are cleared by the
  // kernel (the engine does not), data arrives in memory (the engine copies it to the device;
  // splicing through a pipe would add a copy), and there are no ACLs.
  refuse(FUSE_CAP_WRITEBACK_CACHE);
  refuse(FUSE_CAP_HANDLE_KILLPRIV);
  refuse(FUSE_CAP_SPLICE_READ);
  refuse(FUSE_CAP_SPLICE_WRITE);
  refuse(FUSE_CAP_SPLICE_MOVE);
  refuse(FUSE_CAP_POSIX_ACL);
  refuse(FUSE_CAP_EXPORT_SUPPORT);
  conn->max_write = a->options().max_io;
  conn->max_read = a->options().max_io;
  // max_readahead stays the kernel's: a filesystem may only lower it.
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;  // nanosecond timestamps
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Adapter& a = A(req);
  Result<Attr> r = a.fs().Lookup(parent, name);
  if (r.ok()) return ReplyEntry(req, *r);
  if (r.status().code() == ENOENT && a.options().timeout > 0) {
    fuse_entry_param negative{};  // ino 0: the kernel caches "no such name" for entry_timeout
    negative.entry_timeout = a.options().timeout;
    fuse_reply_entry(req, &negative);
    return;
  }
  ReplyError(req, "lookup", parent, r.status());
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Forgotten(A(req), ino, nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Forgotten(A(req), forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Result<Attr> r = A(req).fs().GetAttr(ino);
  if (!r.ok()) return ReplyError(req, "getattr", ino, Stale(r.status()));
  ReplyAttr(req, *r);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Filesystem& fs = A(req).fs();
  SetAttrRequest r;  // one engine operation: size, owner, mode and times together
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (attr->st_size < 0)
      return ReplyError(req, "truncate", ino, Status::Invalid("negative size"));
    r.size = static_cast<uint64_t>(attr->st_size);
  }
  if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
  // UTIME_NOW: the engine's clock (the same reading as the ctime); UTIME_OMIT: not sent.
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    r.atime_now = true;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    r.atime_ns = ToNs(attr->st_atim);
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    r.mtime_now = true;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    r.mtime_ns = ToNs(attr->st_mtim);
  }
  const bool change =
      r.size || r.mode || r.uid || r.gid || r.atime_ns || r.mtime_ns || r.atime_now || r.mtime_now;
  Result<Attr> out = change ? fs.SetAttr(ino, r) : fs.GetAttr(ino);
  if (!out.ok()) return ReplyError(req, "setattr", ino, Stale(out.status()));
  ReplyAttr(req, *out);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  Result<std::string> r = A(req).fs().ReadLink(ino);
  if (!r.ok()) return ReplyError(req, "readlink", ino, Stale(r.status()));
  fuse_reply_readlink(req, r->c_str());
}

// The special file type of a mknod mode; nullopt for a regular file (or no type bits, which
// mknod(2) takes as a regular file).
std::optional<FileType> SpecialType(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFIFO:
      return FileType::kFifo;
    case S_IFSOCK:
      return FileType::kSocket;
    case S_IFCHR:
      return FileType::kCharDevice;
    case S_IFBLK:
      return FileType::kBlockDevice;
  }
  return std::nullopt;
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  const mode_t type = mode & S_IFMT;
  if (type != 0 && type != S_IFREG && !SpecialType(mode)) {
    return ReplyError(req, "mknod", parent, Status::Invalid("mknod of a directory or symlink"));
  }
  std::optional<FileType> special = SpecialType(mode);
  Result<Attr> r =
      special ? A(req).fs().Mknod(parent, name, *special, mode & 07777,
                                  (*special == FileType::kCharDevice ||
                                   *special == FileType::kBlockDevice)
                                      ? static_cast<uint64_t>(rdev)
                                      : 0,
                                  CallerOf(req))
              : A(req).fs().Create(parent, name, mode & 07777, CallerOf(req));
  if (!r.ok()) return ReplyError(req, "mknod", parent, r.status());
  ReplyEntry(req, *r);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Result<Attr> r = A(req).fs().Mkdir(parent, name, mode & 07777, CallerOf(req));
  if (!r.ok()) return ReplyError(req, "mkdir", parent, r.status());
  ReplyEntry(req, *r);
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Result<Attr> r = A(req).fs().Symlink(parent, name, link, CallerOf(req));
  if (!r.ok()) return ReplyError(req, "symlink", parent, r.status());
  ReplyEntry(req, *r);
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  Result<Attr> r = A(req).fs().Link(ino, parent, name);
  if (!r.ok()) return ReplyError(req, "link", ino, Stale(r.status()));
  ReplyEntry(req, *r);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, "unlink", parent, A(req).fs().Unlink(parent, name));
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ReplyStatus(req, "rmdir", parent, A(req).fs().Rmdir(parent, name));
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
              const char* new_name, unsigned int flags) {
  // RENAME_NOREPLACE and RENAME_EXCHANGE are the engine's (it checks them itself); it refuses
  // RENAME_WHITEOUT and unknown flags with EINVAL, as Linux does for a filesystem without them.
  static_assert(RENAME_NOREPLACE == kRenameNoReplace && RENAME_EXCHANGE == kRenameExchange);
  ReplyStatus(req, "rename", parent, A(req).fs().Rename(parent, name, new_parent, new_name, flags));
}

// Page cache kept across opens while the daemon is the only writer (the kernel saw every change;
// not with client processes storing directly: AdapterOptions::keep_cache), and no FLUSH on close
// (the daemon buffers nothing).
void SetOpenFlags(fuse_req_t req, fuse_file_info* fi) {
  fi->keep_cache = A(req).options().keep_cache ? 1 : 0;
  fi->noflush = 1;
}

// What the adapter keeps per open file or directory (fi->fh): whether its access time is still
// to be looked at. The kernel keeps atime of FUSE inodes to the filesystem (S_NOATIME), so the
// adapter asks the engine, once per open (relatime's rule makes later reads of the same open a
// no-op until the file is written, and a write through this open re-arms it).
struct OpenState {
  std::atomic<bool> atime_pending{true};
};

void AttachOpenState(fuse_file_info* fi) { fi->fh = reinterpret_cast<uint64_t>(new OpenState); }
void DropOpenState(fuse_file_info* fi) {
  delete reinterpret_cast<OpenState*>(fi->fh);
  fi->fh = 0;
}

void AccessedAtime(fuse_req_t req, Ino ino, fuse_file_info* fi, bool dir) {
  const AdapterOptions& o = A(req).options();
  if (fi == nullptr || fi->fh == 0 || !o.atime || (dir && !o.diratime)) return;
  auto* st = reinterpret_cast<OpenState*>(fi->fh);
  if (!st->atime_pending.exchange(false, std::memory_order_relaxed)) return;
  Result<bool> r = A(req).fs().TouchAtime(ino);  // best effort: the read itself succeeded
  if (!r.ok()) st->atime_pending.store(true, std::memory_order_relaxed);
}

void Rearm(fuse_file_info* fi) {
  if (fi != nullptr && fi->fh != 0) {
    reinterpret_cast<OpenState*>(fi->fh)->atime_pending.store(true, std::memory_order_relaxed);
  }
}

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  DropOpenState(fi);
  fuse_reply_err(req, 0);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Filesystem& fs = A(req).fs();
  Status s = (fi->flags & O_TRUNC) ? fs.Truncate(ino, 0) : fs.GetAttr(ino).status();
  if (!s.ok()) return ReplyError(req, "open", ino, Stale(s));
  SetOpenFlags(req, fi);
  AttachOpenState(fi);
  if (fuse_reply_open(req, fi) != 0) DropOpenState(fi);  // interrupted: no release will come
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  Filesystem& fs = A(req).fs();
  Result<Attr> r = fs.Create(parent, name, mode & 07777, CallerOf(req));
  if (!r.ok() && r.status().code() == EEXIST && !(fi->flags & O_EXCL)) {
    // open(O_CREAT) of a name made meanwhile opens the file that is there.
    r = fs.Lookup(parent, name);
    if (r.ok() && r->type != FileType::kRegular) r = Status::Exists("not a regular file");
    if (r.ok() && (fi->flags & O_TRUNC)) {
      Status t = fs.Truncate(r->ino, 0);
      if (!t.ok()) r = t;
    }
  }
  if (!r.ok()) return ReplyError(req, "create", parent, r.status());
  SetOpenFlags(req, fi);
  AttachOpenState(fi);
  fuse_entry_param e = Entry(req, *r);
  Known(A(req), r->ino);
  if (fuse_reply_create(req, &e, fi) != 0) {
    Forgotten(A(req), r->ino, 1);
    DropOpenState(fi);
  }
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (off < 0) return ReplyError(req, "read", ino, Status::Invalid("negative offset"));
  uint8_t* buffer = ThreadBuffer(size);
  Result<size_t> n = A(req).fs().Read(ino, static_cast<uint64_t>(off), {buffer, size});
  if (!n.ok()) return ReplyError(req, "read", ino, Stale(n.status()));
  AccessedAtime(req, ino, fi, /*dir=*/false);
  fuse_reply_buf(req, reinterpret_cast<const char*>(buffer), *n);
}

void OpWriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  if (off < 0) return ReplyError(req, "write", ino, Status::Invalid("negative offset"));
  size_t size = fuse_buf_size(in);
  const uint8_t* data = nullptr;
  if (in->count == 1 && in->idx == 0 && in->off == 0 && !(in->buf[0].flags & FUSE_BUF_IS_FD)) {
    data = static_cast<const uint8_t*>(in->buf[0].mem);  // the request buffer itself: no copy
  } else {
    uint8_t* buffer = ThreadBuffer(size);
    fuse_bufvec out = FUSE_BUFVEC_INIT(size);
    out.buf[0].mem = buffer;
    ssize_t copied = fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));
    if (copied < 0) {
      return ReplyError(req, "write", ino, Status::Error(static_cast<int>(-copied), "buffer copy"));
    }
    size = static_cast<size_t>(copied);
    data = buffer;
  }
  Result<size_t> n = A(req).fs().Write(ino, static_cast<uint64_t>(off), {data, size});
  if (!n.ok()) return ReplyError(req, "write", ino, Stale(n.status()));
  Rearm(fi);  // mtime moved past atime: the next read through this open updates it
  fuse_reply_write(req, *n);
}

void OpOk(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

// fsync, fdatasync and fsyncdir commit everything before them (the engine has one journal-free
// commit for the whole filesystem).
void OpFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  ReplyStatus(req, "fsync", ino, Stale(A(req).fs().Fsync(ino)));
}

void OpOpendir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  AttachOpenState(fi);
  if (fuse_reply_open(req, fi) != 0) DropOpenState(fi);
}

// Entries after cookie `off` ("." and ".." first), as many as fit in `size` bytes. With `plus`,
// each entry but "." and ".." carries its attributes and counts as a lookup.
//
// Directory offsets: the engine's cookies are 1 ("."), 2 ("..") and an entry's slot, which has
// bit 63 set (docs/format.md), so as an off_t it would be negative and lseek/seekdir to it fail
// with EINVAL. The offset the kernel sees is the cookie with bit 63 cleared (1 and 2 as they
// are), and back. An entry whose slot with bit 63 cleared is 2 or less (bits 8..62 of its name
// hash all zero, 1 in 2^55 per name) would be listed again after a resume at "..".
off_t OffsetOf(uint64_t cookie) {
  return static_cast<off_t>(cookie <= 2 ? cookie : cookie & ~(1ULL << 63));
}
uint64_t CookieOf(off_t off) {
  const uint64_t o = static_cast<uint64_t>(off);
  return o <= 2 ? o : o | (1ULL << 63);
}

void ReadDirectory(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  Adapter& a = A(req);
  char* buffer = reinterpret_cast<char*>(ThreadBuffer(size));
  size_t used = 0;
  std::vector<DirEntry> wanted;  // plus: entries that fit, attributes read after the listing
  Status s = a.fs().ReadDir(ino, CookieOf(off), [&](const DirEntry& d) {
    if (plus) {
      size_t need = fuse_add_direntry_plus(req, nullptr, 0, d.name.c_str(), nullptr, 0);
      if (need > size - used) return false;
      used += need;
      wanted.push_back(d);
      return true;
    }
    struct stat st {};
    st.st_ino = d.ino;
    st.st_mode = TypeBits(d.type);
    size_t need =
        fuse_add_direntry(req, buffer + used, size - used, d.name.c_str(), &st, OffsetOf(d.cookie));
    if (need > size - used) return false;
    used += need;
    return true;
  });
  std::vector<Ino> counted;  // plus: lookups added for the entries in the buffer
  if (plus) {
    used = 0;
    for (const DirEntry& d : wanted) {
      fuse_entry_param e{};
      if (d.name == "." || d.name == "..") {  // no attributes, no lookup (the kernel skips them)
        e.attr.st_ino = d.ino;
        e.attr.st_mode = TypeBits(d.type);
      } else {
        Result<Attr> attr = a.fs().GetAttr(d.ino);
        if (!attr.ok() && attr.status().IsNotFound()) continue;  // removed meanwhile
        if (!attr.ok()) {
          s = attr.status();
          break;
        }
        e = Entry(req, *attr);
        Known(a, d.ino);
        counted.push_back(d.ino);
      }
      used += fuse_add_direntry_plus(req, buffer + used, size - used, d.name.c_str(), &e,
                                     OffsetOf(d.cookie));
    }
  }
  if (!s.ok() && s.IsNotFound() && used == 0) s = Status::Ok();  // removed: no more entries
  if (!s.ok() && used == 0) return ReplyError(req, "readdir", ino, Stale(s));
  // After an error, the entries already listed are still given (their lookups counted), as a
  // reply cannot carry both.
  if (fuse_reply_buf(req, buffer, used) != 0) {
    for (Ino counted_ino : counted) Forgotten(a, counted_ino, 1);
  }
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  AccessedAtime(req, ino, fi, /*dir=*/true);
  ReadDirectory(req, ino, size, off, /*plus=*/false);
}

void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  AccessedAtime(req, ino, fi, /*dir=*/true);
  ReadDirectory(req, ino, size, off, /*plus=*/true);
}

void OpStatfs(fuse_req_t req, fuse_ino_t ino) {
  Result<FsStats> r = A(req).fs().StatFs();
  if (!r.ok()) return ReplyError(req, "statfs", ino, r.status());
  struct statvfs v {};
  v.f_bsize = v.f_frsize = r->block_size;
  v.f_blocks = r->total_blocks;
  v.f_bfree = v.f_bavail = r->free_blocks;
  // Inodes are tree records with no fixed table: at least one more fits per free block.
  v.f_files = r->inodes + r->free_blocks;
  v.f_ffree = v.f_favail = r->free_blocks;
  v.f_namemax = 255;
  fuse_reply_statfs(req, &v);
}

void OpFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                 fuse_file_info*) {
  constexpr int kModes = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  Filesystem& fs = A(req).fs();
  if (off < 0 || length <= 0) {
    return ReplyError(req, "fallocate", ino, Status::Invalid("bad offset or length"));
  }
  Status s;
  if (mode & FALLOC_FL_UNSHARE_RANGE) {
    s = (mode & ~(FALLOC_FL_UNSHARE_RANGE | FALLOC_FL_KEEP_SIZE))
            ? Status::Invalid("FALLOC_FL_UNSHARE_RANGE with other modes")
            : fs.Unshare(ino, static_cast<uint64_t>(off), static_cast<uint64_t>(length));
  } else if (mode & ~kModes) {
    s = Status::NotSupported("collapse and insert range are not supported");
  } else {
    s = fs.Fallocate(ino, static_cast<uint32_t>(mode), static_cast<uint64_t>(off),
                     static_cast<uint64_t>(length));
  }
  ReplyStatus(req, "fallocate", ino, Stale(s));
}

void OpLseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info*) {
  if (off < 0) return ReplyError(req, "lseek", ino, Status::Error(ENXIO, "negative offset"));
  Filesystem& fs = A(req).fs();
  Result<uint64_t> r = whence == SEEK_DATA   ? fs.SeekData(ino, static_cast<uint64_t>(off))
                       : whence == SEEK_HOLE ? fs.SeekHole(ino, static_cast<uint64_t>(off))
                                             : Result<uint64_t>(Status::Invalid("whence"));
  if (!r.ok()) return ReplyError(req, "lseek", ino, Stale(r.status()));
  fuse_reply_lseek(req, static_cast<off_t>(*r));
}

// The block-aligned part becomes a clone (shared blocks), the rest is copied (the engine's
// CopyFileRange). This is how reflinks reach a FUSE mount: the clone ioctls cannot.
void OpCopyFileRange(fuse_req_t req, fuse_ino_t in, off_t off_in, fuse_file_info*, fuse_ino_t out,
                     off_t off_out, fuse_file_info*, size_t length, int flags) {
  if (flags != 0 || off_in < 0 || off_out < 0) {
    return ReplyError(req, "copy_file_range", in, Status::Invalid("flags or offsets"));
  }
  Result<uint64_t> n =
      A(req).fs().CopyFileRange(in, static_cast<uint64_t>(off_in), out,
                                static_cast<uint64_t>(off_out), std::min(length, kMaxCopyBytes));
  if (!n.ok()) return ReplyError(req, "copy_file_range", in, Stale(n.status()));
  fuse_reply_write(req, *n);
}

// ---- Extended attributes. The engine stores any name; the mount takes the user., trusted. and
// security. namespaces (the kernel checks who may use which). system.* (POSIX ACLs: the mount
// has none) and names without a namespace are EOPNOTSUPP; a bare prefix ("user.") is EINVAL.
// The size-0 probes of getxattr and listxattr answer the length the caller must allocate. As on
// ext4 and XFS, listxattr shows trusted.* names to root only (the kernel leaves that to FUSE).
Status CheckXattrName(const char* name) {
  std::string_view n(name);
  for (std::string_view prefix : {"user.", "trusted.", "security."}) {
    if (n.rfind(prefix, 0) != 0) continue;
    if (n.size() == prefix.size()) return Status::Invalid("xattr: empty name after the namespace");
    return Status::Ok();
  }
  return Status::NotSupported("xattr: only the user., trusted. and security. namespaces");
}

void OpSetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags) {
  Status s = CheckXattrName(name);
  if (s.ok()) {
    s = A(req).fs().SetXattr(ino, name, {reinterpret_cast<const uint8_t*>(value), size}, flags);
  }
  ReplyStatus(req, "setxattr", ino, Stale(s));
}

void OpGetxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (Status s = CheckXattrName(name); !s.ok()) return ReplyError(req, "getxattr", ino, s);
  Filesystem& fs = A(req).fs();
  if (size == 0) {
    Result<size_t> n = fs.GetXattr(ino, name, {});
    if (!n.ok()) return ReplyError(req, "getxattr", ino, Stale(n.status()));
    return (void)fuse_reply_xattr(req, *n);
  }
  std::vector<uint8_t> buf(std::min<size_t>(size, 65536));
  Result<size_t> n = fs.GetXattr(ino, name, buf);
  if (!n.ok()) return ReplyError(req, "getxattr", ino, Stale(n.status()));
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *n);
}

void OpListxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Result<std::vector<std::string>> names = A(req).fs().ListXattr(ino);
  if (!names.ok()) return ReplyError(req, "listxattr", ino, Stale(names.status()));
  const bool root = fuse_req_ctx(req)->uid == 0;
  std::string out;  // NUL-terminated names, one after another
  for (const std::string& n : *names) {
    if (!root && n.rfind("trusted.", 0) == 0) continue;
    out += n;
    out += '\0';
  }
  if (size == 0) return (void)fuse_reply_xattr(req, out.size());
  if (out.size() > size) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, out.data(), out.size());
}

void OpRemovexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Status s = CheckXattrName(name);
  if (s.ok()) s = A(req).fs().RemoveXattr(ino, name);
  ReplyStatus(req, "removexattr", ino, Stale(s));
}

// Called only with -o no_default_permissions (then the mount is the mounting user's alone):
// the inode must exist, and X_OK needs a directory or an execute bit, as for root on Linux.
void OpAccess(fuse_req_t req, fuse_ino_t ino, int mask) {
  Result<Attr> r = A(req).fs().GetAttr(ino);
  if (!r.ok()) return ReplyError(req, "access", ino, Stale(r.status()));
  if ((mask & X_OK) && r->type != FileType::kDirectory && (r->mode & 0111) == 0) {
    return (void)fuse_reply_err(req, EACCES);
  }
  fuse_reply_err(req, 0);
}

// The block behind byte `offset` of `ino`, on the device (inject-error at a file offset).
Result<uint64_t> DeviceOffsetOf(Filesystem& fs, Ino ino, uint64_t offset) {
  ASSIGN_OR_RETURN(std::vector<FileExtent> extents, fs.Bmap(ino));
  for (const FileExtent& x : extents) {
    if (offset >= x.file_offset && offset < x.file_offset + x.length) {
      return (x.device_offset + (offset - x.file_offset)) & ~uint64_t{4095};
    }
  }
  return Status::Error(ENXIO, "the byte is in a hole: no device block behind it");
}

// Routes an injected media failure through the daemon's DaxFs; cached pages of every owner's
// lost range are dropped so that the next read reaches the engine (and fails with EIO).
Status InjectError(fuse_req_t req, Ino ino, InjectErrorIoctl* io) {
  Adapter& a = A(req);
  if (fuse_req_ctx(req)->uid != 0) return Status::Error(EPERM, "inject-error needs root");
  uint64_t offset = io->offset;
  if ((io->flags & ~(kInjectAtFileOffset | kInjectLatent)) != 0) {
    return Status::Invalid("unknown inject-error flags");
  }
  if (io->flags & kInjectAtFileOffset) {
    ASSIGN_OR_RETURN(offset, DeviceOffsetOf(a.fs(), ino, io->offset));
  }
  const uint64_t length = io->length == 0 ? 4096 : io->length;
  if (io->flags & kInjectLatent) {
    ASSIGN_OR_RETURN(DeviceRange marked, a.dax().InjectLatentError(offset, length));
    io->offset = marked.offset;
    io->length = marked.length;
    io->owners = 0;
    io->shut_down = 0;
    return Status::Ok();
  }
  // The owners' cached pages are dropped by the loss observer (Adapter::Attach).
  ASSIGN_OR_RETURN(FailureReport report, a.dax().InjectError(offset, length));
  if (a.options().debug) {
    fuse_log(FUSE_LOG_DEBUG,
             "daxfs: inject-error at device bytes %" PRIu64 "+%" PRIu64 ": %zu owners\n",
             report.offset, report.length, report.media.owners.size());
  }
  io->offset = report.offset;
  io->length = report.length;
  io->owners = static_cast<uint32_t>(report.media.owners.size());
  io->shut_down = report.shut_down ? 1 : 0;
  return Status::Ok();
}

// Root or the user who mounted (the daemon's uid) may start and stop a scrub.
bool MayControl(fuse_req_t req) {
  uid_t uid = fuse_req_ctx(req)->uid;
  return uid == 0 || uid == ::getuid();
}

// The scrub requests (control.h kIocScrub*), on the mount's root only.
void ScrubIoctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, const void* in, size_t in_size,
                size_t out_size) {
  ScrubControl& scrub = A(req).scrub();
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTTY);
  if (cmd == static_cast<unsigned int>(kIocScrubStatus)) {
    if (out_size < sizeof(ScrubStatusIoctl)) return (void)fuse_reply_err(req, EINVAL);
    ScrubStatusIoctl st = scrub.GetStatus();
    return (void)fuse_reply_ioctl(req, 0, &st, sizeof st);
  }
  if (!MayControl(req)) return (void)fuse_reply_err(req, EPERM);
  if (cmd == static_cast<unsigned int>(kIocScrubStart)) {
    if (in_size < sizeof(ScrubStartIoctl)) return (void)fuse_reply_err(req, EINVAL);
    ScrubStartIoctl io;
    std::memcpy(&io, in, sizeof io);
    Status s = scrub.Start(io);
    if (!s.ok()) return ReplyError(req, "scrub start", ino, s);
    return (void)fuse_reply_ioctl(req, 0, nullptr, 0);
  }
  if (cmd == static_cast<unsigned int>(kIocScrubStop)) {
    Status s = scrub.Stop();
    if (!s.ok()) return ReplyError(req, "scrub stop", ino, s);
    return (void)fuse_reply_ioctl(req, 0, nullptr, 0);
  }
  // kIocScrubSummary
  if (in_size < sizeof(ScrubSummaryIoctl) || out_size < sizeof(ScrubSummaryIoctl)) {
    return (void)fuse_reply_err(req, EINVAL);
  }
  auto io = std::make_unique<ScrubSummaryIoctl>();
  std::memcpy(io.get(), in, sizeof *io);
  Status s = scrub.Summary(io.get());
  if (!s.ok()) return ReplyError(req, "scrub summary", ino, s);
  fuse_reply_ioctl(req, 0, io.get(), sizeof *io);
}

void OpIoctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void*, fuse_file_info*,
             unsigned flags, const void* in, size_t in_size, size_t out_size) {
  if (flags & FUSE_IOCTL_COMPAT) return (void)fuse_reply_err(req, ENOSYS);
  if (cmd == static_cast<unsigned int>(kIocScrubStart) ||
      cmd == static_cast<unsigned int>(kIocScrubStatus) ||
      cmd == static_cast<unsigned int>(kIocScrubStop) ||
      cmd == static_cast<unsigned int>(kIocScrubSummary)) {
    return ScrubIoctl(req, ino, cmd, in, in_size, out_size);
  }
  if (cmd != static_cast<unsigned int>(kIocInjectError)) {
    return (void)fuse_reply_err(req, ENOTTY);
  }
  if (in_size < sizeof(InjectErrorIoctl) || out_size < sizeof(InjectErrorIoctl)) {
    return (void)fuse_reply_err(req, EINVAL);
  }
  InjectErrorIoctl io;
  std::memcpy(&io, in, sizeof io);
  Status s = InjectError(req, ino, &io);
  if (!s.ok()) return ReplyError(req, "inject-error", ino, s);
  fuse_reply_ioctl(req, 0, &io, sizeof io);
}

}  // namespace

Adapter::Adapter(DaxFs* dax, const AdapterOptions& options)
    : dax_(dax), options_(options), scrub_(std::make_unique<ScrubControl>(dax)) {}

void Adapter::Attach(fuse_session* session) {
  session_ = session;
  dax_->SetLossObserver([this](const FileRangeLoss& lost) {
    if (lookups_.Count(lost.ino) == 0) return;  // the kernel caches nothing of it
    fuse_lowlevel_notify_inval_inode(session_, lost.ino, static_cast<off_t>(lost.file_offset),
                                     static_cast<off_t>(lost.length));
  });
}

void Adapter::Detach() { dax_->SetLossObserver({}); }

const fuse_lowlevel_ops& Adapter::Operations() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o{};
    o.init = OpInit;
    o.lookup = OpLookup;
    o.forget = OpForget;
    o.forget_multi = OpForgetMulti;
    o.getattr = OpGetattr;
    o.setattr = OpSetattr;
    o.readlink = OpReadlink;
    o.mknod = OpMknod;
    o.mkdir = OpMkdir;
    o.unlink = OpUnlink;
    o.rmdir = OpRmdir;
    o.symlink = OpSymlink;
    o.rename = OpRename;
    o.link = OpLink;
    o.open = OpOpen;
    o.read = OpRead;
    o.write_buf = OpWriteBuf;
    o.flush = OpOk;
    o.release = OpRelease;
    o.fsync = OpFsync;
    o.opendir = OpOpendir;
    o.readdir = OpReaddir;
    o.readdirplus = OpReaddirplus;
    o.releasedir = OpRelease;
    o.fsyncdir = OpFsync;
    o.statfs = OpStatfs;
    o.setxattr = OpSetxattr;
    o.getxattr = OpGetxattr;
    o.listxattr = OpListxattr;
    o.removexattr = OpRemovexattr;
    o.access = OpAccess;
    o.create = OpCreate;
    o.ioctl = OpIoctl;
    o.fallocate = OpFallocate;
    o.copy_file_range = OpCopyFileRange;
    o.lseek = OpLseek;
    return o;
  }();
  return ops;
}

}  // namespace daxfs::fusefs
