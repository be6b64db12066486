/* Matrix-vector products on block-quantized weights, for decoding one token.
 *
 * A weight matrix W (N rows, K columns) is cut into blocks of 32 consecutive
 * weights along a row. Each block stores small integer codes and scales (see "Scales" below):
 *
 *   q4 (llama.cpp's Q4_1 layout): w = d * q + m,  q in 0..15, two codes per byte
 *                                  byte j holds q[j] (low nibble) and q[j + 16] (high)
 *   q8 (llama.cpp's Q8_0 layout): w = d * q,      q in -127..127
 *
 * so a row's dot product with x needs, per block b,
 *
 *   q4:  d[b] * (q[b] . x[b]) + m[b] * sum(x[b])       (sum(x[b]) is shared by all rows)
 *   q8:  d[b] * (q[b] . x[b])
 *
 * In q4_matmul and q8_matmul activations stay float32: no rounding of x, so results match a
 * float32 matmul on the dequantized weights up to the order of the additions. With AVX-512 a
 * block is two vectors of 16 floats, with AVX2 four of 8; elsewhere plain C loops compute the
 * same sums.
 * q4_matmul_q8x and q8_matmul_q8x (further down) round x to int8 blocks first and multiply
 * integers, as llama.cpp does.
 * Output rows are shared between `threads` OpenMP threads.
 *
 * Every function takes M rows of x (M, K) and writes y (M, N).
 *
 * Scales: a matrix's scales d and mins m are float16, as llama.cpp stores them (a q4 block is then
 * 16 + 2 + 2 bytes, not 16 + 4 + 4), where float16 holds every one of them exactly, and float32
 * where it does not (Q4_K's, a float16 times a 6-bit sub-scale). Every function takes them as
 * `const void *` with a flag `half` (1: float16), and the row products read each scale where they
 * use it (`scale_at`, `dot_scales8`...; F16C converts float16). Each row product is compiled twice,
 * inlined with `half` a constant (`q4_row_f32`, `q4_row_f16`...), so neither version tests the type
 * per block, and the sums are the same for both.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

#define BLOCK 32
#define HALF 16
#define INLINE static inline __attribute__((always_inline))

#if defined(__AVX2__) && !defined(__F16C__)
#error "blockq.c's AVX2 code converts float16 scales with F16C: build it with -march=native (or add -mf16c)"
#endif

/* float16 bits -> float: F16C's instruction, or in C: 2^(e - 15) * (1 + mantissa / 1024), and
 * mantissa * 2^-24 for the subnormals (e = 0). */
static inline float half_to_float(uint16_t h) {
#ifdef __F16C__
    return _cvtsh_ss(h);
#else
    int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    float magnitude = exponent == 0x1F ? (mantissa ? NAN : INFINITY)
                      : exponent == 0  ? ldexpf((float)mantissa, -24)
                                       : ldexpf((float)(mantissa | 0x400), exponent - 25);
    return h & 0x8000 ? -magnitude : magnitude;
#endif
}

/* Scale (or min) i of a matrix as a float: float32 storage, or float16 (half = 1). */
INLINE float scale_at(const void *s, int half, int64_t i) {
    return half ? half_to_float(((const uint16_t *)s)[i]) : ((const float *)s)[i];
}

/* The scales from index i on (row i / nblocks's, for i a multiple of nblocks); NULL stays NULL
 * (a q5 matrix without mins). */
static inline const void *scales_from(const void *s, int half, int64_t i) {
    return s ? (const char *)s + i * (half ? sizeof(uint16_t) : sizeof(float)) : NULL;
}

#ifdef __AVX2__
/* The sum of a vector's 8 floats. */
static inline __attribute__((unused)) float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* sum(s[i] * b[i]) over n scales (or mins) and n floats, 8 at a time. */
INLINE __attribute__((unused)) float dot_scales8(const void *s, int half, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 si = half ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)s + i)))
                         : _mm256_loadu_ps((const float *)s + i);
        acc = _mm256_fmadd_ps(si, _mm256_loadu_ps(b + i), acc);
    }
    float sum = hsum8(acc);
    for (; i < n; i++) sum += scale_at(s, half, i) * b[i];
    return sum;
}

/* 8 bytes (the low half of `bytes`) as 8 floats. */
static inline __attribute__((unused)) __m256 bytes8_to_floats(__m128i bytes, int is_signed) {
    return _mm256_cvtepi32_ps(is_signed ? _mm256_cvtepi8_epi32(bytes) : _mm256_cvtepu8_epi32(bytes));
}
#endif

#ifdef __AVX512F__
/* AVX-512: one block is two vectors of 16 floats. */

static inline __m512 bytes_to_floats(__m128i bytes, int is_signed) {
    return _mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(bytes) : _mm512_cvtepu8_epi32(bytes));
}

