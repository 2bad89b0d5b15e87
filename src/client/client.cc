// The client library (include/daxfs/client.h): the connection, its receiver thread, and the
// mappings it builds in this process from the daemon's layouts. Knows the protocol and the
// fault directory; nothing of the engine.
//
// Threads: callers send requests and wait for their replies; the receiver thread takes every
// message off the socket, completes waiting calls, builds a mapping when its MapReply is
// complete (so a recall that follows can never find it half-built), applies recalls in place
// and acknowledges them, fences pages on failure notices and runs the handlers. When the socket
// ends it fences every mapping, tells every handler (removal) and fails every call.
//
// Locks: ClientState::mu_ (requests, the mapping table) and each MappingState::mu (its pages)
// are never held together; handlers run with no lock held.
#include "daxfs/client.h"

#include <fcntl.h>
#include <libpmem2.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "client/fault_handler.h"
#include "proto/channel.h"
#include "proto/layout_ops.h"
#include "proto/message.h"

namespace daxfs {
namespace {

using proto::kPageSize;

Status Errno(const std::string& what) {
  const int err = errno;
  return Status::Error(err, what + ": " + std::strerror(err));
}

Status Gone() { return Status::Error(ESHUTDOWN, "the daxfs daemon is gone (connection closed)"); }

struct MappingState {
  uint64_t id = 0;
  Ino ino = 0;
  std::string path;
  uint64_t file_offset = 0;
  uint64_t length = 0;
  bool writable = false;
  MappingHandler handler;
  uint8_t* base = nullptr;
  size_t slot = 0;

  std::mutex mu;            // guards everything below and every change of the address range
  bool unmapped = false;    // the handle was destroyed
  bool fenced_all = false;  // the daemon is gone or the client closed
  std::vector<proto::Segment> layout;
};

// What Map() gives the mapping before anyone can see it.
struct MapExtras {
  Ino ino = 0;
  std::string path;
  MappingHandler handler;
};

// A layout arriving in several messages.
struct Building {
  bool is_map = true;
  uint64_t request_id = 0;
  uint64_t sequence = 0;
  proto::MapReply reply;  // is_map
  proto::LayoutRecall recall;
  std::vector<proto::Segment> segments;
  uint32_t total = 0;
};

class ClientState {
 public:
  ClientState(int sock, int device_fd, ClientOptions options)
      : sock_(sock), device_fd_(device_fd), options_(std::move(options)) {}
  ~ClientState() {
    if (pmem_map_ != nullptr) pmem2_map_delete(&pmem_map_);
    close(device_fd_);
    close(sock_);
  }

  void Start() {
    std::mutex started_mu;
    std::condition_variable started_cv;
    bool started = false;
    receiver_ = std::thread([&, this] {
      receiver_id_.store(std::this_thread::get_id());
      {
        // Notified under the lock: the waiter's condition variable lives on its stack and is
        // gone as soon as it sees `started`.
        std::lock_guard<std::mutex> lock(started_mu);
        started = true;
        started_cv.notify_all();
      }
      ReceiverLoop();
    });
    std::unique_lock<std::mutex> lock(started_mu);
    started_cv.wait(lock, [&] { return started; });
  }
  void Shutdown() {
    shutdown(sock_, SHUT_RDWR);
    if (receiver_.joinable()) receiver_.join();
  }

  ClientDevice device;
  uint16_t version = proto::kMaxVersion;

  // A request and its reply (ErrorReply becomes the error).
  Result<proto::Body> Call(const proto::Body& request, std::shared_ptr<MappingState>* mapping,
                           MapExtras extras = {});
  // A message needing no reply.
  void Post(const proto::Body& body) {
    proto::SendMessage(sock_, proto::Encode(body, 0, version), -1, options_.call_timeout_ms)
        .IgnoreError();
  }
  bool connected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return connected_;
  }
  bool OnReceiver() const { return std::this_thread::get_id() == receiver_id_.load(); }
  void Forget(uint64_t mapping_id) {
    std::lock_guard<std::mutex> lock(mu_);
    mappings_.erase(mapping_id);
  }
  Status Flush(MappingState& m, uint64_t offset, uint64_t length);
  void InitPersist();

