//! Phases: loading a preset, and reading phases with their summary numbers.

use ascent_domain::phase::{AdvancementRule, EvalSpec, PhaseSpec, PhaseState, SubmissionLimits};
use ascent_domain::preset::Preset;
use ascent_domain::public_log::Event;
use ascent_domain::rewards::{RewardRule, RewardSpec};
use ascent_domain::views::{PhaseDetail, PhaseSummary};
use ascent_domain::ModelLimits;
use sqlx::SqlitePool;

use crate::{public_log, unsigned, Result, StoreError};

/// What loading a preset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadOutcome {
    Loaded,
    /// Phases already exist and `replace` was not asked for: nothing changed.
    AlreadyLoaded {
        preset: String,
    },
}

/// Writes the preset's seven phases, each in the state its schedule gives at `now`.
/// Existing phases are kept unless `replace`; replacing is refused once any phase has
/// submissions, because it would change the rules under them.
pub async fn load_preset(
    pool: &SqlitePool,
    preset: &Preset,
    now: i64,
    replace: bool,
) -> Result<LoadOutcome> {
    let mut tx = crate::write(pool).await?;
    let existing: Option<String> = sqlx::query_scalar("SELECT preset FROM phases LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(existing) = existing {
        if !replace {
            return Ok(LoadOutcome::AlreadyLoaded { preset: existing });
        }
        let submissions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions")
            .fetch_one(&mut *tx)
            .await?;
        if submissions > 0 {
            return Err(StoreError::Conflict(format!(
                "the phases already have {submissions} submissions; replacing their rules is refused"
            )));
        }
    }
    for spec in &preset.phases {
        let state = match spec.draft {
            true => PhaseState::Draft,
            false => PhaseState::by_schedule(now, spec.opens_at, spec.closes_at),
        };
        let (rule, value) = rule_columns(&spec.advancement);
        let previous: Option<String> =
            sqlx::query_scalar("SELECT state FROM phases WHERE number = ?")
                .bind(i64::from(spec.number))
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO phases (number, title, summary, state, opens_at, closes_at, architecture,
                 vocab_size, max_parameters, min_context, dataset, seq_len, windows, public_share,
                 per_day, max_bytes, advancement_rule, advancement_value, epsilon, preset, updated_at,
                 time_limit_seconds, open_weights, reward_budget, reward_rule, require_attestation,
                 evaluation_key, split_secret)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (number) DO UPDATE SET
                 title = excluded.title, summary = excluded.summary, state = excluded.state,
                 opens_at = excluded.opens_at, closes_at = excluded.closes_at,
                 architecture = excluded.architecture, vocab_size = excluded.vocab_size,
                 max_parameters = excluded.max_parameters, min_context = excluded.min_context,
                 dataset = excluded.dataset, seq_len = excluded.seq_len, windows = excluded.windows,
                 public_share = excluded.public_share, per_day = excluded.per_day,
                 max_bytes = excluded.max_bytes, advancement_rule = excluded.advancement_rule,
                 advancement_value = excluded.advancement_value, epsilon = excluded.epsilon,
                 preset = excluded.preset, updated_at = excluded.updated_at,
                 time_limit_seconds = excluded.time_limit_seconds,
                 open_weights = excluded.open_weights,
                 reward_budget = excluded.reward_budget, reward_rule = excluded.reward_rule,
                 require_attestation = excluded.require_attestation,
                 evaluation_key = excluded.evaluation_key,
                 standings_version = phases.standings_version + 1",
        )
        .bind(i64::from(spec.number))
        .bind(&spec.title)
        .bind(&spec.summary)
        .bind(state.as_str())
        .bind(spec.opens_at)
        .bind(spec.closes_at)
        .bind(&spec.model.architecture)
        .bind(i64::from(spec.model.vocab_size))
        .bind(i64::try_from(spec.model.max_parameters).map_err(|_| StoreError::Conflict("parameter cap too large".into()))?)
        .bind(i64::from(spec.model.min_context))
        .bind(&spec.evaluation.dataset)
        .bind(i64::from(spec.evaluation.seq_len))
        .bind(i64::from(spec.evaluation.windows))
        .bind(spec.evaluation.public_share)
        .bind(i64::from(spec.submissions.per_day))
        .bind(i64::try_from(spec.submissions.max_bytes).map_err(|_| StoreError::Conflict("size limit too large".into()))?)
        .bind(rule)
        .bind(value)
        .bind(spec.epsilon)
        .bind(&preset.name)
        .bind(now)
        .bind(i64::from(spec.evaluation.time_limit_minutes) * 60)
        .bind(spec.open_weights)
        .bind(points(spec.rewards.budget)?)
        .bind(spec.rewards.rule.as_str())
        .bind(spec.require_attestation)
        .bind(&spec.evaluation_key)
        // A new phase's split secret (kept on conflict: the upsert does not set it).
        .bind(crate::random_token()?)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO phase_transitions (phase, from_state, to_state, at, actor_id, reason)
             VALUES (?, ?, ?, ?, NULL, ?)",
        )
        .bind(i64::from(spec.number))
        .bind(&previous)
        .bind(state.as_str())
        .bind(now)
        .bind(format!("loaded from preset {}", preset.name))
        .execute(&mut *tx)
        .await?;
        // A draft is not in the public log until it is published (`log_settings` skips
        // it), except its move when it replaces a phase the log already showed.
        public_log::log_settings(&mut tx, spec.number, now).await?;
        let was_public = previous
            .as_deref()
            .is_some_and(|p| p != PhaseState::Draft.as_str());
        if previous.as_deref() == Some(PhaseState::Draft.as_str()) {
            // Published by this load: the held-out data it had as a draft comes to light.
            public_log::log_data(&mut tx, spec.number, now).await?;
        }
        if !spec.draft || was_public {
            let moved = Event::PhaseMoved {
                phase: spec.number,
                from: previous.unwrap_or_else(|| "none".to_owned()),
                to: state.as_str().to_owned(),
                reason: format!("loaded from preset {}", preset.name),
            };
            public_log::append(&mut tx, &moved, now).await?;
        }
    }
    tx.commit().await?;
    tracing::info!(preset = %preset.name, "phases loaded");
    Ok(LoadOutcome::Loaded)
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    number: i64,
    title: String,
    summary: String,
    state: String,
    opens_at: i64,
    closes_at: i64,
    max_parameters: i64,
    vocab_size: i64,
    seq_len: i64,
    contributors: i64,
    submissions: i64,
    best_loss: Option<f64>,
    advanced: Option<i64>,
}

