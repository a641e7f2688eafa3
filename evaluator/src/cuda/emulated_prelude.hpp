// The primitives our kernels (flash_attention.cu, kernels.cu) are written against,
// emulated on the CPU so that the tests run the kernels' own source without a GPU: every CUDA thread is an OS thread,
// blocks run one after another, `__shared__` arrays are statics (one block at a time uses
// them), and the warp-collective operations (`shfl_xor`, `mma_bf16`, `ldmatrix`) exchange
// values through per-warp staging with a barrier per warp. `mma_bf16` and `ldmatrix`
// rebuild whole tiles from the 32 lanes' registers and addresses by the fragment layouts
// of PTX's mma.m16n8k16 (.bf16) and ldmatrix.m8n8, so a kernel that puts a value in the
// wrong register computes a wrong result here as it would on the device. `cp.async`
// copies land as late as the kernel allows (at the wait that covers them), so reading a
// tile before waiting for it reads stale data here too; misaligned addresses abort.
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define NEG_INF (-INFINITY)

struct dim3 { unsigned x = 0, y = 0, z = 0; };
thread_local dim3 threadIdx;
dim3 blockIdx, blockDim, gridDim;

struct alignas(16) uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline int min(int a, int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }

namespace emulation {
constexpr int MAX_WARPS = 32;
std::barrier<>* block_barrier;
std::barrier<>* warp_barrier[MAX_WARPS];
double value_stage[MAX_WARPS][32];  // exact for float and double
unsigned a_stage[MAX_WARPS][32][4];
unsigned b_stage[MAX_WARPS][32][2];
const unsigned short* row_stage[MAX_WARPS][32];

inline void aligned16(const void* p, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
        std::fprintf(stderr, "%s: address %p is not 16-byte aligned\n", what, p);
        std::abort();
    }
}

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

// Every lane of the warp takes part (the full mask), as in all our kernels.
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
    using namespace emulation;
    value_stage[warp()][lane()] = v;
    warp_sync();
    const T other = (T)value_stage[warp()][lane() ^ mask];
    warp_sync();
    return other;
}
inline float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }

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

// ldmatrix.m8n8.xN: matrix m is the 8 rows named by lanes 8m..8m+7. Lane l receives row
// l / 4, columns 2(l % 4) and 2(l % 4) + 1; transposed, column l / 4 of rows 2(l % 4) and
// 2(l % 4) + 1. The lower index goes to the low half.
template <int N, bool TRANSPOSED>
inline void ldmatrix(unsigned (&r)[N], const unsigned short* row) {
    using namespace emulation;
    aligned16(row, "ldmatrix");
    const int w = warp(), l = lane();
    row_stage[w][l] = row;
    warp_sync();
    for (int m = 0; m < N; ++m) {
        unsigned lo, hi;
        if (!TRANSPOSED) {
            const unsigned short* src = row_stage[w][8 * m + l / 4];
            lo = src[2 * (l % 4)];
            hi = src[2 * (l % 4) + 1];
        } else {
            lo = row_stage[w][8 * m + 2 * (l % 4)][l / 4];
            hi = row_stage[w][8 * m + 2 * (l % 4) + 1][l / 4];
        }
        r[m] = lo | (hi << 16);
    }
    warp_sync();
}
inline void ldmatrix_x4(unsigned (&r)[4], const unsigned short* row) { ldmatrix<4, false>(r, row); }
inline void ldmatrix_x4_trans(unsigned (&r)[4], const unsigned short* row) { ldmatrix<4, true>(r, row); }

// cp.async: this thread's copies, grouped at each commit, done at the wait that needs them
// (the latest a copy may land), or with `eager_copies` when issued (the earliest). A
// kernel must be right both ways: late copies expose reading a tile before waiting for
// it; early ones, under ThreadSanitizer, overwriting a tile another warp still reads.
namespace emulation {
struct Copy { void* dst; const void* src; bool valid; };
bool eager_copies = false;
thread_local std::vector<Copy> open_group;
thread_local std::deque<std::vector<Copy>> pending_groups;
inline void complete(const Copy& c) {
    if (c.valid) std::memcpy(c.dst, c.src, 16);
    else std::memset(c.dst, 0, 16);
}
}  // namespace emulation
inline void cp_async_16(void* dst, const void* src, bool valid) {
    emulation::aligned16(dst, "cp.async destination");
    if (valid) emulation::aligned16(src, "cp.async source");
    if (emulation::eager_copies) emulation::complete({dst, src, valid});
    else emulation::open_group.push_back({dst, src, valid});
}
inline void cp_async_commit() {
    emulation::pending_groups.push_back(std::move(emulation::open_group));
    emulation::open_group.clear();
}
template <int N>
inline void cp_async_wait() {
    auto& pending = emulation::pending_groups;
    while ((int)pending.size() > N) {
        for (const auto& c : pending.front()) emulation::complete(c);
        pending.pop_front();
    }
}

inline float exp2_approx(float x) { return std::exp2(x); }

inline unsigned bf16_bits(float x) {
    const unsigned u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
inline unsigned pack_bf16x2(float lo, float hi) { return bf16_bits(lo) | (bf16_bits(hi) << 16); }
