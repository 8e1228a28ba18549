/* Host-side driver for the generated model (compiled beside it into a shared library for ctypes): every image
 * with every rand in one call, so that Python's per-call cost does not hide the comparison. */
#include <stdint.h>

int digitsum_run(const int8_t *image, int32_t rand, int8_t *digit_logits, int8_t *sum_logits);
void digitsum_quantize_image(const uint8_t *pixels, int8_t *image);

/* pixels (n, 784) uint8 -> digits (n, rands, nd) and sums (n, rands, ns) int8; 0, or the first failing call's
 * status */
int ds_host_batch(const uint8_t *pixels, int n, int pixels_per_image, int rands, int8_t *digits, int8_t *sums,
                  int nd, int ns) {
    int8_t image[4096];
    int i, r, status;
    if (pixels_per_image > (int)sizeof image) return -2;
    for (i = 0; i < n; i++) {
        digitsum_quantize_image(pixels + (long)i * pixels_per_image, image);
        for (r = 0; r < rands; r++) {
            long row = (long)i * rands + r;
            status = digitsum_run(image, r, digits + row * nd, sums + row * ns);
            if (status != 0) return status;
        }
    }
    return 0;
}
