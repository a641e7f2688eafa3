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
pub fn map_file(path: &Path) -> Result<Mmap> {
    Ok(map_file_kept(path)?.1)
}

/// [`map_file`], also returning the open file, whose metadata tells later whether the
/// file was changed in place after it was mapped (see `checkpoint::LayerStore`).
#[allow(unsafe_code)]
pub fn map_file_kept(path: &Path) -> Result<(File, Mmap)> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    // SAFETY: `Mmap::map` is unsafe because another process could truncate or modify the
    // file while it is mapped, which Rust cannot rule out. We open the file read-only and
    // treat the contents as untrusted bytes (any value is valid for `u8`). References
    // into the map live while a checkpoint loads, or, with streamed layers, while it is
    // scored; before each streamed read the file's length and modification time are
    // checked against those at mapping, so a file changed in place stops the run instead
    // of feeding it other weights. A truncation racing that check can at worst raise
    // SIGBUS, the same hazard as any mmap-based loader; checkpoints under evaluation are
    // the evaluator's own downloads (or the caller's files) and not modified by its host.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| EvalError::io(path, e))?;
    Ok((file, map))
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
