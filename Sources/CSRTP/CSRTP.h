#pragma once
// libsrtp2 is built by scripts/bootstrap into .deps/ as a static archive against OpenSSL;
// its one public header includes nothing but <stdint.h>, so a relative include suffices.
#include "../../.deps/include/srtp2/srtp.h"