 private:
  struct Pending {
    bool done = false;
    Status status;
    proto::Body body;
    std::shared_ptr<MappingState> mapping;
    MapExtras extras;
  };

  void ReceiverLoop();
  bool Handle(const proto::Header& header, proto::Body body);
  // False if nobody waits for the reply any more.
  bool Complete(uint64_t request_id, Status status, proto::Body body,
                std::shared_ptr<MappingState> mapping = nullptr);
  bool Accumulate(uint64_t mapping_id, const std::vector<proto::Segment>& more);
  void BuildMapping(Building b);
  void ApplyRecall(Building b);
  void Notice(const proto::FailureNotice& n);
  void Disconnected();
  std::shared_ptr<MappingState> Find(uint64_t mapping_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = mappings_.find(mapping_id);
    return it == mappings_.end() ? nullptr : it->second;
  }
  // Maps one segment at its place in `m` (m.mu held). 0 or the errno of a failed mmap (the
  // segment is then fenced).
  int MapSegment(MappingState& m, const proto::Segment& s);
  int MapSegmentNow(MappingState& m, const proto::Segment& s);  // without the change brackets

  const int sock_;
  const int device_fd_;
  const ClientOptions options_;
  std::thread receiver_;
  std::atomic<std::thread::id> receiver_id_{};
  pmem2_map* pmem_map_ = nullptr;
  pmem2_persist_fn persist_fn_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool connected_ = true;
  uint64_t next_request_ = 1;
  std::map<uint64_t, Pending> pending_;
  std::map<uint64_t, std::shared_ptr<MappingState>> mappings_;
  std::map<uint64_t, Building> building_;
};

// ---- requests -----------------------------------------------------------------------------------

Result<proto::Body> ClientState::Call(const proto::Body& request,
                                      std::shared_ptr<MappingState>* mapping, MapExtras extras) {
  if (OnReceiver()) {
    return Status::Error(EDEADLK, "a mapping handler may not wait for the daemon");
  }
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!connected_) return Gone();
    id = next_request_++;
    pending_[id].extras = std::move(extras);
  }
  Status sent =
      proto::SendMessage(sock_, proto::Encode(request, id, version), -1, options_.call_timeout_ms);
  std::unique_lock<std::mutex> lock(mu_);
  if (!sent.ok()) {
    pending_.erase(id);
    if (!connected_ || sent.code() == EPIPE || sent.code() == ECONNRESET) return Gone();
    return sent;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.call_timeout_ms);
  if (!cv_.wait_until(lock, deadline, [&] { return pending_[id].done; })) {
    pending_.erase(id);
    return Status::Error(ETIMEDOUT, std::string("the daemon did not answer ") +
                                        proto::MessageTypeName(proto::TypeOf(request)) +
                                        " within " + std::to_string(options_.call_timeout_ms) +
                                        " ms");
  }
  Pending p = std::move(pending_[id]);
  pending_.erase(id);
  lock.unlock();
  if (!p.status.ok()) return p.status;
  if (auto* err = std::get_if<proto::ErrorReply>(&p.body)) {
    return Status::Error(static_cast<int>(err->code), err->message);
  }
  if (mapping != nullptr) *mapping = std::move(p.mapping);
  return std::move(p.body);
}

bool ClientState::Complete(uint64_t request_id, Status status, proto::Body body,
                           std::shared_ptr<MappingState> mapping) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(request_id);
  if (it == pending_.end() || it->second.done) return false;  // the caller gave up (timeout)
  it->second.done = true;
  it->second.status = std::move(status);
  it->second.body = std::move(body);
  it->second.mapping = std::move(mapping);
  cv_.notify_all();
  return true;
}

// ---- the receiver
// ---------------------------------------------------------------------------------

