#ifndef CIsal_SHIM_H
#define CIsal_SHIM_H
#include <isa-l/igzip_lib.h>
#endif
