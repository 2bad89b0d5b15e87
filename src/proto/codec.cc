// Encoding and decoding of every protocol message (docs/protocol.md). Pure bytes through
// base/coding.h; knows nothing of sockets, the engine or the client's mappings.
#include <algorithm>
#include <cstring>
#include <string>

#include "base/coding.h"
#include "proto/message.h"

namespace daxfs::proto {
namespace {

Status Malformed(MessageType type, const std::string& what) {
  return Status::Error(EPROTO,
                       std::string("malformed ") + MessageTypeName(type) + " message: " + what);
}

// ---- writer: appends little-endian fields to a vector -------------------------------------------
class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Append(&v, 2); }
  void U32(uint32_t v) { Append(&v, 4); }
  void U64(uint64_t v) { Append(&v, 8); }
  void Str(const std::string& s) {
    const size_t n = std::min(s.size(), kMaxString);
    U16(static_cast<uint16_t>(n));
    Append(s.data(), n);
  }

 private:
  void Append(const void* p, size_t n) {
    const size_t at = out_->size();
    out_->resize(at + n);
    if (n > 0) std::memcpy(out_->data() + at, p, n);
  }
  std::vector<uint8_t>* out_;
};

// ---- reader: base::Decoder plus strings, lists and the first error's reason ---------------------
class Reader {
 public:
  Reader(MessageType type, std::span<const uint8_t> body)
      : type_(type), dec_(body.data(), body.size()) {}
  uint8_t U8() { return dec_.GetU8(); }
  uint16_t U16() { return dec_.GetU16(); }
  uint32_t U32() { return dec_.GetU32(); }
  uint64_t U64() { return dec_.GetU64(); }
  std::string Str(const char* field) {
    const uint16_t n = dec_.GetU16();
    if (!dec_.ok()) return {};
    if (n > kMaxString) {
      Fail(std::string(field) + " is " + std::to_string(n) + " bytes (at most " +
           std::to_string(kMaxString) + ")");
      return {};
    }
    if (n > dec_.remaining()) {
      Fail(std::string(field) + " runs past the end of the body");
      return {};
    }
    std::string s(n, '\0');
    dec_.GetBytes(s.data(), n);
    return s;
  }
  // A list's count, checked against what the rest of the body can hold and against `max`.
  uint32_t Count(const char* field, size_t min_element_size, size_t max) {
    const uint32_t n = dec_.GetU32();
    if (!dec_.ok()) return 0;
    if (n > max) {
      Fail(std::string(field) + ": " + std::to_string(n) + " entries (at most " +
           std::to_string(max) + ")");
      return 0;
    }
    if (static_cast<uint64_t>(n) * min_element_size > dec_.remaining()) {
      Fail(std::string(field) + ": " + std::to_string(n) + " entries run past the end of the body");
      return 0;
    }
    return n;
  }
  void Fail(std::string why) {
    if (error_.empty()) error_ = std::move(why);
  }
  bool failed() const { return !error_.empty() || !dec_.ok(); }
  Status Finish() {
    if (!error_.empty()) return Malformed(type_, error_);
    if (!dec_.ok()) return Malformed(type_, "truncated body");
    if (dec_.remaining() != 0) {
      return Malformed(type_, std::to_string(dec_.remaining()) + " bytes left over after the body");
    }
    return Status::Ok();
  }

 private:
  MessageType type_;
  base::Decoder dec_;
  std::string error_;
};

