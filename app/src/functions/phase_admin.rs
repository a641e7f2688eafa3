//! Organizers run a phase's life from the console: move it (publish, open or close
//! early), edit its settings, review the final ranking and the advancement list,
//! adjust it, and finalize (promote). Every action needs a reason and lands in the
//! audit log. The endpoints are named so scripts and tests can call them too.

use ascent_domain::views::{FinalBoard, PhaseDetail, Viewer};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::organizer::organizer_with_pool;
use super::AppError;

/// The console's page for one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReviewData {
    pub viewer: Viewer,
    pub detail: PhaseDetail,
    /// The final ranking and advancement list, once the phase is closed.
    pub board: Option<FinalBoard>,
    /// Name and size of the held-out data, if attached.
    pub data: Option<(String, u64, String)>,
    /// Who may enter the phase after the first: (handle, "promoted" or "invited", when).
    pub entrants: Vec<(String, String, i64)>,
    pub now: i64,
    /// For the held-out data upload, a plain-JavaScript form.
    pub csrf_token: String,
}

#[server(input = GetUrl, endpoint = "organizer/phase_review")]
pub async fn phase_review(number: u8) -> Result<Option<PhaseReviewData>, AppError> {
    use ascent_store::{datasets, entrants, lifecycle, phases};

    let (viewer, pool) = organizer_with_pool(&format!("/organizer/phases/{number}"))?;
    let Some(detail) = phases::detail(&pool, number, phases::Audience::Organizers).await? else {
        return Ok(None);
    };
    let board = lifecycle::final_board(&pool, number).await?;
    let data = datasets::of_phase(&pool, number)
        .await?
        .map(|d| (d.name, u64::try_from(d.tokens).unwrap_or(0), d.sha256));
    let entrants = entrants::of_phase(&pool, number)
        .await?
        .into_iter()
        .map(|e| (e.handle, e.reason, e.at))
        .collect();
    Ok(Some(PhaseReviewData {
        viewer,
        detail,
        board,
        data,
        entrants,
        now: ascent_store::now(),
        csrf_token: crate::ssr::csrf_token(),
    }))
}

/// Lets a contributor enter a phase after the first without having advanced to it.
#[server(endpoint = "organizer/invite")]
pub async fn invite(
    csrf_token: String,
    number: u8,
    handle: String,
    reason: String,
) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool(&format!("/organizer/phases/{number}"))?;
    ascent_store::entrants::invite(
        &pool,
        number,
        &handle,
        organizer.id,
        &reason,
        ascent_store::now(),
    )
    .await
    .map_err(refused_as_invalid)?;
    Ok(())
}

/// Publishes, opens early or closes early (`to` is `upcoming`, `open` or `closed`).
#[server(endpoint = "organizer/move_phase")]
pub async fn move_phase(
    csrf_token: String,
    number: u8,
    to: String,
    reason: String,
) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool(&format!("/organizer/phases/{number}"))?;
    let to = to
        .parse()
        .map_err(|e: ascent_domain::phase::UnknownPhaseState| AppError::Invalid(e.to_string()))?;
    ascent_store::lifecycle::move_phase(
        &pool,
        number,
        to,
        organizer.id,
        &reason,
        ascent_store::now(),
    )
    .await
    .map_err(refused_as_invalid)?;
    Ok(())
}

/// Adds (`advance = "add"`) or removes (`"remove"`) a contributor on a closed phase's
/// advancement list.
#[server(endpoint = "organizer/adjust_advancement")]
pub async fn adjust_advancement(
    csrf_token: String,
    number: u8,
    handle: String,
    advance: String,
    reason: String,
) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool(&format!("/organizer/phases/{number}"))?;
    let advance = match advance.as_str() {
        "add" => true,
        "remove" => false,
        other => {
            return Err(AppError::Invalid(format!(
                "{other:?}: choose add or remove"
            )))
        }
    };
    ascent_store::lifecycle::adjust(
        &pool,
        number,
        handle.trim(),
        advance,
        organizer.id,
        &reason,
        ascent_store::now(),
    )
    .await
    .map_err(refused_as_invalid)?;
    Ok(())
}