const SUMMARY_SELECT: &str = "
    SELECT p.number, p.title, p.summary, p.state, p.opens_at, p.closes_at, p.max_parameters,
           p.vocab_size, p.seq_len,
           p.contributor_count AS contributors,
           p.submission_count AS submissions,
           -- A finalized phase's best is its winner's loss on the private part.
           CASE WHEN p.state = 'finalized'
                THEN (SELECT f.private_loss FROM final_standings f WHERE f.phase = p.number AND f.rank = 1)
                ELSE (SELECT MIN(loss) FROM standings s WHERE s.phase = p.number) END AS best_loss,
           (SELECT SUM(f.advanced) FROM final_standings f WHERE f.phase = p.number) AS advanced";

impl TryFrom<SummaryRow> for PhaseSummary {
    type Error = StoreError;
    fn try_from(row: SummaryRow) -> Result<PhaseSummary> {
        Ok(PhaseSummary {
            number: unsigned(row.number, "phase number")?,
            title: row.title,
            summary: row.summary,
            state: row
                .state
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
            opens_at: row.opens_at,
            closes_at: row.closes_at,
            max_parameters: unsigned(row.max_parameters, "max_parameters")?,
            vocab_size: unsigned(row.vocab_size, "vocab_size")?,
            seq_len: unsigned(row.seq_len, "seq_len")?,
            contributors: unsigned(row.contributors, "contributors")?,
            submissions: unsigned(row.submissions, "submissions")?,
            best_loss: row.best_loss,
            advanced: row.advanced.map(|n| unsigned(n, "advanced")).transpose()?,
        })
    }
}

