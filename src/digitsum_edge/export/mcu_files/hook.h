/* Included before digitsum_model.c in the per-layer build: DIGITSUM_LAYER_HOOK(name) -> the harness's timer */
void ds_harness_mark(const char *name);
#define DIGITSUM_LAYER_HOOK(name) ds_harness_mark(name)
