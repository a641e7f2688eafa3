//! Our CUDA kernels' own source, run on the CPU (tests only; no GPU, no CUDA feature).
//!
//! `cuda/emulated_prelude.hpp` emulates what the kernels use of CUDA: every thread an OS
//! thread, blocks one after another, `__shared__` as statics, and the warp-collective
//! operations (shuffles, tensor-core `mma`, `ldmatrix`) rebuilt from PTX's definitions.
//! A kernel source plus the prelude plus a small driver compile with the system's C++
//! compiler into a program that reads inputs from files and writes the kernel's output.
//! Kernels that only a GPU could run otherwise are checked here, on every `cargo test`,
//! against the CPU code the device self-check compares them with.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Tensor};

pub(crate) type TestResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

pub(crate) const PRELUDE: &str = include_str!("cuda/emulated_prelude.hpp");

/// Compiles the prelude, `kernel` and `driver` into `dir/name`, with extra flags.
pub(crate) fn compile(
    dir: &Path,
    name: &str,
    kernel: &str,
    driver: &str,
    flags: &[&str],
) -> TestResult<PathBuf> {
    let (cpp, bin) = (dir.join(format!("{name}.cpp")), dir.join(name));
    std::fs::write(&cpp, [PRELUDE, kernel, driver].join("\n"))?;
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let out = Command::new(&compiler)
        .args(["-std=c++20", "-O1", "-pthread", "-fno-strict-aliasing"])
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(&cpp)
        .output()
        .map_err(|e| format!("{compiler} (a C++20 compiler) is needed: {e}"))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(bin)
}

/// Runs a compiled driver; fails on a non-zero exit or anything on stderr (an abort's
/// message, a sanitizer's report).
pub(crate) fn run<I, S>(bin: &Path, args: I) -> TestResult
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(bin).args(args).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{}: {stderr}",
        out.status
    );
    Ok(())
}

/// A tensor's elements as the little-endian bytes a kernel reads (f32, bf16 bits, u32).
pub(crate) fn bytes(x: &Tensor) -> TestResult<Vec<u8>> {
    let x = x.flatten_all()?;
    Ok(match x.dtype() {
        DType::F32 => x
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::BF16 => x
            .to_vec1::<half::bf16>()?
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect(),
        DType::U32 => x
            .to_vec1::<u32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        other => return Err(format!("no byte layout for {other:?}").into()),
    })
}

/// Elements of `dtype` (f32, bf16 or f64) read back from a kernel's output file, as f64.
pub(crate) fn values(path: &Path, dtype: DType) -> TestResult<Vec<f64>> {
    let raw = std::fs::read(path)?;
    Ok(match dtype {
        DType::F32 => raw
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            .collect(),
        DType::BF16 => raw
            .chunks_exact(2)
            .map(|b| f64::from(half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]]))))
            .collect(),
        DType::F64 => raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            .collect(),
        other => return Err(format!("no byte layout for {other:?}").into()),
    })
}

/// The largest difference of `got` from `want`, relative to `max(1, |want|)`; NaN if any
/// value is NaN, infinite if the lengths differ.
pub(crate) fn worst_relative(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    got.iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
        .fold(0.0, |m, d| if d.is_nan() || d > m { d } else { m })
}

/// `kernels.cu` (the causal softmax, the cross-entropy and SwiGLU's gate) against the CPU
/// paths they stand in for, on the inputs of the device self-check
/// (`cuda_kernels::check_kernels`): partial warps, rows longer than a block's threads,
/// targets past the first pass, a grid smaller than the data.
#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::causal_softmax::CausalSoftmax;

    const KERNELS: &str = include_str!("cuda/kernels.cu");
    const DRIVER: &str = include_str!("cuda/emulated_kernels_main.cpp");

    fn name(dtype: DType) -> &'static str {
        if dtype == DType::BF16 {
            "bf16"
        } else {
            "f32"
        }
    }

    #[test]
    fn the_emulated_kernels_match_the_cpu() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bin = compile(dir.path(), "kernels", KERNELS, DRIVER, &[])?;
        let file = |n: &str| dir.path().join(n);
        let cpu = Device::Cpu;
        let scores = Tensor::randn(0f32, 3.0, (2, 2, 10, 705), &cpu)?;
        let logits = Tensor::randn(0f32, 4.0, (6, 3001), &cpu)?;
        let targets = Tensor::from_vec(vec![0u32, 3000, 5, 1024, 2047, 1500], 6, &cpu)?;
        let gate = (Tensor::randn(0f32, 3.0, (3, 1001), &cpu)? - 1.0)?;
        let up = Tensor::randn(0f32, 1.0, (3, 1001), &cpu)?;
        for (dtype, bound) in [(DType::F32, 1e-5), (DType::BF16, 8e-3)] {
            let d = name(dtype);

            let x = scores.to_dtype(dtype)?;
            let op = CausalSoftmax { n: 5, start: 700 };
            let want = x
                .apply_op1_no_bwd(&op)?
                .flatten_all()?
                .to_dtype(DType::F64)?;
            std::fs::write(file("scores"), bytes(&x)?)?;
            run(
                &bin,
                [
                    "softmax",
                    d,
                    "40",
                    "705",
                    "5",
                    "700",
                    file("scores").to_str().unwrap_or_default(),
                    file("probs").to_str().unwrap_or_default(),
                ],
            )?;
            let diff = worst_relative(&values(&file("probs"), dtype)?, &want.to_vec1()?);
            assert!(diff <= bound, "causal softmax ({d}) off by {diff}");

            let x = logits.to_dtype(dtype)?;
            let want = crate::loss::fused_token_nll(&x, &targets)?.to_vec1::<f64>()?;
            std::fs::write(file("logits"), bytes(&x)?)?;
            std::fs::write(file("targets"), bytes(&targets)?)?;
            run(
                &bin,
                [
                    "nll",
                    d,
                    "6",
                    "3001",
                    file("logits").to_str().unwrap_or_default(),
                    file("targets").to_str().unwrap_or_default(),
                    file("nll").to_str().unwrap_or_default(),
                ],
            )?;
            let diff = worst_relative(&values(&file("nll"), DType::F64)?, &want);
            assert!(diff <= 1e-5, "cross-entropy ({d}) off by {diff}");

            let (g, u) = (gate.to_dtype(dtype)?, up.to_dtype(dtype)?);
            let f32s = |x: &Tensor| x.to_dtype(DType::F32);
            let want = crate::swiglu::fused_silu_mul(&f32s(&g)?, &f32s(&u)?)?
                .to_dtype(dtype)?
                .flatten_all()?
                .to_dtype(DType::F64)?;
            std::fs::write(file("gate"), bytes(&g)?)?;
            std::fs::write(file("up"), bytes(&u)?)?;
            run(
                &bin,
                [
                    "silu",
                    d,
                    "3003",
                    "2",
                    file("gate").to_str().unwrap_or_default(),
                    file("up").to_str().unwrap_or_default(),
                    file("gated").to_str().unwrap_or_default(),
                ],
            )?;
            let diff = worst_relative(&values(&file("gated"), dtype)?, &want.to_vec1()?);
            assert!(diff <= bound, "silu-mul ({d}) off by {diff}");
        }
        Ok(())
    }
}
