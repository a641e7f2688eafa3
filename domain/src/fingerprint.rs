//! Weight fingerprints, to find near-copies that an exact hash misses (a checkpoint
//! with a little noise added, or converted to another dtype).
//!
//! Each tensor contributes a fixed sample of its values (all of them when it is small,
//! else [`SAMPLE`] evenly spaced ones), centred on their mean and scaled to unit
//! length, projected onto [`DIMS`] pseudo-random ±1 directions derived from the
//! tensor's name. The projections of all tensors, each scaled to unit length so that
//! every tensor counts the same, are summed and the sum scaled to unit length: a
//! [`DIMS`]-float fingerprint. Two fingerprints are compared by cosine similarity.
//!
//! A light perturbation moves every projection a little, so a perturbed copy stays near
//! 1; independently trained weights (different random initialisations) project to
//! unrelated directions, near 0 (about ±1/√DIMS). Centring removes what every model
//! shares, such as normalisation weights initialised to one.

use std::collections::BTreeMap;

/// Floats in a fingerprint.
pub const DIMS: usize = 128;
/// Values sampled per tensor.
pub const SAMPLE: usize = 4096;
/// Similarity from which a submission is flagged as a near-copy.
pub const NEAR_COPY: f64 = 0.95;

/// The positions sampled from a tensor of `len` values.
pub fn sample_positions(len: usize) -> impl Iterator<Item = usize> {
    let count = len.min(SAMPLE);
    (0..count).map(move |i| {
        if len <= SAMPLE {
            i
        } else {
            // Evenly spaced; u128 so the product cannot overflow.
            (i as u128 * len as u128 / count as u128) as usize
        }
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn name_seed(name: &str) -> u64 {
    // FNV-1a: stable across platforms and versions.
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Builds a fingerprint tensor by tensor; the order tensors are added in does not matter.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    tensors: BTreeMap<String, Vec<f64>>,
}

impl Builder {
    /// Adds tensor `name` from its sampled values (see [`sample_positions`]).
    pub fn add(&mut self, name: &str, sampled: &[f32]) {
        let n = sampled.len();
        if n < 2 {
            return;
        }
        let mean = sampled.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
        let centred: Vec<f64> = sampled.iter().map(|v| f64::from(*v) - mean).collect();
        let norm = centred.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return;
        }
        let seed = name_seed(name);
        let mut projection = vec![0.0f64; DIMS];
        for (i, v) in centred.iter().enumerate() {
            // One 64-bit draw gives the signs of 64 directions.
            for (block, chunk) in projection.chunks_mut(64).enumerate() {
                let bits = splitmix(seed ^ splitmix(((i as u64) << 8) | block as u64));
                for (d, p) in chunk.iter_mut().enumerate() {
                    if bits >> d & 1 == 1 {
                        *p += v;
                    } else {
                        *p -= v;
                    }
                }
            }
        }
        self.tensors.insert(name.to_owned(), unit(projection));
    }

    /// The fingerprint; empty when no tensor had any spread.
    pub fn finish(self) -> Vec<f32> {
        let mut sum = vec![0.0f64; DIMS];
        for projection in self.tensors.values() {
            for (s, p) in sum.iter_mut().zip(projection) {
                *s += p;
            }
        }
        if sum.iter().all(|v| *v == 0.0) {
            return Vec::new();
        }
        unit(sum).into_iter().map(|v| v as f32).collect()
    }
}

fn unit(mut v: Vec<f64>) -> Vec<f64> {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Cosine similarity of two fingerprints; `None` when they cannot be compared.
pub fn similarity(a: &[f32], b: &[f32]) -> Option<f64> {
    if a.len() != DIMS || b.len() != DIMS {
        return None;
    }
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (na > 0.0 && nb > 0.0).then(|| dot / (na * nb))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random "model": tensors of values in [-scale, scale].
    fn model(seed: u64, scale: f32) -> Vec<(String, Vec<f32>)> {
        (0..6)
            .map(|t| {
                let values = (0..5000u64)
                    .map(|i| {
                        let r = splitmix(seed.wrapping_mul(1000).wrapping_add(t * 100_000 + i));
                        ((r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * scale
                    })
                    .collect();
                (format!("layers.{t}.weight"), values)
            })
            .collect()
    }

    fn fingerprint(model: &[(String, Vec<f32>)]) -> Vec<f32> {
        let mut b = Builder::default();
        for (name, values) in model.iter().rev() {
            let sampled: Vec<f32> = sample_positions(values.len()).map(|i| values[i]).collect();
            b.add(name, &sampled);
        }
        b.finish()
    }

    #[test]
    fn a_perturbed_copy_is_near_and_an_independent_model_is_not() {
        let original = model(1, 0.1);
        let perturbed: Vec<(String, Vec<f32>)> = original
            .iter()
            .zip(model(99, 0.005))
            .map(|((name, v), (_, noise))| {
                (
                    name.clone(),
                    v.iter().zip(&noise).map(|(a, b)| a + b).collect(),
                )
            })
            .collect();
        let independent = model(2, 0.1);
        let a = fingerprint(&original);
        assert_eq!(a.len(), DIMS);
        let copy = similarity(&a, &fingerprint(&perturbed)).unwrap_or_default();
        let other = similarity(&a, &fingerprint(&independent)).unwrap_or(1.0);
        assert!(copy > 0.99, "{copy}");
        assert!(other.abs() < 0.5, "{other}");
        assert!(copy >= NEAR_COPY && other < NEAR_COPY);
    }

    #[test]
    fn scaling_and_an_offset_do_not_hide_a_copy() {
        let original = model(3, 0.1);
        let shifted: Vec<(String, Vec<f32>)> = original
            .iter()
            .map(|(name, v)| (name.clone(), v.iter().map(|x| x * 2.0 + 0.5).collect()))
            .collect();
        let s = similarity(&fingerprint(&original), &fingerprint(&shifted)).unwrap_or_default();
        assert!(s > 0.999, "{s}");
    }

    #[test]
    fn samples_are_spread_and_bounded() {
        assert_eq!(
            sample_positions(10).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        let big: Vec<usize> = sample_positions(1_000_000).collect();
        assert_eq!(big.len(), SAMPLE);
        assert!(big.windows(2).all(|w| w[0] < w[1]));
        assert!(*big.last().unwrap_or(&0) < 1_000_000);
    }

    #[test]
    fn constant_tensors_and_bad_lengths_give_no_comparison() {
        let mut b = Builder::default();
        b.add("norm.weight", &[1.0; 64]);
        assert!(b.finish().is_empty());
        assert_eq!(similarity(&[1.0; 3], &[1.0; 3]), None);
    }
}
