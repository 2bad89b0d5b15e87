// A client session of the daemon and its leases (session.h). The reader thread takes every
// message off the socket: malformed ones close the session, unknown types get an error reply,
// acknowledgements are applied at once, everything else (requests, fault reports, the Hello's
// device check) goes to the worker thread, which runs it in order against the LayoutHost. The
// writer thread alone sends. Lease records are the engine's sinks: a layout change queues a
// LayoutRecall (phase 1) and Settle waits for its RecallAck or cuts the client off (phase 2); a
// failure queues a FailureNotice.
//
// Locks, outermost first: the engine's filesystem lock (held by the engine around sink calls),
// LeaseRecord::mu_, Session::out_mu_. Session::mu_ is never held together with a record's
// lock, and no lock of the session is held while calling the host. The reader takes only
// Session::mu_ (briefly) and a record's mu_ (never held across a wait for anything but an
// acknowledgement), so it can never wait behind the filesystem lock.
#include "serve/session.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "base/log.h"
#include "proto/channel.h"
#include "proto/layout_ops.h"
#include "serve/resolve.h"

namespace daxfs::serve {
namespace {

constexpr size_t kMaxQueuedRequests = 1024;
// Fault reports waiting for the worker beyond this are dropped (a client trapping in a loop
// must not flood the daemon, nor be cut off for it: reports are news, not requests).
constexpr size_t kMaxQueuedFaults = 64;
// Worker replies wait while the outbox holds more than this (recalls and notices never wait).
constexpr size_t kOutboxSoftLimit = 4 << 20;

proto::FileLoss ToProto(const FileRangeLoss& l) {
  return {l.ino, l.file_offset, l.length, l.device_offset, l.shared, l.path};
}
std::vector<proto::Range> ToProto(const std::vector<DeviceRange>& ranges) {
  std::vector<proto::Range> out;
  for (const DeviceRange& r : ranges) out.push_back({r.offset, r.length});
  return out;
}

// Cuts the longest of `lists` until `reply` encodes within one message, and says so in `note`.
// The lists are the reply's own (each a std::vector of some element type).
template <typename Reply, typename... Lists>
void FitInOneMessage(Reply* reply, std::string* note, Lists*... lists) {
  size_t dropped = 0;
  const size_t limit = proto::kMaxMessage - 256;  // room for the note
  if (note->size() > proto::kMaxString - 256) note->resize(proto::kMaxString - 256);
  for (size_t size = proto::Encode(*reply).size(); size > limit;
       size = proto::Encode(*reply).size()) {
    size_t longest = 0;
    ((longest = std::max(longest, lists->size())), ...);
    if (longest == 0) break;
    auto cut = [&](auto* list) {
      if (list->size() != longest) return false;
      // Drop about as many entries as the excess holds (entries of one list are similar in
      // size), at least one.
      auto rest = *list;
      list->clear();
      const size_t without = proto::Encode(*reply).size();
      *list = std::move(rest);
      const size_t per_entry = std::max<size_t>(1, (size - without) / list->size());
      const size_t drop = std::min(list->size(), (size - limit + per_entry - 1) / per_entry + 1);
      list->resize(list->size() - drop);
      dropped += drop;
      return true;
    };
    (cut(lists) || ...);
  }
  if (dropped == 0) return;
  std::string more = std::to_string(dropped) + " more entries not listed (one message holds " +
                     std::to_string(proto::kMaxBody) + " bytes)";
  *note = note->empty() ? more : *note + "; " + more;
}

}  // namespace

std::vector<proto::Segment> ToProto(const Layout& layout) {
  std::vector<proto::Segment> out;
  out.reserve(layout.size());
  for (const LayoutSegment& s : layout) {
    out.push_back({s.file_offset, s.length, s.device_offset,
                   static_cast<proto::SegmentKind>(static_cast<uint8_t>(s.kind))});
  }
  return out;
}

void ServerContext::Event(const std::string& line) const {
  base::Log(base::LogLevel::kInfo, "serve: {}", line);
  if (options.on_event) options.on_event(line);
}

std::vector<proto::SessionInfo> ServerContext::SessionInfos() {
  std::vector<std::shared_ptr<Session>> list;
  {
    std::lock_guard<std::mutex> lock(mu);
    list = sessions;
  }
  std::vector<proto::SessionInfo> out;
  for (auto& s : list) {
    if (!s->dead()) out.push_back(s->Info());
  }
  return out;
}

// ---- LeaseRecord
// ----------------------------------------------------------------------------------

LeaseRecord::~LeaseRecord() { lease_.reset(); }

bool LeaseRecord::SendLayout(proto::MessageType first, uint64_t request_id, uint64_t sequence,
                             uint64_t offset, uint64_t length,
                             const std::vector<proto::Segment>& segments) {
  const auto chunks = proto::ChunkSegments(segments);
  const auto total = static_cast<uint32_t>(segments.size());
  Status s;
  if (first == proto::MessageType::kMapReply) {
    s = session_->Send(
        proto::MapReply{mapping_id_, offset, length,
                        writable_ ? proto::kProtReadWrite : proto::kProtRead, total, chunks[0]},
        request_id);
  } else {
    s = session_->Send(proto::LayoutRecall{mapping_id_, sequence, offset, length, total, chunks[0]},
                       0);
  }
  for (size_t i = 1; i < chunks.size() && s.ok(); ++i) {
    s = session_->Send(proto::LayoutMore{mapping_id_, sequence, chunks[i]}, request_id);
  }
  return s.ok();
}

bool LeaseRecord::SendNotice(const LeaseNotice& n) {
  uint32_t flags = 0;
  if (n.action_required) flags |= proto::kNoticeActionRequired;
  if (n.removal) flags |= proto::kNoticeRemoval;
  if (n.consumed) flags |= proto::kNoticeConsumed;
  session_->ctx()->notices.fetch_add(1);
  return session_
      ->Send(proto::FailureNotice{mapping_id_, n.offset, n.length, n.file_offset, n.device_offset,
                                  flags},
             0)
      .ok();
}

RecallDeadline LeaseRecord::LayoutChanged(uint64_t file_offset, uint64_t length,
                                          const Layout& layout) {
  const RecallDeadline now = RecallClock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (session_->dead()) return now;
  if (!published_) {  // the client maps nothing yet: the MapReply will carry the new layout
    pending_changes_.push_back({file_offset, length, layout});
    return now;
  }
  const uint64_t lo = std::max(file_offset, range_offset_);
  const uint64_t hi = std::min(file_offset + length, range_offset_ + range_length_);
  if (lo >= hi) return now;
  const std::vector<proto::Segment> change = proto::SliceLayout(ToProto(layout), lo, hi - lo);
  proto::SpliceLayout(&layout_, lo, hi - lo, change);
  const uint64_t sequence = ++sequence_;
  session_->ctx()->recalls.fetch_add(1);
  // Queued, never waited for: a session that cannot take it is already cut off, and Settle
  // then returns at once.
  if (!SendLayout(proto::MessageType::kLayoutRecall, 0, sequence, lo, hi - lo, change)) return now;
  return now + std::chrono::milliseconds(session_->recall_timeout_ms());
}

void LeaseRecord::Settle(RecallDeadline deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (acked_ >= sequence_) return;
  cv_.wait_until(lock, deadline, [&] { return acked_ >= sequence_ || session_->dead(); });
  if (acked_ >= sequence_) return;
  const uint64_t sequence = sequence_;
  lock.unlock();
  const std::string what = "recall " + std::to_string(sequence) + " of mapping " +
                           std::to_string(mapping_id_) + " (inode " + std::to_string(ino_) + ")";
  if (!session_->dead()) {
    session_->CutOff(
        what + " not acknowledged within " + std::to_string(session_->recall_timeout_ms()) + " ms",
        true);
  } else if (!session_->cut_off()) {
    return;  // the client closed its end (exited): it maps nothing any more
  }
  // The client may still map the blocks this change is about to free: the kill (when
  // configured) is the only fence, so it happens before the engine goes on.
  session_->KillPeer(what + " is outstanding");
}

void LeaseRecord::Failure(const LeaseNotice& notice) {
  std::lock_guard<std::mutex> lock(mu_);
  if (session_->dead()) return;
  if (!published_) {
    pending_notices_.push_back(notice);
    return;
  }
  SendNotice(notice);  // fails only if the session is already cut off
}

bool LeaseRecord::Publish(std::unique_ptr<LayoutLease> lease, uint64_t request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  lease_ = std::move(lease);
  range_offset_ = lease_->file_offset();
  range_length_ = lease_->length();
  layout_ = ToProto(lease_->initial_layout());
  for (const Change& c : pending_changes_) {
    proto::SpliceLayout(&layout_, c.offset, c.length, ToProto(c.layout));
  }
  pending_changes_.clear();
  published_ = true;
  if (session_->dead()) return false;
  bool ok = SendLayout(proto::MessageType::kMapReply, request_id, 0, range_offset_, range_length_,
                       layout_);
  for (size_t i = 0; ok && i < pending_notices_.size(); ++i) ok = SendNotice(pending_notices_[i]);
  pending_notices_.clear();
  return ok;
}

bool LeaseRecord::Acknowledged(uint64_t sequence) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (sequence == 0 || sequence > sequence_ || sequence <= acked_) return false;
    acked_ = sequence;
  }
  cv_.notify_all();
  return true;
}

