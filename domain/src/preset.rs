//! Phase presets: seven phases described as data (`presets/*.toml`), parsed and
//! validated once so that an incoherent competition cannot be loaded.
//!
//! The schedule is relative: the preset names an anchor (`starts_at`, an RFC 3339
//! time or `"load"` for the moment it is loaded) and each phase opens some days after
//! it and lasts some days. That keeps the demo preset alive whenever it is loaded.

use chrono::DateTime;
use serde::Deserialize;

use crate::limits::ModelLimits;
use crate::phase::{AdvancementRule, EvalSpec, PhaseSpec, SubmissionLimits, PHASE_COUNT};

const DAY: i64 = 86_400;
/// Architectures the evaluator can score.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

/// A validated preset: a name and exactly seven coherent phases.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub phases: Vec<PhaseSpec>,
}

/// Why a preset was refused; `field` names the offending value as it is written
/// in the file (`phase[3].model.max_parameters`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PresetError {
    #[error("the preset is not valid TOML: {0}")]
    Syntax(String),
    #[error("{field}: {message}")]
    Field { field: String, message: String },
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> PresetError {
    PresetError::Field {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPreset {
    name: String,
    #[serde(default)]
    description: String,
    starts_at: String,
    phase: Vec<RawPhase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhase {
    number: u8,
    title: String,
    #[serde(default)]
    summary: String,
    opens_after_days: i64,
    duration_days: i64,
    epsilon: f64,
    model: ModelLimits,
    evaluation: EvalSpec,
    submissions: SubmissionLimits,
    advancement: RawAdvancement,
    #[serde(default)]
    open_weights: bool,
    #[serde(default)]
    rewards: crate::rewards::RewardSpec,
    #[serde(default)]
    require_attestation: bool,
    #[serde(default)]
    evaluation_key: Option<String>,
    #[serde(default)]
    draft: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdvancement {
    rule: String,
    value: f64,
}

/// The most points one phase may share.
pub const MAX_REWARD_BUDGET: u64 = 1_000_000_000_000;

/// Parses and validates a preset. `now` (unix seconds) anchors a `"load"` schedule.
pub fn parse_preset(text: &str, now: i64) -> Result<Preset, PresetError> {
    let raw: RawPreset = toml::from_str(text).map_err(|e| PresetError::Syntax(e.to_string()))?;
    if raw.name.trim().is_empty() {
        return Err(field_error("name", "must not be empty"));
    }
    let anchor = parse_anchor(&raw.starts_at, now)?;
    if raw.phase.len() != PHASE_COUNT {
        return Err(field_error(
            "phase",
            format!(
                "a competition has exactly {PHASE_COUNT} phases, this preset has {}",
                raw.phase.len()
            ),
        ));
    }
    let mut phases: Vec<PhaseSpec> = Vec::with_capacity(PHASE_COUNT);
    for (index, raw_phase) in raw.phase.into_iter().enumerate() {
        let expected = index + 1;
        let phase = validate_phase(raw_phase, expected, anchor)?;
        if let Some(previous) = phases.last() {
            check_against_previous(previous, &phase)?;
            if previous.draft && !phase.draft {
                return Err(field_error(
                    format!("phase[{expected}].draft"),
                    format!("phase {} is a draft, so this one must be too: phases are published in order", previous.number),
                ));
            }
        }
        phases.push(phase);
    }
    Ok(Preset {
        name: raw.name,
        description: raw.description,
        phases,
    })
}

fn parse_anchor(value: &str, now: i64) -> Result<i64, PresetError> {
    if value == "load" {
        return Ok(now);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp())
        .map_err(|e| {
            field_error(
                "starts_at",
                format!("expected an RFC 3339 time or \"load\", got {value:?} ({e})"),
            )
        })
}

fn validate_phase(raw: RawPhase, expected: usize, anchor: i64) -> Result<PhaseSpec, PresetError> {
    let at = |name: &str| format!("phase[{expected}].{name}");
    if usize::from(raw.number) != expected {
        return Err(field_error(
            at("number"),
            format!(
                "phases must be numbered 1 to 7 in order; expected {expected}, found {}",
                raw.number
            ),
        ));
    }
    if raw.title.trim().is_empty() {
        return Err(field_error(at("title"), "must not be empty"));
    }
    if raw.opens_after_days < 0 {
        return Err(field_error(at("opens_after_days"), "must not be negative"));
    }
    if raw.duration_days <= 0 {
        return Err(field_error(at("duration_days"), "must be at least one day"));
    }
    let advancement = parse_advancement(&raw.advancement, &at("advancement"))?;
    let opens_at = anchor + raw.opens_after_days * DAY;
    let spec = PhaseSpec {
        number: raw.number,
        title: raw.title,
        summary: raw.summary,
        opens_at,
        closes_at: opens_at + raw.duration_days * DAY,
        model: raw.model,
        evaluation: raw.evaluation,
        submissions: raw.submissions,
        advancement,
        epsilon: raw.epsilon,
        open_weights: raw.open_weights,
        rewards: raw.rewards,
        require_attestation: raw.require_attestation,
        evaluation_key: raw.evaluation_key,
        draft: raw.draft,
    };
    check_spec(&spec)?;
    Ok(spec)
}

/// Checks one phase's settings on their own (a preset's, or an organizer's edit); errors
/// name the field as `phase[N].section.name`.
pub fn check_spec(spec: &PhaseSpec) -> Result<(), PresetError> {
    let at = |name: &str| format!("phase[{}].{name}", spec.number);
    if spec.title.trim().is_empty() {
        return Err(field_error(at("title"), "must not be empty"));
    }
    if spec.closes_at <= spec.opens_at {
        return Err(field_error(
            at("closes_at"),
            "must be after the opening time",
        ));
    }
    let model = &spec.model;
    if !SUPPORTED_ARCHITECTURES.contains(&model.architecture.as_str()) {
        return Err(field_error(
            at("model.architecture"),
            format!(
                "{:?} is not supported; supported: {}",
                model.architecture,
                SUPPORTED_ARCHITECTURES.join(", ")
            ),
        ));
    }
    if spec.rewards.budget > MAX_REWARD_BUDGET {
        return Err(field_error(
            at("rewards.budget"),
            "must be at most 1,000,000,000,000 points",
        ));
    }
    if let Some(key) = &spec.evaluation_key {
        crate::encryption::check_recipient(key)
            .map_err(|e| field_error(at("evaluation_key"), e.to_string()))?;
    }
    if model.vocab_size < 2 {
        return Err(field_error(at("model.vocab_size"), "must be at least 2"));
    }
    if model.max_parameters == 0 {
        return Err(field_error(at("model.max_parameters"), "must be positive"));
    }
    if model.min_context < 2 {
        return Err(field_error(at("model.min_context"), "must be at least 2"));
    }
    let evaluation = &spec.evaluation;
    if evaluation.dataset.trim().is_empty() {
        return Err(field_error(at("evaluation.dataset"), "must not be empty"));
    }
    if evaluation.seq_len < 2 {
        return Err(field_error(at("evaluation.seq_len"), "must be at least 2"));
    }
    if evaluation.seq_len > model.min_context {
        return Err(field_error(
            at("evaluation.seq_len"),
            format!(
                "{} is longer than the context every model must support (model.min_context = {})",
                evaluation.seq_len, model.min_context
            ),
        ));
    }
    if evaluation.windows < 2 {
        return Err(field_error(
            at("evaluation.windows"),
            "must be at least 2, so both the public and the private part have a window",
        ));
    }
    if !(evaluation.public_share > 0.0 && evaluation.public_share < 1.0) {
        return Err(field_error(
            at("evaluation.public_share"),
            "must be strictly between 0 and 1 so both the public and the private part have windows",
        ));
    }
    if !(1..=7 * 24 * 60).contains(&evaluation.time_limit_minutes) {
        return Err(field_error(
            at("evaluation.time_limit_minutes"),
            "must be between 1 minute and a week",
        ));
    }
    let submissions = &spec.submissions;
    if submissions.per_day == 0 {
        return Err(field_error(at("submissions.per_day"), "must be at least 1"));
    }
    // A checkpoint at the parameter cap must fit at two bytes per parameter (bf16).
    let smallest_cap_upload = model.max_parameters.saturating_mul(2);
    if submissions.max_bytes < smallest_cap_upload {
        return Err(field_error(
            at("submissions.max_bytes"),
            format!(
                "{} bytes cannot hold a model at the parameter cap in bf16 (needs at least {smallest_cap_upload})",
                submissions.max_bytes
            ),
        ));
    }
    match spec.advancement {
        AdvancementRule::TopK(k) if k >= 1 => {}
        AdvancementRule::TopK(_) => {
            return Err(field_error(
                at("advancement.value"),
                "top_k needs a whole number of at least 1",
            ))
        }
        AdvancementRule::TopFraction(f) if f > 0.0 && f <= 1.0 => {}
        AdvancementRule::TopFraction(_) => {
            return Err(field_error(
                at("advancement.value"),
                "top_fraction needs a value in (0, 1]",
            ))
        }
        AdvancementRule::WithinMargin(m) if m > 0.0 && m < 1.0 => {}
        AdvancementRule::WithinMargin(_) => {
            return Err(field_error(
                at("advancement.value"),
                "within_margin needs a value in (0, 1)",
            ))
        }
    }
    if !(0.0..0.1).contains(&spec.epsilon) {
        return Err(field_error(at("epsilon"), "must be in [0, 0.1)"));
    }
    Ok(())
}

fn parse_advancement(raw: &RawAdvancement, at: &str) -> Result<AdvancementRule, PresetError> {
    let value = raw.value;
    match raw.rule.as_str() {
        "top_k" if value >= 1.0 && value.fract() == 0.0 && value <= f64::from(u32::MAX) => {
            // Checked above: a whole number in u32's range.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(AdvancementRule::TopK(value as u32))
        }
        "top_k" => Err(field_error(
            format!("{at}.value"),
            "top_k needs a whole number of at least 1",
        )),
        "top_fraction" if value > 0.0 && value <= 1.0 => Ok(AdvancementRule::TopFraction(value)),
        "top_fraction" => Err(field_error(
            format!("{at}.value"),
            "top_fraction needs a value in (0, 1]",
        )),
        "within_margin" if value > 0.0 && value < 1.0 => Ok(AdvancementRule::WithinMargin(value)),
        "within_margin" => Err(field_error(
            format!("{at}.value"),
            "within_margin needs a value in (0, 1)",
        )),
        other => Err(field_error(
            format!("{at}.rule"),
            format!("{other:?} is not a rule; use top_k, top_fraction or within_margin"),
        )),
    }
}

pub fn check_against_previous(previous: &PhaseSpec, phase: &PhaseSpec) -> Result<(), PresetError> {
    let at = |name: &str| format!("phase[{}].{name}", phase.number);
    if phase.model.max_parameters <= previous.model.max_parameters {
        return Err(field_error(
            at("model.max_parameters"),
            format!(
                "{} must be larger than phase {}'s {}",
                phase.model.max_parameters, previous.number, previous.model.max_parameters
            ),
        ));
    }
    if phase.model.min_context < previous.model.min_context {
        return Err(field_error(
            at("model.min_context"),
            format!(
                "{} is shorter than phase {}'s {}",
                phase.model.min_context, previous.number, previous.model.min_context
            ),
        ));
    }
    if phase.opens_at < previous.closes_at {
        return Err(field_error(
            at("opens_after_days"),
            format!(
                "phase {} opens before phase {} closes",
                phase.number, previous.number
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../presets/demo.toml");
    const REAL: &str = include_str!("../../presets/real.toml");

    fn field_of(text: &str) -> String {
        match parse_preset(text, 1_000_000) {
            Err(PresetError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn shipped_presets_are_valid() {
        let demo = parse_preset(DEMO, 1_000_000).expect("demo preset");
        assert_eq!(demo.phases.len(), 7);
        assert_eq!(
            demo.phases[0].opens_at, 1_000_000,
            "demo is anchored at load time"
        );
        let real = parse_preset(REAL, 0).expect("real preset");
        let caps: Vec<u64> = real.phases.iter().map(|p| p.model.max_parameters).collect();
        assert_eq!(
            caps,
            [
                500_000_000,
                1_500_000_000,
                7_000_000_000,
                30_000_000_000,
                100_000_000_000,
                400_000_000_000,
                1_400_000_000_000
            ]
        );
    }

    #[test]
    fn a_missing_phase_is_refused() {
        let six = DEMO.rsplit_once("[[phase]]").expect("phases").0;
        assert_eq!(field_of(six), "phase");
    }

    #[test]
    fn shrinking_parameter_caps_are_refused() {
        let bad = DEMO.replacen("max_parameters = 200_000", "max_parameters = 10", 1);
        assert_ne!(bad, DEMO, "the test edits the demo preset");
        assert_eq!(field_of(&bad), "phase[2].model.max_parameters");
    }

    #[test]
    fn sequence_longer_than_context_is_refused() {
        let bad = DEMO.replacen("seq_len = 64", "seq_len = 100000", 1);
        assert_eq!(field_of(&bad), "phase[1].evaluation.seq_len");
    }

    #[test]
    fn overlapping_schedule_is_refused() {
        let bad = DEMO.replacen("opens_after_days = 14", "opens_after_days = 3", 1);
        assert_eq!(field_of(&bad), "phase[2].opens_after_days");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                "public_share = 0.3",
                "public_share = 1.0",
                "phase[1].evaluation.public_share",
            ),
            (
                "architecture = \"llama\"",
                "architecture = \"gpt2\"",
                "phase[1].model.architecture",
            ),
            (
                "rule = \"top_k\"",
                "rule = \"best\"",
                "phase[1].advancement.rule",
            ),
            (
                "per_day = 10",
                "per_day = 0",
                "phase[1].submissions.per_day",
            ),
            (
                "starts_at = \"load\"",
                "starts_at = \"tomorrow\"",
                "starts_at",
            ),
        ];
        for (from, to, field) in cases {
            let bad = DEMO.replacen(from, to, 1);
            assert_ne!(bad, DEMO, "{from} is in the demo preset");
            assert_eq!(field_of(&bad), field, "{from} -> {to}");
        }
    }

    /// The demo preset with `draft = true` in the phases numbered `drafts`.
    fn with_drafts(drafts: &[u8]) -> String {
        drafts.iter().fold(DEMO.to_owned(), |text, n| {
            text.replacen(
                &format!("number = {n}\n"),
                &format!("number = {n}\ndraft = true\n"),
                1,
            )
        })
    }

    #[test]
    fn drafts_come_last() {
        let preset = parse_preset(&with_drafts(&[6, 7]), 0).expect("drafts at the end");
        let drafts: Vec<bool> = preset.phases.iter().map(|p| p.draft).collect();
        assert_eq!(drafts, [false, false, false, false, false, true, true]);
        assert_eq!(field_of(&with_drafts(&[5, 7])), "phase[6].draft");
        assert_eq!(field_of(&with_drafts(&[1])), "phase[2].draft");
    }

    #[test]
    fn unknown_keys_and_syntax_errors_are_refused() {
        let typo = DEMO.replacen("epsilon", "epsilom", 1);
        assert!(matches!(
            parse_preset(&typo, 0),
            Err(PresetError::Syntax(_))
        ));
        assert!(matches!(
            parse_preset("phase = [", 0),
            Err(PresetError::Syntax(_))
        ));
    }
}
