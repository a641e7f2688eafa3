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

/// `kernels.cu` (the causal softmax, the cross-entropy and SwiGLU's gate) against the CPU
/// paths they stand in for, on the device self-check's inputs ([`crate::kernel_checks`]),
/// here with a grid smaller than SwiGLU's data too.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel_checks::{worst_relative, Inputs, DTYPES};

    const KERNELS: &str = include_str!("cuda/kernels.cu");
    const DRIVER: &str = include_str!("cuda/emulated_kernels_main.cpp");

    #[test]
    fn the_emulated_kernels_match_the_cpu() -> TestResult {
        let dir = tempfile::tempdir()?;
        let bin = compile(dir.path(), "kernels", KERNELS, DRIVER, &[])?;
        let file = |n: &str| dir.path().join(n);
        // Writes the inputs' files, runs `kernel` on them, reads its output back.
        let emulate = |args: &[&str], inputs: &[(&str, &Tensor)], output: DType| {
            let mut argv: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            for (name, x) in inputs {
                std::fs::write(file(name), bytes(x)?)?;
                argv.push(file(name).into());
            }
            argv.push(file("out").into());
            run(&bin, argv)?;
            values(&file("out"), output)
        };
        let inputs = Inputs::draw()?;
        for (dtype, bound) in DTYPES {
            let d = if dtype == DType::BF16 { "bf16" } else { "f32" };
            let x = |t: &Tensor| t.to_dtype(dtype);

            let got = emulate(
                &["softmax", d, "40", "705", "5", "700"],
                &[("scores", &x(&inputs.scores)?)],
                dtype,
            )?;
            let diff = worst_relative(&got, &inputs.softmax(dtype)?);
            assert!(diff <= bound, "causal softmax ({d}) off by {diff}");

            let got = emulate(
                &["nll", d, "6", "3001"],
                &[
                    ("logits", &x(&inputs.logits)?),
                    ("targets", &inputs.targets),
                ],
                DType::F64,
            )?;
            let diff = worst_relative(&got, &inputs.nll(dtype)?);
            assert!(diff <= 1e-5, "cross-entropy ({d}) off by {diff}");

            // 2 blocks of 256 threads for 3003 elements: the grid-stride loop runs.
            let got = emulate(
                &["silu", d, "3003", "2"],
                &[("gate", &x(&inputs.gate)?), ("up", &x(&inputs.up)?)],
                dtype,
            )?;
            let diff = worst_relative(&got, &inputs.silu_mul(dtype)?);
            assert!(diff <= bound, "silu-mul ({d}) off by {diff}");
        }
        Ok(())
    }
}