/// Who is looking at phases: a draft is shown to organizers only, as if it did not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Public,
    Organizers,
}

impl Audience {
    /// Organizers for an organizer, the public for anyone else.
    pub fn of(organizer: bool) -> Audience {
        if organizer {
            Audience::Organizers
        } else {
            Audience::Public
        }
    }

    /// The condition on the phase (aliased `p`) this audience may see.
    fn sees(self) -> &'static str {
        match self {
            Audience::Public => "p.state <> 'draft'",
            Audience::Organizers => "1 = 1",
        }
    }
}

/// The phases `audience` sees in order, with contributors, submissions and best loss.
pub async fn summaries(pool: &SqlitePool, audience: Audience) -> Result<Vec<PhaseSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(&format!(
        "{SUMMARY_SELECT} FROM phases p WHERE {} ORDER BY p.number",
        audience.sees()
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(PhaseSummary::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct SpecRow {
    architecture: String,
    min_context: i64,
    dataset: String,
    windows: i64,
    public_share: f64,
    time_limit_seconds: i64,
    per_day: i64,
    max_bytes: i64,
    advancement_rule: String,
    advancement_value: f64,
    epsilon: f64,
    open_weights: bool,
    reward_budget: i64,
    reward_rule: String,
    require_attestation: bool,
    evaluation_key: Option<String>,
}

/// Changes whenever anything a phase's page shows changes: its settings, its
/// submission count or its standings. Pages are cached by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct PageVersion {
    pub updated_at: i64,
    pub submission_count: i64,
    pub standings_version: i64,
}

/// The phase's page version; `None` if there is no such phase for `audience`.
pub async fn page_version(
    pool: &SqlitePool,
    number: u8,
    audience: Audience,
) -> Result<Option<PageVersion>> {
    Ok(sqlx::query_as(&format!(
        "SELECT updated_at, submission_count, standings_version FROM phases p
         WHERE p.number = ? AND {}",
        audience.sees()
    ))
    .bind(i64::from(number))
    .fetch_optional(pool)
    .await?)
}

#[derive(sqlx::FromRow)]
struct DetailRow {
    #[sqlx(flatten)]
    summary: SummaryRow,
    #[sqlx(flatten)]
    spec: SpecRow,
}

/// One phase with its full rules; `None` for a number that is not a phase `audience` sees.
pub async fn detail(
    pool: &SqlitePool,
    number: u8,
    audience: Audience,
) -> Result<Option<PhaseDetail>> {
    let mut conn = pool.acquire().await?;
    detail_in(&mut conn, number, audience).await
}

async fn detail_in(
    conn: &mut sqlx::SqliteConnection,
    number: u8,
    audience: Audience,
) -> Result<Option<PhaseDetail>> {
    let found: Option<DetailRow> = sqlx::query_as(&format!(
        "{SUMMARY_SELECT}, p.architecture, p.min_context, p.dataset, p.windows, p.public_share, p.time_limit_seconds,
                p.per_day, p.max_bytes, p.advancement_rule, p.advancement_value, p.epsilon,
                p.open_weights, p.reward_budget, p.reward_rule, p.require_attestation,
                p.evaluation_key
         FROM phases p WHERE p.number = ? AND {}",
        audience.sees()
    ))
    .bind(i64::from(number))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(DetailRow { summary, spec: row }) = found else {
        return Ok(None);
    };
    let summary = PhaseSummary::try_from(summary)?;
    let advancement = advancement_rule(&row.advancement_rule, row.advancement_value)?;
    let spec = PhaseSpec {
        number,
        title: summary.title.clone(),
        summary: summary.summary.clone(),
        opens_at: summary.opens_at,
        closes_at: summary.closes_at,
        model: ModelLimits {
            architecture: row.architecture,
            vocab_size: summary.vocab_size,
            max_parameters: summary.max_parameters,
            min_context: unsigned(row.min_context, "min_context")?,
        },
        evaluation: EvalSpec {
            dataset: row.dataset,
            seq_len: summary.seq_len,
            windows: unsigned(row.windows, "windows")?,
            public_share: row.public_share,
            time_limit_minutes: u32::try_from(row.time_limit_seconds / 60).unwrap_or(u32::MAX),
        },
        submissions: SubmissionLimits {
            per_day: unsigned(row.per_day, "per_day")?,
            max_bytes: unsigned(row.max_bytes, "max_bytes")?,
        },
        advancement,
        epsilon: row.epsilon,
        open_weights: row.open_weights,
        rewards: RewardSpec {
            budget: unsigned(row.reward_budget, "reward budget")?,
            rule: RewardRule::parse(&row.reward_rule).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown reward rule {:?}", row.reward_rule))
            })?,
        },
        require_attestation: row.require_attestation,
        evaluation_key: row.evaluation_key,
        draft: summary.state == PhaseState::Draft,
    };
    Ok(Some(PhaseDetail { summary, spec }))
}

