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
#define MAXS (1 + 2 * MAXP)
#ifndef VB
#define VB 32 /* bytes of a SIMD block of outputs */
#endif

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
   d[(n * KD + c) * I + i]  the n-th x-derivative of column c of input i (c < K: the active B-splines,
                            zero off the grid; c = K: silu, where the layer has a base branch);
   slot[c * I + i]          that column's row of W;
   q[(k * P + p) * I + i]   the chain-rule coefficients of the input's jet, k = 0, 1, 2: g_p, g_p^2, h_p;
   t[k * I + i]             the first three derivatives of the squash (b != 0). */
typedef struct {
  T *x, *u, *d, *q, *t;
  int64_t *j, *slot;
} SUF(edges_t);

static SUF(edges_t) SUF(edges_new)(int64_t I, int64_t P) {
  SUF(edges_t) e;
  e.x = malloc(sizeof(T) * I * (2 + 4 * KD + 3 * P + 3));
  e.u = e.x + I, e.d = e.u + I, e.q = e.d + 4 * KD * I, e.t = e.q + 3 * P * I;
  e.j = malloc(sizeof(int64_t) * I * (1 + KD));
  e.slot = e.j + I;
  return e;
}

static void SUF(edges_free)(SUF(edges_t) e) {
  free(e.x);
  free(e.j);
}

/* The edges of point jn (S, I): squash (where b != 0), locate, bases, silu, chain-rule coefficients.
   Derivatives 0 .. order. Returns the number of columns, K or K + 1 (silu). */
static int64_t SUF(prepare)(const T* jn, const T* table, T lo, T scale, int64_t G, int64_t K, int base, int order,
                            int64_t P, int64_t I, T a, T b, SUF(edges_t) e) {
  const int64_t NB = G + K - 1;
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
    const int64_t j = (int64_t)s - ((T)(int64_t)s > s); /* floor */
    e.j[i] = j, u[i] = s - (T)j;
  }
  for (int n = 0; n <= order; ++n)
    for (int64_t r = 0; r < K; ++r) {
      const T* c = table + n * K * K + r; /* coefficient of u^p at c[p * K] */
      T* dr = e.d + (n * KD + r) * I;
      for (int64_t i = 0; i < I; ++i) dr[i] = c[(K - 1) * K];
      for (int64_t p = K - 2; p >= 0; --p) /* Horner's rule */
#pragma omp simd
        for (int64_t i = 0; i < I; ++i) dr[i] = dr[i] * u[i] + c[p * K];
#pragma omp simd
      for (int64_t i = 0; i < I; ++i) {
        const int64_t col = e.j[i] + r;
        dr[i] = col >= 0 && col < NB ? dr[i] : 0;
      }
    }
  for (int64_t r = 0; r < K; ++r)
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) { /* an off-grid basis is zero: any valid row will do */
      const int64_t col = e.j[i] + r;
      e.slot[r * I + i] = col < 0 ? 0 : col >= NB ? NB - 1 : col;
    }
  if (base) {
    T *d0 = e.d + K * I, *d1 = d0 + KD * I, *d2 = d1 + KD * I, *d3 = d2 + KD * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) { /* silu = x s and its derivatives through s = sigmoid(x), s' = s(1 - s) */
      const T v = x[i], s = 1 / (1 + SUF(exp)(-v)), s1 = s * (1 - s), c = 1 - 2 * s;
      d0[i] = v * s, d1[i] = s + v * s1, d2[i] = s1 * (2 + v * c), d3[i] = s1 * (3 * c + v * (c * c - 2 * s1));
      e.slot[K * I + i] = NB;
    }
  }
  for (int64_t p = 0; p < P; ++p) {
    const T *g = jn + (1 + p) * I, *h = jn + (1 + P + p) * I;
    T *q0 = e.q + p * I, *q1 = e.q + (P + p) * I, *q2 = e.q + (2 * P + p) * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) {
      const T gs = t[i] * g[i];
      q0[i] = gs, q1[i] = gs * gs, q2[i] = t[i] * h[i] + t[I + i] * g[i] * g[i];
    }
  }
  return K + (base != 0);
}

/* The gradient of one point's jet gj (S, I) taken back through the squash: with y = a + b tanh(x),
   g' = y' g and h' = y' h + y'' g^2, from the gradients of (y, g', h') to those of (x, g, h). */
static void SUF(unsquash)(const T* jn, const T* t, int64_t P, int64_t I, T* gj) {
  for (int64_t i = 0; i < I; ++i) gj[i] *= t[i];
  for (int64_t p = 0; p < P; ++p) {
    const T *g = jn + (1 + p) * I, *h = jn + (1 + P + p) * I;
    T *gg = gj + (1 + p) * I, *gh = gj + (1 + P + p) * I;
#pragma omp simd
    for (int64_t i = 0; i < I; ++i) {
      gj[i] += t[I + i] * g[i] * gg[i] + (t[I + i] * h[i] + t[2 * I + i] * g[i] * g[i]) * gh[i];
      gg[i] = t[i] * gg[i] + 2 * t[I + i] * g[i] * gh[i];
      gh[i] = t[i] * gh[i];
    }
  }
}

