/* Bare-metal run of the coap-fw device core under qemu (mps2-an386):
   verifies a real HSS-LMS-signed COSE manifest, then feeds the image block
   by block from memory, as a CoAP transfer would; then the same with one
   flipped image byte and one flipped signature byte. Prints the results,
   the peak stack of each step (stack painting) and the core's state size
   over semihosting. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "fixture.h"

int32_t coapfw_check_manifest(const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *, size_t,
                              const uint8_t *, size_t, uint32_t, uint32_t, uint32_t, int64_t, uint64_t);
int32_t coapfw_image_count(void);
uint64_t coapfw_image_size(int32_t);
int32_t coapfw_image_begin(int32_t);
int32_t coapfw_image_block(uint64_t, const uint8_t *, size_t);
int32_t coapfw_image_finish(void);
size_t coapfw_state_size(void);
int32_t coapfw_check_suit(const uint8_t *, size_t, const uint8_t *, size_t, const uint8_t *, const uint8_t *, int32_t,
                          uint64_t, uint64_t);
int32_t coapfw_suit_component_count(void);
uint64_t coapfw_suit_image_size(int32_t);
int32_t coapfw_suit_image_begin(int32_t);
int32_t coapfw_suit_image_block(uint64_t, const uint8_t *, size_t);
int32_t coapfw_suit_image_finish(void);
size_t coapfw_suit_state_size(void);
extern unsigned coapfw_heap_allocations;

#define PAINT_BYTES (32 * 1024)
#define PAINT 0xA5u

static inline uint8_t *stack_pointer(void) {
    uint8_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints the PAINT_BYTES below the current stack pointer (through a
   volatile pointer, so the compiler cannot drop the stores). */
static __attribute__((noinline)) void paint_stack(void) {
    volatile uint8_t *low = stack_pointer() - 128 - PAINT_BYTES;
    for (size_t i = 0; i < PAINT_BYTES; i++) low[i] = PAINT;
}

/* Bytes of the painted region that were written, from its low end up. */
static __attribute__((noinline)) size_t stack_used(void) {
    volatile uint8_t *low = stack_pointer() - 128 - PAINT_BYTES;
    size_t untouched = 0;
    while (untouched < PAINT_BYTES && low[untouched] == PAINT) untouched++;
    return PAINT_BYTES - untouched;
}

static uint8_t block[1024];  /* the one block buffer a CoAP transfer needs */

/* Feeds image 0 block by block through one of the core's image interfaces
   (the COSE manifest's or the SUIT envelope's), one byte flipped at flip_at. */
struct image_sink {
    int32_t (*begin)(int32_t);
    int32_t (*block)(uint64_t, const uint8_t *, size_t);
    int32_t (*finish)(void);
};

static int32_t feed_through(const struct image_sink *sink, const uint8_t *image, size_t size, size_t flip_at) {
    if (sink->begin(0) != 0) return -1;
    for (size_t offset = 0; offset < size; offset += sizeof block) {
        size_t n = size - offset < sizeof block ? size - offset : sizeof block;
        memcpy(block, image + offset, n);
        if (flip_at >= offset && flip_at < offset + n) block[flip_at - offset] ^= 1;
        if (sink->block(offset, block, n) != 0) return -1;
    }
    return sink->finish();
}

static int32_t feed_image(const uint8_t *image, size_t size, size_t flip_at) {
    static const struct image_sink cose = {coapfw_image_begin, coapfw_image_block, coapfw_image_finish};
    return feed_through(&cose, image, size, flip_at);
}

/* The device: FIXTURE_MODEL running 1.0.0 of 2023-11-14, a 1 MiB slot. */
static int32_t check_as(const uint8_t *manifest, size_t length, const char *model, uint32_t major,
                        uint32_t minor, int64_t timestamp, uint64_t slot) {
    return coapfw_check_manifest(manifest, length, trust_hss, sizeof trust_hss,
                                 (const uint8_t *)FIXTURE_MANUFACTURER, strlen(FIXTURE_MANUFACTURER),
                                 (const uint8_t *)model, strlen(model), major, minor, 0, timestamp, slot);
}

static int32_t check(const uint8_t *manifest, size_t length) {
    return check_as(manifest, length, FIXTURE_MODEL, 1, 0, 1700000000, 1 << 20);
}

/* SUIT (issue #14): the same release as a SUIT envelope, signed with the same HSS-LMS key. */
static int32_t check_suit(const uint8_t *envelope, size_t length, const uint8_t *class_id, int32_t has_installed,
                          uint64_t installed, uint64_t slot) {
    return coapfw_check_suit(envelope, length, trust_hss, sizeof trust_hss, suit_vendor_id, class_id, has_installed,
                             installed, slot);
}

static int32_t feed_suit_image(const uint8_t *image, size_t size, size_t flip_at) {
    static const struct image_sink suit = {coapfw_suit_image_begin, coapfw_suit_image_block, coapfw_suit_image_finish};
    return feed_through(&suit, image, size, flip_at);
}