// ---- shared pieces
// -------------------------------------------------------------------------------
void Put(Writer& w, const Segment& s) {
  w.U64(s.file_offset);
  w.U64(s.length);
  w.U64(s.device_offset);
  w.U8(static_cast<uint8_t>(s.kind));
}
void Get(Reader& r, Segment* s) {
  s->file_offset = r.U64();
  s->length = r.U64();
  s->device_offset = r.U64();
  const uint8_t kind = r.U8();
  if (kind < 1 || kind > 4) r.Fail("segment kind " + std::to_string(kind) + " is not 1..4");
  s->kind = static_cast<SegmentKind>(kind);
}
void Put(Writer& w, const Range& x) {
  w.U64(x.offset);
  w.U64(x.length);
}
void Get(Reader& r, Range* x) {
  x->offset = r.U64();
  x->length = r.U64();
}
void Put(Writer& w, const FileLoss& x) {
  w.U64(x.ino);
  w.U64(x.file_offset);
  w.U64(x.length);
  w.U64(x.device_offset);
  w.U8(x.shared ? 1 : 0);
  w.Str(x.path);
}
void Get(Reader& r, FileLoss* x) {
  x->ino = r.U64();
  x->file_offset = r.U64();
  x->length = r.U64();
  x->device_offset = r.U64();
  const uint8_t shared = r.U8();
  if (shared > 1) r.Fail("shared flag is not 0 or 1");
  x->shared = shared == 1;
  x->path = r.Str("owner path");
}
void Put(Writer& w, const Piece& x) {
  w.U64(x.offset);
  w.U64(x.length);
  w.U8(x.kind);
}
void Get(Reader& r, Piece* x) {
  x->offset = r.U64();
  x->length = r.U64();
  x->kind = r.U8();
}
void Put(Writer& w, const SessionInfo& x) {
  w.U64(x.session_id);
  w.U32(static_cast<uint32_t>(x.pid));
  w.U32(x.uid);
  w.U32(x.gid);
  w.U32(x.files);
  w.U32(x.mappings);
}
void Get(Reader& r, SessionInfo* x) {
  x->session_id = r.U64();
  x->pid = static_cast<int32_t>(r.U32());
  x->uid = r.U32();
  x->gid = r.U32();
  x->files = r.U32();
  x->mappings = r.U32();
}
void Put(Writer& w, const std::string& s) { w.Str(s); }
void Get(Reader& r, std::string* s) { *s = r.Str("string"); }

constexpr size_t MinSize(const Segment*) { return kSegmentSize; }
constexpr size_t MinSize(const Range*) { return 16; }
constexpr size_t MinSize(const FileLoss*) { return 35; }
constexpr size_t MinSize(const Piece*) { return 17; }
constexpr size_t MinSize(const SessionInfo*) { return 28; }
constexpr size_t MinSize(const std::string*) { return 2; }

template <typename T>
void PutList(Writer& w, const std::vector<T>& list) {
  w.U32(static_cast<uint32_t>(list.size()));
  for (const T& x : list) Put(w, x);
}
template <typename T>
void GetList(Reader& r, const char* field, size_t max, std::vector<T>* list) {
  const uint32_t n = r.Count(field, MinSize(static_cast<const T*>(nullptr)), max);
  list->clear();
  list->reserve(n);
  for (uint32_t i = 0; i < n && !r.failed(); ++i) {
    T x;
    Get(r, &x);
    list->push_back(std::move(x));
  }
}
constexpr size_t kNoListLimit = kMaxBody;  // bounded by the body size anyway

void CheckTotal(Reader& r, uint32_t total, size_t carried) {
  if (total < carried) r.Fail("total_segments is less than the segments carried");
  if (total > kMaxSegmentsPerLayout) r.Fail("total_segments over the limit");
}

