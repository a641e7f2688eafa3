// Causal grouped-query attention in one pass over the keys (FlashAttention-2's forward):
// the [queries × keys] score matrix never leaves the chip.
//
// q, out: bf16 [batch, t, heads, D]; k, v: bf16 [batch, t, kv_heads, D] (the projections'
// own layout, contiguous). Query head h reads key/value head h / (heads / kv_heads).
// out = softmax(q·kᵀ · scale, causal) · v, with the products on tensor cores (bf16 in,
// f32 accumulate), the softmax in f32 and the probabilities rounded to bf16 for the
// product with v, as an eager bf16 forward rounds them.
//
// One block of 4 warps per 64 queries of one head of one window; each warp owns 16 query
// rows. Per tile of 64 keys the block stages k and vᵀ in shared memory, each warp computes
// its 16 × 64 scores with mma.m16n8k16, updates its rows' running maximum and sum, and
// adds probabilities · v to its output accumulators, rescaled when the maximum grows.
// v stays row-major in shared memory; its B fragments come transposed by ldmatrix.
//
// From the prelude (the device's, or the CPU emulation's in the tests):
//   mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2])  d += a·b,
//       the m16n8k16 fragments of PTX's `mma` (row-major A, column-major B);
//   shfl_xor(float v, int mask)  the value of lane (lane ^ mask) of this warp;
//   ldmatrix_x2_trans(unsigned (&r)[2], const unsigned short* row)  PTX's
//       ldmatrix.m8n8.x2.trans from shared memory, lanes 0..15 naming the 16 rows;
//   NEG_INF, exp2f, fmaxf, min, __float_as_uint, __uint_as_float, uint4,
//   __syncthreads, threadIdx, blockIdx, gridDim.
//
// Fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and
// c = lane % 4: A (16 × 16) registers hold rows {g, g+8, g, g+8}, columns
// {2c, 2c, 2c+8, 2c+8} (+0/+1 in the low/high half); B (16 × 8) registers hold rows
// {2c, 2c+8} (+0/+1), column g; C (16 × 8) holds (g, 2c), (g, 2c+1), (g+8, 2c), (g+8, 2c+1).

#define FA_ROWS 64
#define FA_KEYS 64
#define FA_THREADS 128

