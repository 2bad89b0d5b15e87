// PLACEHOLDER: the fs-rmap design (issue 5, DAX work).
#include "dax/fs_rmap_tracker.h"