/// Changes a phase's settings as an organizer edited them, if `domain::settings::check_edit`
/// allows it (checked again inside the transaction), and records the change with its
/// reason. Draws a new split secret if the windows changed so that it no longer gives
/// both parts a window.
pub async fn update(
    pool: &SqlitePool,
    edited: &PhaseSpec,
    actor: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    let reason = crate::audit::required_reason(reason)?;
    let number = edited.number;
    let mut tx = crate::write(pool).await?;
    sqlx::query("UPDATE phases SET updated_at = ? WHERE number = ?")
        .bind(now)
        .bind(i64::from(number))
        .execute(&mut *tx)
        .await?;
    let Some(current) = detail_in(&mut tx, number, Audience::Organizers).await? else {
        return Err(StoreError::NotFound(format!("there is no phase {number}")));
    };
    let previous = match number.checked_sub(1) {
        Some(n) if n >= 1 => detail_in(&mut tx, n, Audience::Organizers)
            .await?
            .map(|d| d.spec),
        _ => None,
    };
    let next = detail_in(&mut tx, number + 1, Audience::Organizers)
        .await?
        .map(|d| d.spec);
    ascent_domain::settings::check_edit(
        &current.spec,
        edited,
        current.summary.state,
        current.summary.submissions,
        (previous.as_ref(), next.as_ref()),
        now,
    )
    .map_err(StoreError::Refused)?;
    let (rule, value) = rule_columns(&edited.advancement);
    sqlx::query(
        "UPDATE phases SET title = ?, summary = ?, opens_at = ?, closes_at = ?, architecture = ?,
             vocab_size = ?, max_parameters = ?, min_context = ?, dataset = ?, seq_len = ?,
             windows = ?, public_share = ?, time_limit_seconds = ?, per_day = ?, max_bytes = ?,
             advancement_rule = ?, advancement_value = ?, epsilon = ?, open_weights = ?,
             reward_budget = ?, reward_rule = ?, require_attestation = ?, evaluation_key = ?,
             standings_version = standings_version + 1
         WHERE number = ?",
    )
    .bind(&edited.title)
    .bind(&edited.summary)
    .bind(edited.opens_at)
    .bind(edited.closes_at)
    .bind(&edited.model.architecture)
    .bind(i64::from(edited.model.vocab_size))
    .bind(
        i64::try_from(edited.model.max_parameters)
            .map_err(|_| StoreError::Refused("parameter cap too large".into()))?,
    )
    .bind(i64::from(edited.model.min_context))
    .bind(&edited.evaluation.dataset)
    .bind(i64::from(edited.evaluation.seq_len))
    .bind(i64::from(edited.evaluation.windows))
    .bind(edited.evaluation.public_share)
    .bind(i64::from(edited.evaluation.time_limit_minutes) * 60)
    .bind(i64::from(edited.submissions.per_day))
    .bind(
        i64::try_from(edited.submissions.max_bytes)
            .map_err(|_| StoreError::Refused("size limit too large".into()))?,
    )
    .bind(rule)
    .bind(value)
    .bind(edited.epsilon)
    .bind(edited.open_weights)
    .bind(points(edited.rewards.budget)?)
    .bind(edited.rewards.rule.as_str())
    .bind(edited.require_attestation)
    .bind(&edited.evaluation_key)
    .bind(i64::from(number))
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut tx,
        crate::audit::Change {
            actor: Some(actor),
            action: "phase settings changed",
            subject: format!("phase {number}"),
            reason,
            detail: settings_diff(&current.spec, edited),
            at: now,
        },
    )
    .await?;
    public_log::log_settings(&mut tx, number, now).await?;
    tx.commit().await?;
    ensure_split(pool, number).await
}

