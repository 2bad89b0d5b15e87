// PLACEHOLDER: the mapping table (issue 5, DAX work).
#include "dax/mapping_table.h"
