// The warp-level primitives flash_attention.cu is written against, on a real GPU (sm_80+:
// `mma` with bf16). The tests run the same kernel source on the CPU against
// emulated_prelude.hpp instead.

// NVRTC has no math.h: -inf by its bits.
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float shfl_xor(float v, int mask) {
    return __shfl_xor_sync(0xffffffffu, v, mask);
}

// d += a·b for one m16n8k16 tile: bf16 inputs, f32 accumulators.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// b[0], b[1]: the B fragment (16 keys × 8 columns) of a row-major shared tile, transposed
// on the way; lane i < 16 gives the address of row i (8 consecutive columns).
__device__ __forceinline__ void ldmatrix_x2_trans(unsigned (&r)[2], const unsigned short* row) {
    const unsigned address = (unsigned)__cvta_generic_to_shared(row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(address));
}