/// Freezes a closed phase's final ranking and promotes its advancement list.
#[server(endpoint = "organizer/finalize_phase")]
pub async fn finalize_phase(
    csrf_token: String,
    number: u8,
    reason: String,
) -> Result<Vec<String>, AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool(&format!("/organizer/phases/{number}"))?;
    let done = ascent_store::lifecycle::finalize(
        &pool,
        number,
        organizer.id,
        &reason,
        ascent_store::now(),
    )
    .await
    .map_err(refused_as_invalid)?;
    Ok(done.promoted)
}

/// A phase's settings as the console's form sends them (text, as typed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PhaseForm {
    pub title: String,
    pub summary: String,
    /// `datetime-local` values, UTC.
    pub opens_at: String,
    pub closes_at: String,
    pub max_parameters: String,
    pub seq_len: String,
    pub windows: String,
    pub public_share: String,
    pub time_limit_minutes: String,
    pub per_day: String,
    pub max_bytes: String,
    pub advancement_rule: String,
    pub advancement_value: String,
    pub epsilon: String,
    /// A checkbox: "on" when ticked, absent (empty) when not.
    #[serde(default)]
    pub open_weights: String,
    #[serde(default)]
    pub reward_budget: String,
    #[serde(default)]
    pub reward_rule: String,
    /// A checkbox, like `open_weights`.
    #[serde(default)]
    pub require_attestation: String,
    /// The age recipient contributors may encrypt to; empty for none.
    #[serde(default)]
    pub evaluation_key: String,
}

impl PhaseForm {
    /// The form filled with a phase's current settings.
    pub fn of(spec: &ascent_domain::PhaseSpec) -> PhaseForm {
        use ascent_domain::{format, AdvancementRule};
        let (rule, value) = match spec.advancement {
            AdvancementRule::TopK(k) => ("top_k", k.to_string()),
            AdvancementRule::TopFraction(f) => ("top_fraction", f.to_string()),
            AdvancementRule::WithinMargin(m) => ("within_margin", m.to_string()),
        };
        PhaseForm {
            title: spec.title.clone(),
            summary: spec.summary.clone(),
            opens_at: format::datetime_input(spec.opens_at),
            closes_at: format::datetime_input(spec.closes_at),
            max_parameters: spec.model.max_parameters.to_string(),
            seq_len: spec.evaluation.seq_len.to_string(),
            windows: spec.evaluation.windows.to_string(),
            public_share: spec.evaluation.public_share.to_string(),
            time_limit_minutes: spec.evaluation.time_limit_minutes.to_string(),
            per_day: spec.submissions.per_day.to_string(),
            max_bytes: spec.submissions.max_bytes.to_string(),
            advancement_rule: rule.to_owned(),
            advancement_value: value,
            epsilon: spec.epsilon.to_string(),
            open_weights: if spec.open_weights { "on" } else { "" }.to_owned(),
            reward_budget: spec.rewards.budget.to_string(),
            reward_rule: spec.rewards.rule.as_str().to_owned(),
            require_attestation: if spec.require_attestation { "on" } else { "" }.to_owned(),
            evaluation_key: spec.evaluation_key.clone().unwrap_or_default(),
        }
    }