void LeaseRecord::WakeWaiters() {
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

// ---- Session: threads and lifetime
// ----------------------------------------------------------------

Session::Session(ServerContext* ctx, int fd, Credentials peer, uint64_t id, int pidfd)
    : ctx_(ctx), fd_(fd), peer_(std::move(peer)), id_(id), pidfd_(pidfd) {}

Session::~Session() { Join(); }

void Session::Start() {
  writer_ = std::thread([this] { WriterLoop(); });
  worker_ = std::thread([this] { WorkerLoop(); });
  reader_ = std::thread([this] { ReaderLoop(); });
}

void Session::Join() {
  if (reader_.joinable()) reader_.join();
}

std::string Session::Name() const {
  return "session " + std::to_string(id_) + " (" + peer_.Describe() + ")";
}

proto::SessionInfo Session::Info() {
  std::lock_guard<std::mutex> lock(mu_);
  return {id_,
          peer_.pid,
          peer_.uid,
          peer_.gid,
          static_cast<uint32_t>(files_.size()),
          static_cast<uint32_t>(leases_.size())};
}

void Session::CutOff(const std::string& reason, bool count_as_cutoff, bool flush) {
  bool expected = false;
  if (!dead_.compare_exchange_strong(expected, true)) return;
  if (count_as_cutoff) cut_off_.store(true);
  {
    // Under mu_ (before a record's lock, the allowed order) and without taking references: a
    // reference held here could be the last one, and destroying a lease inside an engine call
    // (CutOff runs inside Settle) would wait for the filesystem lock that call holds.
    std::lock_guard<std::mutex> lock(mu_);
    cut_reason_ = reason;
    for (auto& [id, r] : leases_) r->WakeWaiters();
  }
  cv_.notify_all();
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    out_stop_ = true;
    out_flush_ = flush;
  }
  out_cv_.notify_all();
  // Wakes the reader (end of stream) and a writer blocked on a full socket. With `flush` the
  // writer shuts the socket down once the queued replies are out.
  if (!flush) shutdown(fd_, SHUT_RDWR);
  if (count_as_cutoff) {
    ctx_->cutoffs.fetch_add(1);
    ctx_->Event(Name() + ": cut off: " + reason);
  }
}

