#ifndef CFIRMWARE_SHIMS_H
#define CFIRMWARE_SHIMS_H
/* What Swift cannot do safely itself; every function says why it is C. */
#include <stddef.h>

/* A SIGBUS handler must be async-signal-safe, which Swift code is not
   guaranteed to be: installs one that maps a zero page over a registered
   file mapping whose file was truncated under it, so the process lives on. */
int cfw_sigbus_guard_install(void);

/* Registers a mapping [base, base+length) for the guard; 0, or -1 when full. */
int cfw_sigbus_guard_add(const void *base, size_t length);

/* Forgets a mapping before it is unmapped. */
void cfw_sigbus_guard_remove(const void *base);

/* Pages the guard has replaced with zeros so far. */
unsigned long cfw_sigbus_guard_hits(void);

#endif