/* One row of a q4 matrix times one x: see the formula at the top. */
INLINE float q4_row(const uint8_t *codes, const void *d, const void *m, int half, const float *x, const float *xsum, int nblocks) {
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += HALF, x += BLOCK) {
        __m128i packed = _mm_loadu_si128((const __m128i *)codes);
        __m512 low = bytes_to_floats(_mm_and_si128(packed, low_nibbles), 0);                    /* q[0..15]  */
        __m512 high = bytes_to_floats(_mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles), 0); /* q[16..31] */
        __m512 dot = _mm512_fmadd_ps(low, _mm512_loadu_ps(x), _mm512_mul_ps(high, _mm512_loadu_ps(x + HALF)));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(scale_at(d, half, b)), dot, acc);
    }
    return _mm512_reduce_add_ps(acc) + dot_scales8(m, half, xsum, nblocks);
}

/* One row of a q8 matrix times one x. */
INLINE float q8_row(const int8_t *codes, const void *d, int half, const float *x, int nblocks) {
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += BLOCK, x += BLOCK) {
        __m512 first = bytes_to_floats(_mm_loadu_si128((const __m128i *)codes), 1);
        __m512 second = bytes_to_floats(_mm_loadu_si128((const __m128i *)(codes + HALF)), 1);
        __m512 dot = _mm512_fmadd_ps(first, _mm512_loadu_ps(x), _mm512_mul_ps(second, _mm512_loadu_ps(x + HALF)));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(scale_at(d, half, b)), dot, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

#elif defined(__AVX2__) && defined(__FMA__)
/* AVX2: one block is four vectors of 8 floats. */

INLINE float q4_row(const uint8_t *codes, const void *d, const void *m, int half, const float *x, const float *xsum, int nblocks) {
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += HALF, x += BLOCK) {
        __m128i packed = _mm_loadu_si128((const __m128i *)codes);
        __m128i low = _mm_and_si128(packed, low_nibbles), high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles);
        __m256 first = _mm256_fmadd_ps(bytes8_to_floats(low, 0), _mm256_loadu_ps(x),
                                       _mm256_mul_ps(bytes8_to_floats(_mm_srli_si128(low, 8), 0), _mm256_loadu_ps(x + 8)));
        __m256 second = _mm256_fmadd_ps(bytes8_to_floats(high, 0), _mm256_loadu_ps(x + HALF),
                                        _mm256_mul_ps(bytes8_to_floats(_mm_srli_si128(high, 8), 0), _mm256_loadu_ps(x + 24)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_at(d, half, b)), _mm256_add_ps(first, second), acc);
    }
    return hsum8(acc) + dot_scales8(m, half, xsum, nblocks);
}

INLINE float q8_row(const int8_t *codes, const void *d, int half, const float *x, int nblocks) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += BLOCK, x += BLOCK) {
        __m128i lo = _mm_loadu_si128((const __m128i *)codes), hi = _mm_loadu_si128((const __m128i *)(codes + HALF));
        __m256 first = _mm256_fmadd_ps(bytes8_to_floats(lo, 1), _mm256_loadu_ps(x),
                                       _mm256_mul_ps(bytes8_to_floats(_mm_srli_si128(lo, 8), 1), _mm256_loadu_ps(x + 8)));
        __m256 second = _mm256_fmadd_ps(bytes8_to_floats(hi, 1), _mm256_loadu_ps(x + HALF),
                                        _mm256_mul_ps(bytes8_to_floats(_mm_srli_si128(hi, 8), 1), _mm256_loadu_ps(x + 24)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_at(d, half, b)), _mm256_add_ps(first, second), acc);
    }
    return hsum8(acc);
}

#else
/* Portable C: the same sums, one weight at a time. */

INLINE float q4_row(const uint8_t *codes, const void *d, const void *m, int half, const float *x, const float *xsum, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += HALF, x += BLOCK) {
        float dot = 0.0f;
        for (int j = 0; j < HALF; j++) dot += (float)(codes[j] & 0xF) * x[j] + (float)(codes[j] >> 4) * x[j + HALF];
        sum += scale_at(d, half, b) * dot + scale_at(m, half, b) * xsum[b];
    }
    return sum;
}

INLINE float q8_row(const int8_t *codes, const void *d, int half, const float *x, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += BLOCK, x += BLOCK) {
        float dot = 0.0f;
        for (int j = 0; j < BLOCK; j++) dot += (float)codes[j] * x[j];
        sum += scale_at(d, half, b) * dot;
    }
    return sum;
}
#endif

/* A row product of an affine block format (w = d * q + m: q4, q5) for one scale type, and its
 * int8-activation form. */
typedef float (*affine_row)(const uint8_t *codes, const void *d, const void *m, const float *x, const float *xsum, int nblocks);
typedef float (*affine_row_q8x)(const uint8_t *codes, const void *d, const void *m, const int8_t *xq, const float *dx,
                                const float *xsum, int nblocks);

/* y (M, N) = x (M, K) @ W.T for W in an affine block format of `block_bytes` code bytes per block, with
 * `row` the row product for its scales' type (half); xsum is scratch of M * K / 32 floats. */
