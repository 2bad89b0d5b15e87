// Layering probe (control): the filesystem layer including its own headers and the layers below
// it. Must compile, so that the negative probes fail for the reason they name.
#include "btree/btree.h"
#include "fs/fs_impl.h"
#include "txn/pool.h"