/* SIMD blocks of outputs. The edge function's derivatives on a block, phi_n = sum_c d_n[c] w_c, give the
   jet by the chain rule: y_0 += phi_0, y_{1+p} += g_p phi_1, y_{1+P+p} += g_p^2 phi_2 + h_p phi_1. */
typedef T SUF(vec) __attribute__((vector_size(VB)));
#define VL ((int64_t)(VB / sizeof(T)))

static inline SUF(vec) SUF(load)(const T* p) {
  SUF(vec) v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void SUF(store)(T* p, SUF(vec) v) { memcpy(p, &v, sizeof v); }

#define D_(n, c) e.d[((n) * KD + (c)) * I + i]
#define Q_(k, p) e.q[((k) * P + (p)) * I + i]

/* phi_n, phi_n+1, phi_n+2 of input i on output block o: the derivatives n .. n + 2 of its edge functions. */
static inline __attribute__((always_inline)) void SUF(phi)(SUF(edges_t) e, int64_t m, const T* W, int64_t i,
                                                           int64_t I, int64_t D, int64_t O, int64_t o, int n,
                                                           SUF(vec) f[3]) {
  f[0] = f[1] = f[2] = (SUF(vec)){0};
  for (int64_t c = 0; c < m; ++c) {
    const SUF(vec) w = SUF(load)(W + (i * D + e.slot[c * I + i]) * O + o);
    f[0] += w * D_(n, c);
    f[1] += w * D_(n + 1, c);
    f[2] += w * D_(n + 2, c);
  }
}

/* The point's outputs on block o: its S accumulators stay in registers over all inputs (P a constant). */
static inline __attribute__((always_inline)) void SUF(forward_block)(SUF(edges_t) e, int64_t m, const T* W,
                                                                     int64_t I, int64_t D, int64_t O, int64_t o,
                                                                     const int64_t P, T* y) {
  SUF(vec) acc[MAXS];
  for (int64_t s = 0; s < 1 + 2 * P; ++s) acc[s] = (SUF(vec)){0};
  for (int64_t i = 0; i < I; ++i) {
    SUF(vec) f[3];
    SUF(phi)(e, m, W, i, I, D, O, o, 0, f);
    acc[0] += f[0];
    for (int64_t p = 0; p < P; ++p) {
      acc[1 + p] += f[1] * Q_(0, p);
      acc[1 + P + p] += f[2] * Q_(1, p) + f[1] * Q_(2, p);
    }
  }
  for (int64_t s = 0; s < 1 + 2 * P; ++s) SUF(store)(y + s * O + o, acc[s]);
}

/* Input i's share of the backward pass over all output blocks: its rows of GW, and the dot products that
   give the gradient of its jet (into gj, stride I). gy is the point's (S, O) gradient. */
static inline __attribute__((always_inline)) void SUF(backward_edge)(SUF(edges_t) e, int64_t m, const T* gy,
                                                                     const T* W, T* GW, int64_t i, int64_t I,
                                                                     int64_t D, int64_t O, const int64_t P, T* gj) {
  SUF(vec) dv[1 + 5 * MAXP];
  for (int64_t k = 0; k < 1 + 5 * P; ++k) dv[k] = (SUF(vec)){0};
  for (int64_t o = 0; o < O; o += VL) {
    SUF(vec) gs[MAXS];
    for (int64_t s = 0; s < 1 + 2 * P; ++s) gs[s] = SUF(load)(gy + s * O + o);
    if (GW) { /* d/dW: sum over the sets of feature times incoming gradient, per active column */
      SUF(vec) a1 = {0}, a2 = {0};
      for (int64_t p = 0; p < P; ++p) {
        a1 += gs[1 + p] * Q_(0, p) + gs[1 + P + p] * Q_(2, p);
        a2 += gs[1 + P + p] * Q_(1, p);
      }
      for (int64_t c = 0; c < m; ++c) {
        T* r = GW + (i * D + e.slot[c * I + i]) * O + o;
        SUF(store)(r, SUF(load)(r) + gs[0] * D_(0, c) + a1 * D_(1, c) + a2 * D_(2, c));
      }
    }
    if (gj) { /* phi_1 .. phi_3 on the block, dotted with the sets that meet them */
      SUF(vec) f[3];
      SUF(phi)(e, m, W, i, I, D, O, o, 1, f);
      dv[0] += gs[0] * f[0];
      for (int64_t p = 0; p < P; ++p) {
        dv[1 + 5 * p] += gs[1 + p] * f[0];
        dv[2 + 5 * p] += gs[1 + p] * f[1];
        dv[3 + 5 * p] += gs[1 + P + p] * f[0];
        dv[4 + 5 * p] += gs[1 + P + p] * f[1];
        dv[5 + 5 * p] += gs[1 + P + p] * f[2];
      }
    }
  }
  if (!gj) return;
  T dot[1 + 5 * MAXP];
  for (int64_t k = 0; k < 1 + 5 * P; ++k) {
    dot[k] = 0;
    for (int64_t l = 0; l < VL; ++l) dot[k] += dv[k][l];
  }
  /* the chain rule back through y_{1+p} = g_p phi_1 and y_{1+P+p} = g_p^2 phi_2 + h_p phi_1 */
  T gx = dot[0];
  for (int64_t p = 0; p < P; ++p) {
    const T g = Q_(0, p), h = Q_(2, p);
    gj[(1 + p) * I] = dot[1 + 5 * p] + 2 * g * dot[4 + 5 * p];
    gj[(1 + P + p) * I] = dot[3 + 5 * p];
    gx += g * dot[2 + 5 * p] + h * dot[4 + 5 * p] + g * g * dot[5 + 5 * p];
  }
  gj[0] = gx;
}

#undef D_
#undef Q_

/* Dispatch on P so that the common cases get their loops unrolled and their accumulators in registers. */
#define BY_P(P, CALL)                   \
  switch (P) {                          \
    case 1: {                           \
      const int64_t P_ = 1; CALL; break; \
    }                                   \
    case 2: {                           \
      const int64_t P_ = 2; CALL; break; \
    }                                   \
    case 3: {                           \
      const int64_t P_ = 3; CALL; break; \
    }                                   \
    default: {                          \
      const int64_t P_ = P; CALL;       \
    }                                   \
  }

/* The squash a + b tanh(.) is applied to J first where b != 0 (the activation between KAN layers). */
static void SUF(kan_jet_forward)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, int64_t n0,
                                 int64_t n1, int64_t P, int64_t I, int64_t O, int64_t G, int64_t K, int64_t D,
                                 T* Y) {
  const int64_t S = 1 + 2 * P;
  SUF(edges_t) e = SUF(edges_new)(I, P);
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t m = SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, 2, P, I, a, b, e);
    for (int64_t o = 0; o < O; o += VL) BY_P(P, SUF(forward_block)(e, m, W, I, D, O, o, P_, Y + n * S * O))
  }
  SUF(edges_free)(e);
}

