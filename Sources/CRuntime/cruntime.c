#include "cruntime.h"
int cruntime_version(void) { return 1; }
