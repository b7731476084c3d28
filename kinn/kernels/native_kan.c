/* The jet of a KAN layer on a uniform B-spline grid, fused, for the CPU (see native_kan.py).

   Layouts, all contiguous, for one chunk of points n0 <= n < n1:
     J  (N, S, I)  the stacked input jet, S = 1 + 2P sets: values, gradients (P), Hessian diagonals (P);
     W  (I, D, O)  the scaled spline coefficients, then the base weight as column NB = G + k when D > NB;
                   O a whole number of SIMD blocks (native_kan.py pads it);
     Y  (N, S, O)  the stacked output jet;
     table (4, K, K): entry [n][p][r] is the coefficient of u^p in the n-th x-derivative of active basis r,
     K = k + 1 (kinn.kernels.uniform_bspline_polynomials with derivatives = 3).
   Point by point: first the K active bases of every input (and silu), as SIMD loops over the inputs;
   then the contraction with their K rows of W only, SIMD over blocks of outputs: about K / D of the work
   of a dense contraction, and no (N, S, I, D) feature tensor in memory.

   The file is compiled once for float and once for double: it includes itself with T and SUF defined. */
#ifndef T
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXK 8 /* B-spline order k < MAXK */
#define KD (MAXK + 1)
#define MAXP 8 /* coordinates */
#define MAXM (MAXP * (MAXP + 1) / 2) /* second rows of a full Hessian */
#ifndef VB
#define VB 32 /* bytes of a SIMD block of outputs */
#endif

/* The second rows m = (a, b) of a jet over P coordinates: kind 0 none, 1 the diagonal (a = b = m),
   2 all a <= b in row-major order (kinn.kernels.jets.pairs). The body sees a, b and m. */
#define FOR_PAIRS(P, KIND, ...)                                                    \
  do {                                                                              \
    int64_t m = 0;                                                                  \
    if ((KIND) == 1)                                                                \
      for (int64_t a = 0; a < (P); ++a, ++m) { const int64_t b = a; __VA_ARGS__; }         \
    else if ((KIND) == 2)                                                           \
      for (int64_t a = 0; a < (P); ++a)                                             \
        for (int64_t b = a; b < (P); ++b, ++m) { __VA_ARGS__; }                            \
  } while (0)

static inline int64_t n_pairs(int64_t P, int64_t kind) { return kind == 0 ? 0 : kind == 1 ? P : P * (P + 1) / 2; }

/* Points are taken in tiles of TILE_N, and within a tile the inputs in chunks whose rows of W (and of
   GW) fit the L1 cache beside the tile's data (`chunk_inputs`): a row of W is loaded from L2 once a tile,
   not once a point. The accumulators of the outputs go through memory between chunks. Measured on this
   project's 2-core AMD EPYC (48 KiB L1, 1 MiB L2; one 64 x 64 layer, 4,096 points, "diag", float32, one
   thread): forward 11-13 ms, backward 27-30 ms with or without the tiling (untiled, tiles of 32 without
   chunks, 16 and 32 KiB chunks all within that spread): there the weight's 229 KiB stay in L2 and the
   kernels are bound by their arithmetic and loads, not by L2. */
#define TILE_N 32

static int64_t chunk_inputs(int64_t I, int64_t D, int64_t O, int backward, int64_t size) {
  const int64_t budget = 16384; /* bytes of W rows (and GW rows) per chunk: a third of a 48 KiB L1 */
  int64_t c = budget / ((backward ? 2 : 1) * D * O * size);
  return c < 1 ? 1 : c > I ? I : c;
}

#define T float
#define SUF(name) name##_f32
#define UINT uint32_t
#define MANTISSA 23
#define BIAS 127
#define EXP_LIMIT 87.0f
#define TAYLOR 8 /* e^r on |r| <= ln(2) / 2 to float's precision */
#include __FILE__
#undef T
#undef SUF
#undef UINT
#undef MANTISSA
#undef BIAS
#undef EXP_LIMIT
#undef TAYLOR
#define T double
#define SUF(name) name##_f64
#define UINT uint64_t
#define MANTISSA 52
#define BIAS 1023
#define EXP_LIMIT 708.0
#define TAYLOR 14
#include __FILE__

#else

/* e^x without a library call, so that loops over inputs vectorise: 2^k e^r, k = round(x / ln 2), e^r by
   its Taylor series. Within 1 ulp of libm's exp on [-80, 80] (float and double). x is clamped to where
   2^k is a normal number; NaN propagates. */