// ---- bodies
// ----------------------------------------------------------------------------------------
void Put(Writer& w, const Hello& m) {
  w.U16(m.min_version);
  w.U16(m.max_version);
  w.U32(m.client_pid);
  w.Str(m.client_name);
}
void Get(Reader& r, Hello* m) {
  m->min_version = r.U16();
  m->max_version = r.U16();
  m->client_pid = r.U32();
  m->client_name = r.Str("client_name");
  if (!r.failed() && (m->min_version == 0 || m->min_version > m->max_version)) {
    r.Fail("version range " + std::to_string(m->min_version) + ".." +
           std::to_string(m->max_version) + " is empty");
  }
}
void Put(Writer& w, const HelloReply& m) {
  w.U16(m.version);
  w.U16(m.flags);
  w.U32(m.block_size);
  w.U64(m.device_size);
  w.U32(m.server_pid);
  w.U64(m.session_id);
  w.U32(m.max_files);
  w.U32(m.max_mappings);
  w.U32(m.recall_timeout_ms);
}
void Get(Reader& r, HelloReply* m) {
  m->version = r.U16();
  m->flags = r.U16();
  m->block_size = r.U32();
  m->device_size = r.U64();
  m->server_pid = r.U32();
  m->session_id = r.U64();
  m->max_files = r.U32();
  m->max_mappings = r.U32();
  m->recall_timeout_ms = r.U32();
  if ((m->flags & ~7u) != 0) r.Fail("unknown flags");
}
void Put(Writer& w, const ErrorReply& m) {
  w.U32(m.code);
  w.Str(m.message);
}
void Get(Reader& r, ErrorReply* m) {
  m->code = r.U32();
  m->message = r.Str("message");
  if (!r.failed() && (m->code == 0 || m->code > 4095)) r.Fail("error code is not an errno");
}
void Put(Writer&, const OkReply&) {}
void Get(Reader&, OkReply*) {}
void Put(Writer& w, const Open& m) {
  w.U32(m.flags);
  w.Str(m.path);
}
void Get(Reader& r, Open* m) {
  m->flags = r.U32();
  m->path = r.Str("path");
  if ((m->flags & ~(kOpenRead | kOpenWrite)) != 0 || m->flags == 0) {
    r.Fail("open flags " + std::to_string(m->flags) + " are not read and/or write");
  }
}
void Put(Writer& w, const OpenReply& m) {
  w.U64(m.file_id);
  w.U64(m.ino);
  w.U64(m.size);
  w.U32(m.mode);
  w.U32(m.uid);
  w.U32(m.gid);
}
void Get(Reader& r, OpenReply* m) {
  m->file_id = r.U64();
  m->ino = r.U64();
  m->size = r.U64();
  m->mode = r.U32();
  m->uid = r.U32();
  m->gid = r.U32();
}
void Put(Writer& w, const Close& m) { w.U64(m.file_id); }
void Get(Reader& r, Close* m) { m->file_id = r.U64(); }
void Put(Writer& w, const Map& m) {
  w.U64(m.file_id);
  w.U64(m.offset);
  w.U64(m.length);
  w.U8(m.prot);
}
void CheckProt(Reader& r, uint8_t prot) {
  if (prot != kProtRead && prot != kProtReadWrite) {
    r.Fail("prot " + std::to_string(prot) + " is not 1 (read) or 3 (read-write)");
  }
}
void Get(Reader& r, Map* m) {
  m->file_id = r.U64();
  m->offset = r.U64();
  m->length = r.U64();
  m->prot = r.U8();
  CheckProt(r, m->prot);
}
void Put(Writer& w, const MapReply& m) {
  w.U64(m.mapping_id);
  w.U64(m.file_offset);
  w.U64(m.length);
  w.U8(m.prot);
  w.U32(m.total_segments);
  PutList(w, m.segments);
}
void Get(Reader& r, MapReply* m) {
  m->mapping_id = r.U64();
  m->file_offset = r.U64();
  m->length = r.U64();
  m->prot = r.U8();
  CheckProt(r, m->prot);
  m->total_segments = r.U32();
  GetList(r, "segments", kMaxSegmentsPerMessage, &m->segments);
  CheckTotal(r, m->total_segments, m->segments.size());
}
void Put(Writer& w, const LayoutMore& m) {
  w.U64(m.mapping_id);
  w.U64(m.sequence);
  PutList(w, m.segments);
}
void Get(Reader& r, LayoutMore* m) {
  m->mapping_id = r.U64();
  m->sequence = r.U64();
  GetList(r, "segments", kMaxSegmentsPerMessage, &m->segments);
  if (!r.failed() && m->segments.empty()) r.Fail("no segments");
}
void Put(Writer& w, const MapAck& m) {
  w.U64(m.mapping_id);
  w.U64(m.address);
}
void Get(Reader& r, MapAck* m) {
  m->mapping_id = r.U64();
  m->address = r.U64();
}
void Put(Writer& w, const Unmap& m) { w.U64(m.mapping_id); }
void Get(Reader& r, Unmap* m) { m->mapping_id = r.U64(); }
void Put(Writer& w, const LayoutRecall& m) {
  w.U64(m.mapping_id);
  w.U64(m.sequence);
  w.U64(m.file_offset);
  w.U64(m.length);
  w.U32(m.total_segments);
  PutList(w, m.segments);
}
void Get(Reader& r, LayoutRecall* m) {
  m->mapping_id = r.U64();
  m->sequence = r.U64();
  m->file_offset = r.U64();
  m->length = r.U64();
  m->total_segments = r.U32();
  GetList(r, "segments", kMaxSegmentsPerMessage, &m->segments);
  CheckTotal(r, m->total_segments, m->segments.size());
  if (!r.failed() && m->sequence == 0) r.Fail("sequence 0 (recalls count from 1)");
}
void Put(Writer& w, const RecallAck& m) {
  w.U64(m.mapping_id);
  w.U64(m.sequence);
  w.U32(m.status);
}
void Get(Reader& r, RecallAck* m) {
  m->mapping_id = r.U64();
  m->sequence = r.U64();
  m->status = r.U32();
}
void Put(Writer& w, const FailureNotice& m) {
  w.U64(m.mapping_id);
  w.U64(m.offset);
  w.U64(m.length);
  w.U64(m.file_offset);
  w.U64(m.device_offset);
  w.U32(m.flags);
}
void Get(Reader& r, FailureNotice* m) {
  m->mapping_id = r.U64();
  m->offset = r.U64();
  m->length = r.U64();
  m->file_offset = r.U64();
  m->device_offset = r.U64();
  m->flags = r.U32();
  if ((m->flags & ~7u) != 0) r.Fail("unknown notice flags");
}
void Put(Writer& w, const ReportFault& m) {
  w.U64(m.mapping_id);
  w.U64(m.offset);
  w.U32(m.signo);
  w.U32(static_cast<uint32_t>(m.code));
  w.U32(m.flags);
  w.U8(m.address_lsb);
}
void Get(Reader& r, ReportFault* m) {
  m->mapping_id = r.U64();
  m->offset = r.U64();
  m->signo = r.U32();
  m->code = static_cast<int32_t>(r.U32());
  m->flags = r.U32();
  m->address_lsb = r.U8();
  if ((m->flags & ~1u) != 0) r.Fail("unknown fault flags");
  if (m->address_lsb > 63) r.Fail("address_lsb over 63");
}
void Put(Writer& w, const InjectError& m) {
  w.U8(m.mode);
  w.U64(m.offset);
  w.U64(m.length);
  w.Str(m.path);
}
void Get(Reader& r, InjectError* m) {
  m->mode = r.U8();
  m->offset = r.U64();
  m->length = r.U64();
  m->path = r.Str("path");
  if (m->mode != kInjectDevice && m->mode != kInjectPath) r.Fail("inject mode is not 1 or 2");
  if (!r.failed() && (m->mode == kInjectPath) == m->path.empty()) {
    r.Fail("a path is given exactly when the mode is path");
  }
}
void Put(Writer& w, const InjectReply& m) {
  w.U64(m.offset);
  w.U64(m.length);
  w.U32(m.flags);
  w.U32(m.notices);
  PutList(w, m.owners);
  PutList(w, m.retired);
  PutList(w, m.actions);
  w.Str(m.message);
}
void Get(Reader& r, InjectReply* m) {
  m->offset = r.U64();
  m->length = r.U64();
  m->flags = r.U32();
  m->notices = r.U32();
  GetList(r, "owners", kNoListLimit, &m->owners);
  GetList(r, "retired", kNoListLimit, &m->retired);
  GetList(r, "actions", kNoListLimit, &m->actions);
  m->message = r.Str("message");
}
void Put(Writer&, const Errors&) {}
void Get(Reader&, Errors*) {}
void Put(Writer& w, const ErrorsReply& m) {
  PutList(w, m.lost);
  PutList(w, m.retired);
  PutList(w, m.metadata_damage);
  PutList(w, m.bad);
  w.Str(m.incomplete);
}
void Get(Reader& r, ErrorsReply* m) {
  GetList(r, "lost", kNoListLimit, &m->lost);
  GetList(r, "retired", kNoListLimit, &m->retired);
  GetList(r, "metadata_damage", kNoListLimit, &m->metadata_damage);
  GetList(r, "bad", kNoListLimit, &m->bad);
  m->incomplete = r.Str("incomplete");
}
void Put(Writer&, const StatusRequest&) {}
void Get(Reader&, StatusRequest*) {}
void Put(Writer& w, const StatusReply& m) {
  w.U32(m.server_pid);
  w.U32(m.flags);
  w.U64(m.device_size);
  w.U64(m.recalls);
  w.U64(m.cutoffs);
  w.U64(m.notices);
  PutList(w, m.sessions);
}
void Get(Reader& r, StatusReply* m) {
  m->server_pid = r.U32();
  m->flags = r.U32();
  m->device_size = r.U64();
  m->recalls = r.U64();
  m->cutoffs = r.U64();
  m->notices = r.U64();
  GetList(r, "sessions", kNoListLimit, &m->sessions);
}