/// The settings an edit changed, as `{"field": [before, after]}`.
fn settings_diff(before: &PhaseSpec, after: &PhaseSpec) -> serde_json::Value {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return serde_json::Value::Null;
    };
    let mut changed = serde_json::Map::new();
    for (key, old) in &a {
        let new = b.get(key).cloned().unwrap_or(serde_json::Value::Null);
        if *old != new {
            changed.insert(key.clone(), serde_json::json!([old, new]));
        }
    }
    serde_json::Value::Object(changed)
}

fn points(budget: u64) -> Result<i64> {
    i64::try_from(budget).map_err(|_| StoreError::Refused("reward budget too large".into()))
}

fn rule_columns(rule: &AdvancementRule) -> (&'static str, f64) {
    match *rule {
        AdvancementRule::TopK(k) => ("top_k", f64::from(k)),
        AdvancementRule::TopFraction(f) => ("top_fraction", f),
        AdvancementRule::WithinMargin(m) => ("within_margin", m),
    }
}

/// Whether phase `number` accepts scores only from attested workers.
pub async fn requires_attestation(pool: &SqlitePool, number: u8) -> Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT require_attestation FROM phases WHERE number = ?")
            .bind(i64::from(number))
            .fetch_optional(pool)
            .await?
            .unwrap_or(false),
    )
}

/// Makes sure a phase's split secret puts at least one of its windows in each part,
/// drawing a new secret while it does not (a few windows with a small public share can
/// otherwise leave one board empty). Only before any submission: a scored phase's
/// windows cannot change (`domain::settings`), so its secret already covers both.
pub async fn ensure_split(pool: &SqlitePool, number: u8) -> Result<()> {
    let mut spec = scoring_spec(pool, number).await?;
    for _ in 0..1000 {
        if ascent_domain::split::covers_both_parts(
            spec.split_secret.as_bytes(),
            u64::from(spec.windows),
            spec.public_share,
        ) {
            return Ok(());
        }
        spec.split_secret = crate::random_token()?;
        set_split_secret(pool, number, &spec.split_secret).await?;
    }
    Err(StoreError::Refused(format!(
        "phase {number}: {} windows with a public share of {} cannot give both the public and the private part a window",
        spec.windows, spec.public_share
    )))
}

/// An advancement rule as stored: its name and value.
pub(crate) fn advancement_rule(rule: &str, value: f64) -> Result<AdvancementRule> {
    Ok(match rule {
        // Stored from a validated u32.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        "top_k" => AdvancementRule::TopK(value as u32),
        "top_fraction" => AdvancementRule::TopFraction(value),
        "within_margin" => AdvancementRule::WithinMargin(value),
        other => return Err(StoreError::Corrupt(format!("advancement rule {other:?}"))),
    })
}

