/* One decode step of a Llama-style decoder (Llama, SmolLM2, Qwen2) on block-quantized weights,
 * in one call: the same arithmetic as Decoder.forward for one token with a KV cache
 * (layers.py), without the ~150 small torch operations per layer that a step otherwise
 * dispatches one at a time from Python.
 *
 *   for each layer:   xb = rmsnorm(x) * ln1
 *                     q, k, v = split(xb @ Wqkv.T + bqkv)          nh, nkv, nkv heads of hs
 *                     q, k = rotate(q, k, pos)                      rotate_half layout
 *                     cache[pos] = k, v
 *                     y[h] = softmax(q[h] . K[0..pos] / sqrt(hs)) V[0..pos]   kv head h / (nh / nkv)
 *                     x += y @ Wout.T
 *                     xb = rmsnorm(x) * ln2
 *                     g, u = split(xb @ Wgate_up.T)
 *                     x += (silu(g) * u) @ Wdown.T
 *   logits = (rmsnorm(x) * ln_final) @ Wunembed.T
 *
 * The matrix products are blockq.c's (q4, q5 or q8 weights; float32 or int8 activations, each layer as set); the
 * rest is plain C that the compiler vectorises. Threads share the products' output rows and
 * the attention heads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

void q4_matmul(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y, float *xsum,
               int M, int N, int K, int threads);
void q8_matmul(const int8_t *codes, const void *d, int half, const float *x, float *y, int M, int N, int K, int threads);
void q4_matmul_q8x(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y,
                   int M, int N, int K, int threads);
void q8_matmul_q8x(const int8_t *codes, const void *d, int half, const float *x, float *y, int M, int N, int K,
                   int threads);
void q5_matmul(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y, float *xsum,
               int M, int N, int K, int threads);
void q5_matmul_q8x(const uint8_t *codes, const void *d, const void *m, int half, const float *x, float *y,
                   int M, int N, int K, int threads);

/* A BlockQuantLinear: W (n, k) as q4 (kind 0), q8 (kind 1) or q5 (kind 2) codes, with float32
 * scales d and mins m, or float16 ones (half = 1; blockq.c's "Scales"); bias may be NULL. */
typedef struct {
    int kind, int8_x, half, n, k;
    const void *codes, *d, *m;
    const float *bias;
} qlinear;

typedef struct {
    const float *ln1, *ln2; /* RMSNorm weights, (C,) */
    qlinear qkv, out, gate_up, down;
} qlayer;

typedef struct {
    int n_layer, n_embd, n_head, n_kv_head, head_dim, hidden;
    float eps;
    const qlayer *layers;
    const float *cos, *sin; /* (max positions, hs) */
    const float *ln_final;
    qlinear unembed;
} qmodel;

/* y (n) = x (k) @ W.T + bias; xsum is scratch of k / 32 floats. */
static void linear(const qlinear *w, const float *x, float *y, float *xsum, int threads) {
    if (w->kind == 0 && w->int8_x)
        q4_matmul_q8x(w->codes, w->d, w->m, w->half, x, y, 1, w->n, w->k, threads);
    else if (w->kind == 0)
        q4_matmul(w->codes, w->d, w->m, w->half, x, y, xsum, 1, w->n, w->k, threads);
    else if (w->kind == 2 && w->int8_x)
        q5_matmul_q8x(w->codes, w->d, w->m, w->half, x, y, 1, w->n, w->k, threads);
    else if (w->kind == 2)
        q5_matmul(w->codes, w->d, w->m, w->half, x, y, xsum, 1, w->n, w->k, threads);
    else if (w->int8_x)
        q8_matmul_q8x(w->codes, w->d, w->half, x, y, 1, w->n, w->k, threads);
    else
        q8_matmul(w->codes, w->d, w->half, x, y, 1, w->n, w->k, threads);
    if (w->bias)
        for (int i = 0; i < w->n; i++) y[i] += w->bias[i];
}

/* out = x / sqrt(mean(x^2) + eps) * weight */
static void rmsnorm(const float *x, const float *weight, float *out, int n, float eps) {
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    const float inv = 1.0f / sqrtf(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = weight[i] * (x[i] * inv);
}

/* Turn channel pairs (j, j + hs/2) of one head by the position's angles (RotaryEmbedding's tables). */
static void rotate(float *head, const float *cos, const float *sin, int hs) {
    const int half = hs / 2;
    for (int j = 0; j < half; j++) {
        const float a = head[j], b = head[j + half];
        head[j] = a * cos[j] - b * sin[j];
        head[j + half] = b * cos[j + half] + a * sin[j + half];
    }
}

/* a . b over n floats. With AVX-512, 16 lanes at a time into one register, summed once at the end
 * (compiled from plain C, the sum of a key's products ran as 16 dependent scalar adds: the largest
 * part of attention at a 500-token context). */
static inline float dot(const float *a, const float *b, int n) {
    int j = 0;
    float sum = 0.0f;
#ifdef __AVX512F__
    __m512 acc = _mm512_setzero_ps();
    for (; j + 16 <= n; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), acc);
    sum = _mm512_reduce_add_ps(acc);
#endif
#pragma omp simd reduction(+ : sum)
    for (int i = j; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* out (hs) = sum over s of p[s] * V[s] (V: S rows of hs). With AVX-512, 64 columns at a time held in
 * four registers across all positions (from plain C, out[] was loaded and stored again for every
 * position, a chain through memory). */
static void weighted_sum(const float *p, const float *V, float *out, int S, int hs) {
    int c = 0;
#ifdef __AVX512F__
    for (; c + 64 <= hs; c += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int s = 0; s < S; s++) {
            const float *vs = V + (int64_t)s * hs + c;
            const __m512 w = _mm512_set1_ps(p[s]);
            a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vs), a0);
            a1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vs + 16), a1);
            a2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vs + 32), a2);
            a3 = _mm512_fmadd_ps(w, _mm512_loadu_ps(vs + 48), a3);
        }
        _mm512_storeu_ps(out + c, a0);
        _mm512_storeu_ps(out + c + 16, a1);
        _mm512_storeu_ps(out + c + 32, a2);
        _mm512_storeu_ps(out + c + 48, a3);
    }
