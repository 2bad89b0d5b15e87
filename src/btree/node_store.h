// The interface through which the B+tree reads, allocates and releases 4 KiB nodes.
// Implemented by the transaction layer (and by an in-memory fake in tests); the tree itself
// knows nothing about transactions, superblocks or devices.
#pragma once

#include <cstdint>

#include "daxfs/status.h"

namespace daxfs::btree {

class NodeStore {
 public:
  virtual ~NodeStore() = default;

  // A read-only pointer to node `blockno`, verified (magic, checksum, type, own number) unless
  // it is fresh. Errors: EUCLEAN naming the block; EINVAL for a number outside metadata space.
  virtual Result<const uint8_t*> Read(uint64_t blockno) = 0;

  // True if `blockno` was allocated by the current write transaction: it is reachable from no
  // committed root, so it may be changed in place.
  virtual bool IsFresh(uint64_t blockno) const = 0;

  // Allocates a node for the current write transaction and returns its number; its memory is
  // then reachable through Writable(). ENOSPC when metadata space is exhausted, EROFS when the
  // store is read-only or this is a read transaction.
  virtual Result<uint64_t> Allocate() = 0;

  // A writable pointer to a fresh node (REQUIRES: IsFresh(blockno)).
  virtual uint8_t* Writable(uint64_t blockno) = 0;

  // `blockno` is no longer reachable from the tree being built. A fresh node is free again at
  // once; a committed one becomes reusable only when the transaction is durable and no reader
  // holds a root that reaches it.
  virtual void Release(uint64_t blockno) = 0;

  // The generation stamped into the header of nodes written now.
  virtual uint64_t generation() const = 0;
};

}  // namespace daxfs::btree
