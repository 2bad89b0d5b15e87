// PLACEHOLDER: address directory (issue 5, signals work).
#include "dax/address_directory.h"
