// The primitives flash_attention.cu is written against, emulated on the CPU so that the
// tests run the kernel's own source without a GPU: every CUDA thread is an OS thread,
// blocks run one after another, `__shared__` arrays are statics (one block at a time uses
// them), and the warp-collective operations (`shfl_xor`, `mma_bf16`) exchange values
// through per-warp staging with a barrier per warp. `mma_bf16` rebuilds the whole A and
// B tiles from the 32 lanes' registers by the fragment layout of PTX's
// mma.m16n8k16 (.bf16), so a kernel that puts a value in the wrong register computes a
// wrong result here as it would on the device.
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(n)
#define NEG_INF (-INFINITY)

struct dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local dim3 threadIdx;
dim3 blockIdx, blockDim, gridDim;

struct alignas(16) uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int min(int a, int b) { return a < b ? a : b; }

namespace emulation {
constexpr int MAX_WARPS = 32;
std::barrier<>* block_barrier;
std::barrier<>* warp_barrier[MAX_WARPS];
float value_stage[MAX_WARPS][32];
unsigned a_stage[MAX_WARPS][32][4];
unsigned b_stage[MAX_WARPS][32][2];
const unsigned short* row_stage[MAX_WARPS][32];

inline int warp() { return threadIdx.x / 32; }
inline int lane() { return threadIdx.x % 32; }
inline void warp_sync() { warp_barrier[warp()]->arrive_and_wait(); }
inline float bf16(unsigned bits) { return __uint_as_float((bits & 0xffffu) << 16); }

// Runs `kernel` over the grid, blocks in order, `threads` (a multiple of 32) per block.
template <typename Kernel>
void launch(dim3 grid, unsigned threads, Kernel kernel) {
    gridDim = grid;
    blockDim = {threads, 1, 1};
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                blockIdx = {x, y, z};
                std::barrier<> block(threads);
                std::vector<std::barrier<>*> warps;
                for (unsigned w = 0; w < threads / 32; ++w) warps.push_back(warp_barrier[w] = new std::barrier<>(32));
                block_barrier = &block;
                std::vector<std::thread> lanes;
                for (unsigned i = 0; i < threads; ++i)
                    lanes.emplace_back([i, &kernel] { threadIdx = {i, 0, 0}; kernel(); });
                for (auto& l : lanes) l.join();
                for (auto* w : warps) delete w;
            }
}
}  // namespace emulation

inline void __syncthreads() { emulation::block_barrier->arrive_and_wait(); }

inline float shfl_xor(float v, int mask) {
    using namespace emulation;
    value_stage[warp()][lane()] = v;
    warp_sync();
    const float other = value_stage[warp()][lane() ^ mask];
    warp_sync();
    return other;
}

inline void mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    using namespace emulation;
    const int w = warp();
    std::memcpy(a_stage[w][lane()], a, sizeof a);
    std::memcpy(b_stage[w][lane()], b, sizeof b);
    warp_sync();
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; ++l) {
        const int g = l / 4, c = l % 4;
        for (int i = 0; i < 8; ++i) {  // a_i: register i / 2, half i % 2
            const unsigned bits = a_stage[w][l][i / 2] >> (16 * (i % 2));
            A[(i & 2) ? g + 8 : g][2 * c + (i & 1) + (i >= 4 ? 8 : 0)] = bf16(bits);
        }
        for (int i = 0; i < 4; ++i) {
            const unsigned bits = b_stage[w][l][i / 2] >> (16 * (i % 2));
            B[2 * c + (i & 1) + (i >= 2 ? 8 : 0)][g] = bf16(bits);
        }
    }
    warp_sync();
    const int g = lane() / 4, c = lane() % 4;
    for (int i = 0; i < 4; ++i) {
        const int r = g + (i >= 2 ? 8 : 0), col = 2 * c + (i & 1);
        float acc = 0.0f;
        for (int k = 0; k < 16; ++k) acc += A[r][k] * B[k][col];
        d[i] += acc;
    }
}

// Matrix m (of 2) is the 8 rows named by lanes 8m..8m+7; transposed, lane l receives
// column l / 4 of rows 2(l % 4) and 2(l % 4) + 1, the lower row in the low half.
inline void ldmatrix_x2_trans(unsigned (&r)[2], const unsigned short* row) {
    using namespace emulation;
    const int w = warp(), l = lane();
    row_stage[w][l] = row;
    warp_sync();
    for (int m = 0; m < 2; ++m) {
        const unsigned lo = row_stage[w][8 * m + 2 * (l % 4)][l / 4];
        const unsigned hi = row_stage[w][8 * m + 2 * (l % 4) + 1][l / 4];
        r[m] = lo | (hi << 16);
    }
    warp_sync();
}
