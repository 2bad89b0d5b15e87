// One client of the daemon: its socket, credentials, open files and leases, and three threads:
// a reader that takes every message off the socket and never calls into the engine (so a
// recall's acknowledgement always gets through, however long a request waits on the filesystem
// lock), a worker that runs the client's requests and fault reports in order against the
// LayoutHost and releases everything at the end, and a writer that alone sends on the socket
// (so nothing the engine calls ever waits on the client). Knows nothing of the listener.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daxfs/layout.h"
#include "proto/message.h"
#include "serve/access.h"
#include "serve/server.h"

namespace daxfs::serve {

class Session;

// What sessions share: the host, the options, the counters, the event line, the session list.
struct ServerContext {
  LayoutHost* host = nullptr;
  ServerOptions options;
  std::atomic<uint64_t> sessions_total{0};
  std::atomic<uint64_t> recalls{0};
  std::atomic<uint64_t> cutoffs{0};
  std::atomic<uint64_t> notices{0};
  std::atomic<uint64_t> faults{0};
  std::atomic<uint64_t> kills{0};
  mutable std::mutex mu;  // guards `sessions`
  std::vector<std::shared_ptr<Session>> sessions;
  // Wakes the acceptor to reap finished sessions.
  std::function<void()> on_session_finished;
  void Event(const std::string& line) const;
  std::vector<proto::SessionInfo> SessionInfos();
};

// A lease as the session keeps it: the engine's lease plus the sink the engine calls.
class LeaseRecord final : public LayoutSink {
 public:
  LeaseRecord(Session* session, uint64_t mapping_id, uint64_t file_id, Ino ino, bool writable)
      : session_(session),
        mapping_id_(mapping_id),
        file_id_(file_id),
        ino_(ino),
        writable_(writable) {}
  ~LeaseRecord() override;  // releases the engine's lease first (it may wait for a sink call)

  // LayoutSink.
  RecallDeadline LayoutChanged(uint64_t file_offset, uint64_t length,
                               const Layout& layout) override;
  void Settle(RecallDeadline deadline) override;
  void Failure(const LeaseNotice& notice) override;
  uint64_t ClientAddress() const override { return client_address_.load(); }

  // The worker, once MapLayout returned: applies changes that came meanwhile, queues the
  // MapReply (request `request_id`) and any notices that waited for it. False if the session
  // died (the reply was not sent).
  bool Publish(std::unique_ptr<LayoutLease> lease, uint64_t request_id);
  // The reader: the client acknowledged recall `sequence`. False if it names no recall sent
  // and not yet acknowledged.
  bool Acknowledged(uint64_t sequence);
  void SetClientAddress(uint64_t address) { client_address_.store(address); }
  void WakeWaiters();  // the session died
  LayoutLease* lease() { return lease_.get(); }
  uint64_t mapping_id() const { return mapping_id_; }
  uint64_t file_id() const { return file_id_; }

 private:
  bool SendLayout(proto::MessageType first, uint64_t request_id, uint64_t sequence, uint64_t offset,
                  uint64_t length, const std::vector<proto::Segment>& segments);
  bool SendNotice(const LeaseNotice& notice);

  Session* session_;
  const uint64_t mapping_id_;
  const uint64_t file_id_;
  const Ino ino_;
  const bool writable_;
  std::atomic<uint64_t> client_address_{0};
  std::unique_ptr<LayoutLease> lease_;  // set by Publish

  // Never held while waiting for anything but the client's acknowledgement (a condition wait,
  // which releases it), so the reader's Acknowledged never waits behind the engine.
  std::mutex mu_;
  std::condition_variable cv_;
  bool published_ = false;
  struct Change {
    uint64_t offset, length;
    Layout layout;
  };
  std::vector<Change> pending_changes_;       // before Publish
  std::vector<LeaseNotice> pending_notices_;  // before Publish
  std::vector<proto::Segment> layout_;        // what the client maps (after Publish)
  uint64_t range_offset_ = 0;
  uint64_t range_length_ = 0;
  uint64_t sequence_ = 0;  // last recall sent
  uint64_t acked_ = 0;     // last recall acknowledged
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `pidfd` (-1: none) names the peer process for kill_on_cutoff; the session closes it.
  Session(ServerContext* ctx, int fd, Credentials peer, uint64_t id, int pidfd);
  ~Session();
  void Start();
  // Cuts the session off (idempotent): no more requests, every recall wait ends, the socket is
  // shut down (with `flush`, only after the replies already queued were sent, so that a refusal
  // reaches the client), and the worker then releases every lease.
  void CutOff(const std::string& reason, bool count_as_cutoff, bool flush = false);
  // kill_on_cutoff: kills the peer process and waits until it has exited (idempotent; every
  // caller returns only after the kill finished or gave up). Nothing without the option.
  void KillPeer(const std::string& why);
  // Joins the threads (after finished(), or after CutOff).
  void Join();
  bool finished() const { return finished_.load(); }
  bool dead() const { return dead_.load(); }
  // Whether the session was cut off for misbehaving (counted), as opposed to closed cleanly.
  bool cut_off() const { return cut_off_.load(); }

