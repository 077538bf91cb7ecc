#ifndef CXCrypt_SHIM_H
#define CXCrypt_SHIM_H
/* libxcrypt: crypt_r understands bcrypt ($2y$, $2b$, $2a$) for htpasswd files. */
#include <crypt.h>
#endif