void ClientState::ReceiverLoop() {
  std::vector<uint8_t> buf;
  for (;;) {
    Status s = proto::ReceiveMessage(sock_, &buf, nullptr);
    if (!s.ok()) break;  // EOF, or the daemon sent garbage: either way it is gone for us
    auto message = proto::Decode(buf);
    if (!message.ok()) break;
    if (!Handle(message->header, std::move(message->body))) break;
  }
  Disconnected();
}

bool ClientState::Handle(const proto::Header& header, proto::Body body) {
  using proto::MessageType;
  switch (header.type) {
    case MessageType::kError:
    case MessageType::kOk:
    case MessageType::kOpenReply:
    case MessageType::kInjectReply:
    case MessageType::kErrorsReply:
    case MessageType::kStatusReply:
      Complete(header.request_id, Status::Ok(), std::move(body));
      return true;
    case MessageType::kMapReply: {
      auto& reply = std::get<proto::MapReply>(body);
      Building b;
      b.is_map = true;
      b.request_id = header.request_id;
      b.total = reply.total_segments;
      b.segments = std::move(reply.segments);
      b.reply = std::move(reply);
      if (b.segments.size() == b.total) {
        BuildMapping(std::move(b));
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        building_[b.reply.mapping_id] = std::move(b);
      }
      return true;
    }
    case MessageType::kLayoutRecall: {
      auto& recall = std::get<proto::LayoutRecall>(body);
      Building b;
      b.is_map = false;
      b.sequence = recall.sequence;
      b.total = recall.total_segments;
      b.segments = std::move(recall.segments);
      b.recall = std::move(recall);
      if (b.segments.size() == b.total) {
        ApplyRecall(std::move(b));
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        building_[b.recall.mapping_id] = std::move(b);
      }
      return true;
    }
    case MessageType::kLayoutMore: {
      auto& more = std::get<proto::LayoutMore>(body);
      Building b;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = building_.find(more.mapping_id);
        if (it == building_.end() || it->second.sequence != more.sequence ||
            it->second.segments.size() + more.segments.size() > it->second.total) {
          return false;  // the daemon broke the protocol
        }
        auto& segs = it->second.segments;
        segs.insert(segs.end(), more.segments.begin(), more.segments.end());
        if (segs.size() < it->second.total) return true;
        b = std::move(it->second);
        building_.erase(it);
      }
      if (b.is_map) {
        BuildMapping(std::move(b));
      } else {
        ApplyRecall(std::move(b));
      }
      return true;
    }
    case MessageType::kFailureNotice:
      Notice(std::get<proto::FailureNotice>(body));
      return true;
    default:
      return false;  // a client-side message type, or a second HelloReply
  }
}

// Every area of a mapping is MADV_DONTFORK: a child forked from this process must not inherit
// device pages the daemon does not know it maps (it would never be recalled or fenced). Each
// mmap makes a new area, so the advice follows every one.
void DontFork(void* addr, size_t length) { madvise(addr, length, MADV_DONTFORK); }

int ClientState::MapSegment(MappingState& m, const proto::Segment& s) {
  client::BeginChange(m.slot);
  const int err = MapSegmentNow(m, s);
  client::EndChange(m.slot);
  return err;
}

