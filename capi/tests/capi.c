/* The C API from C: forward, masks, regeneration from the key, evaluation
 * identity, the structured and fused forms, and the error codes (with
 * nothing written on error). Built and run by .ci/run, against the static
 * and the shared library; prints one line per check and exits non-zero on
 * the first failure. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitdrop.h"

#define N 1000
#define WORDS BITDROP_MASK_WORDS(N)

static int checks;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define OK(call)                                                             \
    do {                                                                     \
        BitdropStatus s_ = (call);                                           \
        CHECK(s_ == BITDROP_STATUS_OK, "%s: %s", #call,                      \
              bitdrop_status_message((int)s_));                              \
    } while (0)

static int kept(const uint64_t *mask, size_t i) {
    return (int)((mask[i / 64] >> (i % 64)) & 1u);
}

static void fill(float *xs, size_t n) {
    for (size_t i = 0; i < n; i++) xs[i] = (float)i * 0.25f - 100.0f;
}

static void forward_and_mask(void) {
    const float p = 0.3f, scale = bitdrop_scale(p);
    const BitdropKey key = {.seed = 42, .offset = 7};
    float xs[N], ys[N];
    uint64_t mask[WORDS], filled[WORDS];
    fill(xs, N);
    memcpy(ys, xs, sizeof xs);

    CHECK(bitdrop_mask_words(N) == WORDS, "mask words");
    CHECK(scale == (float)(1.0 / (1.0 - (double)p)), "scale");
    OK(bitdrop_forward_with_mask(BITDROP_F32, p, BITDROP_TRAIN, NULL, key, ys, N, mask, WORDS));
    size_t kept_count = 0;
    for (size_t i = 0; i < N; i++) {
        float want = kept(mask, i) ? xs[i] * scale : 0.0f;
        CHECK(ys[i] == want && !signbit(ys[i]) == !signbit(want), "element %zu", i);
        kept_count += (size_t)kept(mask, i);
    }
    /* 700 expected, sd 14.5: 7 sd either way. */
    CHECK(kept_count > 600 && kept_count < 800, "kept %zu of %d", kept_count, N);
    printf("forward: %zu of %d kept at p = %.1f, kept elements scaled by %.9g\n",
           kept_count, N, (double)p, (double)scale);

    OK(bitdrop_fill_mask(p, BITDROP_TRAIN, NULL, key, N, filled, WORDS));
    CHECK(memcmp(mask, filled, sizeof mask) == 0, "fill_mask = forward's mask");

    float zs[N];
    OK(bitdrop_forward_to(BITDROP_F32, p, BITDROP_TRAIN, NULL, key, xs, N, zs, N));
    CHECK(memcmp(zs, ys, sizeof ys) == 0, "forward_to = forward");
    OK(bitdrop_apply_mask_to(BITDROP_F32, p, BITDROP_TRAIN, NULL, xs, N, zs, N, mask, WORDS));
    CHECK(memcmp(zs, ys, sizeof ys) == 0, "apply_mask_to = forward");
    printf("mask: fill_mask, forward_to and apply_mask_to agree with forward\n");
}

static void regeneration(void) {
    const float p = 0.5f;
    const BitdropKey key = {.seed = 9, .offset = 0};
    float whole[N], parts[N], grad[N];
    fill(whole, N);
    fill(parts, N);
    for (size_t i = 0; i < N; i++) grad[i] = 1.0f;

    OK(bitdrop_forward(BITDROP_F32, p, BITDROP_TRAIN, NULL, key, whole, N));
    /* The same mask in two shards, the second first. */
    const BitdropKey tail = {.seed = 9, .offset = 300};
    OK(bitdrop_forward(BITDROP_F32, p, BITDROP_TRAIN, NULL, tail, parts + 300, N - 300));
    OK(bitdrop_forward(BITDROP_F32, p, BITDROP_TRAIN, NULL, key, parts, 300));
    CHECK(memcmp(whole, parts, sizeof whole) == 0, "shards = whole");

    uint64_t mask[WORDS];
    float xs[N];
    fill(xs, N);
    OK(bitdrop_fill_mask(p, BITDROP_TRAIN, NULL, key, N, mask, WORDS));
    OK(bitdrop_backward(BITDROP_F32, p, BITDROP_TRAIN, NULL, key, grad, N));
    for (size_t i = 0; i < N; i++) {
        CHECK(whole[i] == (kept(mask, i) ? xs[i] * 2.0f : 0.0f), "forward %zu", i);
        CHECK(grad[i] == (kept(mask, i) ? 2.0f : 0.0f), "gradient %zu", i);
    }
    printf("regeneration: two shards equal the whole call; backward drops what forward dropped\n");

    /* Types share the mask. */
    uint16_t half_bits[N];
    uint64_t m32[WORDS], m16[WORDS];
    float ones[N];
    for (size_t i = 0; i < N; i++) ones[i] = 1.0f, half_bits[i] = 0x3F80; /* bf16 1.0 */
    OK(bitdrop_forward_with_mask(BITDROP_F32, p, BITDROP_TRAIN, NULL, key, ones, N, m32, WORDS));
    OK(bitdrop_forward_with_mask(BITDROP_BF16, p, BITDROP_TRAIN, NULL, key, half_bits, N, m16, WORDS));
    CHECK(memcmp(m32, m16, sizeof m32) == 0, "bf16 mask = f32 mask");
    for (size_t i = 0; i < N; i++) {
        CHECK(half_bits[i] == (kept(m16, i) ? 0x4000 : 0x0000), "bf16 element %zu", i); /* 2.0 or +0 */
    }
    printf("types: bf16 draws the f32 mask; kept 1.0 becomes 2.0 (0x4000)\n");
}

