// Direct access to daxfs files from any process, through the daemon that owns the device
// (`daxfs serve IMAGE --socket PATH`, or the mount daemon): connect, open a file, map a range
// and get the device memory itself in this process's address space (loads and stores at raw
// speed, no copy, no round trip per access). The daemon keeps every mapping in the engine's
// mapping index: when extents change under it the daemon recalls the layout and this library
// remaps in place; when device bytes go bad, the mapping's handler hears its own address and the
// pages are fenced so that a load traps instead of reading bad data. docs/protocol.md tells the
// whole story: the messages, the trust model and the limits.
//
// Links only the protocol and base layers (and libpmem2 for flushes on real pmem): nothing of
// the engine runs in the client process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daxfs/dax.h"  // MapProt, MappingNotice, MappingHandler (types only)
#include "daxfs/media.h"
#include "daxfs/status.h"

namespace daxfs {

struct ClientOptions {
  std::string name;             // shown in the daemon's log
  int call_timeout_ms = 60000;  // a request unanswered this long fails with ETIMEDOUT
  // Install the process-wide SIGBUS/SIGSEGV handler (chained to any earlier one) that turns
  // loads and stores on fenced pages of client mappings into reports to the daemon and, inside
  // GuardClientMediaErrors, into an error. Installed once per process, by the first client
  // that asks, and kept for the life of the process.
  bool handle_signals = true;
};

// What the daemon said about the device and this session.
struct ClientDevice {
  uint64_t size = 0;
  uint32_t block_size = 4096;
  bool pmem = false;          // real pmem: Persist uses cache flushes (libpmem2), else msync
  bool writable = false;      // this client may make writable mappings
  bool read_only_fs = false;  // the filesystem is read-only
  pid_t server_pid = 0;
  uint16_t protocol_version = 0;
  uint64_t session_id = 0;
  uint32_t max_files = 0;
  uint32_t max_mappings = 0;
};

// An open file of this client (a handle in the daemon's session).
struct ClientFile {
  uint64_t id = 0;
  Ino ino = 0;
  uint64_t size = 0;  // at open
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  int flags = 0;  // O_RDONLY, O_WRONLY or O_RDWR
  std::string path;
};

// One live mapping in this process. Destroying it unmaps it here and tells the daemon (which
// releases its lease). It may outlive its Client: then it is fenced and only releases its
// address range when destroyed.
class ClientMapping {
 public:
  virtual ~ClientMapping() = default;
  virtual uint8_t* data() const = 0;
  virtual uint64_t length() const = 0;  // whole pages
  virtual uint64_t id() const = 0;      // the daemon's mapping id in this session
  virtual Ino ino() const = 0;
  virtual uint64_t file_offset() const = 0;
  virtual bool writable() const = 0;
  // Makes stores to [offset, +length) of the mapping durable: msync of the device pages on
  // emulated pmem, cache flush + drain through libpmem2 on real pmem. Pages that are zero pages
  // or fenced have no device bytes and are skipped. EINVAL out of range, ESHUTDOWN once the
  // daemon is gone (the mapping is then fenced).
  virtual Status Persist(uint64_t offset, uint64_t length) = 0;
  // False once the mapping is fenced for good (the daemon went away or the client was closed).
  virtual bool alive() const = 0;
};

// What the daemon did about an injected error (daxfs inject-error through the daemon).
struct ClientInjectReport {
  uint64_t offset = 0;  // the failed device range
  uint64_t length = 0;
  uint32_t notices = 0;  // mapping pieces told, in every process
  bool shut_down = false;
  bool unmounted = false;
  bool metadata_hit = false;
  std::vector<FileRangeLoss> owners;
  std::vector<DeviceRange> retired;
  std::vector<std::string> actions;
  std::string message;
};

struct ClientSessionInfo {
  uint64_t session_id = 0;
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint32_t files = 0;
  uint32_t mappings = 0;
};

struct ServerStatus {
  pid_t server_pid = 0;
  bool read_only = false;
  bool pmem = false;
  uint64_t device_size = 0;
  uint64_t recalls = 0;
  uint64_t cutoffs = 0;
  uint64_t notices = 0;
  std::vector<ClientSessionInfo> sessions;
};

// A connection to the daemon. Thread-safe. Mapping handlers run on the client's receiver
// thread (never in a signal handler), one at a time; a handler must not call a Client method
// that waits for the daemon (EDEADLK) nor destroy the Client.
class Client {
 public:
  // Connects, negotiates the protocol version and receives the device. ECONNREFUSED / ENOENT
  // (no daemon), EACCES (this user may not open the device or the socket), EPROTONOSUPPORT,
  // EUSERS (the daemon's client limit).
  static Result<std::unique_ptr<Client>> Connect(const std::string& socket_path,
                                                 const ClientOptions& options = {});
  // Disconnects: every live mapping is fenced and its handler hears a removal notice.
  virtual ~Client() = default;

  virtual const ClientDevice& device() const = 0;
  // Opens an existing regular file: `flags` is O_RDONLY, O_WRONLY or O_RDWR (nothing else:
  // EINVAL). The daemon checks this process's credentials against the file's owner, group and
  // mode, and search permission on every directory of the path: EACCES, ENOENT, EISDIR, EROFS,
  // EMFILE (the session's open-file limit).
  virtual Result<ClientFile> Open(const std::string& path, int flags) = 0;
  // Closes the handle (mappings made from it stay). EBADF if not open.
  virtual Status Close(const ClientFile& file) = 0;
  // Maps [offset, +length) of the file as one contiguous range of this process (offset
  // block-aligned; the range inside the file size rounded up to a block): device memory where
  // the file has data, read-only zero pages for holes, inaccessible pages for lost ranges and
  // past EOF. A mapping needs a file opened for reading; a writable one O_RDWR and write access
  // to the device (EACCES), and the daemon allocates and unshares its blocks first. ENOMEM at
  // the session's mapping limit; the engine's errors as DaxFs::Map.
  virtual Result<std::unique_ptr<ClientMapping>> Map(const ClientFile& file, uint64_t offset,
                                                     uint64_t length, MapProt prot,
                                                     MappingHandler handler = {}) = 0;

  // Control requests for the CLI. Injection needs write access to the device (EPERM).
  virtual Result<ClientInjectReport> InjectError(uint64_t device_offset, uint64_t length) = 0;
  virtual Result<ClientInjectReport> InjectErrorAt(const std::string& path, uint64_t file_offset,
                                                   uint64_t length = 4096) = 0;
  virtual Result<MediaErrorList> Errors() = 0;
  virtual Result<ServerStatus> GetStatus() = 0;

  // False once the daemon went away (every later call fails with ESHUTDOWN).
  virtual bool connected() const = 0;
};

// Runs `fn`; a load or store in it that traps on a fenced page of a client mapping (lost data,
// past EOF, a page a failure notice fenced, every page after the daemon went away) or on a
// hardware media error (SIGBUS BUS_MCEERR_AR / BUS_ADRERR) in one makes it return EIO naming
// the address, instead of killing the process. The trap is reported to the daemon either way.
// Needs ClientOptions::handle_signals. `fn` must not own objects with destructors across the
// faulting access (the trap leaves it by siglongjmp).
Status GuardClientMediaErrors(const std::function<void()>& fn);

}  // namespace daxfs
