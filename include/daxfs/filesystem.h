// The daxfs filesystem API: format, mount, namespace, file I/O, durability, checking.
// Everything outside the engine (the daxfs command, FUSE later) uses only this header and
// daxfs/status.h. Semantics follow POSIX where it applies; errors are errno codes.
// Thread safety: every method may be called from any thread; operations are serialised.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/uio.h>

#include "daxfs/media.h"
#include "daxfs/status.h"

namespace daxfs {

namespace device {
class Device;
}

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

// The type codes are the on-media ones (docs/format.md). FIFOs, sockets and device nodes are
// inodes without data (Mknod); a device node carries its device number in Attr::rdev.
enum class FileType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kSymlink = 3,
  kFifo = 4,
  kSocket = 5,
  kCharDevice = 6,
  kBlockDevice = 7,
};

struct Attr {
  Ino ino = 0;
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // permission bits (07777)
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;    // bytes; directories: number of entries
  uint64_t blocks = 0;  // 4 KiB blocks allocated
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t btime_ns = 0;
  // With `ino`, names this inode for the whole life of the filesystem (FUSE's generation).
  // Inode numbers only grow, so a number never comes back and the generation is 0 today; a
  // future reuse of numbers would give the new inode a different one.
  uint32_t generation = 0;
  uint64_t rdev = 0;  // device nodes: the device number (Linux dev_t, makedev()); others: 0
};

// Who asks (a FUSE request's caller, a client's peer credentials): uid, gid and supplementary
// groups. The default is root.
struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups
  bool InGroup(uint32_t g) const {
    if (g == gid) return true;
    for (uint32_t x : groups) {
      if (x == g) return true;
    }
    return false;
  }
};

// Which attributes SetAttr changes.
struct SetAttrRequest {
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
  // Truncate (or extend) to this size in the same operation (regular files: EISDIR, EINVAL).
  std::optional<uint64_t> size;
  // UTIME_NOW: the engine's clock, the same reading as the ctime it sets (over *_ns).
  bool atime_now = false;
  bool mtime_now = false;
};

struct DirEntry {
  std::string name;
  Ino ino = 0;
  FileType type = FileType::kRegular;
  uint64_t cookie = 0;  // pass to ReadDir to resume after this entry
};

// One mapped range of a file (Bmap).
struct FileExtent {
  uint64_t file_offset = 0;    // bytes
  uint64_t device_offset = 0;  // bytes
  uint64_t length = 0;         // bytes
  bool unwritten = false;      // allocated, reads as zeros
  bool shared = false;         // the blocks have other owners too (reflink)
};

enum class Durability {
  kOnReturn,     // every operation is durable when it returns
  kGroupCommit,  // durable at Fsync/Sync/Unmount or every `group_commit_ops` operations
};

struct FormatOptions {
  uint64_t chunk_size = 0;  // 0: chosen from the device size
  std::string label;
  bool rmap = true;         // keep the reverse map (feature flag)
  bool reflink = true;      // allow shared blocks (requires rmap)
  // A second copy ("twin") of every metadata node and of the superblock in another chunk, written
  // in the same commit (ro_compat metadup): a media error or a bad checksum in one copy is read
  // around and repaired (docs/media.md). Off: a metadata hit shuts the filesystem down.
  bool metadata_dup = true;
};

struct MountOptions {
  bool read_only = false;
  Durability durability = Durability::kOnReturn;
  uint32_t group_commit_ops = 1024;
  bool verify_every_read = false;
};

// fallocate modes (combinable as in fallocate(2) where it makes sense).
enum FallocateMode : uint32_t {
  kFallocKeepSize = 0x01,   // FALLOC_FL_KEEP_SIZE
  kFallocPunchHole = 0x02,  // FALLOC_FL_PUNCH_HOLE (requires kFallocKeepSize)
  kFallocZeroRange = 0x10,  // FALLOC_FL_ZERO_RANGE
};

// renameat2 flags (the values of Linux's RENAME_*).
enum RenameFlags : uint32_t { kRenameNoReplace = 1, kRenameExchange = 2 };

// SetXattr flags (the values of XATTR_CREATE and XATTR_REPLACE).
enum XattrFlags : int { kXattrCreate = 1, kXattrReplace = 2 };

struct FsStats {
  uint64_t block_size = 4096;
  uint64_t total_blocks = 0;      // whole device
  uint64_t free_blocks = 0;       // blocks a file could still get (free data + unallocated chunks)
  uint64_t data_blocks_used = 0;
  uint64_t metadata_blocks_used = 0;
  uint64_t inodes = 0;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t special = 0;  // FIFOs, sockets, character and block devices
  uint64_t generation = 0;
};