static void affine_matmul(affine_row row, int block_bytes, const uint8_t *codes, const void *d, const void *m, int half,
                          const float *x, float *y, float *xsum, int M, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
    for (int i = 0; i < M * nblocks; i++) {
        float s = 0.0f;
        for (int j = 0; j < BLOCK; j++) s += x[i * BLOCK + j];
        xsum[i] = s;
    }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < N; n++)
        for (int r = 0; r < M; r++)
            y[(int64_t)r * N + n] = row(codes + (int64_t)n * nblocks * block_bytes, scales_from(d, half, (int64_t)n * nblocks),
                                        scales_from(m, half, (int64_t)n * nblocks), x + (int64_t)r * K, xsum + r * nblocks,
                                        nblocks);
}

/* row##_f32 and row##_f16: an affine row product with `half` fixed (an `affine_row`), for float32
 * scales and for float16 ones; ROWS_Q8X(row) does the same for an `affine_row_q8x`. */
#define ROWS(row)                                                                                                     \
    static float row##_f32(const uint8_t *codes, const void *d, const void *m, const float *x, const float *xsum,     \
                           int nblocks) {                                                                             \
        return row(codes, d, m, 0, x, xsum, nblocks);                                                                 \
    }                                                                                                                 \
    static float row##_f16(const uint8_t *codes, const void *d, const void *m, const float *x, const float *xsum,     \
                           int nblocks) {                                                                             \
        return row(codes, d, m, 1, x, xsum, nblocks);                                                                 \
    }
#define ROWS_Q8X(row)                                                                                                 \
    static float row##_f32(const uint8_t *codes, const void *d, const void *m, const int8_t *xq, const float *dx,     \
                           const float *xsum, int nblocks) {                                                          \
        return row(codes, d, m, 0, xq, dx, xsum, nblocks);                                                            \
    }                                                                                                                 \
    static float row##_f16(const uint8_t *codes, const void *d, const void *m, const int8_t *xq, const float *dx,     \
                           const float *xsum, int nblocks) {                                                          \
        return row(codes, d, m, 1, xq, dx, xsum, nblocks);                                                            \
    }

ROWS(q4_row)

/* y (M, N) = x (M, K) @ W.T for a q4 W; xsum is scratch of M * K / 32 floats. */
void q4_matmul(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y, float *xsum,
               int M, int N, int K, int threads) {
    affine_matmul(half ? q4_row_f16 : q4_row_f32, HALF, codes, d, m, half, x, y, xsum, M, N, K, threads);
}

/* y (M, N) = x (M, K) @ W.T for a q8 W. */
void q8_matmul(const int8_t *codes, const void *d, int half, const float *x, float *y, int M, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < N; n++) {
        const int8_t *row = codes + (int64_t)n * K;
        const void *dn = scales_from(d, half, (int64_t)n * nblocks);
        for (int r = 0; r < M; r++) {
            const float *xr = x + (int64_t)r * K;
            y[(int64_t)r * N + n] = half ? q8_row(row, dn, 1, xr, nblocks) : q8_row(row, dn, 0, xr, nblocks);
        }
    }
}

/* ─── int8 activations (llama.cpp's Q8_1 idea) ───────────────────────────────────
 *
 * The float kernels above convert every 4-bit code to a float and are compute-bound. Here x is
 * rounded once per call to int8 blocks, xq = round(x / dx) with dx = amax(|x[b]|) / 127, so a
 * block's product is an integer dot product, which AVX512-VNNI does 64 bytes per instruction:
 *
 *   q4:  d[b] * dx[b] * (q[b] . xq[b]) + m[b] * sum(x[b])     (sum of the original floats)
 *   q8:  d[b] * dx[b] * (q[b] . xq[b])
 *
 * The integer sums are the same on every CPU; only the float additions around them differ.
 */

/* x (rows * nblocks blocks of 32) -> int8 codes xq, scales dx and the float sums of each block. */
static void quantize_x(const float *x, int8_t *xq, float *dx, float *xsum, int64_t nblocks) {
    for (int64_t b = 0; b < nblocks; b++, x += BLOCK, xq += BLOCK) {
        float amax = 0.0f, s = 0.0f;
        for (int j = 0; j < BLOCK; j++) {
            float a = x[j] < 0 ? -x[j] : x[j];
            amax = a > amax ? a : amax;
            s += x[j];
        }
        float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < BLOCK; j++) xq[j] = (int8_t)nearbyintf(x[j] * inv); /* nearest, ties to even */
        dx[b] = d;
        xsum[b] = s;
    }
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* Two blocks per 512-bit register: 64 codes times 64 int8 activations in one vpdpbusd, whose
 * 16 int32 lanes hold sums of 4 products; lanes 0-7 belong to the first block, 8-15 to the second. */

