// The engine's LayoutHost (daxfs/layout.h) over a mounted DaxFs: remote mappings are layout
// leases in the DaxFs's own mapping table (the per-file index and every tracker, exactly like
// local mappings), their layout changes and failures go to the daemon's sinks, and a client's
// trap is routed like a SIGBUS in this process. Knows nothing of sockets, sessions or the protocol.
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daxfs/layout.h"
#include "device/device.h"
#include "engine/engine_parts.h"

namespace daxfs {
namespace {

class EngineLease final : public LayoutLease {
 public:
  EngineLease(dax::MappingTable* table, DaxFs* dax, failure::Router* router, uint64_t id, Ino ino,
              uint64_t offset, uint64_t length, bool writable, Layout layout)
      : table_(table),
        dax_(dax),
        router_(router),
        id_(id),
        ino_(ino),
        offset_(offset),
        length_(length),
        writable_(writable),
        layout_(std::move(layout)) {}
  ~EngineLease() override { table_->ReleaseLease(id_); }

  uint64_t id() const override { return id_; }
  Ino ino() const override { return ino_; }
  uint64_t file_offset() const override { return offset_; }
  uint64_t length() const override { return length_; }
  bool writable() const override { return writable_; }
  const Layout& initial_layout() const override { return layout_; }

  Status ReportFault(uint64_t offset, int si_code, int address_lsb, bool fence_trap) override {
    if (offset >= length_) {
      return Status::Invalid(
          fmt::format("fault at lease byte {}: outside its {} bytes", offset, length_));
    }
    ASSIGN_OR_RETURN(dax::AddressInfo page, table_->LeasePage(id_, offset));
    if (fence_trap) {  // a consumed access of lost data (or past EOF)
      router_->ReportTrap(page);
      return Status::Ok();
    }
    if (page.device_offset == fs::kNoDevice) return Status::Ok();  // a zero page: no device bytes
    uint64_t granule = uint64_t{1} << std::clamp(address_lsb, 12, 30);
    uint64_t start = page.device_offset & ~(granule - 1);
    bool action_required = si_code != BUS_MCEERR_AO;  // AR and ADRERR: consumed
    Result<FailureReport> r = dax_->NotifyFailure(
        start, granule, action_required ? uint32_t{kFailureActionRequired} : 0u);
    return r.ok() ? Status::Ok() : r.status();
  }

 private:
  dax::MappingTable* table_;
  DaxFs* dax_;
  failure::Router* router_;
  uint64_t id_;
  Ino ino_;
  uint64_t offset_, length_;
  bool writable_;
  Layout layout_;
};

class EngineHost final : public LayoutHost {
 public:
  EngineHost(DaxFs* dax, engine::EngineParts parts, HostDevice device)
      : dax_(dax), parts_(parts), device_(std::move(device)) {}

  // The device file's owner, group and mode as they are now (who may map is decided by them).
  HostDevice device() const override {
    HostDevice d = device_;
    struct stat st;
    if (stat(d.path.c_str(), &st) == 0) {
      d.uid = st.st_uid;
      d.gid = st.st_gid;
      d.mode = st.st_mode & 07777;
    }
    return d;
  }

  Result<int> OpenDeviceFd(bool writable) override {
    int fd = writable ? fcntl(parts_.fs->device()->Fd(), F_DUPFD_CLOEXEC, 0)
                      : open(device_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return Status::Error(
          err, fmt::format("{} the device {}: {}", writable ? "duplicating" : "opening read-only",
                           device_.path, std::strerror(err)));
    }
    return fd;
  }

  Result<Attr> GetAttr(Ino ino) override { return dax_->fs().GetAttr(ino); }
  Result<Attr> Lookup(Ino dir, std::string_view name) override {
    return dax_->fs().Lookup(dir, name);
  }
  Result<std::string> ReadLink(Ino ino) override { return dax_->fs().ReadLink(ino); }
  Result<std::vector<FileExtent>> Bmap(Ino ino) override { return dax_->fs().Bmap(ino); }

  Result<std::unique_ptr<LayoutLease>> MapLayout(Ino ino, uint64_t offset, uint64_t length,
                                                 MapProt prot, const LeaseOwner& owner,
                                                 LayoutSink* sink) override {
    ASSIGN_OR_RETURN(dax::MappingTable::LeaseInfo info,
                     parts_.table->MapLease(ino, offset, length, prot, owner, sink));
    uint64_t pages = 0;
    for (const LayoutSegment& s : info.initial_layout) pages += s.length;
    return std::unique_ptr<LayoutLease>(
        new EngineLease(parts_.table, dax_, parts_.router, info.id, ino, offset, pages,
                        prot == MapProt::kReadWrite, std::move(info.initial_layout)));
  }

  Result<FailureReport> InjectError(uint64_t offset, uint64_t length) override {
    return dax_->InjectError(offset, length);
  }
  Result<MediaErrorList> MediaErrors() override { return dax_->fs().MediaErrors(); }
  HostStatus GetStatus() override {
    size_t leases = parts_.table->live_leases();
    size_t all = parts_.table->live_mappings();
    return {dax_->fs().read_only(), leases, all >= leases ? all - leases : 0};
  }

 private:
  DaxFs* dax_;
  engine::EngineParts parts_;
  HostDevice device_;
};

}  // namespace

Result<std::unique_ptr<LayoutHost>> OpenLayoutHost(DaxFs& fs, const std::string& device_path) {
  engine::EngineParts parts = engine::PartsOf(fs);
  device::Device* device = parts.fs->device();
  if (device->Fd() < 0) {
    return Status::NotSupported("serve: the device has no file to hand out (" + device->Describe() +
                                ")");
  }
  struct stat st;
  if (stat(device_path.c_str(), &st) != 0) {
    int err = errno;
    return Status::Error(err, fmt::format("serve: {}: {}", device_path, std::strerror(err)));
  }
  HostDevice d{.path = device_path,
               .size = device->size(),
               .block_size = 4096,
               .pmem = device->IsPmem(),
               .uid = st.st_uid,
               .gid = st.st_gid,
               .mode = st.st_mode & 07777};
  return std::unique_ptr<LayoutHost>(new EngineHost(&fs, parts, std::move(d)));
}

}  // namespace daxfs
