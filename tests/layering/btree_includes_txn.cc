// Layering probe: the B+tree including the transaction layer above it. Must not compile.
#include "txn/pool.h"