static inline T SUF(exp)(T x) {
  x = x < -EXP_LIMIT ? -EXP_LIMIT : x;
  x = x > EXP_LIMIT ? EXP_LIMIT : x;
  const T k = __builtin_rint(x * (T)1.4426950408889634);
  const T r = (x - k * (T)0.693145751953125) - k * (T)1.4286068203094172e-06; /* ln 2 as hi + lo */
  T p = 1;
#pragma GCC unroll 16
  for (int j = TAYLOR; j >= 1; --j) p = 1 + p * r * (T)(1.0 / j);
  union {
    UINT bits;
    T value;
  } two_k = {(UINT)((int64_t)k + BIAS) << MANTISSA};
  return p * two_k.value;
}

/* One point's edges, inputs along the last axis so that loops over them vectorise:
   d[(n * C + c) * I + i]  the n-th x-derivative of column c of input i (c < K: the active B-splines,
                           zero off the grid; c = K: silu, where the layer has a base branch; C columns);
   slot[c * I + i]         that column's row of W;
   q[r * I + i]            the chain-rule coefficients of the input's (squashed) jet: rows 0 .. P - 1 g_p,
                           then for each second row m = (a, b): g_a g_b (rows P + m), h_m (rows P + M + m);
   t[k * I + i]            the first three derivatives of the squash (b != 0). */
typedef struct {
  T *x, *u, *d, *q, *t;
  int32_t *j, *slot;
  int64_t C;
} SUF(edges_t);

static SUF(edges_t) SUF(edges_new)(int64_t I, int64_t P, int64_t M, int64_t K) {
  SUF(edges_t) e;
  e.C = K + 1;
  e.x = malloc(sizeof(T) * I * (5 + 4 * e.C + P + 2 * M));
  e.u = e.x + I, e.t = e.u + I, e.d = e.t + 3 * I, e.q = e.d + 4 * e.C * I;
  e.j = malloc(sizeof(int32_t) * I);
  e.slot = malloc(sizeof(int32_t) * I * e.C);
  return e;
}

static void SUF(edges_free)(SUF(edges_t) e) {
  free(e.x);
  free(e.j);
  free(e.slot);
}

/* Derivatives 0 .. order of the K active bases of every input at its interval j and local coordinate u
   (zero off the grid), and the bases' rows of W (slot), in one SIMD pass over the inputs: u and each
   basis's grid test are read and made once for all orders, and the n-th derivative's Horner steps start
   at its degree k - n (the table's higher coefficients are zero). K and order are constants where
   `prepare` dispatches on them, so that the loops unroll. */
static inline __attribute__((always_inline)) void SUF(bases)(const T* table, const int32_t* j, const T* u, int64_t NB,
                                                             int64_t I, const int64_t K, const int order, int64_t C,
                                                             T* d, int32_t* slot) {
  T cf[4][KD][KD]; /* the table's coefficients, cf[n][p][r], in registers or on the stack: no alias of d */
  for (int n = 0; n <= order; ++n)
    for (int64_t p = 0; p < K; ++p)
      for (int64_t r = 0; r < K; ++r) cf[n][p][r] = table[(n * K + p) * K + r];
#pragma omp simd
  for (int64_t i = 0; i < I; ++i)
#pragma GCC unroll 8
    for (int64_t r = 0; r < K; ++r) {
      const int32_t col = j[i] + (int32_t)r;
      const int on = col >= 0 && col < NB;
      slot[r * I + i] = col < 0 ? 0 : col >= NB ? (int32_t)NB - 1 : col; /* off the grid: a zero basis, any row */
#pragma GCC unroll 4
      for (int n = 0; n <= order; ++n) {
        T v = 0;
#pragma GCC unroll 8
        for (int64_t p = K - 1 - n; p >= 0; --p) v = p == K - 1 - n ? cf[n][p][r] : v * u[i] + cf[n][p][r];
        d[(n * C + r) * I + i] = on ? v : 0;
      }
    }
}

/* The edges of point jn (S, I): squash (where b != 0), locate, bases, silu, chain-rule coefficients.
   Derivatives 0 .. order. Returns the number of columns, K or K + 1 (silu). */
static int64_t SUF(prepare)(const T* jn, const T* table, T lo, T scale, int64_t G, int64_t K, int base, int order,
                            int64_t P, int64_t kind, int64_t I, T a, T b, SUF(edges_t) e) {
  const int64_t NB = G + K - 1, M = n_pairs(P, kind), C = e.C;
  T *x = e.x, *u = e.u, *t = e.t;
  if (b != 0) {
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) { /* a + b tanh(x), tanh by e^(-2|x|) */
      const T v = jn[i], m = SUF(exp)(-2 * __builtin_fabs(v)), th = __builtin_copysign((1 - m) / (1 + m), v);
      const T t1 = 1 - th * th, t2 = -2 * th * t1;
      x[i] = a + b * th, t[i] = b * t1, t[I + i] = b * t2, t[2 * I + i] = b * (-2 * t1 * t1 - 2 * th * t2);
    }
  } else {
    for (int64_t i = 0; i < I; ++i) x[i] = jn[i], t[i] = 1, t[I + i] = 0;
  }
  const T smin = (T)(-K), smax = (T)(G + K - 1);