/* Scales b and b + 1 in lanes 0 and 1; b's alone, and 0, for a lone block. */
INLINE __m128 two_scales(const void *s, int half, int b, int two) {
    if (!half) {
        const float *f = (const float *)s + b;
        return two ? _mm_castpd_ps(_mm_load_sd((const double *)f)) : _mm_load_ss(f);
    }
    const uint16_t *h = (const uint16_t *)s + b;
    uint32_t bits = h[0];
    if (two) memcpy(&bits, h, sizeof bits);
    return _mm_cvtph_ps(_mm_cvtsi32_si128((int)bits));
}

/* (d[b] * dx[b]) in lanes 0-7 and (d[b + 1] * dx[b + 1]) in lanes 8-15; the second is 0 for a lone block. */
INLINE __m512 pair_scales(const void *d, int half, const float *dx, int b, int two) {
    const __m512i block_of_lane = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m128 both = _mm_mul_ps(two_scales(d, half, b, two), two_scales(dx, 0, b, two));
    return _mm512_permutexvar_ps(block_of_lane, _mm512_castps128_ps512(both));
}

/* Integer dots of two q4 blocks (32 packed bytes) with two blocks of xq (64 bytes), or of one. */
static inline __m512i q4_pair_dot(const uint8_t *codes, const int8_t *xq, int two) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    __m256i packed = two ? _mm256_loadu_si256((const __m256i *)codes)
                         : _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)codes));
    __m256i low = _mm256_and_si256(packed, low_nibbles);
    __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1); /* low0 low1 high0 high1 */
    q = _mm512_shuffle_i64x2(q, q, _MM_SHUFFLE(3, 1, 2, 0));                /* low0 high0 low1 high1 */
    __m512i x = _mm512_maskz_loadu_epi8(two ? ~0ULL : 0xFFFFFFFFULL, xq);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x);
}

/* Signed times signed: vpdpbusd wants unsigned bytes first, so |q| times x with q's sign
 * (q and xq are in -127..127, so neither negation overflows). */
static inline __m512i q8_pair_dot(const int8_t *codes, const int8_t *xq, int two) {
    __mmask64 valid = two ? ~0ULL : 0xFFFFFFFFULL;
    __m512i q = _mm512_maskz_loadu_epi8(valid, codes), x = _mm512_maskz_loadu_epi8(valid, xq);
    __m512i x_signed = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(q), _mm512_setzero_si512(), x);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(q), x_signed);
}

/* sum(s[i] * b[i]) over n scales (or mins) and n floats, 16 at a time. */
INLINE float dot_scales(const void *s, int half, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 valid = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 si = half ? _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_maskz_loadu_epi16(valid, (const uint16_t *)s + i)))
                         : _mm512_maskz_loadu_ps(valid, (const float *)s + i);
        acc = _mm512_fmadd_ps(si, _mm512_maskz_loadu_ps(valid, b + i), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

/* acc + (the pair's integer dots) * (their scales), for blocks b and b + 1 (or b alone). */
INLINE __m512 q4_pair(__m512 acc, const uint8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int b, int two) {
    __m512i dot = q4_pair_dot(codes + b * HALF, xq + b * BLOCK, two);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pair_scales(d, half, dx, b, two), acc);
}

INLINE __m512 q8_pair(__m512 acc, const int8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int b, int two) {
    __m512i dot = q8_pair_dot(codes + b * BLOCK, xq + b * BLOCK, two);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pair_scales(d, half, dx, b, two), acc);
}

/* `pairs` = the sum of a row's block products by `pair` (q4_pair, q5_pair, q8_pair): four blocks
 * per step into two accumulators, so one pair's float add (4 cycles) does not wait for the
 * previous pair's; then the last two blocks, or the last one. */
#define SUM_OF_PAIRS(pairs, pair, codes, d, half, xq, dx, nblocks)                                \
    float pairs;                                                                                  \
    {                                                                                             \
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                            \
        int b = 0;                                                                                \
        for (; b + 4 <= nblocks; b += 4) {                                                        \
            acc0 = pair(acc0, codes, d, half, xq, dx, b, 1);                                      \
            acc1 = pair(acc1, codes, d, half, xq, dx, b + 2, 1);                                  \
        }                                                                                         \
        if (b < nblocks) acc0 = pair(acc0, codes, d, half, xq, dx, b, b + 1 < nblocks);           \
        if (b + 2 < nblocks) acc1 = pair(acc1, codes, d, half, xq, dx, b + 2, 0);                 \
        pairs = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));                                  \
    }

INLINE float q4_row_q8x(const uint8_t *codes, const void *d, const void *m, int half, const int8_t *xq,
                        const float *dx, const float *xsum, int nblocks) {
    SUM_OF_PAIRS(pairs, q4_pair, codes, d, half, xq, dx, nblocks)
    return pairs + dot_scales(m, half, xsum, nblocks);
}

INLINE float q8_row_q8x(const int8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int nblocks) {
    SUM_OF_PAIRS(pairs, q8_pair, codes, d, half, xq, dx, nblocks)
    return pairs;
}

