//! The public/private split of scoring windows.
//!
//! Window `i` is public when `HMAC-SHA256(key = phase secret, message = "ascent-split-v1"
//! ‖ i as u64 little-endian)`, read as a big-endian integer from its first 8 bytes and
//! divided by 2^64, is below the phase's public share. HMAC makes the assignment
//! unpredictable without the secret (so nobody can tune on exactly the public windows)
//! yet reproducible by anyone who holds it, and it depends only on the window index, so
//! it does not change when more windows are scored. This is a pure function shared by the
//! server, the workers and the CLI.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Domain-separation tag, so the same secret used elsewhere yields unrelated bits here.
const TAG: &[u8] = b"ascent-split-v1";

/// Which part of the leaderboard a window counts towards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Public,
    Private,
}

/// Assigns window `index` to a part, given the phase secret and the public share in
/// [0, 1] (values outside are clamped; NaN counts as 0).
pub fn window_part(secret: &[u8], index: u64, public_share: f64) -> Part {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Part::Private;
    };
    mac.update(TAG);
    mac.update(&index.to_le_bytes());
    let digest = mac.finalize().into_bytes();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let draw = u64::from_be_bytes(head) as f64 / 18_446_744_073_709_551_616.0; // 2^64
    let share = if public_share.is_nan() {
        0.0
    } else {
        public_share.clamp(0.0, 1.0)
    };
    if draw < share {
        Part::Public
    } else {
        Part::Private
    }
}

/// Whether the first `windows` windows give both parts at least one window: a phase's
/// secret is chosen so that they do, or one of its scores would be undefined.
pub fn covers_both_parts(secret: &[u8], windows: u64, public_share: f64) -> bool {
    let mut seen = (false, false);
    for index in 0..windows {
        match window_part(secret, index, public_share) {
            Part::Public => seen.0 = true,
            Part::Private => seen.1 = true,
        }
        if seen == (true, true) {
            return true;
        }
    }
    false
}

/// The part of each of the first `windows` windows.
pub fn window_parts(secret: &[u8], windows: u64, public_share: f64) -> Vec<Part> {
    (0..windows)
        .map(|index| window_part(secret, index, public_share))
        .collect()
}

/// Each window's mean loss per token, taken from its summed loss (`window_nll`, as a
/// worker reports it) and kept only for the windows of `part`.
pub fn part_window_means(
    window_nll: &[f64],
    tokens_per_window: u32,
    parts: &[Part],
    part: Part,
) -> Vec<f64> {
    let tokens = f64::from(tokens_per_window.max(1));
    window_nll
        .iter()
        .zip(parts)
        .filter(|(_, p)| **p == part)
        .map(|(nll, _)| nll / tokens)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_needs_a_window_in_each_part() {
        assert!(!covers_both_parts(b"s", 1, 0.3));
        assert!(!covers_both_parts(b"s", 10, 0.0));
        assert!(!covers_both_parts(b"s", 10, 1.0));
        assert!(covers_both_parts(b"s", 200, 0.3));
    }

    #[test]
    fn split_is_deterministic_and_keyed() {
        let a: Vec<Part> = (0..64).map(|i| window_part(b"phase-1", i, 0.3)).collect();
        let b: Vec<Part> = (0..64).map(|i| window_part(b"phase-1", i, 0.3)).collect();
        let c: Vec<Part> = (0..64).map(|i| window_part(b"phase-2", i, 0.3)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn share_is_respected() {
        let n = 20_000;
        let public = (0..n)
            .filter(|&i| window_part(b"secret", i, 0.3) == Part::Public)
            .count() as f64;
        // Binomial(20000, 0.3) has sd ≈ 65; 5 sd either side.
        assert!((public - 6000.0).abs() < 325.0, "{public}");
        assert!((0..100).all(|i| window_part(b"s", i, 0.0) == Part::Private));
        assert!((0..100).all(|i| window_part(b"s", i, 1.0) == Part::Public));
        assert!((0..100).all(|i| window_part(b"s", i, f64::NAN) == Part::Private));
    }

    #[test]
    fn known_vector() {
        // Pinned so that any change to the construction is a visible, deliberate one.
        let parts: String = (0..16)
            .map(|i| match window_part(b"ascent", i, 0.5) {
                Part::Public => 'P',
                Part::Private => '.',
            })
            .collect();
        assert_eq!(parts, KNOWN);
    }
    // Computed independently with Python: hmac.new(b"ascent", b"ascent-split-v1" + i.to_bytes(8, "little"), sha256).
    const KNOWN: &str = ".P.....P.P.P.P.P";

    #[test]
    fn window_means_follow_the_split() {
        let parts = [Part::Public, Part::Private, Part::Public];
        let nll = [6.0, 9.0, 3.0];
        assert_eq!(part_window_means(&nll, 3, &parts, Part::Public), [2.0, 1.0]);
        assert_eq!(part_window_means(&nll, 3, &parts, Part::Private), [3.0]);
        let drawn = window_parts(b"s", 50, 0.3);
        assert_eq!(drawn.len(), 50);
        assert_eq!(drawn[7], window_part(b"s", 7, 0.3));
    }
}