void PutHeader(uint8_t* out, uint16_t version, MessageType type, uint32_t body_length,
               uint64_t request_id) {
  base::EncodeU32(out, kMagic);
  base::EncodeU16(out + 4, version);
  base::EncodeU16(out + 6, static_cast<uint16_t>(type));
  base::EncodeU16(out + 8, 0);   // flags
  base::EncodeU16(out + 10, 0);  // reserved
  base::EncodeU32(out + 12, body_length);
  base::EncodeU64(out + 16, request_id);
}

template <typename T>
Result<Body> DecodeAs(MessageType type, std::span<const uint8_t> body) {
  Reader r(type, body);
  T m;
  Get(r, &m);
  RETURN_IF_ERROR(r.Finish());
  return Body(std::move(m));
}

}  // namespace

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHello:
      return "Hello";
    case MessageType::kHelloReply:
      return "HelloReply";
    case MessageType::kError:
      return "Error";
    case MessageType::kOk:
      return "Ok";
    case MessageType::kOpen:
      return "Open";
    case MessageType::kOpenReply:
      return "OpenReply";
    case MessageType::kClose:
      return "Close";
    case MessageType::kMap:
      return "Map";
    case MessageType::kMapReply:
      return "MapReply";
    case MessageType::kLayoutMore:
      return "LayoutMore";
    case MessageType::kMapAck:
      return "MapAck";
    case MessageType::kUnmap:
      return "Unmap";
    case MessageType::kLayoutRecall:
      return "LayoutRecall";
    case MessageType::kRecallAck:
      return "RecallAck";
    case MessageType::kFailureNotice:
      return "FailureNotice";
    case MessageType::kReportFault:
      return "ReportFault";
    case MessageType::kInjectError:
      return "InjectError";
    case MessageType::kInjectReply:
      return "InjectReply";
    case MessageType::kErrors:
      return "Errors";
    case MessageType::kErrorsReply:
      return "ErrorsReply";
    case MessageType::kStatus:
      return "Status";
    case MessageType::kStatusReply:
      return "StatusReply";
  }
  return "unknown";
}

