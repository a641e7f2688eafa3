// Test driver for kernels.cu on the CPU emulation. Arrays travel as raw little-endian
// files (f32, or bf16 bits; u32 targets; f64 losses):
//   softmax f32|bf16 ROWS KEYS N START IN OUT      one block of 256 threads per row
//   nll f32|bf16 ROWS VOCAB LOGITS TARGETS OUT     one block of 1024 threads per row
//   silu f32|bf16 N BLOCKS GATE UP OUT             BLOCKS blocks of 256 threads
#include <string>

static std::vector<char> read_file(const char* path) {
    FILE* f = std::fopen(path, "rb");
    if (!f) { std::fprintf(stderr, "cannot open %s\n", path); std::exit(2); }
    std::vector<char> bytes;
    char buffer[1 << 16];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) bytes.insert(bytes.end(), buffer, buffer + n);
    std::fclose(f);
    return bytes;
}

static void write_file(const char* path, const void* data, size_t bytes) {
    FILE* f = std::fopen(path, "wb");
    if (!f || std::fwrite(data, 1, bytes, f) != bytes) { std::fprintf(stderr, "cannot write %s\n", path); std::exit(1); }
    std::fclose(f);
}

int main(int argc, char** argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: softmax|nll|silu f32|bf16 ...\n"); return 2; }
    const std::string kernel = argv[1];
    const bool bf16 = std::string(argv[2]) == "bf16";
    const size_t width = bf16 ? 2 : 4;
    if (kernel == "softmax" && argc == 9) {
        const int rows = std::atoi(argv[3]), keys = std::atoi(argv[4]), n = std::atoi(argv[5]), start = std::atoi(argv[6]);
        std::vector<char> x = read_file(argv[7]), y(x.size(), 0x55);  // every element must be written
        emulation::launch({(unsigned)rows, 1, 1}, 256, [&] {
            if (bf16) causal_softmax_bf16((const unsigned short*)x.data(), (unsigned short*)y.data(), n, start, keys);
            else causal_softmax_f32((const float*)x.data(), (float*)y.data(), n, start, keys);
        });
        write_file(argv[8], y.data(), (size_t)rows * keys * width);
    } else if (kernel == "nll" && argc == 8) {
        const int rows = std::atoi(argv[3]), vocab = std::atoi(argv[4]);
        std::vector<char> x = read_file(argv[5]), t = read_file(argv[6]);
        std::vector<double> out(rows, -1.0);
        emulation::launch({(unsigned)rows, 1, 1}, 1024, [&] {
            if (bf16) token_nll_bf16((const unsigned short*)x.data(), (const unsigned*)t.data(), out.data(), vocab);
            else token_nll_f32((const float*)x.data(), (const unsigned*)t.data(), out.data(), vocab);
        });
        write_file(argv[7], out.data(), out.size() * sizeof(double));
    } else if (kernel == "silu" && argc == 8) {
        const long long n = std::atoll(argv[3]);
        const unsigned blocks = (unsigned)std::atoi(argv[4]);
        std::vector<char> g = read_file(argv[5]), u = read_file(argv[6]), out(n * width, 0x55);
        emulation::launch({blocks, 1, 1}, 256, [&] {
            if (bf16) silu_mul_bf16((const unsigned short*)g.data(), (const unsigned short*)u.data(), (unsigned short*)out.data(), n);
            else silu_mul_f32((const float*)g.data(), (const float*)u.data(), (float*)out.data(), n);
        });
        write_file(argv[7], out.data(), out.size());
    } else {
        std::fprintf(stderr, "unknown kernel or wrong arguments\n");
        return 2;
    }
    return 0;
}