/// A phase's state; `NotFound` for a number that is not a phase.
pub(crate) async fn state_of(conn: &mut sqlx::SqliteConnection, number: u8) -> Result<PhaseState> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM phases WHERE number = ?")
        .bind(i64::from(number))
        .fetch_optional(&mut *conn)
        .await?;
    let state = state.ok_or_else(|| StoreError::NotFound(format!("there is no phase {number}")))?;
    state
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{e}")))
}

/// What scoring a phase's submissions needs, the split secret included (server only).
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringSpec {
    pub seq_len: u32,
    pub windows: u32,
    pub public_share: f64,
    pub split_secret: String,
    pub data_sha256: Option<String>,
    pub max_parameters: u64,
}

pub async fn scoring_spec(pool: &SqlitePool, number: u8) -> Result<ScoringSpec> {
    let row: Option<(i64, i64, f64, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT seq_len, windows, public_share, split_secret, data_sha256, max_parameters
         FROM phases WHERE number = ?",
    )
    .bind(i64::from(number))
    .fetch_optional(pool)
    .await?;
    let Some((seq_len, windows, public_share, split_secret, data_sha256, max_parameters)) = row
    else {
        return Err(StoreError::NotFound(format!("there is no phase {number}")));
    };
    Ok(ScoringSpec {
        seq_len: unsigned(seq_len, "seq_len")?,
        windows: unsigned(windows, "windows")?,
        public_share,
        split_secret,
        data_sha256,
        max_parameters: unsigned(max_parameters, "max_parameters")?,
    })
}

