// Test driver for the emulated kernel: `main D BATCH T HEADS KV_HEADS SCALE IN OUT [eager]`,
// where IN holds q, k and v (bf16 bits, little-endian, [batch, t, heads or kv_heads, D])
// one after another, and OUT receives the output [batch, t, heads, D]; `eager` lands
// cp.async copies when issued instead of when waited for.
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc != 9 && argc != 10) { std::fprintf(stderr, "usage: D BATCH T HEADS KV_HEADS SCALE IN OUT [eager]\n"); return 2; }
    emulation::eager_copies = argc == 10 && std::string(argv[9]) == "eager";
    const int d = std::atoi(argv[1]), batch = std::atoi(argv[2]), t = std::atoi(argv[3]);
    const int heads = std::atoi(argv[4]), kv_heads = std::atoi(argv[5]);
    const float scale = std::strtof(argv[6], nullptr);
    const size_t nq = (size_t)batch * t * heads * d, nkv = (size_t)batch * t * kv_heads * d;
    std::vector<unsigned short> in(nq + 2 * nkv), out(nq, 0xffffu);
    FILE* f = std::fopen(argv[7], "rb");
    if (!f || std::fread(in.data(), 2, in.size(), f) != in.size()) { std::fprintf(stderr, "short input\n"); return 2; }
    std::fclose(f);
    const unsigned short *q = in.data(), *k = q + nq, *v = k + nkv;
    const dim3 grid{(unsigned)heads, (unsigned)batch, (unsigned)((t + FA_ROWS - 1) / FA_ROWS)};
    emulation::launch(grid, FA_THREADS, [&] {
        if (d == 64) flash_attention_bf16_d64(q, k, v, out.data(), t, heads, kv_heads, scale);
        else flash_attention_bf16_d128(q, k, v, out.data(), t, heads, kv_heads, scale);
    });
    f = std::fopen(argv[8], "wb");
    if (!f || std::fwrite(out.data(), 2, out.size(), f) != out.size()) { std::fprintf(stderr, "cannot write\n"); return 1; }
    std::fclose(f);
    return 0;
}
