// PLACEHOLDER: SIGBUS source (issue 5, signals work).
#include "failure/signals.h"