// Special owners in fsmap records (file data is owned by its inode number).
inline constexpr uint64_t kOwnerSuperblock = 0xfffffffffffffff0ULL;
inline constexpr uint64_t kOwnerMetadata = 0xfffffffffffffff1ULL;
inline constexpr uint64_t kOwnerBad = 0xfffffffffffffff2ULL;
inline constexpr uint64_t kOwnerFree =
    0xfffffffffffffff3ULL;  // never stored; fsmap may report free space

// One GETFSMAP record: a device range and its owner. All sizes in bytes.
struct FsmapRecord {
  uint64_t physical = 0;  // device offset
  uint64_t length = 0;
  uint64_t owner = 0;     // inode number, or a kOwner* constant
  uint64_t offset = 0;    // file offset (0 for special owners)
  uint32_t flags = 0;     // kFsmap*
};
enum FsmapFlags : uint32_t {
  kFsmapShared = 0x1,        // some block of the range has more than one owner
  kFsmapSpecialOwner = 0x2,  // owner is a kOwner* constant
  kFsmapUnwritten = 0x4,     // allocated, reads as zeros
  kFsmapLast = 0x8,          // no record of the query follows this one
};
// Where a paginated fsmap query resumes: strictly after this (physical, owner, offset).
struct FsmapKey {
  uint64_t physical = 0;
  uint64_t owner = 0;
  uint64_t offset = 0;
};

struct DedupeResult {
  uint64_t bytes_deduped = 0;
  bool differs = false;  // contents differed: nothing was shared (FILE_DEDUPE_RANGE_DIFFERS)
};

struct RepairReport {
  uint64_t rmap_records = 0;      // records in the rebuilt reverse map
  uint64_t refcount_records = 0;  // records in the rebuilt refcount tree
  std::vector<std::string> fixed; // what differed from the rebuilt trees before repair
  // Metadata twins (metadup): both copies of every node verified; bad, missing or differing
  // twins rewritten from a good primary, nodes with a bad primary moved.
  bool twins_rebuilt = false;
  uint64_t twin_nodes_checked = 0;
  std::vector<std::string> twins_fixed;
  std::vector<std::string> twins_lost;  // nodes with no good copy (not repaired)
};

struct FsCheckResult {
  std::vector<std::string> problems;  // empty: consistent
  // Known media damage recorded in the poison tree (lost file ranges, retired space): reported,
  // but not an inconsistency. Bad bytes under metadata are problems.
  std::vector<std::string> damage;
  uint64_t inodes_checked = 0;
  uint64_t extents_checked = 0;
  uint64_t nodes_checked = 0;
  bool ok() const { return problems.empty(); }
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  // Makes an empty filesystem (root directory only) on a file or pmem device and leaves it
  // cleanly unmounted. On error nothing on the device changed.
  static Status Format(const std::string& path, const FormatOptions& options);
  static Result<std::unique_ptr<Filesystem>> Open(const std::string& path,
                                                  const MountOptions& options = {});
  // The same over an already opened device (tests, crash devices); the device must outlive it.
  static Status Format(device::Device* device, const FormatOptions& options);
  static Result<std::unique_ptr<Filesystem>> Open(device::Device* device,
                                                  const MountOptions& options = {});

