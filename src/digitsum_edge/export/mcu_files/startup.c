/* Bare-metal start for the QEMU boards the C model is checked on (Cortex-M4/M7/M55): the vector table, .data
 * copied and .bss zeroed, the stack painted (so that the harness can measure its peak), the coprocessors enabled
 * (M55: MVE), main(), and an exit through semihosting. No C library. */
#include <stdint.h>
#include <stddef.h>

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_bottom[], __stack_top[];
int main(void);
void ds_exit(int status);

#define STACK_PAINT 0xA5A5A5A5u

void *memcpy(void *dst, const void *src, size_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int value, size_t n) {
    uint8_t *d = dst;
    while (n--) *d++ = (uint8_t)value;
    return dst;
}

void Reset_Handler(void) {
    uint32_t *p, *sp;
    for (p = __data_start; p < __data_end; p++) *p = __data_load[p - __data_start];
    for (p = __bss_start; p < __bss_end; p++) *p = 0;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = __stack_bottom; p < sp - 16; p++) *p = STACK_PAINT;
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10/CP11 (FPU, MVE) */
    __asm__ volatile("dsb\n isb");
    ds_exit(main());
}

/* bytes of the stack ever written: from the top down to the lowest word that lost its paint */
uint32_t ds_stack_peak(void) {
    const uint32_t *p = __stack_bottom;
    while (p < __stack_top && *p == STACK_PAINT) p++;
    return (uint32_t)((const uint8_t *)__stack_top - (const uint8_t *)p);
}

static void fault(void) { ds_exit(3); }

__attribute__((section(".vectors"), used)) void (*const ds_vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top, Reset_Handler, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault,
    fault, 0, fault, fault,
};