#endif
    for (int j = c; j < hs; j++) out[j] = 0.0f;
    for (int s = 0; s < S && c < hs; s++) {
        const float *vs = V + (int64_t)s * hs;
#pragma omp simd
        for (int j = c; j < hs; j++) out[j] += p[s] * vs[j];
    }
}

/* y (nh, hs): each query head attends over positions 0..S-1 of its key/value head.
 * keys, values (nkv, max_len, hs) for one layer; scores is scratch of nh * S floats. */
static void attend(const float *q, const float *keys, const float *values, float *y, float *scores,
                   int nh, int nkv, int hs, int S, int max_len, int threads) {
    const int group = nh / nkv;
    const float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int h = 0; h < nh; h++) {
        const float *qh = q + (int64_t)h * hs;
        const float *K = keys + (int64_t)(h / group) * max_len * hs, *V = values + (int64_t)(h / group) * max_len * hs;
        float *p = scores + (int64_t)h * S, *out = y + (int64_t)h * hs;
        float best = -INFINITY;
        for (int s = 0; s < S; s++) {
            p[s] = dot(qh, K + (int64_t)s * hs, hs) * scale;
            best = p[s] > best ? p[s] : best;
        }
        float total = 0.0f;
        for (int s = 0; s < S; s++) {
            p[s] = expf(p[s] - best);
            total += p[s];
        }
        const float inv = 1.0f / total;
        for (int s = 0; s < S; s++) p[s] *= inv;
        weighted_sum(p, V, out, S, hs);
    }
}

static float silu(float g) { return g / (1.0f + expf(-g)); }

/* x (C,) holds the token's embedding; afterwards logits (vocab,) hold the next token's scores.
 * k_cache, v_cache: (n_layer, nkv, max_len, hs), positions 0..pos-1 filled; pos is written here. */
void decode_step(const qmodel *m, float *x, float *logits, float *k_cache, float *v_cache, int pos, int max_len,
                 int threads) {
    const int C = m->n_embd, nh = m->n_head, nkv = m->n_kv_head, hs = m->head_dim, I = m->hidden, S = pos + 1;
    const int width = C > I ? C : I;
    float *xb = malloc(sizeof(float) * ((size_t)width + (nh + 2 * nkv) * hs + nh * hs + 2 * I + width / 32 +
                                        (size_t)nh * S + C));
    float *qkv = xb + width, *y = qkv + (nh + 2 * nkv) * hs, *gu = y + nh * hs, *xsum = gu + 2 * I;
    float *scores = xsum + width / 32, *delta = scores + (size_t)nh * S;
    const float *cos = m->cos + (int64_t)pos * hs, *sin = m->sin + (int64_t)pos * hs;
    const int64_t layer_size = (int64_t)nkv * max_len * hs;

    for (int l = 0; l < m->n_layer; l++) {
        const qlayer *L = m->layers + l;
        float *keys = k_cache + l * layer_size, *values = v_cache + l * layer_size;

        rmsnorm(x, L->ln1, xb, C, m->eps);
        linear(&L->qkv, xb, qkv, xsum, threads);
        for (int h = 0; h < nh + nkv; h++) rotate(qkv + h * hs, cos, sin, hs); /* queries, then keys */
        for (int h = 0; h < nkv; h++)
            for (int j = 0; j < hs; j++) {
                keys[((int64_t)h * max_len + pos) * hs + j] = qkv[(nh + h) * hs + j];
                values[((int64_t)h * max_len + pos) * hs + j] = qkv[(nh + nkv + h) * hs + j];
            }
        attend(qkv, keys, values, y, scores, nh, nkv, hs, S, max_len, threads);
        linear(&L->out, y, delta, xsum, threads);
        for (int i = 0; i < C; i++) x[i] += delta[i];

        rmsnorm(x, L->ln2, xb, C, m->eps);
        linear(&L->gate_up, xb, gu, xsum, threads);
        for (int i = 0; i < I; i++) xb[i] = silu(gu[i]) * gu[I + i];
        linear(&L->down, xb, delta, xsum, threads);
        for (int i = 0; i < C; i++) x[i] += delta[i];
    }
    rmsnorm(x, m->ln_final, xb, C, m->eps);
    linear(&m->unembed, xb, logits, xsum, threads);
    free(xb);
}
