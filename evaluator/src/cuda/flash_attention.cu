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
// rows. Per tile of 64 keys each warp computes its 16 × 64 scores with mma.m16n8k16,
// updates its rows' running maximum and sum, and adds probabilities · v to its output
// accumulators, rescaled when the maximum grows. k and v are copied into shared memory
// asynchronously (cp.async), each while the other is in use: v's tile arrives during the
// scores, the next k's during probabilities · v. Fragments of k come from ldmatrix, of v
// from ldmatrix.trans (v stays row-major).
//
// From the prelude (the device's, or the CPU emulation's in the tests):
//   mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2])  d += a·b,
//       the m16n8k16 fragments of PTX's `mma` (row-major A, column-major B);
//   ldmatrix_x4(unsigned (&r)[4], const unsigned short* row), ldmatrix_x4_trans(...)
//       PTX's ldmatrix.m8n8.x4 (.trans) from shared memory: lane i names row i % 8 of
//       matrix i / 8, and r[j] holds this lane's pair of matrix j;
//   cp_async_16(dst, src, valid), cp_async_commit(), cp_async_wait<N>()  PTX's
//       cp.async.cg of 16 bytes into shared memory (zeros if !valid), its groups, and
//       waiting until at most N of this thread's groups are pending;
//   shfl_xor(float v, int mask)  the value of lane (lane ^ mask) of this warp;
//   exp2_approx(float)  2^x (ex2.approx.ftz: 2^-inf = 0);
//   pack_bf16x2(float lo, float hi)  both rounded to bf16 (nearest even), lo in the low half;
//   NEG_INF, fmaxf, fmaf, min, __syncthreads, threadIdx, blockIdx.
//
// Fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and
// c = lane % 4: A (16 × 16) registers hold rows {g, g+8, g, g+8}, columns
// {2c, 2c, 2c+8, 2c+8} (+0/+1 in the low/high half); B (16 × 8) registers hold rows
// {2c, 2c+8} (+0/+1), column g; C (16 × 8) holds (g, 2c), (g, 2c+1), (g+8, 2c), (g+8, 2c+1).

#define FA_ROWS 64
#define FA_KEYS 64
#define FA_THREADS 128

__device__ __forceinline__ unsigned fa_pair(const unsigned short* p) {
    return *(const unsigned*)p;
}

// Starts copying rows first..first+FA_KEYS of a [t, stride] bf16 matrix (D wide) into
// shared rows of `pitch` elements, zeros past t, as one cp.async group.
template <int D>
__device__ __forceinline__ void fa_stage(unsigned short* dst, int pitch, const unsigned short* src,
                                         long long stride, int first, int t) {
    constexpr int CHUNKS = D / 8;  // 16-byte pieces of a row
    constexpr int PER_THREAD = FA_KEYS * CHUNKS / FA_THREADS;
#pragma unroll
    for (int j = 0; j < PER_THREAD; ++j) {
        const int i = threadIdx.x + j * FA_THREADS;
        const int r = i / CHUNKS, col = (i % CHUNKS) * 8;
        const bool valid = first + r < t;
        // Past t nothing is read; the source address stays a valid one anyway.
        cp_async_16(dst + r * pitch + col, src + (valid ? (first + r) * stride + col : 0), valid);
    }
    cp_async_commit();
}