#pragma omp simd
  for (int64_t i = 0; i < I; ++i) { /* located as uniform_bspline locates it; NaN goes to the low end */
    T s = (x[i] - lo) * scale;
    s = s >= smin ? s : smin;
    s = s > smax ? smax : s;
    const int32_t j = (int32_t)s - ((T)(int32_t)s > s); /* floor; |s| <= G + K, an int */
    e.j[i] = j, u[i] = s - (T)j;
  }
#define BASES(K_, ORDER_) SUF(bases)(table, e.j, u, NB, I, K_, ORDER_, C, e.d, e.slot)
#define BASES_OF_ORDER(K_)                                                       \
  switch (order) {                                                               \
    case 1: BASES(K_, 1); break;                                                 \
    case 2: BASES(K_, 2); break;                                                 \
    default: BASES(K_, 3);                                                       \
  }
  switch (K) { /* orders 1 .. 5 unrolled: one SIMD loop with all bases and derivatives in registers */
    case 2: BASES_OF_ORDER(2); break;
    case 3: BASES_OF_ORDER(3); break;
    case 4: BASES_OF_ORDER(4); break;
    case 5: BASES_OF_ORDER(5); break;
    case 6: BASES_OF_ORDER(6); break;
    default: BASES(K, order);
  }
#undef BASES_OF_ORDER
#undef BASES
  if (base) {
    T* d0 = e.d + K * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) { /* silu = x s and its derivatives through s = sigmoid(x), s' = s(1 - s) */
      const T v = x[i], s = 1 / (1 + SUF(exp)(-v)), s1 = s * (1 - s), c = 1 - 2 * s;
      d0[i] = v * s, d0[C * I + i] = s + v * s1;
      if (order >= 2) d0[2 * C * I + i] = s1 * (2 + v * c);
      if (order >= 3) d0[3 * C * I + i] = s1 * (3 * c + v * (c * c - 2 * s1));
      e.slot[K * I + i] = (int32_t)NB;
    }
  }
  for (int64_t p = 0; p < P; ++p) {
    const T* g = jn + (1 + p) * I;
    T* q0 = e.q + p * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) q0[i] = t[i] * g[i];
  }
  FOR_PAIRS(P, kind, {
    const T *ga = jn + (1 + a) * I, *gb = jn + (1 + b) * I, *h = jn + (1 + P + m) * I;
    const T *qa = e.q + a * I, *qb = e.q + b * I;
    T *q1 = e.q + (P + m) * I, *q2 = e.q + (P + M + m) * I;
_Pragma("omp simd")
    for (int64_t i = 0; i < I; ++i) q1[i] = qa[i] * qb[i], q2[i] = t[i] * h[i] + t[I + i] * ga[i] * gb[i];
  });
  return K + (base != 0);
}

/* The gradient of one point's jet gj (S, I) taken back through the squash: with y = a + b tanh(x),
   g'_p = y' g_p and h'_ab = y' h_ab + y'' g_a g_b, from the gradients of (y, g', h') to those of (x, g, h). */
static void SUF(unsquash)(const T* jn, const T* t, int64_t P, int64_t kind, int64_t I, T* gj) {
  const int64_t M = n_pairs(P, kind);
  for (int64_t i = 0; i < I; ++i) gj[i] *= t[i];
  for (int64_t p = 0; p < P; ++p) {
    const T* g = jn + (1 + p) * I;
    T* gg = gj + (1 + p) * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) gj[i] += t[I + i] * g[i] * gg[i], gg[i] *= t[i];
  }
  FOR_PAIRS(P, kind, {
    const T *ga = jn + (1 + a) * I, *gb = jn + (1 + b) * I, *h = jn + (1 + P + m) * I;
    T *gga = gj + (1 + a) * I, *ggb = gj + (1 + b) * I, *gh = gj + (1 + P + m) * I;
_Pragma("omp simd")
    for (int64_t i = 0; i < I; ++i) {
      gj[i] += (t[I + i] * h[i] + t[2 * I + i] * ga[i] * gb[i]) * gh[i];
      gga[i] += t[I + i] * gb[i] * gh[i];
      ggb[i] += t[I + i] * ga[i] * gh[i];
      gh[i] *= t[i];
    }
  });
  (void)M;
}