  // Queues a message for the writer (never waits). `fd` (>= 0) is duplicated and passed with
  // it. ESHUTDOWN once the session is cut off.
  Status Send(const proto::Body& body, uint64_t request_id, int fd = -1);
  uint32_t recall_timeout_ms() const { return ctx_->options.recall_timeout_ms; }
  ServerContext* ctx() { return ctx_; }
  const Credentials& peer() const { return peer_; }
  uint64_t id() const { return id_; }
  std::string Name() const;  // "session 3 (pid 123 uid 1000 gid 1000)"
  proto::SessionInfo Info();

 private:
  struct Request {
    proto::Header header;
    proto::Body body;
  };
  struct OpenFile {
    Ino ino = 0;
    uint32_t flags = 0;
    std::string path;
  };
  struct Outgoing {
    std::vector<uint8_t> bytes;
    int fd = -1;
  };

  void ReaderLoop();
  void WorkerLoop();
  void WriterLoop();
  // Worker: routes fault reports still queued, kills a cut-off peer that holds leases (with
  // kill_on_cutoff), releases every lease and file.
  void Teardown();
  // Reader thread: false when the session must close. Never calls the host.
  bool Dispatch(const proto::Header& header, proto::Body body);
  bool Negotiate(const proto::Header& header, const proto::Hello& hello);
  // Worker: the device check and the HelloReply (with the device fd).
  void DoHello(uint64_t request_id, const proto::Hello& hello);
  void Execute(const Request& request);
  // Worker replies are flow-controlled: they wait (up to the recall timeout) while the outbox
  // holds more than kOutboxSoftLimit bytes; recalls and notices never wait.
  void Reply(uint64_t request_id, const proto::Body& body);
  void ReplyError(uint64_t request_id, const Status& status);
  bool WaitForRoom();
  bool OutboxFull();
  Status DoOpen(uint64_t request_id, const proto::Open& open);
  Status DoClose(uint64_t request_id, const proto::Close& close);
  Status DoMap(uint64_t request_id, const proto::Map& map);
  Status DoUnmap(uint64_t request_id, const proto::Unmap& unmap);
  void DoReportFault(const proto::ReportFault& fault);
  Status DoInject(uint64_t request_id, const proto::InjectError& inject);
  Status DoErrors(uint64_t request_id);
  Status DoStatus(uint64_t request_id);
  std::shared_ptr<LeaseRecord> FindLease(uint64_t mapping_id);

  ServerContext* ctx_;
  const int fd_;
  const Credentials peer_;
  const uint64_t id_;
  const int pidfd_;
  std::thread reader_;  // joins worker_ and writer_ when it ends
  std::thread worker_;
  std::thread writer_;
  std::atomic<bool> dead_{false};
  std::atomic<bool> cut_off_{false};
  std::atomic<bool> finished_{false};
  std::atomic<uint16_t> version_{0};  // 0 until Hello (set by the reader)
  bool device_writable_ = false;      // worker only

  std::mutex mu_;  // guards the queue, files, leases and the reason; never held calling the host
  std::condition_variable cv_;
  std::deque<Request> queue_;
  size_t queued_faults_ = 0;     // ReportFaults in queue_
  uint64_t dropped_faults_ = 0;  // beyond kMaxQueuedFaults
  std::string cut_reason_;
  std::map<uint64_t, OpenFile> files_;
  std::map<uint64_t, std::shared_ptr<LeaseRecord>> leases_;
  uint64_t next_file_id_ = 1;
  uint64_t next_mapping_id_ = 1;

  std::mutex out_mu_;  // guards the outbox; the innermost lock (taken under a record's mu_)
  std::condition_variable out_cv_;
  std::deque<Outgoing> outbox_;
  size_t outbox_bytes_ = 0;
  bool out_stop_ = false;  // cut off: the writer ends (after draining when out_flush_)
  bool out_flush_ = false;

  std::mutex kill_mu_;  // held for the whole kill, so every caller waits for it
  bool kill_done_ = false;
};

// Converts between the engine's layout and the protocol's.
std::vector<proto::Segment> ToProto(const Layout& layout);

}  // namespace daxfs::serve