    /// Applies the form to `current`; each unreadable field is named.
    pub fn apply(
        &self,
        current: &ascent_domain::PhaseSpec,
    ) -> Result<ascent_domain::PhaseSpec, String> {
        use ascent_domain::{format, AdvancementRule};
        fn num<T: std::str::FromStr>(value: &str, field: &str) -> Result<T, String> {
            value
                .trim()
                .replace('_', "")
                .parse()
                .map_err(|_| format!("{field}: {:?} is not a number", value.trim()))
        }
        // The form shows minutes: a time left as shown keeps its seconds.
        let time = |value: &str, field: &str, current: i64| {
            format::parse_datetime_input(value)
                .map(|t| {
                    if t == current - current.rem_euclid(60) {
                        current
                    } else {
                        t
                    }
                })
                .ok_or_else(|| {
                    format!(
                        "{field}: {:?} is not a date and time (YYYY-MM-DDTHH:MM, UTC)",
                        value.trim()
                    )
                })
        };
        let mut spec = current.clone();
        spec.title = self.title.trim().to_owned();
        spec.summary = self.summary.trim().to_owned();
        spec.opens_at = time(&self.opens_at, "opens at", current.opens_at)?;
        spec.closes_at = time(&self.closes_at, "closes at", current.closes_at)?;
        spec.model.max_parameters = num(&self.max_parameters, "parameter cap")?;
        spec.evaluation.seq_len = num(&self.seq_len, "window length")?;
        spec.evaluation.windows = num(&self.windows, "windows")?;
        spec.evaluation.public_share = num(&self.public_share, "public share")?;
        spec.evaluation.time_limit_minutes = num(&self.time_limit_minutes, "time limit")?;
        spec.submissions.per_day = num(&self.per_day, "submissions per day")?;
        spec.submissions.max_bytes = num(&self.max_bytes, "largest upload")?;
        spec.epsilon = num(&self.epsilon, "epsilon")?;
        spec.open_weights = matches!(self.open_weights.as_str(), "on" | "true");
        spec.require_attestation = matches!(self.require_attestation.as_str(), "on" | "true");
        spec.evaluation_key = match self.evaluation_key.trim() {
            "" => None,
            key => {
                ascent_domain::encryption::check_recipient(key)
                    .map_err(|e| format!("evaluation key: {e}"))?;
                Some(key.to_owned())
            }
        };
        spec.rewards.budget = num(&self.reward_budget, "reward budget")?;
        spec.rewards.rule = ascent_domain::rewards::RewardRule::parse(&self.reward_rule)
            .ok_or_else(|| format!("{:?} is not a reward rule", self.reward_rule))?;
        spec.advancement = match self.advancement_rule.as_str() {
            "top_k" => AdvancementRule::TopK(num(&self.advancement_value, "advancement value")?),
            "top_fraction" => {
                AdvancementRule::TopFraction(num(&self.advancement_value, "advancement value")?)
            }
            "within_margin" => {
                AdvancementRule::WithinMargin(num(&self.advancement_value, "advancement value")?)
            }
            other => return Err(format!("{other:?} is not an advancement rule")),
        };
        Ok(spec)
    }
}

/// Changes a phase's settings (validated against its state, its submissions and its
/// neighbours by `domain::settings::check_edit`).
#[server(endpoint = "organizer/edit_phase")]
pub async fn edit_phase(
    csrf_token: String,
    number: u8,
    form: PhaseForm,
    reason: String,
) -> Result<(), AppError> {
    let _checked_by_the_security_layer = csrf_token;
    let (organizer, pool) = organizer_with_pool(&format!("/organizer/phases/{number}"))?;
    let Some(current) =
        ascent_store::phases::detail(&pool, number, ascent_store::phases::Audience::Organizers)
            .await?
    else {
        return Err(AppError::NotFound(format!("there is no phase {number}")));
    };
    let edited = form.apply(&current.spec).map_err(AppError::Invalid)?;
    ascent_store::phases::update(&pool, &edited, organizer.id, &reason, ascent_store::now())
        .await
        .map_err(refused_as_invalid)?;
    Ok(())
}

/// Refusals of the rules are the organizer's input to fix: shown by the form, 400.
#[cfg(feature = "ssr")]
pub(crate) fn refused_as_invalid(error: ascent_store::StoreError) -> AppError {
    match error {
        ascent_store::StoreError::Refused(message) => {
            crate::ssr::set_error_status(http::StatusCode::BAD_REQUEST);
            AppError::Invalid(message)
        }
        ascent_store::StoreError::NotFound(message) => {
            crate::ssr::set_error_status(http::StatusCode::NOT_FOUND);
            AppError::NotFound(message)
        }
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_round_trips_a_spec_and_names_bad_fields() {
        // An anchor with seconds: the form shows minutes and must keep them.
        let preset = ascent_domain::preset::parse_preset(
            include_str!("../../../presets/demo.toml"),
            1_800_000_007,
        )
        .expect("demo preset");
        let spec = &preset.phases[1];
        let form = PhaseForm::of(spec);
        assert_eq!(form.apply(spec).as_ref(), Ok(spec));
        let mut bad = form.clone();
        bad.windows = "many".into();
        assert!(bad
            .apply(spec)
            .err()
            .unwrap_or_default()
            .starts_with("windows:"));
        let mut bad = form;
        bad.closes_at = "tomorrow".into();
        assert!(bad
            .apply(spec)
            .err()
            .unwrap_or_default()
            .starts_with("closes at:"));
    }
}