/* SIMD blocks of outputs. The edge function's derivatives on a block, phi_n = sum_c d_n[c] w_c, give the
   jet by the chain rule: y_0 += phi_0, y_{1+p} += g_p phi_1, second row m = (a, b):
   y_{1+P+m} += g_a g_b phi_2 + h_m phi_1. */
typedef T SUF(vec) __attribute__((vector_size(VB)));
#define VL ((int64_t)(VB / sizeof(T)))

static inline SUF(vec) SUF(load)(const T* p) {
  SUF(vec) v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void SUF(store)(T* p, SUF(vec) v) { memcpy(p, &v, sizeof v); }

/* The sum of a block's lanes as a tree of halves (vector additions of 32- and 16-byte halves, then the last
   few lanes), where a running sum is VL - 1 dependent scalar additions with a shuffle each (C does not let
   the compiler reassociate them; they were about a third of the backward pass's instructions). */
typedef T SUF(v32) __attribute__((vector_size(32)));
typedef T SUF(v16) __attribute__((vector_size(16)));

static inline T SUF(hsum)(SUF(vec) v) {
#if VB == 64 || VB == 32
  SUF(v32) s32;
#if VB == 64
  SUF(v32) lo, hi;
  memcpy(&lo, &v, 32), memcpy(&hi, (char*)&v + 32, 32);
  s32 = lo + hi;
#else
  memcpy(&s32, &v, 32);
#endif
  SUF(v16) a, b;
  memcpy(&a, &s32, 16), memcpy(&b, (char*)&s32 + 16, 16);
  a += b;
  T x[16 / sizeof(T)];
  memcpy(x, &a, 16);
  return sizeof(T) == 4 ? (x[0] + x[2]) + (x[1] + x[3 % (16 / sizeof(T))]) : x[0] + x[1];
#else
  T sum = 0;
  for (int64_t l = 0; l < VL; ++l) sum += v[l];
  return sum;
#endif
}

#define D_(n, c) e.d[((n) * e.C + (c)) * I + i]
#define Q_(r) e.q[(r) * I + i]

/* phi_n .. phi_{n+NF-1} of input i on output block o: derivatives of its edge functions. */
static inline __attribute__((always_inline)) void SUF(phi)(SUF(edges_t) e, int64_t m, const T* W, int64_t i,
                                                           int64_t I, int64_t D, int64_t O, int64_t o, int n,
                                                           const int NF, SUF(vec) f[3]) {
  f[0] = f[1] = f[2] = (SUF(vec)){0};
  for (int64_t c = 0; c < m; ++c) {
    const SUF(vec) w = SUF(load)(W + (i * D + e.slot[c * I + i]) * O + o);
    f[0] += w * D_(n, c);
    f[1] += w * D_(n + 1, c);
    if (NF > 2) f[2] += w * D_(n + 2, c);
  }
}

/* The point's outputs on block o from inputs i0 .. i1 - 1, added to y (or written, first): its S
   accumulators stay in registers over the inputs (P and the kind constants). */
static inline __attribute__((always_inline)) void SUF(forward_block)(SUF(edges_t) e, int64_t m, const T* W,
                                                                     int64_t i0, int64_t i1, int64_t I, int64_t D,
                                                                     int64_t O, int64_t o, const int64_t P,
                                                                     const int64_t kind, int first, T* y) {
  const int64_t M = n_pairs(P, kind), S = 1 + P + M;
  SUF(vec) acc[1 + MAXP + MAXM];
  for (int64_t s = 0; s < S; ++s) acc[s] = first ? (SUF(vec)){0} : SUF(load)(y + s * O + o);
  for (int64_t i = i0; i < i1; ++i) {
    SUF(vec) f[3];
    SUF(phi)(e, m, W, i, I, D, O, o, 0, M ? 3 : 2, f);
    acc[0] += f[0];
    for (int64_t p = 0; p < P; ++p) acc[1 + p] += f[1] * Q_(p);
    for (int64_t r = 0; r < M; ++r) acc[1 + P + r] += f[2] * Q_(P + r) + f[1] * Q_(P + M + r);
  }
  for (int64_t s = 0; s < S; ++s) SUF(store)(y + s * O + o, acc[s]);
}

/* Input i's share of the backward pass over all output blocks: its rows of GW, and the gradient of its
   (squashed) jet, into gj (stride I). gy is the point's (S, O) gradient. With the incoming gradient
   folded per block into the coefficients of d_0, d_1, d_2 (1, a1, a2), the weight gradient is one
   product per column and the x-gradient one dot product against phi_1, phi_2, phi_3. */
static inline __attribute__((always_inline)) void SUF(backward_edge)(SUF(edges_t) e, int64_t m, const T* gy,
                                                                     const T* W, T* GW, int64_t i, int64_t I,
                                                                     int64_t D, int64_t O, const int64_t P,
                                                                     const int64_t kind, T* gj) {
  const int64_t M = n_pairs(P, kind);
  SUF(vec) dx = {0}, dg[MAXP], dh[MAXM];
  for (int64_t p = 0; p < P; ++p) dg[p] = (SUF(vec)){0};
  for (int64_t r = 0; r < M; ++r) dh[r] = (SUF(vec)){0};
  /* The input's rows and coefficients, read once: GW's stores could alias e.d and W for the compiler, which
     would read them again for every block. */
  int64_t row[KD];
  T d[4][KD], q[MAXP + 2 * MAXM];
  for (int64_t c = 0; c < m; ++c) {
    row[c] = (i * D + e.slot[c * I + i]) * O;
    for (int n = 0; n < (M ? 4 : 3); ++n) d[n][c] = D_(n, c);
  }
  for (int64_t r = 0; r < P + 2 * M; ++r) q[r] = Q_(r);
  for (int64_t o = 0; o < O; o += VL) {
    const SUF(vec) g0 = SUF(load)(gy + o);
    SUF(vec) a1 = {0}, a2 = {0}, gs[1 + MAXP + MAXM];
    for (int64_t s = 1; s < 1 + P + M; ++s) gs[s] = SUF(load)(gy + s * O + o);
    for (int64_t p = 0; p < P; ++p) a1 += gs[1 + p] * q[p];
    for (int64_t r = 0; r < M; ++r) a1 += gs[1 + P + r] * q[P + M + r], a2 += gs[1 + P + r] * q[P + r];
    if (GW) /* d/dW: per active column, the features' coefficients times the incoming gradient */
      for (int64_t c = 0; c < m; ++c) {
        T* w = GW + row[c] + o;
        SUF(vec) v = SUF(load)(w) + g0 * d[0][c] + a1 * d[1][c];
        if (M) v += a2 * d[2][c];
        SUF(store)(w, v);
      }
    if (gj) {
      SUF(vec) f[3] = {{0}, {0}, {0}};
      for (int64_t c = 0; c < m; ++c) {
        const SUF(vec) w = SUF(load)(W + row[c] + o);
        f[0] += w * d[1][c], f[1] += w * d[2][c];
        if (M) f[2] += w * d[3][c];
      }
      SUF(vec) t = g0 * f[0] + a1 * f[1]; /* summed apart: one addition a block on dx's chain */
      if (M) t += a2 * f[2];
      dx += t;
      for (int64_t p = 0; p < P; ++p) dg[p] += gs[1 + p] * f[0];
      FOR_PAIRS(P, kind, {
        const SUF(vec) c2 = gs[1 + P + m] * f[1];
        dg[a] += c2 * q[b];
        dg[b] += c2 * q[a];
        dh[m] += gs[1 + P + m] * f[0];
      });
    }
  }
  if (!gj) return;
  gj[0] = SUF(hsum)(dx);
  for (int64_t p = 0; p < P; ++p) gj[(1 + p) * I] = SUF(hsum)(dg[p]);
  for (int64_t r = 0; r < M; ++r) gj[(1 + P + r) * I] = SUF(hsum)(dh[r]);
}

/* Narrow layers, whose outputs fill less than a SIMD block (the last layer of a network of one or two fields):
   SIMD over the inputs instead, lane i reading its rows of the weight transposed to Wt (O, D, I) by gathers,
   so that a point costs a few vectors of inputs per output instead of one padded block per input and a
   horizontal sum of each accumulator per input. Each loop over the inputs is a single SIMD loop (the
   columns outside it), which the vectoriser takes. scratch: 5 I values. */

/* f_k[i] = phi_{n+k} of input i on output row w: the edge functions' derivatives n, n + 1 (and n + 2). */
static inline __attribute__((always_inline)) void SUF(narrow_phi)(SUF(edges_t) e, int64_t cols, const T* w,
                                                                  int64_t I, int n, int three, T* f) {
  memset(f, 0, sizeof(T) * 3 * I);
  for (int64_t c = 0; c < cols; ++c) {
    const T *d0 = e.d + (n * e.C + c) * I, *d1 = d0 + e.C * I, *d2 = d1 + e.C * I;
    const int32_t* slot = e.slot + c * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) {
      const T wc = w[slot[i] * (int32_t)I + (int32_t)i];
      f[i] += wc * d0[i], f[I + i] += wc * d1[i];
      if (three) f[2 * I + i] += wc * d2[i];
    }
  }
}