int ClientState::MapSegmentNow(MappingState& m, const proto::Segment& s) {
  uint8_t* addr = m.base + (s.file_offset - m.file_offset);
  const uint64_t first = (s.file_offset - m.file_offset) / kPageSize;
  const uint64_t pages = s.length / kPageSize;
  int err = 0;
  if (s.kind == proto::SegmentKind::kData) {
    const int prot = PROT_READ | (m.writable ? PROT_WRITE : 0);
    void* got = MAP_FAILED;
    if (device.pmem) {
      got = mmap(addr, s.length, prot, MAP_SHARED_VALIDATE | MAP_SYNC | MAP_FIXED, device_fd_,
                 static_cast<off_t>(s.device_offset));
    }
    if (got == MAP_FAILED) {
      got = mmap(addr, s.length, prot, MAP_SHARED | MAP_FIXED, device_fd_,
                 static_cast<off_t>(s.device_offset));
    }
    if (got != MAP_FAILED) {
      DontFork(addr, s.length);
      client::SetPages(m.slot, first, pages, client::kPageData);
      return 0;
    }
    err = errno;
  } else if (s.kind == proto::SegmentKind::kZero) {
    if (mmap(addr, s.length, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
        MAP_FAILED) {
      DontFork(addr, s.length);
      client::SetPages(m.slot, first, pages, client::kPageZero);
      return 0;
    }
    err = errno;
  }
  // Fenced (lost, past EOF, or a mapping that failed): the state first, then the pages.
  client::SetPages(m.slot, first, pages, client::kPageFenced);
  if (mmap(addr, s.length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
           0) == MAP_FAILED) {
    mprotect(addr, s.length, PROT_NONE);
  }
  DontFork(addr, s.length);
  return err;
}

void ClientState::BuildMapping(Building b) {
  const proto::MapReply& r = b.reply;
  MapExtras extras;
  bool waited;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(b.request_id);
    waited = it != pending_.end() && !it->second.done;
    if (waited) extras = it->second.extras;
  }
  auto fail = [&](Status status) {
    Post(proto::Unmap{r.mapping_id});  // the daemon releases the lease; its Ok finds no caller
    Complete(b.request_id, std::move(status), proto::OkReply{});
  };
  if (!waited) return fail(Status::Error(ETIMEDOUT, "nobody waits for this mapping"));
  Status valid = proto::ValidateLayout(r.file_offset, r.length, b.segments, device.size);
  if (!valid.ok()) return fail(valid.WithContext("map reply"));
  auto m = std::make_shared<MappingState>();
  m->id = r.mapping_id;
  m->ino = extras.ino;
  m->path = std::move(extras.path);
  m->handler = std::move(extras.handler);
  m->file_offset = r.file_offset;
  m->length = r.length;
  m->writable = r.prot == proto::kProtReadWrite;
  void* base =
      mmap(nullptr, r.length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return fail(Errno("reserving the address range"));
  DontFork(base, r.length);
  m->base = static_cast<uint8_t*>(base);
  auto slot = client::RegisterMapping(m->base, r.length, r.mapping_id, sock_, version);
  if (!slot.ok()) {
    munmap(base, r.length);
    return fail(slot.status());
  }
  m->slot = *slot;
  {
    std::lock_guard<std::mutex> lock(m->mu);
    for (const proto::Segment& s : b.segments) {
      if (int err = MapSegment(*m, s); err != 0) {
        client::UnregisterMapping(m->slot);
        munmap(base, r.length);
        return fail(Status::Error(err, std::string("mapping the device: ") + std::strerror(err)));
      }
    }
    m->layout = std::move(b.segments);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    mappings_[m->id] = m;
  }
  Post(proto::MapAck{m->id, reinterpret_cast<uint64_t>(m->base)});
  if (Complete(b.request_id, Status::Ok(), proto::OkReply{}, m)) return;
  // The caller gave up meanwhile: the mapping is released at once.
  Forget(m->id);
  std::lock_guard<std::mutex> lock(m->mu);
  m->unmapped = true;
  client::UnregisterMapping(m->slot);
  munmap(m->base, m->length);
  Post(proto::Unmap{m->id});
}

void ClientState::ApplyRecall(Building b) {
  const proto::LayoutRecall& r = b.recall;
  uint32_t status = 0;
  if (auto m = Find(r.mapping_id)) {
    std::lock_guard<std::mutex> lock(m->mu);
    if (!m->unmapped && !m->fenced_all) {
      const bool inside = r.file_offset >= m->file_offset && r.length <= m->length &&
                          r.file_offset - m->file_offset <= m->length - r.length;
      Status valid = inside
                         ? proto::ValidateLayout(r.file_offset, r.length, b.segments, device.size)
                         : Status::Error(EPROTO, "recall outside the mapping");
      if (!valid.ok()) {
        status = EPROTO;
        MapSegment(*m, {r.file_offset, r.length, proto::kNoDevice, proto::SegmentKind::kLost});
      } else {
        for (const proto::Segment& s : b.segments) {
          if (int err = MapSegment(*m, s); err != 0 && status == 0)
            status = static_cast<uint32_t>(err);
        }
        proto::SpliceLayout(&m->layout, r.file_offset, r.length, b.segments);
      }
    }
  }
  Post(proto::RecallAck{r.mapping_id, r.sequence, status});
}

void ClientState::Notice(const proto::FailureNotice& n) {
  auto m = Find(n.mapping_id);
  if (m == nullptr) return;
  MappingNotice notice;
  {
    std::lock_guard<std::mutex> lock(m->mu);
    if (m->unmapped || n.offset > m->length || n.length > m->length - n.offset) return;
    const uint64_t first = n.offset / kPageSize;
    const uint64_t pages = (n.length + kPageSize - 1) / kPageSize;
    client::BeginChange(m->slot);
    client::SetPages(m->slot, first, pages, client::kPageFenced);
    mprotect(m->base + first * kPageSize, pages * kPageSize, PROT_NONE);
    client::EndChange(m->slot);
    notice.mapping_id = m->id;
    notice.address = m->base + first * kPageSize;
    notice.length = pages * kPageSize;
    notice.ino = m->ino;
    notice.path = m->path;
    notice.file_offset = n.file_offset;
    notice.device_offset = n.device_offset;
    notice.action_required = (n.flags & proto::kNoticeActionRequired) != 0;
    notice.removal = (n.flags & proto::kNoticeRemoval) != 0;
    notice.consumed = (n.flags & proto::kNoticeConsumed) != 0;
  }
  if (m->handler) m->handler(notice);
}

void ClientState::Disconnected() {
  std::map<uint64_t, std::shared_ptr<MappingState>> mappings;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connected_ = false;
    mappings = mappings_;
    building_.clear();
    for (auto& [id, p] : pending_) {
      if (!p.done) {
        p.done = true;
        p.status = Gone();
      }
    }
    cv_.notify_all();
  }
  // Nobody recalls layouts any more: every page could be freed and reused, so every mapping,
  // read-only ones too, is fenced before any handler runs.
  std::vector<MappingNotice> notices;
  for (auto& [id, m] : mappings) {
    std::lock_guard<std::mutex> lock(m->mu);
    if (m->unmapped || m->fenced_all) continue;
    client::BeginChange(m->slot);
    client::SetPages(m->slot, 0, m->length / kPageSize, client::kPageFenced);
    mprotect(m->base, m->length, PROT_NONE);
    client::EndChange(m->slot);
    m->fenced_all = true;
    MappingNotice n;
    n.mapping_id = m->id;
    n.address = m->base;
    n.length = m->length;
    n.ino = m->ino;
    n.path = m->path;
    n.file_offset = m->file_offset;
    n.device_offset = proto::kNoDevice;
    n.removal = true;
    notices.push_back(std::move(n));
  }
  for (const MappingNotice& n : notices) {
    auto m = mappings[n.mapping_id];
    if (m->handler) m->handler(n);
  }
}

