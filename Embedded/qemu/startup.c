/* Reset vector for the emulated Cortex-M4: the table qemu reads at 0, then
   newlib's rdimon start-up (semihosting I/O, bss clearing, main). */
extern void _start(void);
extern unsigned int _stack_top;

void reset_handler(void) { _start(); for (;;) {} }
static void fault_handler(void) { for (;;) {} }

__attribute__((section(".vectors"), used))
const void *vectors[16] = {
    &_stack_top, reset_handler, fault_handler, fault_handler, fault_handler, fault_handler, fault_handler,
};

/* No C++ constructors here: newlib's init/fini hooks are empty. */
void _init(void) {}
void _fini(void) {}

/* Embedded Swift's allocator entry point. Counted, so the run proves the
   device path allocates nothing. */
#include <malloc.h>
#include <stddef.h>
unsigned coapfw_heap_allocations;
int posix_memalign(void **out, size_t alignment, size_t size) {
    coapfw_heap_allocations++;
    *out = memalign(alignment < sizeof(void *) ? sizeof(void *) : alignment, size);
    return *out ? 0 : 12;
}
