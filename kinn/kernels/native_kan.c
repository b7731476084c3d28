/* The jet of a KAN layer on a uniform B-spline grid, fused, for the CPU (see native_kan.py).

   Layouts, all contiguous, for one chunk of points n0 <= n < n1:
     J  (N, S, I)  the stacked input jet, S = 1 + 2P sets: values, gradients (P), Hessian diagonals (P);
     W  (I, D, O)  the scaled spline coefficients, then the base weight as column NB = G + k when D > NB;
     Y  (N, S, O)  the stacked output jet;
     table (4, K, K): entry [n][p][r] is the coefficient of u^p in the n-th x-derivative of active basis r,
     K = k + 1 (kinn.kernels.uniform_bspline_polynomials with derivatives = 3).
   The k + 1 active bases of every input are built in registers and contracted with their K rows of W
   only: about K / D of the work of a dense contraction, and no (N, S, I, D) feature tensor in memory.

   The file is compiled once for float and once for double: it includes itself with T and SUF defined. */
#ifndef T
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#define MAXK 8  /* B-spline order k < MAXK */
#define MAXP 8  /* coordinates */
#ifndef VB
#define VB 32 /* bytes of a SIMD block: native_kan.py pads the outputs to whole blocks */
#endif
#define MAXS (1 + 2 * MAXP)

#define T float
#define SUF(name) name##_f32
#define FLOOR floorf
#define EXP expf
#define TANH tanhf
#include __FILE__
#undef T
#undef SUF
#undef FLOOR
#undef EXP
#undef TANH
#define T double
#define SUF(name) name##_f64
#define FLOOR floor
#define EXP exp
#define TANH tanh
#include __FILE__

#else

/* The x-derivatives 0 .. order of the active bases of x (zero off the grid) and their columns in W, then
   silu and its derivatives in column NB when the layer has a base branch. Returns how many columns. */
static int SUF(active)(T x, const T* table, T lo, T scale, int64_t G, int64_t K, int base, int order,
                       T d[4][MAXK + 1], int64_t slot[MAXK + 1]) {
  const int64_t NB = G + K - 1;
  T s = (x - lo) * scale;  /* located as uniform_bspline locates it; NaN goes to the clamp's low end */
  if (!(s >= (T)(-K))) s = (T)(-K);
  if (s > (T)(G + K - 1)) s = (T)(G + K - 1);
  const T j = FLOOR(s), u = s - j;
  for (int64_t r = 0; r < K; ++r) {
    const int64_t c = (int64_t)j + r;
    const int on = c >= 0 && c < NB;
    for (int n = 0; n <= order; ++n) {
      const T* t = table + n * K * K;
      T v = t[(K - 1) * K + r];
      for (int64_t q = 1; q < K; ++q) v = v * u + t[(K - 1 - q) * K + r];
      d[n][r] = on ? v : 0;
    }
    slot[r] = c < 0 ? 0 : c >= NB ? NB - 1 : c;  /* an off-grid basis is zero: any valid row will do */
  }
  if (!base) return (int)K;
  const T sg = 1 / (1 + EXP(-x)), s1 = sg * (1 - sg), cc = 1 - 2 * sg;
  const T silu[4] = {x * sg, sg + x * s1, s1 * (2 + x * cc), s1 * (3 * cc + x * (cc * cc - 2 * s1))};
  for (int n = 0; n <= order; ++n) d[n][K] = silu[n];
  slot[K] = NB;
  return (int)K + 1;
}

/* One point's edges: the active columns of every input, with their derivatives 0 .. 3, and the chain-rule
   coefficients of its jet, q = (g_p, g_p^2, h_p) for p = 1 .. P. */
typedef struct {
  int m;
  int64_t slot[MAXK + 1];
  T d[4][MAXK + 1];
} SUF(edge_t);

static void SUF(prepare)(const T* jn, const T* table, T lo, T scale, int64_t G, int64_t K, int base, int order,
                         int64_t P, int64_t I, T a, T b, SUF(edge_t)* e, T* q, T* t) {
  for (int64_t i = 0; i < I; ++i) {
    T x = jn[i], s1 = 1, s2 = 0;
    if (b != 0) {  /* the squash a + b tanh(x) before the layer, and its derivatives (kept in t) */
      const T th = TANH(x), t1 = 1 - th * th, t2 = -2 * th * t1;
      x = a + b * th, s1 = b * t1, s2 = b * t2;
      t[3 * i] = s1, t[3 * i + 1] = s2, t[3 * i + 2] = b * (-2 * t1 * t1 - 2 * th * t2);
    }
    e[i].m = SUF(active)(x, table, lo, scale, G, K, base, order, e[i].d, e[i].slot);
    for (int64_t p = 0; p < P; ++p) {
      const T g = jn[(1 + p) * I + i], h = jn[(1 + P + p) * I + i], gs = s1 * g;
      q[(i * 3 + 0) * P + p] = gs;
      q[(i * 3 + 1) * P + p] = gs * gs;
      q[(i * 3 + 2) * P + p] = s1 * h + s2 * g * g;
    }
  }
}

