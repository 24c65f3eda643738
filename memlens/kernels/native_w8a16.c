/* memlens: INT8 weight-only matmul for a few rows (decoding) on AVX-512 VNNI.
 *
 * y (M, N) = x (M, K) @ (q (N, K) int8 * scale (N)).T, float32 in and out,
 * K a multiple of 64, N a multiple of 4, y's rows ldy floats apart. Each row of x is quantized to 16 bits
 * (symmetric, by its largest magnitude), offset to [1, 65535] and split into a high and
 * a low byte; vpdpbusd multiplies 64 unsigned bytes by 64 signed weights per
 * instruction into int32, and
 *   sum_k xq_k q_k = 256 * sum_k hi_k q_k + sum_k lo_k q_k - 32768 * sum_k q_k
 * is exact in integers (each int32 sum is at most 255 * 127 * K: K <= 65536).
 * scratch holds 2K bytes. Built by memlens/kernels/native.py; its fallback is aten. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

static float digits(const float* x, int64_t K, uint8_t* hi, uint8_t* lo) {
    float amax = 0.f;
    for (int64_t k = 0; k < K; ++k) {
        float a = fabsf(x[k]);
        amax = a > amax ? a : amax;
    }
    float step = amax > 0.f ? amax / 32767.f : 1.f;
    float inverse = 1.f / step;
    for (int64_t k = 0; k < K; ++k) {
        int32_t v = (int32_t)lrintf(x[k] * inverse) + 32768;
        hi[k] = (uint8_t)(v >> 8);
        lo[k] = (uint8_t)(v & 255);
    }
    return step;
}

static void rows4(const uint8_t* hi, const uint8_t* lo, const int8_t* q, int64_t K,
                  int64_t out[4]) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i h[4], l[4], s[4];
    for (int r = 0; r < 4; ++r) h[r] = l[r] = s[r] = _mm512_setzero_si512();
    for (int64_t k = 0; k < K; k += 64) {
        __m512i vh = _mm512_loadu_si512(hi + k), vl = _mm512_loadu_si512(lo + k);
        for (int r = 0; r < 4; ++r) {
            __m512i w = _mm512_loadu_si512(q + r * K + k);
            h[r] = _mm512_dpbusd_epi32(h[r], vh, w);
            l[r] = _mm512_dpbusd_epi32(l[r], vl, w);
            s[r] = _mm512_dpbusd_epi32(s[r], ones, w);
        }
    }
    for (int r = 0; r < 4; ++r) {
        out[r] = 256 * (int64_t)_mm512_reduce_add_epi32(h[r]) +
                 (int64_t)_mm512_reduce_add_epi32(l[r]) -
                 32768 * (int64_t)_mm512_reduce_add_epi32(s[r]);
    }
}

void memlens_w8a16(const float* x, const int8_t* q, const float* scale, float* y,
                   int64_t M, int64_t N, int64_t K, int64_t ldy, uint8_t* scratch) {
    uint8_t* hi = scratch;
    uint8_t* lo = scratch + K;
    for (int64_t m = 0; m < M; ++m) {
        float step = digits(x + m * K, K, hi, lo);
        for (int64_t n = 0; n < N; n += 4) {
            int64_t dot[4];
            rows4(hi, lo, q + n * K, K, dot);
            for (int r = 0; r < 4; ++r) y[m * ldy + n + r] = (float)dot[r] * step * scale[n + r];
        }
    }
}