// bf16 bits of x rounded to nearest even (a NaN stays a NaN).
__device__ __forceinline__ unsigned fa_bf16_bits(float x) {
    unsigned u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
// Two floats as the bf16 pair of one 32-bit register, `lo` in the low half.
__device__ __forceinline__ unsigned fa_pack(float lo, float hi) {
    return fa_bf16_bits(lo) | (fa_bf16_bits(hi) << 16);
}
__device__ __forceinline__ unsigned fa_pair(const unsigned short* p) {
    return *(const unsigned*)p;
}

// Copies rows first..first+FA_KEYS of a [t, stride] bf16 matrix (D wide) into shared rows
// of `pitch` elements, zeros past t.
template <int D>
__device__ __forceinline__ void fa_stage(unsigned short* dst, int pitch, const unsigned short* src,
                                         long long stride, int first, int t) {
    constexpr int CHUNKS = D / 8;  // 16-byte pieces of a row
    for (int i = threadIdx.x; i < FA_KEYS * CHUNKS; i += FA_THREADS) {
        const int r = i / CHUNKS, col = (i % CHUNKS) * 8;
        uint4 piece = make_uint4(0u, 0u, 0u, 0u);
        if (first + r < t) piece = *(const uint4*)(src + (first + r) * stride + col);
        *(uint4*)(dst + r * pitch + col) = piece;
    }
}

template <int D>
__device__ void flash_attention(const unsigned short* q, const unsigned short* k,
                                const unsigned short* v, unsigned short* out, int t, int heads,
                                int kv_heads, float scale) {
    // Row pitches padded by 16 bytes: the 8 rows a fragment load touches fall in
    // different banks.
    constexpr int P = D + 8;
    __shared__ __align__(16) unsigned short k_s[FA_KEYS * P];  // first q's tile, then k's
    __shared__ __align__(16) unsigned short v_s[FA_KEYS * P];

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    const int q0 = (gridDim.x - 1 - blockIdx.x) * FA_ROWS;  // the longest blocks start first
    const int head = blockIdx.y, batch = blockIdx.z;
    const int kv_head = head / (heads / kv_heads);
    const long long q_stride = (long long)heads * D, kv_stride = (long long)kv_heads * D;
    const unsigned short* qb = q + (long long)batch * t * q_stride + (long long)head * D;
    const unsigned short* kb = k + (long long)batch * t * kv_stride + (long long)kv_head * D;
    const unsigned short* vb = v + (long long)batch * t * kv_stride + (long long)kv_head * D;
    // Scores are kept in log2 units: exp(x · scale) = 2^(x · scale · log2 e).
    const float scale_log2 = scale * 1.4426950408889634f;

    fa_stage<D>(k_s, P, qb, q_stride, q0, t);
    __syncthreads();
    const int row = warp * 16 + g;  // this thread's rows of the block: row and row + 8
    unsigned qa[D / 16][4];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
        const unsigned short* p = k_s + row * P + kk * 16 + 2 * c;
        qa[kk][0] = fa_pair(p);
        qa[kk][1] = fa_pair(p + 8 * P);
        qa[kk][2] = fa_pair(p + 8);
        qa[kk][3] = fa_pair(p + 8 * P + 8);
    }

    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {NEG_INF, NEG_INF}, l[2] = {0.0f, 0.0f};
    const int query[2] = {q0 + row, q0 + row + 8};
    const int keys = min(q0 + FA_ROWS, t);  // later keys are masked for every row here

    for (int j0 = 0; j0 < keys; j0 += FA_KEYS) {
        __syncthreads();  // every warp is done with the previous tile (or with q)
        fa_stage<D>(k_s, P, kb, kv_stride, j0, t);
        fa_stage<D>(v_s, P, vb, kv_stride, j0, t);
        __syncthreads();
    
        float s[FA_KEYS / 8][4];
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            const unsigned short* p = k_s + (n * 8 + g) * P + 2 * c;
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) {
                const unsigned b[2] = {fa_pair(p + kk * 16), fa_pair(p + kk * 16 + 8)};
                mma_bf16(s[n], qa[kk], b);
            }
        }
        // Scale, mask, and the rows' new maxima (each row is spread over 4 lanes).
        float top[2] = {m[0], m[1]};
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const int key = j0 + n * 8 + 2 * c + (i & 1);
                s[n][i] = key <= query[i >> 1] ? s[n][i] * scale_log2 : NEG_INF;
                top[i >> 1] = fmaxf(top[i >> 1], s[n][i]);
            }
        }
        float alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            top[r] = fmaxf(top[r], shfl_xor(top[r], 1));
            top[r] = fmaxf(top[r], shfl_xor(top[r], 2));
            // Key 0 is in the first tile and visible to every row, so top is finite.
            alpha[r] = exp2f(m[r] - top[r]);
            m[r] = top[r];
        }
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                s[n][i] = exp2f(s[n][i] - m[i >> 1]);
                sum[i >> 1] += s[n][i];
            }
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) l[r] = l[r] * alpha[r] + sum[r];
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            o[n][0] *= alpha[0];
            o[n][1] *= alpha[0];
            o[n][2] *= alpha[1];
            o[n][3] *= alpha[1];
        }
        // probabilities · v: two score fragments (16 × 8 each, C layout) are one A
        // fragment over 16 keys; lane i < 16 names row kk·16 + i of v for ldmatrix.
#pragma unroll
        for (int kk = 0; kk < FA_KEYS / 16; ++kk) {
            const unsigned pa[4] = {
                fa_pack(s[2 * kk][0], s[2 * kk][1]), fa_pack(s[2 * kk][2], s[2 * kk][3]),
                fa_pack(s[2 * kk + 1][0], s[2 * kk + 1][1]), fa_pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < D / 8; ++n) {
                unsigned b[2];
                ldmatrix_x2_trans(b, v_s + (kk * 16 + (lane & 15)) * P + n * 8);
                mma_bf16(o[n], pa, b);
            }
        }
    }

    // Each lane summed its own columns of a row; the row's sum is over its 4 lanes.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += shfl_xor(l[r], 1);
        l[r] += shfl_xor(l[r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        if (query[r] >= t) continue;
        const float inv = 1.0f / l[r];
        unsigned short* dst = out + ((long long)batch * t + query[r]) * q_stride + (long long)head * D + 2 * c;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            *(unsigned*)(dst + n * 8) = fa_pack(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
        }
    }
}

extern "C" __global__ void __launch_bounds__(FA_THREADS)
flash_attention_bf16_d64(const unsigned short* q, const unsigned short* k, const unsigned short* v,
                         unsigned short* out, int t, int heads, int kv_heads, float scale) {
    flash_attention<64>(q, k, v, out, t, heads, kv_heads, scale);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS)
flash_attention_bf16_d128(const unsigned short* q, const unsigned short* k, const unsigned short* v,
                          unsigned short* out, int t, int heads, int kv_heads, float scale) {
    flash_attention<128>(q, k, v, out, t, heads, kv_heads, scale);
}