/// Moves every phase whose schedule says so (upcoming → open → closed), recording each
/// transition; returns the moves made as (phase, from, to).
pub async fn apply_schedule(
    pool: &SqlitePool,
    now: i64,
) -> Result<Vec<(u8, PhaseState, PhaseState)>> {
    let rows: Vec<(i64, String, i64, i64)> =
        sqlx::query_as("SELECT number, state, opens_at, closes_at FROM phases ORDER BY number")
            .fetch_all(pool)
            .await?;
    let mut moves = Vec::new();
    for (number, state, opens_at, closes_at) in rows {
        let from = PhaseState::ALL
            .into_iter()
            .find(|s| s.as_str() == state)
            .ok_or_else(|| StoreError::Corrupt(format!("phase state {state:?}")))?;
        let Some(to) = from.scheduled_move(now, opens_at, closes_at) else {
            continue;
        };
        let mut tx = crate::write(pool).await?;
        // Only if nobody moved it meanwhile (an organizer, another server).
        let moved = sqlx::query(
            "UPDATE phases SET state = ?, updated_at = ? WHERE number = ? AND state = ?",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(number)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 1 {
            let phase = unsigned(number, "phase")?;
            crate::lifecycle::record_transition(&mut tx, phase, from, to, None, "by schedule", now)
                .await?;
            moves.push((unsigned(number, "phase")?, from, to));
        }
        tx.commit().await?;
    }
    for (phase, from, to) in &moves {
        tracing::info!(phase, %from, %to, "phase moved by its schedule");
    }
    Ok(moves)
}

/// Replaces a phase's split secret (see `evaluator::split::covers_both_parts`).
pub async fn set_split_secret(pool: &SqlitePool, number: u8, secret: &str) -> Result<()> {
    sqlx::query("UPDATE phases SET split_secret = ? WHERE number = ?")
        .bind(secret)
        .bind(i64::from(number))
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ascent_domain::preset::parse_preset;

    pub(crate) fn demo_preset(now: i64) -> Preset {
        parse_preset(include_str!("../../presets/demo.toml"), now).expect("demo preset parses")
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn loading_a_preset_publishes_seven_phases_by_schedule(pool: SqlitePool) -> Result<()> {
        let now = 1_800_000_000;
        assert_eq!(
            load_preset(&pool, &demo_preset(now), now, false).await?,
            LoadOutcome::Loaded
        );
        let phases = summaries(&pool, Audience::Organizers).await?;
        let states: Vec<PhaseState> = phases.iter().map(|p| p.state).collect();
        assert_eq!(phases.len(), 7);
        assert_eq!(states[0], PhaseState::Open);
        assert!(states[1..].iter().all(|s| *s == PhaseState::Upcoming));
        assert!(phases
            .iter()
            .all(|p| p.contributors == 0 && p.best_loss.is_none()));
        let transitions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM phase_transitions")
            .fetch_one(&pool)
            .await?;
        assert_eq!(transitions, 7, "every state change is recorded");
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn reloading_keeps_phases_unless_asked(pool: SqlitePool) -> Result<()> {
        let preset = demo_preset(1_800_000_000);
        load_preset(&pool, &preset, 1_800_000_000, false).await?;
        let again = load_preset(&pool, &preset, 1_900_000_000, false).await?;
        assert_eq!(
            again,
            LoadOutcome::AlreadyLoaded {
                preset: "demo".into()
            }
        );
        assert_eq!(
            detail(&pool, 1, Audience::Organizers)
                .await?
                .map(|d| d.summary.opens_at),
            Some(1_800_000_000)
        );
        Ok(())
    }

    /// The public log's events so far, with the chain checked and replayed.
    async fn logged(pool: &SqlitePool) -> Result<Vec<Event>> {
        use ascent_domain::public_log::{check_chain, Replay, GENESIS};
        let entries = public_log::page(pool, 0, 10_000).await?;
        let events = check_chain((0, GENESIS), &entries)
            .map_err(|d| StoreError::Corrupt(d.problem.clone()))?;
        let mut replay = Replay::default();
        for (entry, event) in entries.iter().zip(&events) {
            replay
                .apply(entry.seq, event.clone())
                .map_err(|d| StoreError::Corrupt(d.problem))?;
        }
        Ok(events)
    }

    /// The phase an event is about, if it names one.
    fn phase_of(event: &Event) -> Option<u8> {
        match event {
            Event::PhaseSettings { phase, .. }
            | Event::PhaseMoved { phase, .. }
            | Event::HeldOutData { phase, .. } => Some(*phase),
            _ => None,
        }
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn drafts_are_hidden_until_published_in_order(pool: SqlitePool) -> Result<()> {
        let now = 1_800_000_000;
        let mut preset = demo_preset(now);
        for spec in &mut preset.phases[5..] {
            spec.draft = true;
        }
        load_preset(&pool, &preset, now, false).await?;
        let numbers =
            |phases: Vec<PhaseSummary>| phases.iter().map(|p| p.number).collect::<Vec<_>>();
        assert_eq!(
            numbers(summaries(&pool, Audience::Public).await?),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(summaries(&pool, Audience::Organizers).await?.len(), 7);
        assert_eq!(detail(&pool, 6, Audience::Public).await?, None);
        assert_eq!(page_version(&pool, 6, Audience::Public).await?, None);
        let draft = detail(&pool, 6, Audience::Organizers)
            .await?
            .expect("phase 6");
        assert_eq!(
            (draft.summary.state, draft.spec.draft),
            (PhaseState::Draft, true)
        );
        // A draft stays put whatever the schedule says.
        apply_schedule(&pool, preset.phases[5].opens_at + 1).await?;
        assert_eq!(
            detail(&pool, 6, Audience::Organizers)
                .await?
                .map(|d| d.summary.state),
            Some(PhaseState::Draft)
        );

        // Configuring a draft leaves no trace in the public log.
        let data = crate::datasets::Dataset {
            sha256: "ab".repeat(32),
            name: "held.bin".into(),
            bytes: 2048,
            tokens: 512,
            added_at: now,
        };
        crate::datasets::attach(&pool, 6, &data, None).await?;
        let organizer = crate::submissions::tests::user(&pool, "org").await?;
        let mut tuned = draft.spec.clone();
        tuned.epsilon *= 2.0;
        update(&pool, &tuned, organizer, "tuning", now).await?;
        let events = logged(&pool).await?;
        assert!(
            events.iter().all(|e| phase_of(e).is_none_or(|p| p <= 5)),
            "{events:?}"
        );

        // Nobody is invited into a draft (an invitation is public); someone promoted into
        // it is not shown it on their profile.
        let ada = crate::submissions::tests::user(&pool, "ada").await?;
        let invited = crate::entrants::invite(&pool, 6, "ada", organizer, "welcome", now).await;
        assert!(
            matches!(&invited, Err(StoreError::Refused(m)) if m.contains("publish it before")),
            "{invited:?}"
        );
        sqlx::query(
            "INSERT INTO phase_entrants (phase, user_id, reason, at) VALUES (6, ?, 'promoted', ?)",
        )
        .bind(ada)
        .bind(now)
        .execute(&pool)
        .await?;
        let eligible = |pool: SqlitePool| async move {
            let profile = crate::profiles::contributor(&pool, "ada", 10).await?;
            Ok::<_, StoreError>(profile.map(|p| p.eligible).unwrap_or_default())
        };
        assert_eq!(eligible(pool.clone()).await?, []);

        // Published in order only, and not after its close; publishing logs its settings
        // and data, then the move, and tells its entrants.
        let publish = |n| {
            crate::lifecycle::move_phase(&pool, n, PhaseState::Upcoming, organizer, "ready", now)
        };
        let late = crate::lifecycle::move_phase(
            &pool,
            6,
            PhaseState::Upcoming,
            organizer,
            "late",
            preset.phases[5].closes_at,
        )
        .await;
        assert!(
            matches!(&late, Err(StoreError::Refused(m)) if m.contains("cannot be published")),
            "{late:?}"
        );
        let refused = publish(7).await;
        assert!(
            matches!(&refused, Err(StoreError::Refused(m)) if m.contains("phase 6 is still a draft")),
            "{refused:?}"
        );
        publish(6).await?;
        let events = logged(&pool).await?;
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| phase_of(e) == Some(6))
            .map(Event::kind)
            .collect();
        assert_eq!(kinds, ["phase_settings", "held_out_data", "phase_moved"]);
        assert_eq!(eligible(pool.clone()).await?, [(6, "promoted".to_owned())]);
        let news = crate::notifications::of_user(&pool, ada, 10).await?;
        assert!(news.iter().any(|n| n
            .text
            .contains("Phase 6, which you may enter, is published")));
        assert_eq!(
            numbers(summaries(&pool, Audience::Public).await?),
            [1, 2, 3, 4, 5, 6]
        );
        publish(7).await?;
        assert_eq!(summaries(&pool, Audience::Public).await?.len(), 7);
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_draft_made_public_by_a_new_preset_logs_its_data(pool: SqlitePool) -> Result<()> {
        let now = 1_800_000_000;
        let mut preset = demo_preset(now);
        preset.phases[6].draft = true;
        load_preset(&pool, &preset, now, false).await?;
        let data = crate::datasets::Dataset {
            sha256: "cd".repeat(32),
            name: "held.bin".into(),
            bytes: 2048,
            tokens: 512,
            added_at: now,
        };
        crate::datasets::attach(&pool, 7, &data, None).await?;
        preset.phases[6].draft = false;
        load_preset(&pool, &preset, now, true).await?;
        let kinds: Vec<&str> = logged(&pool)
            .await?
            .iter()
            .filter(|e| phase_of(e) == Some(7))
            .map(Event::kind)
            .collect();
        assert_eq!(kinds, ["phase_settings", "held_out_data", "phase_moved"]);
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn detail_round_trips_the_spec(pool: SqlitePool) -> Result<()> {
        let preset = demo_preset(1_800_000_000);
        load_preset(&pool, &preset, 1_800_000_000, false).await?;
        for spec in &preset.phases {
            let stored = detail(&pool, spec.number, Audience::Organizers)
                .await?
                .expect("phase exists");
            assert_eq!(&stored.spec, spec);
        }
        assert_eq!(detail(&pool, 8, Audience::Organizers).await?, None);
        Ok(())
    }
}