// ---- durability
// -------------------------------------------------------------------------------------

void ClientState::InitPersist() {
  if (!device.pmem) return;
  pmem2_source* source = nullptr;
  pmem2_config* config = nullptr;
  if (pmem2_source_from_fd(&source, device_fd_) != 0) return;
  if (pmem2_config_new(&config) == 0 &&
      pmem2_config_set_required_store_granularity(config, PMEM2_GRANULARITY_CACHE_LINE) == 0 &&
      pmem2_config_set_length(config, kPageSize) == 0 &&
      pmem2_config_set_protection(
          config, device.writable ? PMEM2_PROT_READ | PMEM2_PROT_WRITE : PMEM2_PROT_READ) == 0 &&
      pmem2_map_new(&pmem_map_, config, source) == 0) {
    // The persist function depends only on the granularity: it flushes any address given.
    persist_fn_ = pmem2_get_persist_fn(pmem_map_);
  }
  if (config != nullptr) pmem2_config_delete(&config);
  pmem2_source_delete(&source);
}

Status ClientState::Flush(MappingState& m, uint64_t offset, uint64_t length) {
  for (const proto::Segment& s : m.layout) {
    if (s.kind != proto::SegmentKind::kData) continue;
    const uint64_t lo = std::max(s.file_offset - m.file_offset, offset);
    const uint64_t hi = std::min(s.file_offset - m.file_offset + s.length, offset + length);
    if (lo >= hi) continue;
    const uint64_t page_lo = lo / kPageSize * kPageSize;
    for (uint64_t p = page_lo; p < hi; p += kPageSize) {
      if (client::GetPage(m.slot, p / kPageSize) != client::kPageData) continue;
      uint64_t run_end = p + kPageSize;
      while (run_end < hi && client::GetPage(m.slot, run_end / kPageSize) == client::kPageData) {
        run_end += kPageSize;
      }
      if (persist_fn_ != nullptr) {
        persist_fn_(m.base + std::max(p, lo), std::min(run_end, hi) - std::max(p, lo));
      } else if (msync(m.base + p, run_end - p, MS_SYNC) != 0) {
        return Errno("msync");
      }
      p = run_end - kPageSize;
    }
  }
  return Status::Ok();
}