static inline __attribute__((always_inline)) T SUF(dot)(const T* x, const T* y, int64_t I) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < I; ++i) sum += y ? x[i] * y[i] : x[i];
  return sum;
}

static inline __attribute__((always_inline)) void SUF(narrow_forward_point)(SUF(edges_t) e, int64_t cols,
                                                                            const T* Wt, int64_t I, int64_t D,
                                                                            int64_t O, const int64_t P,
                                                                            const int64_t kind, T* f, T* y) {
  const int64_t M = n_pairs(P, kind);
  for (int64_t o = 0; o < O; ++o) {
    SUF(narrow_phi)(e, cols, Wt + o * D * I, I, 0, M != 0, f);
    y[o] = SUF(dot)(f, NULL, I);
    for (int64_t p = 0; p < P; ++p) y[(1 + p) * O + o] = SUF(dot)(f + I, e.q + p * I, I);
    for (int64_t r = 0; r < M; ++r)
      y[(1 + P + r) * O + o] = SUF(dot)(f + 2 * I, e.q + (P + r) * I, I) + SUF(dot)(f + I, e.q + (P + M + r) * I, I);
  }
}

/* The narrow layer's backward pass for one point: GW (O, D, I) gets its rows, gj (S, I) the gradient of the
   point's (squashed) jet, as in backward_edge with the roles of inputs and outputs swapped. */
