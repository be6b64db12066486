/* Matrix-vector products on block-quantized weights, for decoding one token.
 *
 * A weight matrix W (N rows, K columns) is cut into blocks of 32 consecutive
 * weights along a row. Each block stores small integer codes and float32 scales:
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
 * Activations stay float32: no rounding of x, so results match a float32 matmul on
 * the dequantized weights up to the order of the additions. With AVX-512 a block is
 * two vectors of 16 floats; elsewhere plain C loops compute the same sums.
 * Output rows are shared between `threads` OpenMP threads.
 *
 * Every function takes M rows of x (M, K) and writes y (M, N).
 */
#include <stdint.h>
#include <string.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

#define BLOCK 32
#define HALF 16

#ifdef __AVX512F__
/* AVX-512: one block is two vectors of 16 floats. */

static inline __m512 bytes_to_floats(__m128i bytes, int is_signed) {
    return _mm512_cvtepi32_ps(is_signed ? _mm512_cvtepi8_epi32(bytes) : _mm512_cvtepu8_epi32(bytes));
}

/* One row of a q4 matrix times one x: see the formula at the top. */
static float q4_row(const uint8_t *codes, const float *d, const float *m, const float *x, const float *xsum, int nblocks) {
    const __m128i low_nibbles = _mm_set1_epi8(0x0F);
    __m512 acc = _mm512_setzero_ps();
    float offset = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += HALF, x += BLOCK) {
        __m128i packed = _mm_loadu_si128((const __m128i *)codes);
        __m512 low = bytes_to_floats(_mm_and_si128(packed, low_nibbles), 0);                    /* q[0..15]  */
        __m512 high = bytes_to_floats(_mm_and_si128(_mm_srli_epi16(packed, 4), low_nibbles), 0); /* q[16..31] */
        __m512 dot = _mm512_fmadd_ps(low, _mm512_loadu_ps(x), _mm512_mul_ps(high, _mm512_loadu_ps(x + HALF)));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d[b]), dot, acc);
        offset += m[b] * xsum[b];
    }
    return _mm512_reduce_add_ps(acc) + offset;
}

/* One row of a q8 matrix times one x. */
static float q8_row(const int8_t *codes, const float *d, const float *x, int nblocks) {
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nblocks; b++, codes += BLOCK, x += BLOCK) {
        __m512 first = bytes_to_floats(_mm_loadu_si128((const __m128i *)codes), 1);
        __m512 second = bytes_to_floats(_mm_loadu_si128((const __m128i *)(codes + HALF)), 1);
        __m512 dot = _mm512_fmadd_ps(first, _mm512_loadu_ps(x), _mm512_mul_ps(second, _mm512_loadu_ps(x + HALF)));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d[b]), dot, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

#else
/* Portable C: the same sums, one weight at a time. */

static float q4_row(const uint8_t *codes, const float *d, const float *m, const float *x, const float *xsum, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += HALF, x += BLOCK) {
        float dot = 0.0f;
        for (int j = 0; j < HALF; j++) dot += (float)(codes[j] & 0xF) * x[j] + (float)(codes[j] >> 4) * x[j + HALF];
        sum += d[b] * dot + m[b] * xsum[b];
    }
    return sum;
}

static float q8_row(const int8_t *codes, const float *d, const float *x, int nblocks) {
    float sum = 0.0f;
    for (int b = 0; b < nblocks; b++, codes += BLOCK, x += BLOCK) {
        float dot = 0.0f;
        for (int j = 0; j < BLOCK; j++) dot += (float)codes[j] * x[j];
        sum += d[b] * dot;
    }
    return sum;
}
#endif

/* y (M, N) = x (M, K) @ W.T for a q4 W; xsum is scratch of M * K / 32 floats. */
void q4_matmul(const uint8_t *codes, const float *d, const float *m, const float *x, float *y, float *xsum,
               int M, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
    for (int i = 0; i < M * nblocks; i++) {
        float s = 0.0f;
        for (int j = 0; j < BLOCK; j++) s += x[i * BLOCK + j];
        xsum[i] = s;
    }
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < N; n++)
        for (int r = 0; r < M; r++)
            y[(int64_t)r * N + n] = q4_row(codes + (int64_t)n * nblocks * (BLOCK / 2), d + (int64_t)n * nblocks,
                                           m + (int64_t)n * nblocks, x + (int64_t)r * K, xsum + r * nblocks, nblocks);
}

/* y (M, N) = x (M, K) @ W.T for a q8 W. */
void q8_matmul(const int8_t *codes, const float *d, const float *x, float *y, int M, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int n = 0; n < N; n++)
        for (int r = 0; r < M; r++)
            y[(int64_t)r * N + n] = q8_row(codes + (int64_t)n * K, d + (int64_t)n * nblocks, x + (int64_t)r * K, nblocks);
}

/* The float32 weights back, W (N, K): for prefills, which run as one large matmul. */
void q4_dequantize(const uint8_t *codes, const float *d, const float *m, float *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++)
        for (int j = 0; j < BLOCK / 2; j++) {
            uint8_t byte = codes[b * (BLOCK / 2) + j];
            w[b * BLOCK + j] = d[b] * (float)(byte & 0xF) + m[b];
            w[b * BLOCK + j + 16] = d[b] * (float)(byte >> 4) + m[b];
        }
}

void q8_dequantize(const int8_t *codes, const float *d, float *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++)
        for (int j = 0; j < BLOCK; j++) w[b * BLOCK + j] = d[b] * (float)codes[b * BLOCK + j];
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

void q4_dequantize_bf16(const uint8_t *codes, const float *d, const float *m, uint16_t *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++)
        for (int j = 0; j < BLOCK / 2; j++) {
            uint8_t byte = codes[b * (BLOCK / 2) + j];
            w[b * BLOCK + j] = to_bf16(d[b] * (float)(byte & 0xF) + m[b]);
            w[b * BLOCK + j + 16] = to_bf16(d[b] * (float)(byte >> 4) + m[b]);
        }
}

void q8_dequantize_bf16(const int8_t *codes, const float *d, uint16_t *w, int N, int K, int threads) {
    const int nblocks = K / BLOCK;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < (int64_t)N * nblocks; b++)
        for (int j = 0; j < BLOCK; j++) w[b * BLOCK + j] = to_bf16(d[b] * (float)codes[b * BLOCK + j]);
}
