//! Read-only memory maps of untrusted files (checkpoint shards, token shards).
//!
//! The only `unsafe` in the crate lives here, in two small functions, each with the
//! argument for why it is sound in the way the evaluator uses it.

use std::fs::File;
use std::path::Path;

pub use memmap2::Mmap;

use crate::error::{EvalError, Result};

/// Maps `path` read-only.
///
/// The mapping is private and read-only, and its bytes are only ever treated as
/// untrusted input: every offset is validated against the mapped length before use.
#[allow(unsafe_code)]
pub fn map_file(path: &Path) -> Result<Mmap> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    // SAFETY: `Mmap::map` is unsafe because another process could truncate or modify the
    // file while it is mapped, which Rust cannot rule out. We open the file read-only,
    // never hand out references that outlive the loading of the checkpoint, and treat
    // the contents as untrusted bytes (any value is valid for `u8`); a concurrent
    // truncation can at worst raise SIGBUS, the same hazard as any mmap-based loader, and
    // checkpoints under evaluation are not modified by the evaluator's host.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| EvalError::io(path, e))?;
    Ok(map)
}

/// Tells the kernel the pages in `range` of a read-only mapping are no longer needed,
/// so loading a large checkpoint does not keep both the mapped file and the copied
/// tensors resident.
#[allow(unsafe_code)]
pub fn release_pages(map: &Mmap, offset: usize, len: usize) {
    // SAFETY: the mapping is private and read-only, so MADV_DONTNEED discards no data:
    // a later access refaults the same bytes from the file. The caller has finished
    // copying this range and holds no reference into it.
    let result =
        unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
    // Purely an optimisation: failure only means the pages stay resident.
    if let Err(e) = result {
        tracing::debug!("madvise(DONTNEED) failed: {e}");
    }
}
