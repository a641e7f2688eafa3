// Our CUDA kernels besides flash attention (cuda_kernels.rs compiles this with NVRTC): the
// causal softmax of attention's blocked path, the next-token cross-entropy, and SwiGLU's
// gate. The tests also compile it as C++ against emulated_prelude.hpp and run it on the
// CPU (emulated_kernels_main.cpp).
// NVRTC has no math.h: -inf by its bits.
#ifndef NEG_INF
#define NEG_INF __int_as_float(0xff800000)
#endif
__device__ __forceinline__ float load(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float load(const unsigned short* p, long long i) {
    return __uint_as_float(((unsigned int)p[i]) << 16);
}
__device__ __forceinline__ void store(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void store(unsigned short* p, long long i, float v) {
    unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) { p[i] = 0x7fc0; return; }
    u += 0x7fffu + ((u >> 16) & 1u);
    p[i] = (unsigned short)(u >> 16);
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
template <typename F>
__device__ __forceinline__ F warp_sum(F v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
// blockDim.x is a multiple of 32, at most 1024.
__device__ float block_max(float v, float* shared) {
    v = warp_max(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? shared[lane] : NEG_INF;
    return warp_max(v);
}
template <typename F>
__device__ F block_sum(F v, F* shared) {
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? shared[lane] : (F)0;
    return warp_sum(v);
}
// One block per row of scores [rows, keys]; row r is query start + r % n, which sees keys
// 0..=start + r % n.
template <typename T>
__device__ void causal_softmax(const T* x, T* y, int n, int start, int keys) {
    __shared__ float shared[32];
    const long long row = blockIdx.x;
    const int visible = min(start + (int)(row % n) + 1, keys);
    const T* xr = x + row * keys;
    T* yr = y + row * keys;
    float m = NEG_INF;
    for (int c = threadIdx.x; c < visible; c += blockDim.x) m = fmaxf(m, load(xr, c));
    m = block_max(m, shared);
    float s = 0.0f;
    for (int c = threadIdx.x; c < visible; c += blockDim.x) s += expf(load(xr, c) - m);
    s = block_sum(s, shared);
    const float inv = 1.0f / s;
    for (int c = threadIdx.x; c < keys; c += blockDim.x) {
        store(yr, c, c < visible ? expf(load(xr, c) - m) * inv : 0.0f);
    }
}
extern "C" __global__ void causal_softmax_f32(const float* x, float* y, int n, int start, int keys) {
    causal_softmax(x, y, n, start, keys);
}
extern "C" __global__ void causal_softmax_bf16(const unsigned short* x, unsigned short* y, int n, int start, int keys) {
    causal_softmax(x, y, n, start, keys);
}
// Next-token cross-entropy, one block per row of logits [rows, vocab]:
// out[row] = logsumexp(row) - row[target], the exponentials summed in double.
// One pass over the row: each thread keeps a running maximum and the sum of exponentials
// below it, rescaled when the maximum grows (rarely); the block then combines them. The
// row is read in 16-byte vectors between a scalar head (up to the first 16-byte
// boundary) and a scalar tail, so any vocabulary and any row alignment work.
__device__ __forceinline__ void online_add(float& m, double& s, float v) {
    // A NaN logit never becomes the maximum, but makes its exponential, and so the sum,
    // NaN.
    if (v > m) {
        s *= exp((double)(m - v));
        m = v;
    }
    s += (double)expf(v - m);
}
template <typename T>
__device__ void token_nll(const T* logits, const unsigned int* targets, double* out, int vocab) {
    __shared__ float shared[32];
    __shared__ double shared_d[32];
    const long long row = blockIdx.x;
    const T* x = logits + row * (long long)vocab;
    const int per = 16 / (int)sizeof(T);
    const int head = min(vocab, (int)(((16 - ((unsigned long long)x & 15)) & 15) / sizeof(T)));
    const int vectors = (vocab - head) / per;
    float m = NEG_INF;
    double s = 0.0;
    for (int c = threadIdx.x; c < head; c += blockDim.x) online_add(m, s, load(x, c));
    const uint4* body = (const uint4*)(x + head);
    for (int i = threadIdx.x; i < vectors; i += blockDim.x) {
        const uint4 v = body[i];
        const T* e = (const T*)&v;
        for (int j = 0; j < per; ++j) online_add(m, s, load(e, j));
    }
    for (int c = head + vectors * per + threadIdx.x; c < vocab; c += blockDim.x) online_add(m, s, load(x, c));
    const float row_max = block_max(m, shared);
    // A thread that saw no value holds (-inf, 0) and adds nothing.
    if (m != NEG_INF) s *= exp((double)(m - row_max));
    s = block_sum(s, shared_d);
    if (threadIdx.x == 0) {
        const unsigned int t = targets[row];
        // A target outside the row cannot happen for validated data; NaN makes the
        // caller refuse the score.
        const double picked = t < (unsigned int)vocab ? (double)load(x, t) : __longlong_as_double(0x7ff8000000000000LL);
        out[row] = (double)row_max + log(s) - picked;
    }
}
extern "C" __global__ void token_nll_f32(const float* x, const unsigned int* t, double* out, int vocab) {
    token_nll(x, t, out, vocab);
}
extern "C" __global__ void token_nll_bf16(const unsigned short* x, const unsigned int* t, double* out, int vocab) {
    token_nll(x, t, out, vocab);
}
// SwiGLU's gate, silu(gate) · up, in f32 and rounded once; a grid-stride loop over n, in
// 16-byte vectors where the three arrays are equally aligned (always, for candle's
// allocations), after a scalar head and before a scalar tail.
__device__ __forceinline__ float silu_times(float g, float u) { return g / (1.0f + expf(-g)) * u; }
template <typename T>
__device__ void silu_mul(const T* gate, const T* up, T* out, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long first = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const int per = 16 / (int)sizeof(T);
    const unsigned long long a = (unsigned long long)gate & 15;
    long long head = n, vectors = 0;
    if (a == ((unsigned long long)up & 15) && a == ((unsigned long long)out & 15)) {
        head = min(n, (long long)(((16 - a) & 15) / sizeof(T)));
        vectors = (n - head) / per;
    }
    for (long long i = first; i < head; i += stride) store(out, i, silu_times(load(gate, i), load(up, i)));
    for (long long v = first; v < vectors; v += stride) {
        const long long i = head + v * per;
        const uint4 g = *(const uint4*)(gate + i);
        const uint4 u = *(const uint4*)(up + i);
        uint4 o;
        for (int j = 0; j < per; ++j) store((T*)&o, j, silu_times(load((const T*)&g, j), load((const T*)&u, j)));
        *(uint4*)(out + i) = o;
    }
    for (long long i = head + vectors * per + first; i < n; i += stride) store(out, i, silu_times(load(gate, i), load(up, i)));
}
extern "C" __global__ void silu_mul_f32(const float* g, const float* u, float* out, long long n) {
    silu_mul(g, u, out, n);
}
extern "C" __global__ void silu_mul_bf16(const unsigned short* g, const unsigned short* u, unsigned short* out, long long n) {
    silu_mul(g, u, out, n);
}