/* The gradient of one point's jet gj (S, I) taken back through the squash: with y = a + b tanh(x),
   g' = y' g and h' = y' h + y'' g^2, from the gradients of (y, g', h') to those of (x, g, h). */
static void SUF(unsquash)(const T* jn, const T* t, int64_t P, int64_t I, T* gj) {
  for (int64_t i = 0; i < I; ++i) {
    const T s1 = t[3 * i], s2 = t[3 * i + 1], s3 = t[3 * i + 2];
    T gx = s1 * gj[i];
    for (int64_t p = 0; p < P; ++p) {
      const T g = jn[(1 + p) * I + i], h = jn[(1 + P + p) * I + i];
      const T gg = gj[(1 + p) * I + i], gh = gj[(1 + P + p) * I + i];
      gx += s2 * g * gg + (s2 * h + s3 * g * g) * gh;
      gj[(1 + p) * I + i] = s1 * gg + 2 * s2 * g * gh;
      gj[(1 + P + p) * I + i] = s1 * gh;
    }
    gj[i] = gx;
  }
}

/* SIMD blocks of the outputs. O is padded to a multiple of the block (native_kan.py does that). The edge
   function's derivatives on a block, phi_n = sum_c d_n[c] w_c, give the jet by the chain rule:
   y_0 += phi_0, y_{1+p} += g_p phi_1, y_{1+P+p} += g_p^2 phi_2 + h_p phi_1. */
typedef T SUF(vec) __attribute__((vector_size(VB)));
#define VL ((int64_t)(VB / sizeof(T)))