static inline __attribute__((always_inline)) void SUF(narrow_backward_point)(SUF(edges_t) e, int64_t cols,
                                                                             const T* gy, const T* Wt, T* GW,
                                                                             int64_t I, int64_t D, int64_t O,
                                                                             const int64_t P, const int64_t kind,
                                                                             T* f, T* gj) {
  const int64_t M = n_pairs(P, kind), S = 1 + P + M;
  T *a1 = f + 3 * I, *a2 = f + 4 * I;
  if (gj) memset(gj, 0, sizeof(T) * S * I);
  for (int64_t o = 0; o < O; ++o) {
    T gs[1 + MAXP + MAXM];
    for (int64_t s = 0; s < S; ++s) gs[s] = gy[s * O + o];
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) { /* the incoming gradient folded into the coefficients of d_1 and d_2 */
      T v1 = 0, v2 = 0;
      for (int64_t p = 0; p < P; ++p) v1 += gs[1 + p] * e.q[p * I + i];
      for (int64_t r = 0; r < M; ++r)
        v1 += gs[1 + P + r] * e.q[(P + M + r) * I + i], v2 += gs[1 + P + r] * e.q[(P + r) * I + i];
      a1[i] = v1, a2[i] = v2;
    }
    if (GW)
      for (int64_t c = 0; c < cols; ++c) {
        const T *d0 = e.d + c * I, *d1 = d0 + e.C * I, *d2 = d1 + e.C * I;
        const int32_t* slot = e.slot + c * I;
        T *gw = GW + o * D * I, *v = f; /* f is free until narrow_phi below */
#pragma omp simd
        for (int64_t i = 0; i < I; ++i) {
          T vi = gs[0] * d0[i] + a1[i] * d1[i];
          if (M) vi += a2[i] * d2[i];
          v[i] = vi;
        }
        /* one input at a time: on Zen 4 the AVX-512 gather and scatter of GW's rows that the vectoriser
           makes of this loop cost more than scalar loads and stores (about 5% of a narrow backward) */
        for (int64_t i = 0; i < I; ++i) gw[(int64_t)slot[i] * I + i] += v[i];
      }
    if (!gj) continue;
    SUF(narrow_phi)(e, cols, Wt + o * D * I, I, 1, M != 0, f);
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) {
      T dx = gs[0] * f[i] + a1[i] * f[I + i];
      if (M) dx += a2[i] * f[2 * I + i];
      gj[i] += dx;
      for (int64_t p = 0; p < P; ++p) gj[(1 + p) * I + i] += gs[1 + p] * f[i];
    }
    FOR_PAIRS(P, kind, {
      T *ga = gj + (1 + a) * I, *gb = gj + (1 + b) * I, *gh = gj + (1 + P + m) * I;
      const T *qa = e.q + a * I, *qb = e.q + b * I, c2 = gs[1 + P + m];
_Pragma("omp simd")
      for (int64_t i = 0; i < I; ++i) {
        ga[i] += c2 * f[I + i] * qb[i];
        gb[i] += c2 * f[I + i] * qa[i];
        gh[i] += c2 * f[i];
      }
    });
  }
}

#undef D_
#undef Q_

/* Dispatch on P and the kind so that the common cases get their loops unrolled and their accumulators
   in registers. */
