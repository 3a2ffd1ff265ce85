/* The SIGBUS guard of cfirmware_shims.h. A served image is mmap'ed; a file
   truncated in place (`cp new.bin served.bin`) makes every access past its
   new end raise SIGBUS, which would kill the whole server. The handler maps
   an anonymous zero page over the faulting page of a registered mapping and
   returns, so the access is retried and reads zeros: that transfer's bytes
   then fail their digests at the client. Faults elsewhere go to the handler
   that was installed before (the Swift runtime's), as if we were not here. */
#define _GNU_SOURCE
#include "cfirmware_shims.h"
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 4096

/* A slot is FREE, CLAIMED (being written or cleared by add/remove) or
   PUBLISHED (base and length valid, read by the handler). Only the thread
   that moved a slot to CLAIMED writes its base and length. */
enum { FREE = 0, CLAIMED = 1, PUBLISHED = 2 };
static _Atomic int slot_state[SLOTS];
static uintptr_t slot_base[SLOTS];
static size_t slot_length[SLOTS];
static _Atomic unsigned long hits;
static struct sigaction previous;
static uintptr_t page_size = 4096;
static atomic_flag installed = ATOMIC_FLAG_INIT;

static void on_sigbus(int signal_number, siginfo_t *info, void *context) {
    int saved_errno = errno;
    uintptr_t address = (uintptr_t)info->si_addr;
    for (int i = 0; i < SLOTS; i++) {
        if (atomic_load_explicit(&slot_state[i], memory_order_acquire) != PUBLISHED) continue;
        uintptr_t base = slot_base[i];
        size_t length = slot_length[i];
        if (address < base || address >= base + length) continue;
        void *page = (void *)(address & ~(page_size - 1));
        if (mmap(page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            atomic_fetch_add(&hits, 1);
            errno = saved_errno;
            return;
        }
        break;
    }
    errno = saved_errno;
    /* Not one of ours: hand it on. */
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) { previous.sa_sigaction(signal_number, info, context); return; }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(signal_number);
        return;
    }
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &fallback, NULL);  /* the retried access now ends the process as it would have */
}

int cfw_sigbus_guard_install(void) {
    if (atomic_flag_test_and_set(&installed)) return 0;
    long size = sysconf(_SC_PAGESIZE);
    if (size > 0) page_size = (uintptr_t)size;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGBUS, &action, &previous);
}

int cfw_sigbus_guard_add(const void *base, size_t length) {
    for (int i = 0; i < SLOTS; i++) {
        int expected = FREE;
        if (!atomic_compare_exchange_strong(&slot_state[i], &expected, CLAIMED)) continue;
        slot_base[i] = (uintptr_t)base;
        slot_length[i] = length;
        atomic_store_explicit(&slot_state[i], PUBLISHED, memory_order_release);
        return 0;
    }
    return -1;
}

void cfw_sigbus_guard_remove(const void *base) {
    for (int i = 0; i < SLOTS; i++) {
        int expected = PUBLISHED;
        if (atomic_load_explicit(&slot_state[i], memory_order_acquire) != PUBLISHED || slot_base[i] != (uintptr_t)base) continue;
        if (!atomic_compare_exchange_strong(&slot_state[i], &expected, CLAIMED)) continue;
        slot_base[i] = 0;
        slot_length[i] = 0;
        atomic_store_explicit(&slot_state[i], FREE, memory_order_release);
    }
}

unsigned long cfw_sigbus_guard_hits(void) { return atomic_load(&hits); }