template <int D>
__device__ __forceinline__ void flash_attention(const unsigned short* q, const unsigned short* k,
                                                const unsigned short* v, unsigned short* out, int t,
                                                int heads, int kv_heads, float scale) {
    // Row pitches padded by 16 bytes: the 8 rows a fragment load touches fall in
    // different banks.
    constexpr int P = D + 8;
    __shared__ __align__(16) unsigned short k_s[FA_KEYS * P];  // first q's tile, then k's
    __shared__ __align__(16) unsigned short v_s[FA_KEYS * P];

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, c = lane & 3;
    // Grid (heads, batch, query blocks), the last query block first: the longest blocks
    // of every head start before the short ones.
    const int head = blockIdx.x, batch = blockIdx.y;
    const int q0 = (gridDim.z - 1 - blockIdx.z) * FA_ROWS;
    const int kv_head = head / (heads / kv_heads);
    const long long q_stride = (long long)heads * D, kv_stride = (long long)kv_heads * D;
    const unsigned short* qb = q + (long long)batch * t * q_stride + (long long)head * D;
    const unsigned short* kb = k + (long long)batch * t * kv_stride + (long long)kv_head * D;
    const unsigned short* vb = v + (long long)batch * t * kv_stride + (long long)kv_head * D;
    // Scores are taken to log2 units: exp(x · scale) = 2^(x · scale · log2 e).
    const float scale_log2 = scale * 1.4426950408889634f;

    fa_stage<D>(k_s, P, qb, q_stride, q0, t);
    cp_async_wait<0>();
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
    __syncthreads();  // q is in registers everywhere before k overwrites it

    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m[2] = {NEG_INF, NEG_INF}, l[2] = {0.0f, 0.0f};
    const int query[2] = {q0 + row, q0 + row + 8};
    const int keys = min(q0 + FA_ROWS, t);  // later keys are masked for every row here

    fa_stage<D>(k_s, P, kb, kv_stride, 0, t);
    fa_stage<D>(v_s, P, vb, kv_stride, 0, t);
    for (int j0 = 0; j0 < keys; j0 += FA_KEYS) {
        const bool more = j0 + FA_KEYS < keys;
        cp_async_wait<1>();  // this tile's k has landed (its v may still be on the way)
        __syncthreads();     // ... for every thread's part of it

        float s[FA_KEYS / 8][4];
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) {
#pragma unroll
            for (int kk = 0; kk < D / 16; kk += 2) {
                // Keys n·8..n·8+7, head columns kk·16..kk·16+31: B fragments of two steps.
                unsigned b[4];
                ldmatrix_x4(b, k_s + (n * 8 + (lane & 7)) * P + kk * 16 + (lane >> 3) * 8);
                const unsigned b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
                mma_bf16(s[n], qa[kk], b0);
                mma_bf16(s[n], qa[kk + 1], b1);
            }
        }
        // The causal mask cuts only the diagonal tile (keys q0..q0+63); every key of an
        // earlier tile is before every query of this block. Then the rows' new maxima
        // (each row is spread over 4 lanes).
        const bool diagonal = j0 == q0;
        float top[2] = {NEG_INF, NEG_INF};
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (diagonal && j0 + n * 8 + 2 * c + (i & 1) > query[i >> 1]) s[n][i] = NEG_INF;
                top[i >> 1] = fmaxf(top[i >> 1], s[n][i]);
            }
        }
        float alpha[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            top[r] = fmaxf(top[r], shfl_xor(top[r], 1));
            top[r] = fmaxf(top[r], shfl_xor(top[r], 2));
            // Key 0 is in the first tile and visible to every row, so the maximum is
            // finite from the first tile on (and scale > 0 keeps it the maximum).
            const float next = fmaxf(m[r], top[r] * scale_log2);
            alpha[r] = exp2_approx(m[r] - next);
            m[r] = next;
        }
#pragma unroll
        for (int n = 0; n < FA_KEYS / 8; ++n) {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                s[n][i] = exp2_approx(fmaf(s[n][i], scale_log2, -m[i >> 1]));
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

        cp_async_wait<0>();  // this tile's v has landed
        __syncthreads();     // ... everywhere, and every warp is done reading k
        if (more) fa_stage<D>(k_s, P, kb, kv_stride, j0 + FA_KEYS, t);  // during p · v

        // probabilities · v: two score fragments (16 × 8 each, C layout) are one A
        // fragment over 16 keys.
#pragma unroll
        for (int kk = 0; kk < FA_KEYS / 16; ++kk) {
            const unsigned pa[4] = {
                pack_bf16x2(s[2 * kk][0], s[2 * kk][1]), pack_bf16x2(s[2 * kk][2], s[2 * kk][3]),
                pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int n = 0; n < D / 8; n += 2) {
                // Keys kk·16..kk·16+15, head columns n·8..n·8+15, transposed: B fragments
                // of two column groups.
                unsigned b[4];
                ldmatrix_x4_trans(b, v_s + (kk * 16 + (lane & 15)) * P + (n + (lane >> 4)) * 8);
                const unsigned b0[2] = {b[0], b[1]}, b1[2] = {b[2], b[3]};
                mma_bf16(o[n], pa, b0);
                mma_bf16(o[n + 1], pa, b1);
            }
        }
        __syncthreads();  // every warp is done reading v
        if (more) fa_stage<D>(v_s, P, vb, kv_stride, j0 + FA_KEYS, t);  // during the next scores
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
            *(unsigned*)(dst + n * 8) = pack_bf16x2(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
        }
    }
}

// Blocks per SM the registers must allow (ptxas for sm_90): at head size 64, 4 blocks
// (128 registers, 8 bytes spilled; 134 unbounded, 3 blocks); at 128, 2 (252 registers, no
// spills; 3 blocks would spill 84 bytes). Not yet tuned on a GPU.
extern "C" __global__ void __launch_bounds__(FA_THREADS, 4)
flash_attention_bf16_d64(const unsigned short* q, const unsigned short* k, const unsigned short* v,
                         unsigned short* out, int t, int heads, int kv_heads, float scale) {
    flash_attention<64>(q, k, v, out, t, heads, kv_heads, scale);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS, 2)
flash_attention_bf16_d128(const unsigned short* q, const unsigned short* k, const unsigned short* v,
                          unsigned short* out, int t, int heads, int kv_heads, float scale) {
    flash_attention<128>(q, k, v, out, t, heads, kv_heads, scale);
}
