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
template <typename T>
__device__ void token_nll(const T* logits, const unsigned int* targets, double* out, int vocab) {
    __shared__ float shared[32];
    __shared__ double shared_d[32];
    const long long row = blockIdx.x;
    const T* x = logits + row * (long long)vocab;
    float m = NEG_INF;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) m = fmaxf(m, load(x, c));
    m = block_max(m, shared);
    // A NaN logit is skipped by fmaxf but makes its exponential, and so the sum, NaN.
    double s = 0.0;
    for (int c = threadIdx.x; c < vocab; c += blockDim.x) s += (double)expf(load(x, c) - m);
    s = block_sum(s, shared_d);
    if (threadIdx.x == 0) {
        const unsigned int t = targets[row];
        // A target outside the row cannot happen for validated data; NaN makes the
        // caller refuse the score.
        const double picked = t < (unsigned int)vocab ? (double)load(x, t) : __longlong_as_double(0x7ff8000000000000LL);
        out[row] = (double)m + log(s) - picked;
    }
}
extern "C" __global__ void token_nll_f32(const float* x, const unsigned int* t, double* out, int vocab) {
    token_nll(x, t, out, vocab);
}
extern "C" __global__ void token_nll_bf16(const unsigned short* x, const unsigned int* t, double* out, int vocab) {
    token_nll(x, t, out, vocab);
}
// SwiGLU's gate, silu(gate) · up, in f32 and rounded once; a grid-stride loop over n.
template <typename T>
__device__ void silu_mul(const T* gate, const T* up, T* out, long long n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float g = load(gate, i);
        store(out, i, g / (1.0f + expf(-g)) * load(up, i));
    }
}
extern "C" __global__ void silu_mul_f32(const float* g, const float* u, float* out, long long n) {
    silu_mul(g, u, out, n);
}
extern "C" __global__ void silu_mul_bf16(const unsigned short* g, const unsigned short* u, unsigned short* out, long long n) {
    silu_mul(g, u, out, n);
}