void Session::KillPeer(const std::string& why) {
  if (!ctx_->options.kill_on_cutoff) return;
  std::lock_guard<std::mutex> lock(kill_mu_);
  if (kill_done_) return;
  kill_done_ = true;
  if (pidfd_ < 0) {
    ctx_->Event(Name() + ": cannot kill the client (" + why + "): no pidfd of the peer");
    return;
  }
  if (syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0) != 0 && errno != ESRCH) {
    ctx_->Event(Name() + ": could not kill the client (" + why + "): " + std::strerror(errno) +
                "; it may still map blocks that are about to be reused");
    return;
  }
  // The pidfd reads as ready once every thread has exited: the address space is gone by then.
  pollfd p{pidfd_, POLLIN, 0};
  int n;
  do {
    n = poll(&p, 1, static_cast<int>(ctx_->options.recall_timeout_ms));
  } while (n < 0 && errno == EINTR);
  ctx_->kills.fetch_add(1);
  ctx_->Event(Name() + ": killed (" + why + ")" +
              (n > 0 ? ": the process has exited"
                     : ": the process did not exit within " +
                           std::to_string(ctx_->options.recall_timeout_ms) + " ms"));
}

void Session::ReaderLoop() {
  std::vector<uint8_t> buf;
  std::string reason = "client closed the connection";
  while (!dead_.load()) {
    int passed = -1;
    Status s = proto::ReceiveMessage(fd_, &buf, &passed);
    if (passed >= 0) {
      close(passed);
      CutOff("client sent a file descriptor", true);
      break;
    }
    if (!s.ok()) {
      if (s.code() == ECONNRESET) break;
      if (s.code() == EMSGSIZE) {
        CutOff("malformed message: " + s.message(), true);
        break;
      }
      reason = "receive failed: " + s.ToString();
      break;
    }
    auto header = proto::DecodeHeader(buf);
    if (!header.ok()) {
      CutOff("malformed message: " + header.status().message(), true);
      break;
    }
    if (!proto::IsKnownType(static_cast<uint16_t>(header->type))) {
      if (OutboxFull()) {
        CutOff("the client sends requests without reading the replies", true);
        break;
      }
      Send(proto::ErrorReply{static_cast<uint32_t>(EOPNOTSUPP),
                             "unknown message type " +
                                 std::to_string(static_cast<uint16_t>(header->type))},
           header->request_id)
          .IgnoreError();
      continue;
    }
    if (version_ != 0 && header->version != version_) {
      CutOff("message of version " + std::to_string(header->version) + " after negotiating " +
                 std::to_string(version_.load()),
             true);
      break;
    }
    auto body =
        proto::DecodeBody(*header, std::span<const uint8_t>(buf).subspan(proto::kHeaderSize));
    if (!body.ok()) {
      CutOff(body.status().message(), true);
      break;
    }
    if (!Dispatch(*header, std::move(*body))) break;
  }
  CutOff(reason, false);  // no-op if already cut off
  // The worker releases the leases (it may be inside the engine: it finishes that first); the
  // writer drains a flush. Then the socket can go.
  if (worker_.joinable()) worker_.join();
  if (writer_.joinable()) writer_.join();
  close(fd_);
  if (pidfd_ >= 0) close(pidfd_);
  finished_.store(true);
  if (ctx_->on_session_finished) ctx_->on_session_finished();
}