// ---- handles
// -------------------------------------------------------------------------------------

class MappingImpl final : public ClientMapping {
 public:
  MappingImpl(std::shared_ptr<ClientState> client, std::shared_ptr<MappingState> m)
      : client_(std::move(client)), m_(std::move(m)) {}
  ~MappingImpl() override {
    {
      std::lock_guard<std::mutex> lock(m_->mu);
      m_->unmapped = true;
      client::UnregisterMapping(m_->slot);
      munmap(m_->base, m_->length);
    }
    client_->Forget(m_->id);
    if (!client_->connected()) return;
    if (client_->OnReceiver()) {
      client_->Post(proto::Unmap{m_->id});
    } else {
      client_->Call(proto::Unmap{m_->id}, nullptr).status().IgnoreError();
    }
  }
  uint8_t* data() const override { return m_->base; }
  uint64_t length() const override { return m_->length; }
  uint64_t id() const override { return m_->id; }
  Ino ino() const override { return m_->ino; }
  uint64_t file_offset() const override { return m_->file_offset; }
  bool writable() const override { return m_->writable; }
  bool alive() const override {
    std::lock_guard<std::mutex> lock(m_->mu);
    return !m_->fenced_all;
  }
  Status Persist(uint64_t offset, uint64_t length) override {
    if (offset > m_->length || length > m_->length - offset) {
      return Status::Invalid("persist range [" + std::to_string(offset) + ", +" +
                             std::to_string(length) + ") is outside the mapping (" +
                             std::to_string(m_->length) + " bytes)");
    }
    std::lock_guard<std::mutex> lock(m_->mu);
    if (m_->fenced_all) return Gone();
    return client_->Flush(*m_, offset, length);
  }

 private:
  std::shared_ptr<ClientState> client_;
  std::shared_ptr<MappingState> m_;
};