/* GY (N, S, O) the gradient of Y. Writes GJ (N, S, I), the gradient of J, when GJ is not NULL; adds the
   chunk's weight gradient to GW (I, D, O) when GW is not NULL (one GW per chunk: no two threads write
   the same memory). */
static void SUF(kan_jet_backward)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b,
                                  const T* GY, int64_t n0, int64_t n1, int64_t P, int64_t I, int64_t O, int64_t G,
                                  int64_t K, int64_t D, T* GJ, T* GW) {
  const int64_t S = 1 + 2 * P;
  SUF(edges_t) e = SUF(edges_new)(I, P);
  for (int64_t n = n0; n < n1; ++n) {
    const int64_t m = SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, GJ ? 3 : 2, P, I, a, b, e);
    for (int64_t i = 0; i < I; ++i)
      BY_P(P, SUF(backward_edge)(e, m, GY + n * S * O, W, GW, i, I, D, O, P_, GJ ? GJ + n * S * I + i : NULL))
    if (GJ && b != 0) SUF(unsquash)(J + n * S * I, e.t, P, I, GJ + n * S * I);
  }
  SUF(edges_free)(e);
}

/* All N points in `chunks` pieces, in parallel where the library is built with OpenMP (one piece a thread
   of torch's own OpenMP team, which the same libgomp serves); piece k adds its weight gradient to
   GW + k I D O. */
void SUF(kan_jet_forward_all)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, int64_t N,
                              int64_t chunks, int64_t P, int64_t I, int64_t O, int64_t G, int64_t K, int64_t D,
                              T* Y) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t k = 0; k < chunks; ++k)
    SUF(kan_jet_forward)(J, W, table, lo, scale, a, b, N * k / chunks, N * (k + 1) / chunks, P, I, O, G, K, D, Y);
}

void SUF(kan_jet_backward_all)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, const T* GY,
                               int64_t N, int64_t chunks, int64_t P, int64_t I, int64_t O, int64_t G, int64_t K,
                               int64_t D, T* GJ, T* GW) {
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int64_t k = 0; k < chunks; ++k)
    SUF(kan_jet_backward)(J, W, table, lo, scale, a, b, GY, N * k / chunks, N * (k + 1) / chunks, P, I, O, G, K,
                          D, GJ, GW ? GW + k * I * D * O : NULL);
}

#undef VL
#undef BY_P

#endif