static int run_suit(size_t *stack) {
    static uint8_t tampered[sizeof suit_envelope];
    printf("SUIT: state %u bytes, envelope %u bytes\n", (unsigned)coapfw_suit_state_size(), (unsigned)sizeof suit_envelope);
    paint_stack();
    int32_t result = check_suit(suit_envelope, sizeof suit_envelope, suit_class_id, 1, 1700000000, 1 << 20);
    *stack = stack_used();
    printf("SUIT envelope: result %d (0 = accepted), components %d, size %u, peak stack %u bytes\n", (int)result,
           (int)coapfw_suit_component_count(), (unsigned)coapfw_suit_image_size(0), (unsigned)*stack);
    int32_t image = feed_suit_image(image_bin, sizeof image_bin, (size_t)-1);
    int32_t flipped = feed_suit_image(image_bin, sizeof image_bin, 1000);
    printf("SUIT image: %d (0 = image-match holds); one flipped byte: %d (7 = digest mismatch)\n", (int)image, (int)flipped);

    memcpy(tampered, suit_envelope, sizeof tampered);
    tampered[200] ^= 0x01;  /* inside the authentication wrapper: the HSS signature */
    int32_t forged = check_suit(tampered, sizeof tampered, suit_class_id, 0, 0, 1 << 20);
    memcpy(tampered, suit_envelope, sizeof tampered);
    tampered[sizeof tampered - 10] ^= 0x01;  /* inside the manifest, which comes last */
    int32_t altered = check_suit(tampered, sizeof tampered, suit_class_id, 0, 0, 1 << 20);
    int32_t other = check_suit(suit_envelope, sizeof suit_envelope, suit_other_class_id, 0, 0, 1 << 20);
    int32_t same = check_suit(suit_envelope, sizeof suit_envelope, suit_class_id, 1, FIXTURE_SUIT_SEQUENCE, 1 << 20);
    int32_t older = check_suit(suit_envelope, sizeof suit_envelope, suit_class_id, 1, FIXTURE_SUIT_SEQUENCE + 1, 1 << 20);
    int32_t small = check_suit(suit_envelope, sizeof suit_envelope, suit_class_id, 0, 0, 1000);
    int32_t cut = check_suit(suit_envelope, sizeof suit_envelope - 1, suit_class_id, 0, 0, 1 << 20);
    printf("SUIT flipped signature byte: %d (2 = bad signature); flipped manifest byte: %d (7 = digest mismatch); "
           "other class id: %d (4 = wrong device); same sequence: %d (1 = up to date); installed newer: %d (5 = rollback); "
           "1000-byte slot: %d (6 = too large); truncated: %d (3 = bad manifest)\n",
           (int)forged, (int)altered, (int)other, (int)same, (int)older, (int)small, (int)cut);
    return result == 0 && image == 0 && flipped == 7 && forged == 2 && altered == 7 && other == 4 && same == 1
           && older == 5 && small == 6 && cut == 3;
}

int main(void) {
    static uint8_t tampered[sizeof manifest_cbor];
    printf("coap-fw device core on Cortex-M4 (qemu mps2-an386)\n");
    printf("state: %u bytes, block buffer: %u bytes, manifest: %u bytes\n",
           (unsigned)coapfw_state_size(), (unsigned)sizeof block, (unsigned)sizeof manifest_cbor);

    paint_stack();
    int32_t result = check(manifest_cbor, sizeof manifest_cbor);
    size_t verify_stack = stack_used();
    printf("manifest: result %d (0 = accepted), images %d, size %u, peak stack %u bytes\n",
           (int)result, (int)coapfw_image_count(), (unsigned)coapfw_image_size(0), (unsigned)verify_stack);

    paint_stack();
    int32_t image = feed_image(image_bin, sizeof image_bin, (size_t)-1);
    size_t image_stack = stack_used();
    printf("image: result %d (0 = digests match), peak stack %u bytes\n", (int)image, (unsigned)image_stack);

    int32_t flipped = feed_image(image_bin, sizeof image_bin, sizeof image_bin / 2);
    printf("image with one flipped byte: result %d (7 = digest mismatch)\n", (int)flipped);

    memcpy(tampered, manifest_cbor, sizeof tampered);
    tampered[sizeof tampered - 100] ^= 0x01;  /* inside the HSS signature */
    int32_t forged = check(tampered, sizeof tampered);
    printf("manifest with one flipped signature byte: result %d (2 = bad signature)\n", (int)forged);

    /* The release is 1.1.0: the policy's other outcomes, in the draft's order. */
    int32_t same = check_as(manifest_cbor, sizeof manifest_cbor, FIXTURE_MODEL, 1, 1, 1700000000, 1 << 20);
    int32_t other = check_as(manifest_cbor, sizeof manifest_cbor, "other-board", 1, 0, 1700000000, 1 << 20);
    int32_t older = check_as(manifest_cbor, sizeof manifest_cbor, FIXTURE_MODEL, 2, 0, 1700000000, 1 << 20);
    int32_t small = check_as(manifest_cbor, sizeof manifest_cbor, FIXTURE_MODEL, 1, 0, 1700000000, 1000);
    int32_t cut = check(manifest_cbor, sizeof manifest_cbor - 1);
    printf("installed 1.1.0: %d (1 = up to date); other model: %d (4 = wrong device); installed 2.0.0: %d (5 = rollback); "
           "1000-byte slot: %d (6 = too large); truncated: %d (3 = bad manifest)\n",
           (int)same, (int)other, (int)older, (int)small, (int)cut);

    size_t suit_stack = 0;
    int suit_ok = run_suit(&suit_stack);

    printf("heap allocations by the core: %u\n", coapfw_heap_allocations);
    int ok = suit_ok && result == 0 && image == 0 && flipped == 7 && forged == 2 && same == 1 && other == 4 && older == 5
             && small == 6 && cut == 3 && coapfw_heap_allocations == 0;
    printf("%s\n", ok ? "DEVICE-CORE-OK" : "DEVICE-CORE-FAILED");
    return ok ? 0 : 1;
}