  // ---- Namespace. Names are 1..255 bytes without '/' or NUL, not "." or "..".
  virtual Result<Attr> Lookup(Ino dir, std::string_view name) = 0;
  // Resolves an absolute path ("/a/b"); symlinks in the middle are followed (at most 40), the
  // last one only when `follow` is true. ENAMETOOLONG past 4096 bytes.
  virtual Result<Attr> Resolve(std::string_view path, bool follow = true) = 0;
  virtual Result<Attr> GetAttr(Ino ino) = 0;
  // Open-file references (docs/concurrency.md): while `ino` is retained, the removal of its last
  // link (unlink, rmdir, rename over it) keeps it as an orphan with nlink 0, still usable by
  // number (read, write, truncate, getattr, setattr), and the last Release frees it. In memory,
  // counted, per mount; mount frees every orphan a crash left, Unmount those still retained.
  // Retain: ENOENT if there is no such inode. Release: EINVAL if `ino` is not retained.
  virtual Status Retain(Ino ino) = 0;
  virtual Status Release(Ino ino) = 0;
  virtual Result<Attr> SetAttr(Ino ino, const SetAttrRequest& request) = 0;
  // The access time of a read (relatime, as Linux mounts by default): sets atime to now, without
  // changing ctime, when atime is not after mtime or ctime or is a day old; otherwise changes
  // nothing (no transaction). True when it wrote. A read-only filesystem changes nothing.
  virtual Result<bool> TouchAtime(Ino ino) = 0;
  virtual Result<Attr> Create(Ino dir, std::string_view name, uint32_t mode) = 0;  // EEXIST
  virtual Result<Attr> Mkdir(Ino dir, std::string_view name, uint32_t mode) = 0;
  virtual Result<Attr> Symlink(Ino dir, std::string_view name, std::string_view target) = 0;
  // The same for a caller: the new inode belongs to cred.uid and to cred.gid, or to the
  // directory's group when the directory is set-gid (a new subdirectory then gets S_ISGID; a new
  // file keeps a requested S_ISGID, with group execute, only when the caller is root or in that
  // group), in the one operation. The calls above are these with root's credentials.
  virtual Result<Attr> Create(Ino dir, std::string_view name, uint32_t mode,
                              const Credentials& cred) = 0;
  virtual Result<Attr> Mkdir(Ino dir, std::string_view name, uint32_t mode,
                             const Credentials& cred) = 0;
  virtual Result<Attr> Symlink(Ino dir, std::string_view name, std::string_view target,
                               const Credentials& cred) = 0;
  // A FIFO, socket, character or block device node named `name` in `dir`, owned as Create's
  // (the caller's uid, the set-gid rules), in one operation. `rdev` is the device number of a
  // device node and must be 0 for a FIFO or socket; EINVAL for any other type (use Create,
  // Mkdir, Symlink) or mode bits outside 07777. Special files hold no data: Read, Write,
  // Truncate, Map, Reflink and Bmap of one answer EINVAL.
  virtual Result<Attr> Mknod(Ino dir, std::string_view name, FileType type, uint32_t mode,
                             uint64_t rdev, const Credentials& cred) = 0;
  virtual Result<std::string> ReadLink(Ino ino) = 0;  // EINVAL if not a symlink
  // Hard link: `ino` gets the new name. EPERM for directories.
  virtual Result<Attr> Link(Ino ino, Ino new_dir, std::string_view new_name) = 0;
  virtual Status Unlink(Ino dir, std::string_view name) = 0;  // EISDIR for directories
  virtual Status Rmdir(Ino dir, std::string_view name) = 0;   // ENOTEMPTY, ENOTDIR
  // POSIX rename, including over an existing entry of a compatible type (a file over a file, a
  // directory over an empty directory). EINVAL when a directory would move into itself.
  virtual Status Rename(Ino old_dir, std::string_view old_name, Ino new_dir,
                        std::string_view new_name) = 0;
  // renameat2: `flags` are RenameFlags. kRenameNoReplace: EEXIST when the new name exists.
  // kRenameExchange: both names must exist (ENOENT) and swap atomically, of any types (a
  // directory moving to another parent gets its ".." and both parents' link counts fixed).
  // EINVAL for both flags together, RENAME_WHITEOUT (4) or an unknown flag.
  virtual Status Rename(Ino old_dir, std::string_view old_name, Ino new_dir,
                        std::string_view new_name, uint32_t flags) = 0;
  // Calls `fn` for each entry after `cookie` (0: from the start, including "." and "..") in a
  // stable order; `fn` returns false to stop. Entries added or removed meanwhile may or may not
  // be seen; no entry is seen twice.
  virtual Status ReadDir(Ino dir, uint64_t cookie,
                         const std::function<bool(const DirEntry&)>& fn) = 0;

  // ---- Extended attributes (stored on media, deleted with the inode). Names are 1..255 bytes
  // (ERANGE past that, EINVAL when empty), values at most 65536 bytes (E2BIG). The engine keeps
  // any name; namespaces (user., trusted., security.) are the front end's rules. SetXattr and
  // RemoveXattr change the ctime. ENOENT for no such inode, EROFS on a read-only filesystem.
  // SetXattr: `flags` are XattrFlags (kXattrCreate: EEXIST when the name exists; kXattrReplace:
  // ENODATA when it does not), EINVAL for other bits.
  virtual Status SetXattr(Ino ino, std::string_view name, std::span<const uint8_t> value,
                          int flags) = 0;
  // The value's size; with a non-empty `out`, the value copied into it (ERANGE when too small).
  // ENODATA when absent.
  virtual Result<size_t> GetXattr(Ino ino, std::string_view name, std::span<uint8_t> out) = 0;
  virtual Result<std::vector<std::string>> ListXattr(Ino ino) = 0;
  virtual Status RemoveXattr(Ino ino, std::string_view name) = 0;  // ENODATA when absent