#elif defined(__AVX2__) && defined(__FMA__)
/* AVX2 (llama.cpp's way on CPUs without VNNI): a block's 32 codes times its 32 int8 activations by
 * vpmaddubsw (unsigned x signed bytes -> sums of 2 as int16; at most 2 * 15 * 127 or 2 * 127 * 127,
 * no saturation) and vpmaddwd by ones (-> sums of 4 as int32). */

/* Integer dot of a q4 block (16 packed bytes) with 32 int8 activations: 8 int32 partial sums. */
static inline __m256i q4_block_dot(const uint8_t *codes, const int8_t *xq) {
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    __m128i packed = _mm_loadu_si128((const __m128i *)codes);
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles), _mm_and_si128(packed, low_nibbles));
    __m256i x = _mm256_loadu_si256((const __m256i *)xq);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
}

/* Signed times signed: |q| times x with q's sign (q, xq in -127..127). */
static inline __m256i q8_block_dot(const int8_t *codes, const int8_t *xq) {
    __m256i q = _mm256_loadu_si256((const __m256i *)codes), x = _mm256_loadu_si256((const __m256i *)xq);
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q)), _mm256_set1_epi16(1));
}

/* acc + (block b's integer dots) * (its scales). */
INLINE __m256 q4_block(__m256 acc, const uint8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int b) {
    __m256 scale = _mm256_set1_ps(scale_at(d, half, b) * dx[b]);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q4_block_dot(codes + b * HALF, xq + b * BLOCK)), scale, acc);
}

INLINE __m256 q8_block(__m256 acc, const int8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int b) {
    __m256 scale = _mm256_set1_ps(scale_at(d, half, b) * dx[b]);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8_block_dot(codes + b * BLOCK, xq + b * BLOCK)), scale, acc);
}

/* Two blocks per step into two accumulators, so one block's float add does not wait for the last. */
INLINE float q4_row_q8x(const uint8_t *codes, const void *d, const void *m, int half, const int8_t *xq,
                        const float *dx, const float *xsum, int nblocks) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nblocks; b += 2) {
        acc0 = q4_block(acc0, codes, d, half, xq, dx, b);
        acc1 = q4_block(acc1, codes, d, half, xq, dx, b + 1);
    }
    if (b < nblocks) acc0 = q4_block(acc0, codes, d, half, xq, dx, b);
    return hsum8(_mm256_add_ps(acc0, acc1)) + dot_scales8(m, half, xsum, nblocks);
}

INLINE float q8_row_q8x(const int8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int nblocks) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nblocks; b += 2) {
        acc0 = q8_block(acc0, codes, d, half, xq, dx, b);
        acc1 = q8_block(acc1, codes, d, half, xq, dx, b + 1);
    }
    if (b < nblocks) acc0 = q8_block(acc0, codes, d, half, xq, dx, b);
    return hsum8(_mm256_add_ps(acc0, acc1));
}

#else
/* Portable C: the same integer sums. */

INLINE float q4_row_q8x(const uint8_t *codes, const void *d, const void *m, int half, const int8_t *xq,
                        const float *dx, const float *xsum, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += HALF, xq += BLOCK) {
        int32_t dot = 0;
        for (int j = 0; j < HALF; j++) dot += (codes[j] & 0xF) * xq[j] + (codes[j] >> 4) * xq[j + HALF];
        sum += scale_at(d, half, b) * dx[b] * (float)dot + scale_at(m, half, b) * xsum[b];
    }
    return sum;
}

INLINE float q8_row_q8x(const int8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += BLOCK, xq += BLOCK) {
        int32_t dot = 0;
        for (int j = 0; j < BLOCK; j++) dot += codes[j] * xq[j];
        sum += scale_at(d, half, b) * dx[b] * (float)dot;
    }
    return sum;
}
#endif

/* 1 when the int8-activation products above use SIMD integer dot products (AVX512-VNNI or AVX2),
 * 0 when they are plain C. */
int q8x_native(void) {
#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || (defined(__AVX2__) && defined(__FMA__))
    return 1;
#else
    return 0;
#endif
}

/* The same with x rounded to int8 blocks first. */
static void affine_matmul_q8x(affine_row_q8x row, int block_bytes, const uint8_t *codes, const void *d, const void *m,
                              int half, const float *x, float *y, int M, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
    int8_t *xq = malloc((size_t)M * K + 2 * sizeof(float) * M * nblocks); /* xq, then dx and xsum */
    float *dx = (float *)(xq + (size_t)M * K), *xsum = dx + M * nblocks;  /* K is a multiple of 32: aligned */
    quantize_x(x, xq, dx, xsum, (int64_t)M * nblocks);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < N; n++)
        for (int r = 0; r < M; r++)
            y[(int64_t)r * N + n] = row(codes + (int64_t)n * nblocks * block_bytes, scales_from(d, half, (int64_t)n * nblocks),
                                        scales_from(m, half, (int64_t)n * nblocks), xq + (int64_t)r * K, dx + r * nblocks,
                                        xsum + r * nblocks, nblocks);
    free(xq);
}

ROWS_Q8X(q4_row_q8x)