bool IsKnownType(uint16_t type) { return type >= 1 && type <= 22; }

MessageType TypeOf(const Body& body) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, body);
}

std::vector<uint8_t> Encode(const Body& body, uint64_t request_id, uint16_t version) {
  std::vector<uint8_t> out(kHeaderSize);
  Writer w(&out);
  std::visit([&](const auto& m) { Put(w, m); }, body);
  PutHeader(out.data(), version, TypeOf(body), static_cast<uint32_t>(out.size() - kHeaderSize),
            request_id);
  return out;
}

size_t EncodeReportFault(const ReportFault& m, uint8_t* out, size_t size, uint16_t version) {
  constexpr size_t kBody = 8 + 8 + 4 + 4 + 4 + 1;
  if (size < kHeaderSize + kBody) return 0;
  PutHeader(out, version, MessageType::kReportFault, kBody, 0);
  base::Encoder e(out + kHeaderSize, kBody);
  e.PutU64(m.mapping_id);
  e.PutU64(m.offset);
  e.PutU32(m.signo);
  e.PutU32(static_cast<uint32_t>(m.code));
  e.PutU32(m.flags);
  e.PutU8(m.address_lsb);
  return kHeaderSize + kBody;
}

Result<Header> DecodeHeader(std::span<const uint8_t> message) {
  if (message.size() > kMaxMessage) {
    return Status::Error(EMSGSIZE, "message of " + std::to_string(message.size()) +
                                       " bytes is larger than the limit of " +
                                       std::to_string(kMaxMessage));
  }
  base::Decoder d(message.data(), message.size());
  const uint32_t magic = d.GetU32();
  Header h;
  h.version = d.GetU16();
  const uint16_t type = d.GetU16();
  h.flags = d.GetU16();
  const uint16_t reserved = d.GetU16();
  h.body_length = d.GetU32();
  h.request_id = d.GetU64();
  h.type = static_cast<MessageType>(type);
  if (!d.ok()) {
    return Status::Error(EPROTO, "truncated message: " + std::to_string(message.size()) +
                                     " bytes, a header is " + std::to_string(kHeaderSize));
  }
  if (magic != kMagic) return Status::Error(EPROTO, "bad magic: not a daxfs protocol message");
  // A Hello is read whatever version its header claims (its body never changes), so that a
  // daemon can always answer a client it shares no version with (EPROTONOSUPPORT).
  const bool hello = h.type == MessageType::kHello && h.version >= 1;
  if (!hello && (h.version < kMinVersion || h.version > kMaxVersion)) {
    return Status::Error(EPROTO, "protocol version " + std::to_string(h.version) +
                                     " is not supported (this side speaks " +
                                     std::to_string(kMinVersion) + ".." +
                                     std::to_string(kMaxVersion) + ")");
  }
  if (h.flags != 0 || reserved != 0) {
    return Status::Error(EPROTO, "header flags or reserved bits set (none are defined)");
  }
  if (h.body_length != message.size() - kHeaderSize) {
    return Status::Error(EPROTO, "body length " + std::to_string(h.body_length) +
                                     " disagrees with the message (" +
                                     std::to_string(message.size() - kHeaderSize) + " bytes)");
  }
  return h;
}

