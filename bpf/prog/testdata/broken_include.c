// A missing header: line 2, column 10.
#include "no_such_header.h"