/* y (M, N) = x (M, K) @ W.T for a q4 W, with x rounded to int8 blocks first. */
void q4_matmul_q8x(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y,
                   int M, int N, int K, int threads) {
    affine_matmul_q8x(half ? q4_row_q8x_f16 : q4_row_q8x_f32, HALF, codes, d, m, half, x, y, M, N, K, threads);
}

/* y (M, N) = x (M, K) @ W.T for a q8 W, with x rounded to int8 blocks first. */
void q8_matmul_q8x(const int8_t *codes, const void *d, int half, const float *x, float *y, int M, int N, int K,
                   int threads) {
    const int nblocks = K / BLOCK;
    int8_t *xq = malloc((size_t)M * K + 2 * sizeof(float) * M * nblocks);
    float *dx = (float *)(xq + (size_t)M * K), *xsum = dx + M * nblocks;
    quantize_x(x, xq, dx, xsum, (int64_t)M * nblocks);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < N; n++) {
        const int8_t *row = codes + (int64_t)n * K;
        const void *dn = scales_from(d, half, (int64_t)n * nblocks);
        for (int r = 0; r < M; r++) {
            const int8_t *xr = xq + (int64_t)r * K;
            y[(int64_t)r * N + n] = half ? q8_row_q8x(row, dn, 1, xr, dx + r * nblocks, nblocks)
                                         : q8_row_q8x(row, dn, 0, xr, dx + r * nblocks, nblocks);
        }
    }
    free(xq);
}

/* The float32 weights back, W (N, K): for prefills, which run as one large matmul. */
void q4_dequantize(const uint8_t *codes, const void *d, const void *m, int half, float *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++) {
        const float db = scale_at(d, half, b), mb = scale_at(m, half, b);
        for (int j = 0; j < BLOCK / 2; j++) {
            uint8_t byte = codes[b * (BLOCK / 2) + j];
            w[b * BLOCK + j] = db * (float)(byte & 0xF) + mb;
            w[b * BLOCK + j + 16] = db * (float)(byte >> 4) + mb;
        }
    }
}

void q8_dequantize(const int8_t *codes, const void *d, int half, float *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++) {
        const float db = scale_at(d, half, b);
        for (int j = 0; j < BLOCK; j++) w[b * BLOCK + j] = db * (float)codes[b * BLOCK + j];
    }
}

/* The same weights as bfloat16 (rounded to nearest even), for prefills on CPUs that multiply
 * bf16 in hardware (AMX, AVX512-BF16): half the bytes written, and no float32 copy to convert. */
static inline uint16_t to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x40); /* NaN stays NaN */
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

void q4_dequantize_bf16(const uint8_t *codes, const void *d, const void *m, int half, uint16_t *w, int N, int K,
                        int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++) {
        const float db = scale_at(d, half, b), mb = scale_at(m, half, b);
        for (int j = 0; j < BLOCK / 2; j++) {
            uint8_t byte = codes[b * (BLOCK / 2) + j];
            w[b * BLOCK + j] = to_bf16(db * (float)(byte & 0xF) + mb);
            w[b * BLOCK + j + 16] = to_bf16(db * (float)(byte >> 4) + mb);
        }
    }
}

void q8_dequantize_bf16(const int8_t *codes, const void *d, int half, uint16_t *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++) {
        const float db = scale_at(d, half, b);
        for (int j = 0; j < BLOCK; j++) w[b * BLOCK + j] = to_bf16(db * (float)codes[b * BLOCK + j]);
    }
}

/* ─── q5: 5-bit codes, for matrices 4 bits cannot hold exactly ──────────────────────
 *
 * llama.cpp stores rows whose width is not a multiple of 256 (Qwen2.5-0.5B's 896) as Q5_0 in its
 * "Q4_K_M" files: w = d * (q - 16), q in 0..31. Those blocks need 5 bits; 8-bit blocks hold them
 * too but stream 36 bytes per 32 weights instead of 20 + 4 (float16 scales; 20 + 8 in float32).
 * The q5 layout is Q5_1's, 20 bytes of codes per block:
 *
 *   q5: w = d * q + m,  q in 0..31;  bytes 0..15: q[j] & 15 (low nibble) and q[j + 16] & 15 (high),
 *                                    bytes 16..19: a little-endian uint32 whose bit j is q[j] >> 4
 *
 * and a row's product is the q4 one: d[b] * (q[b] . x[b]) + m[b] * sum(x[b]) (float32 x), or
 * d[b] * dx[b] * (q[b] . xq[b]) + m[b] * sum(x[b]) (int8 x).
 *
 * Q5_0's blocks are symmetric, m = -16 * d, so a matrix of them is stored without mins (m NULL):
 * 22 bytes a block instead of 24. -16 * d is exact in float, so every product and weight is the
 * one the stored mins would give, to the bit. */

#define Q5_BYTES 20

/* Block b's min: stored, or -16 * d for a symmetric (Q5_0) matrix. */
INLINE float q5_min_at(const void *m, const void *d, int half, int64_t b) {
    return m ? scale_at(m, half, b) : -16.0f * scale_at(d, half, b);
}