Result<Body> DecodeBody(const Header& header, std::span<const uint8_t> body) {
  if (body.size() > kMaxBody) return Status::Error(EMSGSIZE, "body larger than the limit");
  const MessageType t = header.type;
  switch (t) {
    case MessageType::kHello:
      return DecodeAs<Hello>(t, body);
    case MessageType::kHelloReply:
      return DecodeAs<HelloReply>(t, body);
    case MessageType::kError:
      return DecodeAs<ErrorReply>(t, body);
    case MessageType::kOk:
      return DecodeAs<OkReply>(t, body);
    case MessageType::kOpen:
      return DecodeAs<Open>(t, body);
    case MessageType::kOpenReply:
      return DecodeAs<OpenReply>(t, body);
    case MessageType::kClose:
      return DecodeAs<Close>(t, body);
    case MessageType::kMap:
      return DecodeAs<Map>(t, body);
    case MessageType::kMapReply:
      return DecodeAs<MapReply>(t, body);
    case MessageType::kLayoutMore:
      return DecodeAs<LayoutMore>(t, body);
    case MessageType::kMapAck:
      return DecodeAs<MapAck>(t, body);
    case MessageType::kUnmap:
      return DecodeAs<Unmap>(t, body);
    case MessageType::kLayoutRecall:
      return DecodeAs<LayoutRecall>(t, body);
    case MessageType::kRecallAck:
      return DecodeAs<RecallAck>(t, body);
    case MessageType::kFailureNotice:
      return DecodeAs<FailureNotice>(t, body);
    case MessageType::kReportFault:
      return DecodeAs<ReportFault>(t, body);
    case MessageType::kInjectError:
      return DecodeAs<InjectError>(t, body);
    case MessageType::kInjectReply:
      return DecodeAs<InjectReply>(t, body);
    case MessageType::kErrors:
      return DecodeAs<Errors>(t, body);
    case MessageType::kErrorsReply:
      return DecodeAs<ErrorsReply>(t, body);
    case MessageType::kStatus:
      return DecodeAs<StatusRequest>(t, body);
    case MessageType::kStatusReply:
      return DecodeAs<StatusReply>(t, body);
  }
  return Status::Error(EOPNOTSUPP,
                       "unknown message type " + std::to_string(static_cast<uint16_t>(t)));
}

Result<Message> Decode(std::span<const uint8_t> message) {
  ASSIGN_OR_RETURN(Header header, DecodeHeader(message));
  ASSIGN_OR_RETURN(Body body, DecodeBody(header, message.subspan(kHeaderSize)));
  return Message{header, std::move(body)};
}

}  // namespace daxfs::proto
