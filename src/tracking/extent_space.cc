// PLACEHOLDER: extent-space design (issue 5, tracking work).
#include "tracking/trackers.h"