#if defined(__AVX2__) && defined(__FMA__)
/* sum(m[b] * sum(x[b])) over a row's blocks, with m = -16 * d where no mins are stored. */
INLINE float q5_mins_dot(const void *m, const void *d, int half, const float *xsum, int nblocks) {
    return m ? dot_scales8(m, half, xsum, nblocks) : -16.0f * dot_scales8(d, half, xsum, nblocks);
}

/* A q5 block's 32 codes as bytes q[0..31]: the nibbles, then 16 added where the block's bit is set
 * (bit j spread to byte j by a shuffle and a compare, as llama.cpp does). */
static inline __m256i q5_codes(const uint8_t *block) {
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    __m128i packed = _mm_loadu_si128((const __m128i *)block);
    __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles), _mm_and_si128(packed, low_nibbles));
    uint32_t bits;
    memcpy(&bits, block + HALF, sizeof bits);
    const __m256i byte_of_bit = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), byte_of_bit); /* byte j: bits' byte j / 8 */
    spread = _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));        /* all ones iff bit j % 8 set */
    spread = _mm256_cmpeq_epi8(spread, _mm256_set1_epi64x(-1));
    return _mm256_or_si256(q, _mm256_and_si256(spread, _mm256_set1_epi8(0x10)));
}

INLINE float q5_row(const uint8_t *codes, const void *d, const void *m, int half, const float *x, const float *xsum, int nblocks) {
#ifdef __AVX512F__
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += Q5_BYTES, x += BLOCK) {
        __m256i q = q5_codes(codes);
        __m512 first = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(q)));
        __m512 second = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(q, 1)));
        __m512 dot = _mm512_fmadd_ps(first, _mm512_loadu_ps(x), _mm512_mul_ps(second, _mm512_loadu_ps(x + HALF)));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(scale_at(d, half, b)), dot, acc);
    }
    return _mm512_reduce_add_ps(acc) + q5_mins_dot(m, d, half, xsum, nblocks);
#else
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += Q5_BYTES, x += BLOCK) {
        __m256i q = q5_codes(codes);
        __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
        __m256 dot = _mm256_fmadd_ps(bytes8_to_floats(lo, 0), _mm256_loadu_ps(x),
                                     _mm256_mul_ps(bytes8_to_floats(_mm_srli_si128(lo, 8), 0), _mm256_loadu_ps(x + 8)));
        dot = _mm256_fmadd_ps(bytes8_to_floats(hi, 0), _mm256_loadu_ps(x + HALF), dot);
        dot = _mm256_fmadd_ps(bytes8_to_floats(_mm_srli_si128(hi, 8), 0), _mm256_loadu_ps(x + 24), dot);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_at(d, half, b)), dot, acc);
    }
    return hsum8(acc) + q5_mins_dot(m, d, half, xsum, nblocks);
#endif
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
/* Two blocks per 512-bit register, as q4_pair_dot: the nibbles laid out the same way, then 16 added
 * to the bytes whose bit is set: the two blocks' 32-bit words are one 64-bit mask, so that is a
 * single masked add (the AVX2 code below spreads the bits with a shuffle and a compare per block). */
static inline __m512i q5_pair_dot(const uint8_t *codes, const int8_t *xq, int two) {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    __m128i first = _mm_loadu_si128((const __m128i *)codes);
    __m128i second = two ? _mm_loadu_si128((const __m128i *)(codes + Q5_BYTES)) : _mm_setzero_si128();
    __m256i packed = _mm256_set_m128i(second, first);
    __m256i low = _mm256_and_si256(packed, low_nibbles);
    __m256i high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
    __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1); /* low0 low1 high0 high1 */
    q = _mm512_shuffle_i64x2(q, q, _MM_SHUFFLE(3, 1, 2, 0));                /* low0 high0 low1 high1 */
    uint32_t bits0, bits1 = 0;
    memcpy(&bits0, codes + HALF, sizeof bits0);
    if (two) memcpy(&bits1, codes + Q5_BYTES + HALF, sizeof bits1);
    q = _mm512_mask_add_epi8(q, _cvtu64_mask64((uint64_t)bits1 << 32 | bits0), q, _mm512_set1_epi8(0x10));
    __m512i x = _mm512_maskz_loadu_epi8(two ? ~0ULL : 0xFFFFFFFFULL, xq);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, x);
}

INLINE __m512 q5_pair(__m512 acc, const uint8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int b, int two) {
    __m512i dot = q5_pair_dot(codes + (int64_t)b * Q5_BYTES, xq + b * BLOCK, two);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), pair_scales(d, half, dx, b, two), acc);
}

INLINE float q5_row_q8x(const uint8_t *codes, const void *d, const void *m, int half, const int8_t *xq,
                        const float *dx, const float *xsum, int nblocks) {
    SUM_OF_PAIRS(pairs, q5_pair, codes, d, half, xq, dx, nblocks)
    return pairs + (m ? dot_scales(m, half, xsum, nblocks) : -16.0f * dot_scales(d, half, xsum, nblocks));
}