#define BY_PK(P, KIND, CALL)                                                   \
  switch ((P) * 4 + (KIND)) {                                                  \
    case 4: { const int64_t P_ = 1, K_ = 0; CALL; break; }                     \
    case 5: { const int64_t P_ = 1, K_ = 1; CALL; break; }                     \
    case 8: { const int64_t P_ = 2, K_ = 0; CALL; break; }                     \
    case 9: { const int64_t P_ = 2, K_ = 1; CALL; break; }                     \
    case 10: { const int64_t P_ = 2, K_ = 2; CALL; break; }                    \
    case 12: { const int64_t P_ = 3, K_ = 0; CALL; break; }                    \
    case 13: { const int64_t P_ = 3, K_ = 1; CALL; break; }                    \
    case 14: { const int64_t P_ = 3, K_ = 2; CALL; break; }                    \
    default: { const int64_t P_ = P, K_ = KIND; CALL; }                        \
  }

/* ... and on the number of columns: 5 for cubic splines and silu (the default layer), so that the loops over
   an input's columns unroll without a test per column. */
#define BY_COLUMNS(COLS, CALL)                                                 \
  if ((COLS) == 5) {                                                           \
    const int64_t C_ = 5;                                                      \
    CALL;                                                                      \
  } else {                                                                     \
    const int64_t C_ = COLS;                                                   \
    CALL;                                                                      \
  }

/* The squash a + b tanh(.) is applied to J first where b != 0 (the activation between KAN layers). */
static void SUF(kan_jet_forward)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, int64_t n0,
                                 int64_t n1, int64_t P, int64_t kind, int64_t I, int64_t O, int64_t G, int64_t K,
                                 int64_t D, T* Y) {
  const int64_t S = 1 + P + n_pairs(P, kind), IC = chunk_inputs(I, D, O, 0, sizeof(T));
  SUF(edges_t) e[TILE_N];
  int64_t m = 0;
  for (int64_t t = 0; t < TILE_N; ++t) e[t] = SUF(edges_new)(I, P, n_pairs(P, kind), K);
  for (int64_t t0 = n0; t0 < n1; t0 += TILE_N) {
    const int64_t t1 = t0 + TILE_N < n1 ? t0 + TILE_N : n1;
    for (int64_t n = t0; n < t1; ++n)
      m = SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, kind ? 2 : 1, P, kind, I, a, b,
                       e[n - t0]);
    for (int64_t i0 = 0; i0 < I; i0 += IC) {
      const int64_t i1 = i0 + IC < I ? i0 + IC : I;
      for (int64_t n = t0; n < t1; ++n)
        for (int64_t o = 0; o < O; o += VL)
          BY_COLUMNS(m, BY_PK(P, kind, SUF(forward_block)(e[n - t0], C_, W, i0, i1, I, D, O, o, P_, K_, i0 == 0,
                                                          Y + n * S * O)))
    }
  }
  for (int64_t t = 0; t < TILE_N; ++t) SUF(edges_free)(e[t]);
}

/* GY (N, S, O) the gradient of Y. Writes GJ (N, S, I), the gradient of J, when GJ is not NULL; adds the
   chunk's weight gradient to GW (I, D, O) when GW is not NULL (one GW per chunk: no two threads write
   the same memory). */
static void SUF(kan_jet_backward)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b,
                                  const T* GY, int64_t n0, int64_t n1, int64_t P, int64_t kind, int64_t I,
                                  int64_t O, int64_t G, int64_t K, int64_t D, T* GJ, T* GW) {
  const int64_t S = 1 + P + n_pairs(P, kind), IC = chunk_inputs(I, D, O, 1, sizeof(T));
  SUF(edges_t) e[TILE_N];
  int64_t m = 0;
  for (int64_t t = 0; t < TILE_N; ++t) e[t] = SUF(edges_new)(I, P, n_pairs(P, kind), K);
  for (int64_t t0 = n0; t0 < n1; t0 += TILE_N) {
    const int64_t t1 = t0 + TILE_N < n1 ? t0 + TILE_N : n1;
    for (int64_t n = t0; n < t1; ++n)
      m = SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, (kind ? 2 : 1) + (GJ != NULL), P,
                       kind, I, a, b, e[n - t0]);
    for (int64_t i0 = 0; i0 < I; i0 += IC) {
      const int64_t i1 = i0 + IC < I ? i0 + IC : I;
      for (int64_t n = t0; n < t1; ++n)
        for (int64_t i = i0; i < i1; ++i)
          BY_COLUMNS(m, BY_PK(P, kind, SUF(backward_edge)(e[n - t0], C_, GY + n * S * O, W, GW, i, I, D, O, P_, K_,
                                                          GJ ? GJ + n * S * I + i : NULL)))
    }
    if (GJ && b != 0)
      for (int64_t n = t0; n < t1; ++n) SUF(unsquash)(J + n * S * I, e[n - t0].t, P, kind, I, GJ + n * S * I);
  }
  for (int64_t t = 0; t < TILE_N; ++t) SUF(edges_free)(e[t]);
}