static void eval_identity(void) {
    const BitdropKey key = {.seed = 1, .offset = 0};
    float xs[N], ys[N];
    fill(xs, N);
    xs[3] = -0.0f;
    xs[4] = NAN;
    memcpy(ys, xs, sizeof xs);
    uint64_t mask[WORDS];
    OK(bitdrop_forward_with_mask(BITDROP_F32, 0.9f, BITDROP_EVAL, NULL, key, ys, N, mask, WORDS));
    CHECK(memcmp(xs, ys, sizeof xs) == 0, "eval is the identity, bit for bit");
    for (size_t i = 0; i < N; i++) CHECK(kept(mask, i), "eval mask keeps %zu", i);
    printf("eval: output equals input bit for bit (-0 and NaN too); the mask keeps all\n");
}

static void structured_and_fused(void) {
    /* Channel dropout of [2, 10, 50]: each (n, c) run of 50 is dropped or kept whole. */
    const BitdropUnits channels = {.outer = 1, .shared = 1, .inner = 20, .run = 50};
    const BitdropKey key = {.seed = 5, .offset = 0};
    float xs[N];
    for (size_t i = 0; i < N; i++) xs[i] = 1.0f;
    uint64_t mask[1];
    OK(bitdrop_forward_with_mask(BITDROP_F32, 0.5f, BITDROP_TRAIN, &channels, key, xs, N, mask, 1));
    for (size_t i = 0; i < N; i++) CHECK(xs[i] == (kept(mask, i / 50) ? 2.0f : 0.0f), "channel %zu", i);
    printf("structured: 20 channels of 50, mask word %#llx\n", (unsigned long long)mask[0]);

    /* out = residual + dropout(x + bias), in place on the residual. */
    float x[N], r[N], bias[10], want[N];
    uint64_t m[WORDS];
    for (size_t i = 0; i < N; i++) x[i] = 1.0f, r[i] = 10.0f;
    for (size_t i = 0; i < 10; i++) bias[i] = (float)i;
    OK(bitdrop_fill_mask(0.2f, BITDROP_TRAIN, NULL, key, N, m, WORDS));
    for (size_t i = 0; i < N; i++) want[i] = r[i] + (kept(m, i) ? (x[i] + bias[i % 10]) * bitdrop_scale(0.2f) : 0.0f);
    OK(bitdrop_residual_add(BITDROP_F32, 0.2f, BITDROP_TRAIN, NULL, key, x, r, r, N, bias, 10));
    CHECK(memcmp(r, want, sizeof r) == 0, "fused residual add");
    printf("fused: residual + dropout(x + bias) in place equals the mask applied by hand\n");
}