void Session::WriterLoop() {
  for (;;) {
    Outgoing out;
    {
      std::unique_lock<std::mutex> lock(out_mu_);
      out_cv_.wait(lock, [&] { return !outbox_.empty() || out_stop_; });
      if (out_stop_ && (!out_flush_ || outbox_.empty())) break;
      out = std::move(outbox_.front());
      outbox_.pop_front();
      outbox_bytes_ -= out.bytes.size();
    }
    out_cv_.notify_all();  // room for a waiting worker reply
    Status s = proto::SendMessage(fd_, out.bytes, out.fd,
                                  static_cast<int>(ctx_->options.recall_timeout_ms));
    if (out.fd >= 0) close(out.fd);
    if (!s.ok()) {
      if (s.code() == ETIMEDOUT) {
        CutOff("the client did not read its socket for " +
                   std::to_string(ctx_->options.recall_timeout_ms) + " ms",
               true);
      } else {
        CutOff("send failed: " + s.ToString(), false);
      }
      break;
    }
  }
  std::deque<Outgoing> dropped;
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    dropped.swap(outbox_);
    outbox_bytes_ = 0;
  }
  for (Outgoing& o : dropped) {
    if (o.fd >= 0) close(o.fd);
  }
  shutdown(fd_, SHUT_RDWR);  // after a flush: ends the reader's wait
}

Status Session::Send(const proto::Body& body, uint64_t request_id, int fd) {
  const uint16_t negotiated = version_.load();
  const uint16_t version = negotiated == 0 ? proto::kMinVersion : negotiated;
  Outgoing out{proto::Encode(body, request_id, version), -1};
  if (fd >= 0) {
    out.fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (out.fd < 0) return Status::Error(errno, std::string("dup: ") + std::strerror(errno));
  }
  {
    std::lock_guard<std::mutex> lock(out_mu_);
    if (!out_stop_) {
      outbox_bytes_ += out.bytes.size();
      outbox_.push_back(std::move(out));
      out_cv_.notify_all();
      return Status::Ok();
    }
  }
  if (out.fd >= 0) close(out.fd);
  return Status::Error(ESHUTDOWN, "the session is closed");
}

bool Session::OutboxFull() {
  std::lock_guard<std::mutex> lock(out_mu_);
  return outbox_bytes_ > kOutboxSoftLimit;
}

bool Session::WaitForRoom() {
  std::unique_lock<std::mutex> lock(out_mu_);
  const bool room =
      out_cv_.wait_for(lock, std::chrono::milliseconds(ctx_->options.recall_timeout_ms),
                       [&] { return outbox_bytes_ <= kOutboxSoftLimit || out_stop_; });
  if (out_stop_) return false;
  if (room) return true;
  lock.unlock();
  CutOff("the client did not read its replies for " +
             std::to_string(ctx_->options.recall_timeout_ms) + " ms",
         true);
  return false;
}

// ---- the reader's dispatch
// ------------------------------------------------------------------------