  // ---- File data. Offsets and lengths are bytes; a file may be sparse up to 2^63 - 1.
  virtual Result<size_t> Read(Ino ino, uint64_t offset, std::span<uint8_t> out) = 0;
  // Read without a copy: calls `consume` once with bytes [offset, +length) of the file, clipped
  // to its size, as pieces of device memory in file order (holes and unwritten extents are
  // pieces of one shared zero buffer; no pieces at or past the end). It runs under the
  // filesystem lock held shared, so no write changes or frees those blocks before it returns
  // (stores through a writable DAX mapping can, as they can during Read). `consume` must not
  // call back into the filesystem; its error is returned. The errors of Read (EIO for a lost
  // or bad range, found before `consume` runs), and EINVAL for a length over kMaxReadPieces.
  // Returns the bytes handed to `consume`.
  static constexpr uint64_t kMaxReadPieces = uint64_t{1} << 30;
  virtual Result<size_t> ReadPieces(Ino ino, uint64_t offset, uint64_t length,
                                    const std::function<Status(std::span<const iovec>)>& consume) = 0;
  virtual Result<size_t> Write(Ino ino, uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Status Truncate(Ino ino, uint64_t size) = 0;
  virtual Status Fallocate(Ino ino, uint32_t mode, uint64_t offset, uint64_t length) = 0;
  // SEEK_DATA / SEEK_HOLE: ENXIO when offset >= size (or no data after it).
  virtual Result<uint64_t> SeekData(Ino ino, uint64_t offset) = 0;
  virtual Result<uint64_t> SeekHole(Ino ino, uint64_t offset) = 0;
  virtual Result<std::vector<FileExtent>> Bmap(Ino ino) = 0;

  // ---- Reflink (needs a filesystem made with reflink, which needs the rmap: EOPNOTSUPP
  // otherwise). Byte offsets; the semantics and errors are those of the Linux ioctls.
  // FICLONE: `dst` (a regular file) becomes a copy of `src` sharing all of src's blocks.
  virtual Status Clone(Ino src, Ino dst) = 0;
  // FICLONERANGE: offsets block-aligned; length block-aligned, or reaching src's EOF, or 0 for
  // "to src's EOF". Within one file the ranges must not overlap. EINVAL for misaligned,
  // overlapping or past-EOF ranges; EISDIR / EINVAL for directories and symlinks.
  virtual Status CloneRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                            uint64_t length) = 0;
  // FIDEDUPERANGE with one destination: shares the range only if both hold the same bytes.
  virtual Result<DedupeResult> Dedupe(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                                      uint64_t length) = 0;
  // FALLOC_FL_UNSHARE_RANGE: blocks of the range that are shared get private copies.
  virtual Status Unshare(Ino ino, uint64_t offset, uint64_t length) = 0;
  // copy_file_range: clones the block-aligned part when reflink is on, copies the rest.
  virtual Result<uint64_t> CopyFileRange(Ino src, uint64_t src_offset, Ino dst, uint64_t dst_offset,
                                         uint64_t length) = 0;

  // ---- Owners: GETFSMAP. Records overlapping device bytes [start, end), in order of
  // (physical, owner, offset), one per owner for shared blocks, resuming strictly after `after`
  // when given, at most `max` (0: all). Uses the reverse map; on a filesystem without it, the
  // same answers come from scanning every extent map (slower).
  virtual Result<std::vector<FsmapRecord>> Fsmap(uint64_t start, uint64_t end,
                                                 const std::optional<FsmapKey>& after,
                                                 size_t max) = 0;
  // A path naming `ino` ("/a/b"; "/" for the root), for display; ENOENT if none.
  virtual Result<std::string> PathOf(Ino ino) = 0;
  // Offline repair: rebuilds the reverse map and the refcount tree from the extent maps.
  virtual Result<RepairReport> RebuildReverseMaps() = 0;

  // ---- Media failures (docs/failure.md): the filesystem half of notify_failure. Classifies the
  // failed device bytes [offset, +length) and acts: superblock or metadata -> read-only shutdown
  // with the reason; file data -> every owner (from the rmap; from a scan without it), shared
  // owners included, is recorded lost in the poison tree (reads of it fail with EIO until a
  // whole-block write replaces it) and the bad blocks are never allocated again; free space ->
  // retired. `flags` are FailureFlags. kFailureRemove records nothing. On a read-only filesystem
  // the loss is kept in memory for this mount (recorded = false). EINVAL for an empty range,
  // ENXIO for one wholly past the device end (a crossing one is clipped).
  virtual Result<MediaFailureRecord> RecordMediaFailure(uint64_t offset, uint64_t length,
                                                        uint32_t flags) = 0;
  // Every lost file range, retired range and metadata damage known (daxfs errors).
  virtual Result<MediaErrorList> MediaErrors() = 0;

  // ---- Durability and state.
  virtual Status Fsync(Ino ino) = 0;
  virtual Status Sync() = 0;
  virtual Result<FsStats> StatFs() = 0;
  // Full consistency check of the committed state (commits pending work first).
  virtual Result<FsCheckResult> Check() = 0;
  // Commits, marks the image cleanly unmounted; later calls fail with EIO.
  virtual Status Unmount() = 0;
  virtual bool read_only() const = 0;
};

}  // namespace daxfs