#else
/* Unsigned codes (0..31) times signed activations: vpdpbusd where AVX512-VNNI reaches 256-bit
 * registers, else vpmaddubsw (sums of 2 at most 2 * 31 * 127: no saturation) and vpmaddwd. */
INLINE __m256 q5_block(__m256 acc, const uint8_t *codes, const void *d, int half, const int8_t *xq, const float *dx, int b) {
    __m256i q = q5_codes(codes + (int64_t)b * Q5_BYTES), x = _mm256_loadu_si256((const __m256i *)(xq + b * BLOCK));
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, x);
#else
    __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
#endif
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(scale_at(d, half, b) * dx[b]), acc);
}

INLINE float q5_row_q8x(const uint8_t *codes, const void *d, const void *m, int half, const int8_t *xq,
                        const float *dx, const float *xsum, int nblocks) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int b = 0;
    for (; b + 2 <= nblocks; b += 2) {
        acc0 = q5_block(acc0, codes, d, half, xq, dx, b);
        acc1 = q5_block(acc1, codes, d, half, xq, dx, b + 1);
    }
    if (b < nblocks) acc0 = q5_block(acc0, codes, d, half, xq, dx, b);
    return hsum8(_mm256_add_ps(acc0, acc1)) + q5_mins_dot(m, d, half, xsum, nblocks);
}
#endif /* AVX512-VNNI */

#else
/* Portable C. */

static inline int q5_code(const uint8_t *block, int j) {
    uint32_t bits = (uint32_t)block[16] | (uint32_t)block[17] << 8 | (uint32_t)block[18] << 16 | (uint32_t)block[19] << 24;
    int nibble = j < HALF ? block[j] & 0xF : block[j - HALF] >> 4;
    return nibble | (int)((bits >> j) & 1u) << 4;
}

INLINE float q5_row(const uint8_t *codes, const void *d, const void *m, int half, const float *x, const float *xsum, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += Q5_BYTES, x += BLOCK) {
        float dot = 0.0f;
        for (int j = 0; j < BLOCK; j++) dot += (float)q5_code(codes, j) * x[j];
        sum += scale_at(d, half, b) * dot + q5_min_at(m, d, half, b) * xsum[b];
    }
    return sum;
}

INLINE float q5_row_q8x(const uint8_t *codes, const void *d, const void *m, int half, const int8_t *xq,
                        const float *dx, const float *xsum, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += Q5_BYTES, xq += BLOCK) {
        int32_t dot = 0;
        for (int j = 0; j < BLOCK; j++) dot += q5_code(codes, j) * xq[j];
        sum += scale_at(d, half, b) * dx[b] * (float)dot + q5_min_at(m, d, half, b) * xsum[b];
    }
    return sum;
}
#endif

ROWS(q5_row)
ROWS_Q8X(q5_row_q8x)

/* y (M, N) = x (M, K) @ W.T for a q5 W; xsum is scratch of M * K / 32 floats. */
void q5_matmul(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y, float *xsum,
               int M, int N, int K, int threads) {
    affine_matmul(half ? q5_row_f16 : q5_row_f32, Q5_BYTES, codes, d, m, half, x, y, xsum, M, N, K, threads);
}

/* y (M, N) = x (M, K) @ W.T for a q5 W, with x rounded to int8 blocks first. */
void q5_matmul_q8x(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y,
                   int M, int N, int K, int threads) {
    affine_matmul_q8x(half ? q5_row_q8x_f16 : q5_row_q8x_f32, Q5_BYTES, codes, d, m, half, x, y, M, N, K, threads);
}

/* Block b's 32 weights into w (float32) or wb (bfloat16; the other pointer is NULL). */
static inline void q5_block_weights(const uint8_t *block, float d, float m, float *w, uint16_t *wb) {
    uint32_t bits;
    memcpy(&bits, block + HALF, sizeof bits);
    for (int j = 0; j < BLOCK; j++) {
        int q = (j < HALF ? block[j] & 0xF : block[j - HALF] >> 4) | (int)((bits >> j) & 1u) << 4;
        float v = d * (float)q + m;
        if (w) w[j] = v;
        else wb[j] = to_bf16(v);
    }
}

void q5_dequantize(const uint8_t *codes, const void *d, const void *m, int half, float *w, int N, int K, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * (K / BLOCK); b++)
        q5_block_weights(codes + b * Q5_BYTES, scale_at(d, half, b), q5_min_at(m, d, half, b), w + b * BLOCK, NULL);
}

void q5_dequantize_bf16(const uint8_t *codes, const void *d, const void *m, int half, uint16_t *w, int N, int K,
                        int threads) {
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * (K / BLOCK); b++)
        q5_block_weights(codes + b * Q5_BYTES, scale_at(d, half, b), q5_min_at(m, d, half, b), NULL, w + b * BLOCK);
}