bool Session::Dispatch(const proto::Header& header, proto::Body body) {
  using proto::MessageType;
  const MessageType type = header.type;
  if (version_ == 0) {
    if (type != MessageType::kHello) {
      Send(proto::ErrorReply{static_cast<uint32_t>(EPROTO), "the first message must be Hello"},
           header.request_id)
          .IgnoreError();
      CutOff(std::string(proto::MessageTypeName(type)) + " before Hello", true, true);
      return false;
    }
    if (!Negotiate(header, std::get<proto::Hello>(body))) return false;
  } else if (type == MessageType::kHello) {
    CutOff("a second Hello", true);
    return false;
  }
  switch (type) {
    // Acknowledgements are applied here, under mu_ and without taking a reference (the reader
    // must never end up destroying a lease: that is an engine call).
    case MessageType::kMapAck: {
      const auto& ack = std::get<proto::MapAck>(body);
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = leases_.find(ack.mapping_id); it != leases_.end()) {
        it->second->SetClientAddress(ack.address);
      }
      return true;
    }
    case MessageType::kRecallAck: {
      const auto& ack = std::get<proto::RecallAck>(body);
      bool applied = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (auto it = leases_.find(ack.mapping_id); it != leases_.end()) {
          applied = it->second->Acknowledged(ack.sequence);
        }
      }
      if (applied && ack.status != 0) {
        ctx_->Event(Name() + ": mapping " + std::to_string(ack.mapping_id) +
                    " could not follow recall " + std::to_string(ack.sequence) + " (" +
                    std::strerror(static_cast<int>(ack.status)) + "): the client fenced the range");
      }
      return true;
    }
    case MessageType::kReportFault: {
      std::lock_guard<std::mutex> lock(mu_);
      if (queued_faults_ >= kMaxQueuedFaults) {
        ++dropped_faults_;
        return true;
      }
      ++queued_faults_;
      queue_.push_back({header, std::move(body)});
      cv_.notify_all();
      return true;
    }
    case MessageType::kHello:  // the first one: its device check runs on the worker
    case MessageType::kOpen:
    case MessageType::kClose:
    case MessageType::kMap:
    case MessageType::kUnmap:
    case MessageType::kInjectError:
    case MessageType::kErrors:
    case MessageType::kStatus: {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (queue_.size() < kMaxQueuedRequests) {
          queue_.push_back({header, std::move(body)});
          cv_.notify_all();
          return true;
        }
      }
      CutOff("more than " + std::to_string(kMaxQueuedRequests) + " requests outstanding", true);
      return false;
    }
    default:
      CutOff(std::string("a client may not send ") + proto::MessageTypeName(type), true);
      return false;
  }
}

// The version and the client limit (no engine call): the device check is the worker's DoHello.
bool Session::Negotiate(const proto::Header& header, const proto::Hello& hello) {
  const uint16_t version = std::min(hello.max_version, proto::kMaxVersion);
  if (version < std::max(hello.min_version, proto::kMinVersion)) {
    Send(
        proto::ErrorReply{
            static_cast<uint32_t>(EPROTONOSUPPORT),
            "no common protocol version: the client speaks " + std::to_string(hello.min_version) +
                ".." + std::to_string(hello.max_version) + ", the daemon " +
                std::to_string(proto::kMinVersion) + ".." + std::to_string(proto::kMaxVersion)},
        header.request_id)
        .IgnoreError();
    CutOff("no common protocol version", true, true);
    return false;
  }
  std::lock_guard<std::mutex> lock(ctx_->mu);
  size_t live = 0;
  for (auto& s : ctx_->sessions) live += s->version_ != 0 && !s->dead() ? 1 : 0;
  if (live >= ctx_->options.max_sessions) {
    const std::string why = "too many clients (the daemon's limit is " +
                            std::to_string(ctx_->options.max_sessions) + ")";
    ctx_->Event(Name() + ": refused: " + why);
    Send(proto::ErrorReply{static_cast<uint32_t>(EUSERS), why}, header.request_id).IgnoreError();
    CutOff("refused", false, true);
    return false;
  }
  version_ = version;  // counted from here on
  return true;
}

// ---- the worker
// ------------------------------------------------------------------------------------

void Session::WorkerLoop() {
  for (;;) {
    Request request;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !queue_.empty() || dead_.load(); });
      if (dead_.load()) break;
      request = std::move(queue_.front());
      queue_.pop_front();
      if (request.header.type == proto::MessageType::kReportFault) --queued_faults_;
    }
    Execute(request);
  }
  Teardown();
}