static inline SUF(vec) SUF(load)(const T* p) {
  SUF(vec) v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void SUF(store)(T* p, SUF(vec) v) { memcpy(p, &v, sizeof v); }

/* The point's outputs on block o: its S accumulators stay in registers over all inputs (P a constant). */
static inline __attribute__((always_inline)) void SUF(forward_block)(const SUF(edge_t)* e, const T* q, const T* W,
                                                                     int64_t I, int64_t D, int64_t O, int64_t o,
                                                                     const int64_t P, T* y) {
  SUF(vec) acc[MAXS];
  for (int64_t s = 0; s < 1 + 2 * P; ++s) acc[s] = (SUF(vec)){0};
  for (int64_t i = 0; i < I; ++i) {
    SUF(vec) p0 = {0}, p1 = {0}, p2 = {0};
    for (int c = 0; c < e[i].m; ++c) {
      const SUF(vec) w = SUF(load)(W + (i * D + e[i].slot[c]) * O + o);
      p0 += w * e[i].d[0][c];
      p1 += w * e[i].d[1][c];
      p2 += w * e[i].d[2][c];
    }
    const T* qi = q + i * 3 * P;
    acc[0] += p0;
    for (int64_t p = 0; p < P; ++p) {
      acc[1 + p] += p1 * qi[p];
      acc[1 + P + p] += p2 * qi[P + p] + p1 * qi[2 * P + p];
    }
  }
  for (int64_t s = 0; s < 1 + 2 * P; ++s) SUF(store)(y + s * O + o, acc[s]);
}

/* One input's share of the backward pass, over all output blocks: its rows of GW, and the dot products
   that give the gradient of its jet (into gj, stride I). gy is the point's (S, O) gradient. */
static inline __attribute__((always_inline)) void SUF(backward_edge)(const SUF(edge_t)* e, const T* qi, const T* gy,
                                                                     const T* W, T* GW, int64_t i, int64_t I,
                                                                     int64_t D, int64_t O, const int64_t P, T* gj) {
  SUF(vec) dv[1 + 5 * MAXP];
  for (int64_t k = 0; k < 1 + 5 * P; ++k) dv[k] = (SUF(vec)){0};
  for (int64_t o = 0; o < O; o += VL) {
    SUF(vec) gs[MAXS];
    for (int64_t s = 0; s < 1 + 2 * P; ++s) gs[s] = SUF(load)(gy + s * O + o);
    if (GW) {  /* d/dW: sum over the sets of feature times incoming gradient, per active column */
      SUF(vec) a1 = {0}, a2 = {0};
      for (int64_t p = 0; p < P; ++p) {
        a1 += gs[1 + p] * qi[p] + gs[1 + P + p] * qi[2 * P + p];
        a2 += gs[1 + P + p] * qi[P + p];
      }
      for (int c = 0; c < e->m; ++c) {
        T* r = GW + (i * D + e->slot[c]) * O + o;
        SUF(store)(r, SUF(load)(r) + gs[0] * e->d[0][c] + a1 * e->d[1][c] + a2 * e->d[2][c]);
      }
    }
    if (gj) {  /* phi_1 .. phi_3 on the block, dotted with the sets that meet them */
      SUF(vec) f1 = {0}, f2 = {0}, f3 = {0};
      for (int c = 0; c < e->m; ++c) {
        const SUF(vec) w = SUF(load)(W + (i * D + e->slot[c]) * O + o);
        f1 += w * e->d[1][c];
        f2 += w * e->d[2][c];
        f3 += w * e->d[3][c];
      }
      dv[0] += gs[0] * f1;
      for (int64_t p = 0; p < P; ++p) {
        dv[1 + 5 * p] += gs[1 + p] * f1;
        dv[2 + 5 * p] += gs[1 + p] * f2;
        dv[3 + 5 * p] += gs[1 + P + p] * f1;
        dv[4 + 5 * p] += gs[1 + P + p] * f2;
        dv[5 + 5 * p] += gs[1 + P + p] * f3;
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
    const T g = qi[p], h = qi[2 * P + p];
    gj[(1 + p) * I] = dot[1 + 5 * p] + 2 * g * dot[4 + 5 * p];
    gj[(1 + P + p) * I] = dot[3 + 5 * p];
    gx += g * dot[2 + 5 * p] + h * dot[4 + 5 * p] + g * g * dot[5 + 5 * p];
  }
  gj[0] = gx;
}

/* Dispatch on P so that the common cases get their loops unrolled and their accumulators in registers. */
#define BY_P(P, CALL) \
  switch (P) {        \
    case 1: {         \
      const int64_t P_ = 1; CALL; break; } \
    case 2: {         \
      const int64_t P_ = 2; CALL; break; } \
    case 3: {         \
      const int64_t P_ = 3; CALL; break; } \
    default: {        \
      const int64_t P_ = P; CALL; } }

/* The squash a + b tanh(.) is applied to J first where b != 0 (the activation between KAN layers). */
void SUF(kan_jet_forward)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, int64_t n0,
                          int64_t n1, int64_t P, int64_t I, int64_t O, int64_t G, int64_t K, int64_t D, T* Y) {
  const int64_t S = 1 + 2 * P;
  SUF(edge_t)* e = malloc(sizeof *e * I);
  T* q = malloc(sizeof *q * 3 * P * I);
  T* t = malloc(sizeof *t * 3 * I);
  for (int64_t n = n0; n < n1; ++n) {
    SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, 2, P, I, a, b, e, q, t);
    for (int64_t o = 0; o < O; o += VL) BY_P(P, SUF(forward_block)(e, q, W, I, D, O, o, P_, Y + n * S * O))
  }
  free(e);
  free(q);
  free(t);
}

/* GY (N, S, O) the gradient of Y. Writes GJ (N, S, I), the gradient of J, when GJ is not NULL; adds the
   chunk's weight gradient to GW (I, D, O) when GW is not NULL (one GW per chunk: no two threads write
   the same memory). */
void SUF(kan_jet_backward)(const T* J, const T* W, const T* table, T lo, T scale, T a, T b, const T* GY,
                           int64_t n0, int64_t n1, int64_t P, int64_t I, int64_t O, int64_t G, int64_t K,
                           int64_t D, T* GJ, T* GW) {
  const int64_t S = 1 + 2 * P;
  SUF(edge_t)* e = malloc(sizeof *e * I);
  T* q = malloc(sizeof *q * 3 * P * I);
  T* t = malloc(sizeof *t * 3 * I);
  for (int64_t n = n0; n < n1; ++n) {
    SUF(prepare)(J + n * S * I, table, lo, scale, G, K, D > G + K - 1, GJ ? 3 : 2, P, I, a, b, e, q, t);
    for (int64_t i = 0; i < I; ++i)
      BY_P(P, SUF(backward_edge)(e + i, q + i * 3 * P, GY + n * S * O, W, GW, i, I, D, O, P_,
                                 GJ ? GJ + n * S * I + i : NULL))
    if (GJ && b != 0) SUF(unsquash)(J + n * S * I, t, P, I, GJ + n * S * I);
  }
  free(e);
  free(q);
  free(t);
}

#undef VL
#undef BY_P
#endif
