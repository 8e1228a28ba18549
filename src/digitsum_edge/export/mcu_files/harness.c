/* Runs the generated model on the QEMU board: images from the host over semihosting, both heads' int8 logits
 * back, with the instructions each call executed (QEMU -icount shift=0: one instruction per nanosecond of
 * virtual time, read from SysTick) and the stack's peak.
 *   images.bin   int32 count, then count x 784 uint8 pixels; image i runs with rand i % 10
 *   outputs.bin  per image: digit logits, sum logits (int8), then uint32 SysTick ticks of the call
 *   stats.txt    calibration, ticks per step of the first image (DIGITSUM_LAYER_HOOK builds), stack peak */
#include <stdint.h>
#include "digitsum_model.h"

uint32_t ds_stack_peak(void);

static int semihost(int op, const void *args) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = args;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void ds_exit(int status) {
    semihost(0x18, (const void *)(uintptr_t)(status == 0 ? 0x20026 : 0x20023)); /* SYS_EXIT */
    for (;;) {}
}

static int length(const char *s) { int n = 0; while (s[n]) n++; return n; }
static int open_file(const char *name, int mode) { const uint32_t a[3] = {(uint32_t)name, (uint32_t)mode, (uint32_t)length(name)}; return semihost(0x01, a); }
static int read_file(int h, void *buf, int n) { const uint32_t a[3] = {(uint32_t)h, (uint32_t)buf, (uint32_t)n}; return semihost(0x06, a); }
static void write_file(int h, const void *buf, int n) { const uint32_t a[3] = {(uint32_t)h, (uint32_t)buf, (uint32_t)n}; semihost(0x05, a); }

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
static uint32_t ticks_since(uint32_t start) { return (start - SYST_CVR) & 0xFFFFFFu; } /* a 24-bit down-counter */

#define MAX_STEPS 64
#define CALIBRATION_LOOPS 1000000u
static const char *step_names[MAX_STEPS];
static uint32_t step_ticks[MAX_STEPS], step_start;
static int steps, timing_steps;

void ds_harness_mark(const char *name) { /* DIGITSUM_LAYER_HOOK in the per-layer build */
    if (timing_steps && steps < MAX_STEPS) {
        step_ticks[steps] = ticks_since(step_start);
        step_names[steps++] = name;
        step_start = SYST_CVR;
    }
}

static char line[96];
static int put_number(char *p, uint32_t v) { char d[12]; int n = 0, k = 0; do { d[n++] = (char)('0' + v % 10); v /= 10; } while (v); while (n) p[k++] = d[--n]; return k; }
static void stat_line(int h, const char *key, const char *name, uint32_t value) {
    int n = 0;
    while (*key) line[n++] = *key++;
    line[n++] = ' ';
    while (name && *name && n < 80) line[n++] = *name++;
    if (name) line[n++] = ' ';
    n += put_number(line + n, value);
    line[n++] = '\n';
    write_file(h, line, n);
}

static uint8_t pixels[DIGITSUM_IMAGE_BYTES];
static int8_t image[DIGITSUM_IMAGE_BYTES];
static uint8_t record[DIGITSUM_NUM_DIGITS + DIGITSUM_NUM_SUMS + 4];

int main(void) {
    int32_t count, i, k;
    uint32_t start, ticks, spin = CALIBRATION_LOOPS;
    const int in = open_file("images.bin", 1), out = open_file("outputs.bin", 5), stats = open_file("stats.txt", 4);
    if (in < 0 || out < 0 || stats < 0 || read_file(in, &count, 4) != 0) return 1;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enabled, CPU clock, no interrupt */
    start = SYST_CVR; /* calibration: exactly 2 instructions per turn */
    __asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(spin));
    stat_line(stats, "calibration_instructions", 0, 2 * CALIBRATION_LOOPS);
    stat_line(stats, "calibration_ticks", 0, ticks_since(start));
    for (i = 0; i < count; i++) {
        if (read_file(in, pixels, DIGITSUM_IMAGE_BYTES) != 0) return 1;
        digitsum_quantize_image(pixels, image);
        timing_steps = i == 0;
        start = step_start = SYST_CVR;
        if (digitsum_run(image, i % DIGITSUM_NUM_RAND, (int8_t *)record, (int8_t *)record + DIGITSUM_NUM_DIGITS) != 0)
            return 1;
        ticks = ticks_since(start);
        for (k = 0; k < 4; k++) record[DIGITSUM_NUM_DIGITS + DIGITSUM_NUM_SUMS + k] = (uint8_t)(ticks >> (8 * k));
        write_file(out, record, sizeof record);
    }
    for (k = 0; k < steps; k++) stat_line(stats, "step", step_names[k], step_ticks[k]);
    stat_line(stats, "stack_peak_bytes", 0, ds_stack_peak());
    return 0;
}
