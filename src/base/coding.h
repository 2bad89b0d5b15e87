// Little-endian fixed-width encoding and a bounds-checked decoder for on-media structures.
// Pure byte manipulation: knows nothing about devices, blocks or trees.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace daxfs::base {

static_assert(std::endian::native == std::endian::little,
              "daxfs encodes little-endian with memcpy; add byte swaps before porting to big-endian");

inline void EncodeU16(uint8_t* dst, uint16_t v) { std::memcpy(dst, &v, sizeof v); }
inline void EncodeU32(uint8_t* dst, uint32_t v) { std::memcpy(dst, &v, sizeof v); }
inline void EncodeU64(uint8_t* dst, uint64_t v) { std::memcpy(dst, &v, sizeof v); }
inline uint16_t DecodeU16(const uint8_t* src) {
  uint16_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}
inline uint32_t DecodeU32(const uint8_t* src) {
  uint32_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}
inline uint64_t DecodeU64(const uint8_t* src) {
  uint64_t v;
  std::memcpy(&v, src, sizeof v);
  return v;
}

// Writes fields one after another into a fixed buffer. Writing past the end is a programming
// error: ok() turns false and nothing more is written.
class Encoder {
 public:
  Encoder(uint8_t* data, size_t size) : data_(data), size_(size) {}
  void PutU8(uint8_t v) { Put(&v, 1); }
  void PutU16(uint16_t v) { Put(&v, 2); }
  void PutU32(uint32_t v) { Put(&v, 4); }
  void PutU64(uint64_t v) { Put(&v, 8); }
  void PutBytes(const void* p, size_t n) { Put(p, n); }
  void Skip(size_t n) {
    if (!Room(n)) return;
    std::memset(data_ + pos_, 0, n);
    pos_ += n;
  }
  size_t pos() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  bool Room(size_t n) {
    if (!ok_ || n > size_ - pos_) ok_ = false;
    return ok_;
  }
  void Put(const void* p, size_t n) {
    if (!Room(n)) return;
    std::memcpy(data_ + pos_, p, n);
    pos_ += n;
  }
  uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
};

// Reads fields one after another; a read past the end returns zeros and turns ok() false,
// so a decoder checks ok() once at the end instead of after every field.
class Decoder {
 public:
  Decoder(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t GetU8() { return Get<uint8_t>(); }
  uint16_t GetU16() { return Get<uint16_t>(); }
  uint32_t GetU32() { return Get<uint32_t>(); }
  uint64_t GetU64() { return Get<uint64_t>(); }
  void GetBytes(void* out, size_t n) {
    if (!Room(n)) {
      std::memset(out, 0, n);
      return;
    }
    std::memcpy(out, data_ + pos_, n);
    pos_ += n;
  }
  void Skip(size_t n) {
    if (Room(n)) pos_ += n;
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  bool ok() const { return ok_; }

 private:
  bool Room(size_t n) {
    if (!ok_ || n > size_ - pos_) ok_ = false;
    return ok_;
  }
  template <typename T>
  T Get() {
    T v{};
    if (!Room(sizeof v)) return T{};
    std::memcpy(&v, data_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace daxfs::base