void Session::DoHello(uint64_t request_id, const proto::Hello& hello) {
  auto refuse = [&](Status status) {
    ctx_->Event(Name() + ": refused: " + status.message());
    ReplyError(request_id, status);
    CutOff("refused", false, true);
  };
  const HostDevice dev = ctx_->host->device();
  if (!MayAccess(peer_, dev.uid, dev.gid, dev.mode, kMayRead, false)) {
    return refuse(Status::Error(
        EACCES, dev.path + ": " + peer_.Describe() + " may not open the device (" +
                    ModeString(dev.mode) + " " + std::to_string(dev.uid) + ":" +
                    std::to_string(dev.gid) +
                    "): direct maps hand out the whole device, so only users allowed to open it "
                    "get them; use the mount instead"));
  }
  const bool read_only_fs = ctx_->host->GetStatus().read_only;
  device_writable_ =
      !read_only_fs && MayAccess(peer_, dev.uid, dev.gid, dev.mode, kMayRead | kMayWrite, false);
  auto fd = ctx_->host->OpenDeviceFd(device_writable_);
  if (!fd.ok()) return refuse(fd.status());
  uint16_t flags = 0;
  if (dev.pmem) flags |= proto::kHelloDevicePmem;
  if (device_writable_) flags |= proto::kHelloDeviceWritable;
  if (read_only_fs) flags |= proto::kHelloReadOnlyFs;
  proto::HelloReply reply{version_.load(),
                          flags,
                          dev.block_size,
                          dev.size,
                          static_cast<uint32_t>(getpid()),
                          id_,
                          ctx_->options.max_files,
                          ctx_->options.max_mappings,
                          ctx_->options.recall_timeout_ms};
  Status s = Send(reply, request_id, *fd);
  close(*fd);
  if (!s.ok()) return;  // cut off meanwhile
  ctx_->Event(Name() + " '" + hello.client_name + "': connected, protocol " +
              std::to_string(version_.load()) +
              (device_writable_ ? ", device read-write" : ", device read-only"));
}

void Session::Execute(const Request& request) {
  const uint64_t id = request.header.request_id;
  Status s = std::visit(
      [&](const auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, proto::Hello>) {
          DoHello(id, m);
          return Status::Ok();
        }
        if constexpr (std::is_same_v<T, proto::Open>) return DoOpen(id, m);
        if constexpr (std::is_same_v<T, proto::Close>) return DoClose(id, m);
        if constexpr (std::is_same_v<T, proto::Map>) return DoMap(id, m);
        if constexpr (std::is_same_v<T, proto::Unmap>) return DoUnmap(id, m);
        if constexpr (std::is_same_v<T, proto::ReportFault>) {
          DoReportFault(m);
          return Status::Ok();
        }
        if constexpr (std::is_same_v<T, proto::InjectError>) return DoInject(id, m);
        if constexpr (std::is_same_v<T, proto::Errors>) return DoErrors(id);
        if constexpr (std::is_same_v<T, proto::StatusRequest>) return DoStatus(id);
        return Status::Error(EPROTO, "not a request");
      },
      request.body);
  if (!s.ok()) ReplyError(id, s);
}

void Session::Reply(uint64_t request_id, const proto::Body& body) {
  if (!WaitForRoom()) return;
  Send(body, request_id).IgnoreError();  // fails only once cut off
}

void Session::ReplyError(uint64_t request_id, const Status& status) {
  Reply(request_id, proto::ErrorReply{static_cast<uint32_t>(status.code()), status.message()});
}

std::shared_ptr<LeaseRecord> Session::FindLease(uint64_t mapping_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = leases_.find(mapping_id);
  return it == leases_.end() ? nullptr : it->second;
}

Status Session::DoOpen(uint64_t request_id, const proto::Open& open) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.size() >= ctx_->options.max_files) {
      return Status::Error(EMFILE, "too many open files in this session (the limit is " +
                                       std::to_string(ctx_->options.max_files) + ")");
    }
  }
  ASSIGN_OR_RETURN(Attr attr, ResolveForPeer(*ctx_->host, peer_, open.path));
  if (attr.type == FileType::kDirectory)
    return Status::Error(EISDIR, open.path + ": Is a directory");
  if (attr.type != FileType::kRegular) return Status::Invalid(open.path + ": not a regular file");
  const bool write = (open.flags & proto::kOpenWrite) != 0;
  const bool read = (open.flags & proto::kOpenRead) != 0;
  const uint32_t want = (read ? uint32_t{kMayRead} : 0u) | (write ? uint32_t{kMayWrite} : 0u);
  if (!MayAccess(peer_, attr.uid, attr.gid, attr.mode, want, false)) {
    return Status::Error(EACCES, open.path + ": " + peer_.Describe() + " may not open it for " +
                                     (read && write ? "reading and writing"
                                      : write       ? "writing"
                                                    : "reading") +
                                     " (" + ModeString(attr.mode) + " " + std::to_string(attr.uid) +
                                     ":" + std::to_string(attr.gid) + ")");
  }
  if (write && ctx_->host->GetStatus().read_only) {
    return Status::ReadOnly(open.path + ": the filesystem is read-only");
  }
  uint64_t file_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    file_id = next_file_id_++;
    files_[file_id] = {attr.ino, open.flags, open.path};
  }
  Reply(request_id, proto::OpenReply{file_id, attr.ino, attr.size, attr.mode, attr.uid, attr.gid});
  return Status::Ok();
}