ClientInjectReport ToReport(const proto::InjectReply& r) {
  ClientInjectReport out;
  out.offset = r.offset;
  out.length = r.length;
  out.notices = r.notices;
  out.shut_down = (r.flags & proto::kInjectShutDown) != 0;
  out.unmounted = (r.flags & proto::kInjectUnmounted) != 0;
  out.metadata_hit = (r.flags & proto::kInjectMetadataHit) != 0;
  for (const auto& o : r.owners) {
    out.owners.push_back({o.ino, o.path, o.file_offset, o.length, o.device_offset, o.shared});
  }
  for (const auto& x : r.retired) out.retired.push_back({x.offset, x.length});
  out.actions = r.actions;
  out.message = r.message;
  return out;
}

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(std::shared_ptr<ClientState> state) : state_(std::move(state)) {}
  ~ClientImpl() override { state_->Shutdown(); }

  const ClientDevice& device() const override { return state_->device; }

  Result<ClientFile> Open(const std::string& path, int flags) override {
    uint32_t wire;
    switch (flags) {
      case O_RDONLY:
        wire = proto::kOpenRead;
        break;
      case O_WRONLY:
        wire = proto::kOpenWrite;
        break;
      case O_RDWR:
        wire = proto::kOpenRead | proto::kOpenWrite;
        break;
      default:
        return Status::Invalid("open flags must be O_RDONLY, O_WRONLY or O_RDWR");
    }
    ASSIGN_OR_RETURN(proto::Body body, state_->Call(proto::Open{wire, path}, nullptr));
    auto* r = std::get_if<proto::OpenReply>(&body);
    if (r == nullptr) return Status::Error(EPROTO, "the daemon answered Open with something else");
    return ClientFile{r->file_id, r->ino, r->size, r->mode, r->uid, r->gid, flags, path};
  }

  Status Close(const ClientFile& file) override {
    return state_->Call(proto::Close{file.id}, nullptr).status();
  }

  Result<std::unique_ptr<ClientMapping>> Map(const ClientFile& file, uint64_t offset,
                                             uint64_t length, MapProt prot,
                                             MappingHandler handler) override {
    if (length == 0) return Status::Invalid("cannot map an empty range");
    std::shared_ptr<MappingState> m;
    const uint8_t wire = prot == MapProt::kReadWrite ? proto::kProtReadWrite : proto::kProtRead;
    RETURN_IF_ERROR(state_
                        ->Call(proto::Map{file.id, offset, length, wire}, &m,
                               MapExtras{file.ino, file.path, std::move(handler)})
                        .status());
    if (m == nullptr) return Status::Error(EPROTO, "the daemon answered Map with something else");
    return std::unique_ptr<ClientMapping>(new MappingImpl(state_, std::move(m)));
  }

  Result<ClientInjectReport> InjectError(uint64_t device_offset, uint64_t length) override {
    return Inject(proto::InjectError{proto::kInjectDevice, device_offset, length, ""});
  }
  Result<ClientInjectReport> InjectErrorAt(const std::string& path, uint64_t file_offset,
                                           uint64_t length) override {
    if (path.empty()) return Status::Invalid("inject-error: empty path");
    return Inject(proto::InjectError{proto::kInjectPath, file_offset, length, path});
  }

  Result<MediaErrorList> Errors() override {
    ASSIGN_OR_RETURN(proto::Body body, state_->Call(proto::Errors{}, nullptr));
    auto* r = std::get_if<proto::ErrorsReply>(&body);
    if (r == nullptr)
      return Status::Error(EPROTO, "the daemon answered Errors with something else");
    MediaErrorList out;
    for (const auto& o : r->lost) {
      out.lost.push_back({o.ino, o.path, o.file_offset, o.length, o.device_offset, o.shared});
    }
    for (const auto& x : r->retired) out.retired.push_back({x.offset, x.length});
    for (const auto& p : r->metadata_damage) {
      out.metadata_damage.push_back({p.offset, p.length, static_cast<RangeKind>(p.kind)});
    }
    for (const auto& x : r->bad) out.bad.push_back({x.offset, x.length});
    out.incomplete = r->incomplete;
    return out;
  }

  Result<ServerStatus> GetStatus() override {
    ASSIGN_OR_RETURN(proto::Body body, state_->Call(proto::StatusRequest{}, nullptr));
    auto* r = std::get_if<proto::StatusReply>(&body);
    if (r == nullptr)
      return Status::Error(EPROTO, "the daemon answered Status with something else");
    ServerStatus out;
    out.server_pid = static_cast<pid_t>(r->server_pid);
    out.read_only = (r->flags & proto::kStatusReadOnlyFs) != 0;
    out.pmem = (r->flags & proto::kStatusPmem) != 0;
    out.device_size = r->device_size;
    out.recalls = r->recalls;
    out.cutoffs = r->cutoffs;
    out.notices = r->notices;
    for (const auto& s : r->sessions) {
      out.sessions.push_back({s.session_id, s.pid, s.uid, s.gid, s.files, s.mappings});
    }
    return out;
  }

  bool connected() const override { return state_->connected(); }

 private:
  Result<ClientInjectReport> Inject(const proto::InjectError& request) {
    ASSIGN_OR_RETURN(proto::Body body, state_->Call(request, nullptr));
    auto* r = std::get_if<proto::InjectReply>(&body);
    if (r == nullptr)
      return Status::Error(EPROTO, "the daemon answered InjectError with something else");
    return ToReport(*r);
  }

  std::shared_ptr<ClientState> state_;
};

