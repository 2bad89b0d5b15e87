// A std allocator that adds what its containers hold on the heap to a shared counter, so a
// tracking design can report its memory honestly. Knows nothing of tracking itself.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace daxfs::tracking {

// Heap bytes one allocation of `n` bytes really costs with glibc malloc: the 8-byte chunk
// header, rounding to 16, and the 32-byte minimum chunk.
constexpr uint64_t MallocChunkBytes(size_t n) {
  uint64_t chunk = (static_cast<uint64_t>(n) + 8 + 15) & ~uint64_t{15};
  return chunk < 32 ? 32 : chunk;
}

template <typename T>
class CountingAllocator {
 public:
  using value_type = T;

  explicit CountingAllocator(std::atomic<uint64_t>* bytes) : bytes_(bytes) {}
  template <typename U>
  CountingAllocator(const CountingAllocator<U>& other) : bytes_(other.bytes()) {}  // NOLINT

  T* allocate(size_t n) {
    bytes_->fetch_add(MallocChunkBytes(n * sizeof(T)), std::memory_order_relaxed);
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) {
    bytes_->fetch_sub(MallocChunkBytes(n * sizeof(T)), std::memory_order_relaxed);
    std::allocator<T>().deallocate(p, n);
  }

  std::atomic<uint64_t>* bytes() const { return bytes_; }
  template <typename U>
  bool operator==(const CountingAllocator<U>& other) const {
    return bytes_ == other.bytes();
  }

 private:
  std::atomic<uint64_t>* bytes_;
};

}  // namespace daxfs::tracking