Status Session::DoClose(uint64_t request_id, const proto::Close& close) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (files_.erase(close.file_id) == 0) {
      return Status::Error(EBADF, "file " + std::to_string(close.file_id) + " is not open");
    }
  }
  Reply(request_id, proto::OkReply{});
  return Status::Ok();
}

Status Session::DoMap(uint64_t request_id, const proto::Map& map) {
  const bool writable = map.prot == proto::kProtReadWrite;
  std::shared_ptr<LeaseRecord> record;
  Ino ino;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(map.file_id);
    if (it == files_.end()) {
      return Status::Error(EBADF, "file " + std::to_string(map.file_id) + " is not open");
    }
    const OpenFile& file = it->second;
    if ((file.flags & proto::kOpenRead) == 0) {
      return Status::Error(EACCES, file.path + ": opened write-only; a mapping needs read access");
    }
    if (writable && (file.flags & proto::kOpenWrite) == 0) {
      return Status::Error(EACCES, file.path + ": opened read-only; no writable mapping");
    }
    if (writable && !device_writable_) {
      return Status::Error(EACCES, file.path + ": this client has read-only access to the device");
    }
    if (map.length > uint64_t{proto::kMaxSegmentsPerLayout} * proto::kPageSize) {
      return Status::Error(
          ENOMEM,
          "a mapping is at most " +
              std::to_string(uint64_t{proto::kMaxSegmentsPerLayout} * proto::kPageSize >> 30) +
              " GiB (the protocol's layout limit)");
    }
    if (leases_.size() >= ctx_->options.max_mappings) {
      return Status::Error(ENOMEM, "too many mappings in this session (the limit is " +
                                       std::to_string(ctx_->options.max_mappings) + ")");
    }
    ino = file.ino;
    const uint64_t mapping_id = next_mapping_id_++;
    record = std::make_shared<LeaseRecord>(this, mapping_id, map.file_id, ino, writable);
    leases_[mapping_id] = record;
  }
  auto forget = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    leases_.erase(record->mapping_id());
  };
  const LeaseOwner owner{peer_.pid, peer_.uid, peer_.gid, id_};
  auto lease =
      ctx_->host->MapLayout(ino, map.offset, map.length,
                            writable ? MapProt::kReadWrite : MapProt::kRead, owner, record.get());
  if (!lease.ok()) {
    forget();
    return lease.status();
  }
  if (!record->Publish(std::move(*lease), request_id)) forget();  // dead: released below
  return Status::Ok();
}

Status Session::DoUnmap(uint64_t request_id, const proto::Unmap& unmap) {
  std::shared_ptr<LeaseRecord> record;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(unmap.mapping_id);
    if (it == leases_.end()) {
      return Status::Invalid("mapping " + std::to_string(unmap.mapping_id) + " is not mapped");
    }
    record = std::move(it->second);
    leases_.erase(it);
  }
  record.reset();  // the engine's lease goes first; no sink call after this
  Reply(request_id, proto::OkReply{});
  return Status::Ok();
}

void Session::DoReportFault(const proto::ReportFault& fault) {
  auto record = FindLease(fault.mapping_id);
  ctx_->faults.fetch_add(1);
  std::string line = "session " + std::to_string(id_) + " (" + peer_.Describe() +
                     "): " + ((fault.flags & proto::kFaultFenceTrap) != 0 ? "trap" : "fault") +
                     " in mapping " + std::to_string(fault.mapping_id) + " at offset " +
                     std::to_string(fault.offset) + " (signal " + std::to_string(fault.signo) +
                     ", code " + std::to_string(fault.code) + ")";
  if (record == nullptr || record->lease() == nullptr) {
    ctx_->Event(line + ": no such mapping");
    return;
  }
  Status s = record->lease()->ReportFault(fault.offset, fault.code, fault.address_lsb,
                                          (fault.flags & proto::kFaultFenceTrap) != 0);
  ctx_->Event(line + (s.ok() ? ": routed" : ": " + s.ToString()));
}