// The Hello exchange, before the receiver thread runs.
Result<std::pair<proto::HelloReply, int>> Handshake(int sock, const ClientOptions& options,
                                                    const std::string& path) {
  proto::Hello hello{proto::kMinVersion, proto::kMaxVersion, static_cast<uint32_t>(getpid()),
                     options.name};
  Status sent = proto::SendMessage(sock, proto::Encode(hello, 1, proto::kMinVersion), -1,
                                   options.call_timeout_ms);
  std::vector<uint8_t> buf;
  int fd = -1;
  // A refusal may already be waiting even if the send failed.
  Status got = proto::ReceiveMessage(sock, &buf, &fd, options.call_timeout_ms);
  if (!got.ok()) {
    if (!sent.ok()) return sent.WithContext(path);
    return got.WithContext(path + ": waiting for the daemon's hello");
  }
  auto close_fd = [&] {
    if (fd >= 0) close(fd);
  };
  auto message = proto::Decode(buf);
  if (!message.ok()) {
    close_fd();
    return message.status().WithContext(path);
  }
  if (auto* err = std::get_if<proto::ErrorReply>(&message->body)) {
    close_fd();
    return Status::Error(static_cast<int>(err->code),
                         path + ": the daemon refused: " + err->message);
  }
  auto* reply = std::get_if<proto::HelloReply>(&message->body);
  if (reply == nullptr || fd < 0 || reply->version < proto::kMinVersion ||
      reply->version > proto::kMaxVersion || reply->block_size != kPageSize ||
      reply->device_size == 0) {
    close_fd();
    return Status::Error(EPROTO, path +
                                     ": the daemon's hello is not usable (no device, or a "
                                     "version or block size this client does not support)");
  }
  return std::make_pair(*reply, fd);
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Connect(const std::string& socket_path,
                                                const ClientOptions& options) {
  if (options.handle_signals) RETURN_IF_ERROR(client::InstallFaultHandler());
  ASSIGN_OR_RETURN(int sock, proto::ConnectSocket(socket_path));
  auto hello = Handshake(sock, options, socket_path);
  if (!hello.ok()) {
    close(sock);
    return hello.status();
  }
  const auto& [reply, device_fd] = *hello;
  auto state = std::make_shared<ClientState>(sock, device_fd, options);
  state->version = reply.version;
  ClientDevice& d = state->device;
  d.size = reply.device_size;
  d.block_size = reply.block_size;
  d.pmem = (reply.flags & proto::kHelloDevicePmem) != 0;
  d.writable = (reply.flags & proto::kHelloDeviceWritable) != 0;
  d.read_only_fs = (reply.flags & proto::kHelloReadOnlyFs) != 0;
  d.server_pid = static_cast<pid_t>(reply.server_pid);
  d.protocol_version = reply.version;
  d.session_id = reply.session_id;
  d.max_files = reply.max_files;
  d.max_mappings = reply.max_mappings;
  state->InitPersist();
  state->Start();
  return std::unique_ptr<Client>(new ClientImpl(std::move(state)));
}

}  // namespace daxfs