static void errors(void) {
    const BitdropKey key = {.seed = 3, .offset = 0};
    _Alignas(uint64_t) float xs[64]; /* also viewed as mask words below */
    float before[64], out[64];
    uint64_t mask[2] = {0, 0};
    fill(xs, 64);
    memcpy(before, xs, sizeof xs);
    memset(out, 0x55, sizeof out);

    struct {
        const char *what;
        BitdropStatus got, want;
    } cases[] = {
        {"null data", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, NULL, 64), BITDROP_STATUS_NULL_POINTER},
        {"null with length 0 is empty", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, NULL, 0), BITDROP_STATUS_OK},
        {"misaligned float", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, (char *)xs + 1, 8), BITDROP_STATUS_MISALIGNED},
        {"overlapping out", bitdrop_forward_to(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, 32, xs + 16, 32), BITDROP_STATUS_OVERLAP},
        {"mask over data", bitdrop_forward_with_mask(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, 64, (uint64_t *)xs, 1), BITDROP_STATUS_OVERLAP},
        {"too long", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, (size_t)-1 / 2), BITDROP_STATUS_TOO_LONG},
        {"mode 7", bitdrop_forward(BITDROP_F32, 0.5f, 7, NULL, key, xs, 64), BITDROP_STATUS_INVALID_MODE},
        {"dtype 9", bitdrop_forward(9, 0.5f, BITDROP_TRAIN, NULL, key, xs, 64), BITDROP_STATUS_INVALID_DTYPE},
        {"p = 1.5", bitdrop_forward(BITDROP_F32, 1.5f, BITDROP_TRAIN, NULL, key, xs, 64), BITDROP_STATUS_INVALID_PROBABILITY},
        {"p = NaN", bitdrop_forward(BITDROP_F32, NAN, BITDROP_TRAIN, NULL, key, xs, 64), BITDROP_STATUS_INVALID_PROBABILITY},
        {"out too short", bitdrop_forward_to(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, 64, out, 63), BITDROP_STATUS_LENGTH_MISMATCH},
        {"mask too short", bitdrop_forward_with_mask(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, 64, mask, 0), BITDROP_STATUS_MASK_TOO_SHORT},
        {"units of 60 elements", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, &(BitdropUnits){1, 1, 6, 10}, key, xs, 64), BITDROP_STATUS_SHAPE_MISMATCH},
        {"units overflow", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, &(BitdropUnits){(size_t)-1, 2, 1, 1}, key, xs, 64), BITDROP_STATUS_INVALID_SHAPE},
        {"bias of 5", bitdrop_residual_add(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, xs, out, 64, xs, 5), BITDROP_STATUS_BIAS_MISMATCH},
        {"bias over out", bitdrop_residual_add(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, xs, out, 64, out + 8, 8), BITDROP_STATUS_OVERLAP},
        {"out = x = residual", bitdrop_residual_add(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, key, xs, xs, xs, 64, NULL, 0), BITDROP_STATUS_OVERLAP},
        {"unit count overflows", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, &(BitdropUnits){(size_t)-1, 0, 2, 1}, key, NULL, 0), BITDROP_STATUS_INVALID_SHAPE},
        {"past the stream", bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, NULL, (BitdropKey){3, UINT64_MAX - 10}, xs, 64), BITDROP_STATUS_POSITION_OVERFLOW},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(cases[i].got == cases[i].want, "%s: got %d (%s), want %d", cases[i].what, (int)cases[i].got,
              bitdrop_status_message((int)cases[i].got), (int)cases[i].want);
        printf("error: %-28s -> %2d %s\n", cases[i].what, (int)cases[i].got, bitdrop_status_message((int)cases[i].got));
    }
    CHECK(memcmp(xs, before, sizeof xs) == 0, "nothing written on error");
    for (size_t i = 0; i < 64; i++) CHECK(memcmp(&out[i], &(uint32_t){0x55555555}, 4) == 0, "out untouched");
    CHECK(mask[0] == 0 && mask[1] == 0, "mask untouched");
    CHECK(strcmp(bitdrop_status_message(99), "unknown status") == 0, "unknown status");
    printf("errors: nothing written by any failed call\n");
}

/* Units without elements (a zero shared axis): nothing to decide, so the
 * call returns at once, even for 2^40 units; with a mask, they are decided. */
static void units_without_elements(void) {
    const BitdropUnits empty = {.outer = 1, .shared = 0, .inner = (size_t)1 << 40, .run = 1};
    const BitdropKey key = {.seed = 8, .offset = 0};
    OK(bitdrop_forward(BITDROP_F32, 0.5f, BITDROP_TRAIN, &empty, key, NULL, 0));
    OK(bitdrop_backward(BITDROP_BF16, 0.5f, BITDROP_TRAIN, &empty, key, NULL, 0));
    const BitdropUnits hundred = {.outer = 1, .shared = 0, .inner = 100, .run = 1};
    uint64_t units_mask[2], elements_mask[2];
    OK(bitdrop_fill_mask(0.5f, BITDROP_TRAIN, &hundred, key, 0, units_mask, 2));
    OK(bitdrop_fill_mask(0.5f, BITDROP_TRAIN, NULL, key, 100, elements_mask, 2));
    CHECK(memcmp(units_mask, elements_mask, sizeof units_mask) == 0, "unit decisions");
    printf("units without elements: 2^40 of them decided nothing; with a mask, 100 decided\n");
}

int main(void) {
    uint64_t path[2] = {3, 41}, seed = 0;
    OK(bitdrop_derive_seed(7, path, 2, &seed));
    CHECK(seed != 7 && seed != 0, "derived seed");
    forward_and_mask();
    regeneration();
    eval_identity();
    structured_and_fused();
    units_without_elements();
    errors();
    printf("all %d checks passed\n", checks);
    return 0;
}