Status Session::DoInject(uint64_t request_id, const proto::InjectError& inject) {
  if (!device_writable_) {
    return Status::Error(EPERM, "inject-error needs write access to the device");
  }
  uint64_t offset = inject.offset;
  if (inject.mode == proto::kInjectPath) {
    ASSIGN_OR_RETURN(Attr attr, ResolveForPeer(*ctx_->host, peer_, inject.path));
    if (attr.type != FileType::kRegular)
      return Status::Invalid(inject.path + ": not a regular file");
    ASSIGN_OR_RETURN(std::vector<FileExtent> extents, ctx_->host->Bmap(attr.ino));
    bool found = false;
    for (const FileExtent& e : extents) {
      if (inject.offset >= e.file_offset && inject.offset - e.file_offset < e.length) {
        offset = (e.device_offset + (inject.offset - e.file_offset)) & ~uint64_t{4095};
        found = true;
        break;
      }
    }
    if (!found) {
      return Status::Error(ENXIO, inject.path + ": no device bytes at offset " +
                                      std::to_string(inject.offset) + " (a hole or past EOF)");
    }
  }
  ASSIGN_OR_RETURN(FailureReport report, ctx_->host->InjectError(offset, inject.length));
  proto::InjectReply reply;
  reply.offset = report.offset;
  reply.length = report.length;
  if (report.shut_down) reply.flags |= proto::kInjectShutDown;
  if (report.unmounted) reply.flags |= proto::kInjectUnmounted;
  if (report.media.metadata_hit) reply.flags |= proto::kInjectMetadataHit;
  reply.notices = static_cast<uint32_t>(report.notices.size());
  for (const FileRangeLoss& l : report.media.owners) reply.owners.push_back(ToProto(l));
  reply.retired = ToProto(report.media.retired);
  reply.actions = report.actions;
  reply.message = report.media.message;
  FitInOneMessage(&reply, &reply.message, &reply.owners, &reply.retired, &reply.actions);
  ctx_->Event("session " + std::to_string(id_) + " (" + peer_.Describe() +
              "): inject-error at device offset " + std::to_string(report.offset) + " length " +
              std::to_string(report.length) + ": " + std::to_string(reply.notices) +
              " mapping pieces told");
  Reply(request_id, reply);
  return Status::Ok();
}

Status Session::DoErrors(uint64_t request_id) {
  ASSIGN_OR_RETURN(MediaErrorList list, ctx_->host->MediaErrors());
  proto::ErrorsReply reply;
  for (const FileRangeLoss& l : list.lost) reply.lost.push_back(ToProto(l));
  reply.retired = ToProto(list.retired);
  for (const RangePiece& p : list.metadata_damage) {
    reply.metadata_damage.push_back({p.offset, p.length, static_cast<uint8_t>(p.kind)});
  }
  reply.bad = ToProto(list.bad);
  reply.incomplete = list.incomplete;
  FitInOneMessage(&reply, &reply.incomplete, &reply.lost, &reply.retired, &reply.metadata_damage,
                  &reply.bad);
  Reply(request_id, reply);
  return Status::Ok();
}

Status Session::DoStatus(uint64_t request_id) {
  const HostStatus hs = ctx_->host->GetStatus();
  const HostDevice dev = ctx_->host->device();
  proto::StatusReply reply;
  reply.server_pid = static_cast<uint32_t>(getpid());
  if (hs.read_only) reply.flags |= proto::kStatusReadOnlyFs;
  if (dev.pmem) reply.flags |= proto::kStatusPmem;
  reply.device_size = dev.size;
  reply.recalls = ctx_->recalls.load();
  reply.cutoffs = ctx_->cutoffs.load();
  reply.notices = ctx_->notices.load();
  reply.sessions = ctx_->SessionInfos();
  std::string ignored;
  FitInOneMessage(&reply, &ignored, &reply.sessions);
  Reply(request_id, reply);
  return Status::Ok();
}

void Session::Teardown() {
  std::deque<Request> left;
  std::map<uint64_t, std::shared_ptr<LeaseRecord>> leases;
  size_t files;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
    why = cut_reason_;
  }
  // A client that trapped outside a guard reports and dies at once: its report arrives just
  // before the end of stream and is routed while its leases still exist.
  for (const Request& r : left) {
    if (const auto* fault = std::get_if<proto::ReportFault>(&r.body)) DoReportFault(*fault);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    leases.swap(leases_);
    files = files_.size();
    files_.clear();
  }
  for (auto& [id, r] : leases) r->WakeWaiters();  // a Settle in flight returns now
  const size_t released = leases.size();
  // A client cut off for misbehaving may still be running with its mappings: with
  // kill_on_cutoff it dies before its blocks can be reused.
  if (cut_off() && released > 0) KillPeer("cut off with " + std::to_string(released) + " mappings");
  leases.clear();  // every engine lease released (each waits for its in-flight sink call)
  if (version_ != 0 || released > 0) {
    uint64_t dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dropped = dropped_faults_;
    }
    ctx_->Event(Name() + ": closed (" + why + "): released " + std::to_string(released) +
                " mappings and " + std::to_string(files) + " open files" +
                (dropped > 0 ? "; " + std::to_string(dropped) + " fault reports dropped" : ""));
  }
}

}  // namespace daxfs::serve