/* The narrow layers' kernels on points n0 .. n1 - 1 (Wt and GW transposed, (O, D, I); Y and GY not padded). */
static void SUF(narrow_forward)(const T* J, const T* Wt, const T* table, T lo, T scale, T a, T b, int64_t n0,
                                int64_t n1, int64_t P, int64_t kind, int64_t I, int64_t O, int64_t G, int64_t K,
                                int64_t D, T* Y) {
  const int64_t S = 1 + P + n_pairs(P, kind);
  SUF(edges_t) e = SUF(edges_new)(I, P, n_pairs(P, kind), K);
  T* scratch = malloc(sizeof(T) * 5 * I);
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t cols = SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, kind ? 2 : 1, P, kind,
                                      I, a, b, e);
    BY_PK(P, kind, SUF(narrow_forward_point)(e, cols, Wt, I, D, O, P_, K_, scratch, Y + n * S * O))
  }
  free(scratch);
  SUF(edges_free)(e);
}

static void SUF(narrow_backward)(const T* J, const T* Wt, const T* table, T lo, T scale, T a, T b, const T* GY,
                                 int64_t n0, int64_t n1, int64_t P, int64_t kind, int64_t I, int64_t O, int64_t G,
                                 int64_t K, int64_t D, T* GJ, T* GW) {
  const int64_t S = 1 + P + n_pairs(P, kind);
  SUF(edges_t) e = SUF(edges_new)(I, P, n_pairs(P, kind), K);
  T* scratch = malloc(sizeof(T) * 5 * I);
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t cols = SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1,
                                      (kind ? 2 : 1) + (GJ != NULL), P, kind, I, a, b, e);
    T* gj = GJ ? GJ + n * S * I : NULL;
    BY_PK(P, kind, SUF(narrow_backward_point)(e, cols, GY + n * S * O, Wt, GW, I, D, O, P_, K_, scratch, gj))
    if (gj && b != 0) SUF(unsquash)(J + n * S * I, e.t, P, kind, I, gj);
  }
  free(scratch);
  SUF(edges_free)(e);
}

/* All N points in `chunks` pieces, in parallel where the library is built with OpenMP (one piece a thread
   of torch's own OpenMP team, which the same libgomp serves); piece k adds its weight gradient to
   GW + k I D O. kind: 0 "first", 1 "diag", 2 "full" (kinn.kernels.jets). */
void SUF(kan_jet_forward_all)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, int64_t N,
                              int64_t chunks, int64_t P, int64_t kind, int64_t I, int64_t O, int64_t G, int64_t K,
                              int64_t D, T* Y) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t k = 0; k < chunks; ++k)
    SUF(kan_jet_forward)(J, W, table, lo, scale, a, b, N * k / chunks, N * (k + 1) / chunks, P, kind, I, O, G, K,
                         D, Y);
}

void SUF(kan_jet_backward_all)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, const T* GY,
                               int64_t N, int64_t chunks, int64_t P, int64_t kind, int64_t I, int64_t O, int64_t G,
                               int64_t K, int64_t D, T* GJ, T* GW) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t k = 0; k < chunks; ++k)
    SUF(kan_jet_backward)(J, W, table, lo, scale, a, b, GY, N * k / chunks, N * (k + 1) / chunks, P, kind, I, O, G,
                          K, D, GJ, GW ? GW + k * I * D * O : NULL);
}

void SUF(kan_jet_narrow_forward_all)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, int64_t N,
                                     int64_t chunks, int64_t P, int64_t kind, int64_t I, int64_t O, int64_t G,
                                     int64_t K, int64_t D, T* Y) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t k = 0; k < chunks; ++k)
    SUF(narrow_forward)(J, W, table, lo, scale, a, b, N * k / chunks, N * (k + 1) / chunks, P, kind, I, O, G, K, D,
                        Y);
}

void SUF(kan_jet_narrow_backward_all)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b,
                                      const T* GY, int64_t N, int64_t chunks, int64_t P, int64_t kind, int64_t I,
                                      int64_t O, int64_t G, int64_t K, int64_t D, T* GJ, T* GW) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t k = 0; k < chunks; ++k)
    SUF(narrow_backward)(J, W, table, lo, scale, a, b, GY, N * k / chunks, N * (k + 1) / chunks, P, kind, I, O, G, K,
                         D, GJ, GW ? GW + k * I * D * O : NULL);
}

#undef VL
#undef BY_PK
#undef BY_COLUMNS

#endif
