// Refcount maintenance (issue 4): placeholder, filled by the reflink work.
#include "fs/fs_impl.h"
