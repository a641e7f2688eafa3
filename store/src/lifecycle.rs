//! A phase's life after it opens: organizers move it by hand, a closed phase is ranked
//! on the private part of its windows, organizers adjust the advancement list the rule
//! proposes, and finalizing freezes the ranking and promotes the winners into the next
//! phase. Every change is recorded in `phase_transitions` and the audit log.

use std::collections::HashMap;

use ascent_domain::format;
use ascent_domain::public_log::Event;
use ascent_domain::ranking::{self, Entry, Verdict};
use ascent_domain::split::Part;
use ascent_domain::views::{FinalBoard, FinalRow};
use ascent_domain::PhaseState;
use serde_json::json;
use sqlx::{SqliteConnection, SqlitePool};

use crate::audit::{self, required_reason, Change};
use crate::phases::{advancement_rule, state_of};
use crate::standings::{intervals, INTERVAL_ROWS};
use crate::{notifications, public_log, unsigned, Result, StoreError};

/// Moves a phase by hand (publish, open early, close early; see
/// `PhaseState::organizer_move`). Opening or closing early also moves the schedule's
/// time to now, so the schedule and the state agree.
pub async fn move_phase(
    pool: &SqlitePool,
    number: u8,
    to: PhaseState,
    actor: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    let reason = required_reason(reason)?;
    let mut tx = crate::write(pool).await?;
    let from = touch(&mut tx, number, now).await?;
    from.organizer_move(to).map_err(StoreError::Refused)?;
    if from == PhaseState::Draft
        && number > 1
        && state_of(&mut tx, number - 1).await? == PhaseState::Draft
    {
        return Err(StoreError::Refused(format!(
            "phase {} is still a draft: phases are published in order",
            number - 1
        )));
    }
    let (opens_at, closes_at): (i64, i64) =
        sqlx::query_as("SELECT opens_at, closes_at FROM phases WHERE number = ?")
            .bind(i64::from(number))
            .fetch_one(&mut *tx)
            .await?;
    if matches!(to, PhaseState::Open | PhaseState::Upcoming) && closes_at <= now {
        let verb = if to == PhaseState::Open {
            "open"
        } else {
            "be published"
        };
        return Err(StoreError::Refused(format!(
            "phase {number} cannot {verb}: its closing time ({}) has passed; edit its schedule first",
            format::datetime(closes_at)
        )));
    }
    let (opens_at, closes_at) = match to {
        PhaseState::Open => (opens_at.min(now), closes_at),
        PhaseState::Closed => (opens_at.min(now), closes_at.min(now)),
        _ => (opens_at, closes_at),
    };
    sqlx::query("UPDATE phases SET state = ?, opens_at = ?, closes_at = ? WHERE number = ?")
        .bind(to.as_str())
        .bind(opens_at)
        .bind(closes_at)
        .bind(i64::from(number))
        .execute(&mut *tx)
        .await?;
    record_transition(&mut tx, number, from, to, Some(actor), reason, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks a phase changed (its pages are cached by `updated_at` and `standings_version`)
/// and returns its state, inside the caller's write transaction.
pub(crate) async fn touch(conn: &mut SqliteConnection, number: u8, now: i64) -> Result<PhaseState> {
    sqlx::query(
        "UPDATE phases SET updated_at = ?, standings_version = standings_version + 1 WHERE number = ?",
    )
    .bind(now)
    .bind(i64::from(number))
    .execute(&mut *conn)
    .await?;
    state_of(conn, number).await
}

/// Records a state change in `phase_transitions` and the audit log.
pub(crate) async fn record_transition(
    conn: &mut SqliteConnection,
    number: u8,
    from: PhaseState,
    to: PhaseState,
    actor: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO phase_transitions (phase, from_state, to_state, at, actor_id, reason)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(i64::from(number))
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(now)
    .bind(actor)
    .bind(reason)
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Change {
            actor,
            action: "phase moved",
            subject: format!("phase {number}"),
            reason,
            detail: json!({ "from": from.as_str(), "to": to.as_str() }),
            at: now,
        },
    )
    .await?;
    if from == PhaseState::Draft {
        // Published: what the log left out while it was a draft comes first, and those
        // promoted into it hear that they can see it now.
        public_log::log_settings(conn, number, now).await?;
        public_log::log_data(conn, number, now).await?;
        let entrants: Vec<i64> =
            sqlx::query_scalar("SELECT user_id FROM phase_entrants WHERE phase = ?")
                .bind(i64::from(number))
                .fetch_all(&mut *conn)
                .await?;
        let text = format!(
            "Phase {number}, which you may enter, is published: see its rules and schedule."
        );
        for user_id in entrants {
            notifications::send(conn, user_id, &text, &format!("/phases/{number}"), now).await?;
        }
    }
    let moved = Event::PhaseMoved {
        phase: number,
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
        reason: reason.to_owned(),
    };
    public_log::append(conn, &moved, now).await?;
    if to == PhaseState::Closed {
        // The private board is public from the close on, and so is what was signed.
        public_log::reveal_phase(conn, number, now).await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    user_id: i64,
    handle: String,
    public_loss: f64,
    private_loss: f64,
    created_at: i64,
    disqualified: bool,
}

/// The ranking and advancement list of a closed phase, computed from its submissions.
struct Proposal {
    rows: Vec<FinalRow>,
    user_ids: Vec<i64>,
    pending: u64,
    rule: String,
}

async fn propose(conn: &mut SqliteConnection, number: u8) -> Result<Proposal> {
    let phase = i64::from(number);
    let (epsilon, rule, value): (f64, String, f64) = sqlx::query_as(
        "SELECT epsilon, advancement_rule, advancement_value FROM phases WHERE number = ?",
    )
    .bind(phase)
    .fetch_one(&mut *conn)
    .await?;
    let rule = advancement_rule(&rule, value)?;
    let found: Vec<EntryRow> = sqlx::query_as(
        "SELECT s.id, s.user_id, u.handle, s.public_loss, s.private_loss, s.created_at, s.disqualified
         FROM submissions s JOIN users u ON u.id = s.user_id
         WHERE s.phase = ? AND s.state = 'scored'
               AND s.public_loss IS NOT NULL AND s.private_loss IS NOT NULL",
    )
    .bind(phase)
    .fetch_all(&mut *conn)
    .await?;
    let handles: HashMap<i64, &str> = found
        .iter()
        .map(|e| (e.user_id, e.handle.as_str()))
        .collect();
    let entries: Vec<Entry> = found
        .iter()
        .map(|e| Entry {
            submission_id: e.id,
            user_id: e.user_id,
            public_loss: e.public_loss,
            private_loss: e.private_loss,
            at: e.created_at,
            disqualified: e.disqualified,
        })
        .collect();
    let places = ranking::final_ranking(&entries, epsilon);
    let adjustments: Vec<(i64, bool, String)> = sqlx::query_as(
        "SELECT user_id, advance, reason FROM advancement_adjustments WHERE phase = ?",
    )
    .bind(phase)
    .fetch_all(&mut *conn)
    .await?;
    let ranked: Vec<(i64, f64)> = places.iter().map(|p| (p.user_id, p.private_loss)).collect();
    let verdicts = ranking::advancement_list(&rule, &ranked, &adjustments);
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM submissions
         WHERE phase = ? AND state IN ('queued', 'validating', 'scoring')",
    )
    .bind(phase)
    .fetch_one(&mut *conn)
    .await?;
    let rows = places
        .iter()
        .zip(&verdicts)
        .map(|(place, verdict)| FinalRow {
            rank: place.rank,
            handle: handles
                .get(&place.user_id)
                .copied()
                .unwrap_or("?")
                .to_owned(),
            submission_id: place.submission_id,
            private_loss: place.private_loss,
            public_rank: place.public_rank,
            public_loss: place.public_loss,
            movement: place.movement(),
            interval: None,
            advances: verdict.advances(),
            proposed: matches!(verdict, Verdict::Proposed | Verdict::Removed(_)),
            adjustment: match verdict {
                Verdict::Added(why) | Verdict::Removed(why) => Some(why.clone()),
                Verdict::Proposed | Verdict::NotProposed => None,
            },
        })
        .collect();
    Ok(Proposal {
        rows,
        user_ids: places.iter().map(|p| p.user_id).collect(),
        pending: unsigned(pending, "pending submissions")?,
        rule: rule.describe(),
    })
}

#[derive(sqlx::FromRow)]
struct FrozenRow {
    rank: i64,
    handle: String,
    submission_id: i64,
    private_loss: f64,
    public_rank: i64,
    public_loss: f64,
    advanced: bool,
    adjustment: Option<String>,
}

/// A closed phase's final ranking with the advancement list its rule proposes (and
/// organizers adjusted), or a finalized phase's frozen one. `None` while the phase is
/// not closed yet; `NotFound` for a number that is not a phase.
pub async fn final_board(pool: &SqlitePool, number: u8) -> Result<Option<FinalBoard>> {
    let mut conn = pool.acquire().await?;
    let state = state_of(&mut conn, number).await?;
    let mut board = match state {
        PhaseState::Closed => {
            let proposal = propose(&mut conn, number).await?;
            FinalBoard {
                phase: number,
                state,
                rule: proposal.rule,
                pending: proposal.pending,
                rows: proposal.rows,
            }
        }
        PhaseState::Finalized => {
            let (rule, value): (String, f64) = sqlx::query_as(
                "SELECT advancement_rule, advancement_value FROM phases WHERE number = ?",
            )
            .bind(i64::from(number))
            .fetch_one(&mut *conn)
            .await?;
            let frozen: Vec<FrozenRow> = sqlx::query_as(
                "SELECT f.rank, u.handle, f.submission_id, f.private_loss, f.public_rank,
                        f.public_loss, f.advanced, f.adjustment
                 FROM final_standings f JOIN users u ON u.id = f.user_id
                 WHERE f.phase = ? ORDER BY f.rank",
            )
            .bind(i64::from(number))
            .fetch_all(&mut *conn)
            .await?;
            let rows = frozen
                .into_iter()
                .map(|r| {
                    Ok(FinalRow {
                        rank: unsigned(r.rank, "rank")?,
                        handle: r.handle,
                        submission_id: r.submission_id,
                        private_loss: r.private_loss,
                        public_rank: unsigned(r.public_rank, "public rank")?,
                        public_loss: r.public_loss,
                        movement: r.public_rank - r.rank,
                        interval: None,
                        // Proposed by the rule unless an organizer added them; removed
                        // ones were proposed and do not advance.
                        proposed: r.advanced != r.adjustment.is_some(),
                        advances: r.advanced,
                        adjustment: r.adjustment,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            FinalBoard {
                phase: number,
                state,
                rule: advancement_rule(&rule, value)?.describe(),
                pending: 0,
                rows,
            }
        }
        PhaseState::Draft | PhaseState::Upcoming | PhaseState::Open => return Ok(None),
    };
    drop(conn);
    let leading: Vec<i64> = board
        .rows
        .iter()
        .filter(|r| r.rank <= INTERVAL_ROWS)
        .map(|r| r.submission_id)
        .collect();
    let found = intervals(pool, number, &leading, Part::Private).await?;
    for row in &mut board.rows {
        row.interval = found.get(&row.submission_id).copied();
    }
    Ok(Some(board))
}

/// An organizer's change to a closed phase's advancement list: `advance` adds a
/// contributor the rule left out, or (false) removes one it proposed. The reason is
/// required; a later adjustment of the same contributor replaces the earlier one.
pub async fn adjust(
    pool: &SqlitePool,
    number: u8,
    handle: &str,
    advance: bool,
    actor: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    let reason = required_reason(reason)?;
    let mut tx = crate::write(pool).await?;
    let state = touch(&mut tx, number, now).await?;
    if state != PhaseState::Closed {
        return Err(StoreError::Refused(format!(
            "phase {number} is {state}: its advancement list can be changed only while it is closed and not yet finalized"
        )));
    }
    let user: Option<i64> = sqlx::query_scalar(
        "SELECT u.id FROM users u WHERE u.handle = ? AND EXISTS
             (SELECT 1 FROM submissions s WHERE s.user_id = u.id AND s.phase = ? AND s.state = 'scored')",
    )
    .bind(handle)
    .bind(i64::from(number))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(user) = user else {
        return Err(StoreError::NotFound(format!(
            "{handle:?} has no scored submission in phase {number}"
        )));
    };
    sqlx::query(
        "INSERT INTO advancement_adjustments (phase, user_id, advance, reason, actor_id, at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (phase, user_id) DO UPDATE SET
             advance = excluded.advance, reason = excluded.reason,
             actor_id = excluded.actor_id, at = excluded.at",
    )
    .bind(i64::from(number))
    .bind(user)
    .bind(advance)
    .bind(reason)
    .bind(actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Change {
            actor: Some(actor),
            action: if advance {
                "advancement added"
            } else {
                "advancement removed"
            },
            subject: format!("phase {number} / {handle}"),
            reason,
            detail: json!({ "phase": number, "contributor": handle, "advance": advance }),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What finalizing a phase did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// Handles promoted to the next phase, in final order.
    pub promoted: Vec<String>,
    /// The phase they may now enter (`None` after the last phase).
    pub next_phase: Option<u8>,
}

/// Finalizes a closed phase: freezes its final ranking, promotes the contributors on
/// the advancement list into the next phase, tells every ranked contributor where they
/// finished, and records it all. Refused while submissions of the phase are still
/// being scored (they were received before the close and must count).
pub async fn finalize(
    pool: &SqlitePool,
    number: u8,
    actor: i64,
    reason: &str,
    now: i64,
) -> Result<Finalized> {
    let reason = required_reason(reason)?;
    let mut tx = crate::write(pool).await?;
    let state = touch(&mut tx, number, now).await?;
    if state != PhaseState::Closed {
        return Err(StoreError::Refused(format!(
            "phase {number} is {state}; only a closed phase can be finalized"
        )));
    }
    let proposal = propose(&mut tx, number).await?;
    if proposal.pending > 0 {
        return Err(StoreError::Refused(format!(
            "{} submissions of phase {number} are still being scored; finalize once they are done \
             (one that can never be scored, say encrypted to a key no worker holds any more, \
             can be disqualified with that reason)",
            proposal.pending
        )));
    }
    let next_phase = (number < 7).then_some(number + 1);
    // Promoted contributors are pointed at the next phase's page, unless it is still a
    // draft (which only organizers see): then at this phase's final board.
    let next_page = match next_phase {
        Some(next) if state_of(&mut tx, next).await? != PhaseState::Draft => next,
        _ => number,
    };
    let mut promoted = Vec::new();
    for (row, user_id) in proposal.rows.iter().zip(&proposal.user_ids) {
        sqlx::query(
            "INSERT INTO final_standings (phase, rank, user_id, submission_id, private_loss,
                 public_rank, public_loss, advanced, adjustment)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(i64::from(number))
        .bind(i64::try_from(row.rank).unwrap_or(i64::MAX))
        .bind(user_id)
        .bind(row.submission_id)
        .bind(row.private_loss)
        .bind(i64::try_from(row.public_rank).unwrap_or(i64::MAX))
        .bind(row.public_loss)
        .bind(row.advances)
        .bind(&row.adjustment)
        .execute(&mut *tx)
        .await?;
        let (text, link) = match (row.advances, next_phase) {
            (true, Some(next)) => {
                sqlx::query(
                    "INSERT INTO phase_entrants (phase, user_id, reason, at, actor_id)
                     VALUES (?, ?, 'promoted', ?, ?)
                     ON CONFLICT (phase, user_id) DO UPDATE SET reason = 'promoted',
                         at = excluded.at, actor_id = excluded.actor_id",
                )
                .bind(i64::from(next))
                .bind(user_id)
                .bind(now)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
                promoted.push((row.handle.clone(), row.submission_id));
                (
                    format!(
                        "You advanced to phase {next}: you finished #{} of {} in phase {number}.",
                        row.rank,
                        proposal.rows.len()
                    ),
                    format!("/phases/{next_page}"),
                )
            }
            (true, None) => {
                promoted.push((row.handle.clone(), row.submission_id));
                (
                    format!(
                        "Phase {number} is final and you are among its winners: #{} of {}.",
                        row.rank,
                        proposal.rows.len()
                    ),
                    format!("/phases/{number}"),
                )
            }
            (false, _) => (
                format!(
                    "Phase {number} is final: you finished #{} of {}.",
                    row.rank,
                    proposal.rows.len()
                ),
                format!("/phases/{number}"),
            ),
        };
        notifications::send(&mut tx, *user_id, &text, &link, now).await?;
    }
    sqlx::query("UPDATE phases SET state = 'finalized', standings_version = standings_version + 1 WHERE number = ?")
        .bind(i64::from(number))
        .execute(&mut *tx)
        .await?;
    if let Some(next) = next_phase {
        // Its page says who may enter, from the rows just written.
        touch(&mut tx, next, now).await?;
    }
    record_transition(
        &mut tx,
        number,
        PhaseState::Closed,
        PhaseState::Finalized,
        Some(actor),
        reason,
        now,
    )
    .await?;
    let split_secret: Option<String> =
        sqlx::query_scalar("SELECT split_secret FROM phases WHERE number = ?")
            .bind(i64::from(number))
            .fetch_one(&mut *tx)
            .await?;
    let (promoted, promoted_ids): (Vec<String>, Vec<i64>) = promoted.into_iter().unzip();
    let finalized = Event::PhaseFinalized {
        phase: number,
        split_secret: split_secret.unwrap_or_default(),
        advanced: promoted.clone(),
        promoted: promoted_ids,
    };
    public_log::append(&mut tx, &finalized, now).await?;
    let ranked: Vec<(&FinalRow, i64)> = proposal
        .rows
        .iter()
        .zip(proposal.user_ids.iter().copied())
        .collect();
    crate::rewards::grant(&mut tx, number, &ranked, now).await?;
    audit::record(
        &mut tx,
        Change {
            actor: Some(actor),
            action: "winners promoted",
            subject: format!("phase {number}"),
            reason,
            detail: json!({
                "ranked": proposal.rows.len(),
                "promoted": promoted,
                "to_phase": next_phase,
                "adjusted": proposal.rows.iter().filter(|r| r.adjustment.is_some()).count(),
            }),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Finalized {
        promoted,
        next_phase,
    })
}

/// How many contributors each finalized phase promoted, by phase number.
pub async fn promoted_counts(pool: &SqlitePool) -> Result<Vec<(u8, u64)>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT phase, SUM(advanced) FROM final_standings GROUP BY phase ORDER BY phase",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(phase, n)| Ok((unsigned(phase, "phase")?, unsigned(n, "promoted")?)))
        .collect()
}

/// The contributors a finalized phase promoted, in final order.
pub async fn promoted(pool: &SqlitePool, number: u8) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT u.handle FROM final_standings f JOIN users u ON u.id = f.user_id
         WHERE f.phase = ? AND f.advanced = 1 ORDER BY f.rank",
    )
    .bind(i64::from(number))
    .fetch_all(pool)
    .await?)
}

/// A promoted checkpoint of a finalized phase whose rules open the weights: what its
/// download page and model card need. `None` for every other submission.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenCheckpoint {
    /// Where its files are stored.
    pub upload_id: String,
    /// For an encrypted checkpoint, the folder in its upload's directory that holds the
    /// plaintext opened after the phase was finalized (`opened`).
    pub opened_dir: Option<String>,
    pub card: ascent_domain::model_card::CardFacts,
}

pub async fn open_checkpoint(
    pool: &SqlitePool,
    submission_id: i64,
) -> Result<Option<OpenCheckpoint>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        upload_id: Option<String>,
        handle: String,
        phase: i64,
        title: String,
        rank: i64,
        ranked: i64,
        private_loss: f64,
        public_loss: f64,
        parameters: Option<i64>,
        max_parameters: i64,
        seq_len: i64,
        windows: i64,
        dataset: String,
        weights_sha256: Option<String>,
        scored_at: Option<i64>,
        score_key: Option<String>,
        encrypted: bool,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.upload_id, u.handle, s.phase, p.title, f.rank,
                (SELECT COUNT(*) FROM final_standings g WHERE g.phase = f.phase) AS ranked,
                f.private_loss, f.public_loss, s.parameters, p.max_parameters, p.seq_len, p.windows,
                p.dataset, s.weights_sha256, s.scored_at, s.score_key,
                s.encrypted_to IS NOT NULL AS encrypted
         FROM final_standings f
         JOIN submissions s ON s.id = f.submission_id
         JOIN users u ON u.id = f.user_id
         JOIN phases p ON p.number = f.phase
         WHERE f.submission_id = ? AND f.advanced = 1 AND p.state = 'finalized' AND p.open_weights = 1",
    )
    .bind(submission_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let Some(upload_id) = row.upload_id else {
        return Ok(None);
    };
    let (opened_dir, files) = if row.encrypted {
        // The server cannot publish ciphertext: only what was opened (`opened`).
        let Some((dir, files)) = crate::opened::files(pool, submission_id).await? else {
            return Ok(None);
        };
        (Some(dir), files)
    } else {
        let mut conn = pool.acquire().await?;
        (
            None,
            crate::uploads::stored_files(&mut conn, &upload_id).await?,
        )
    };
    Ok(Some(OpenCheckpoint {
        upload_id,
        opened_dir,
        card: ascent_domain::model_card::CardFacts {
            submission_id,
            contributor: row.handle,
            phase: unsigned(row.phase, "phase")?,
            phase_title: row.title,
            rank: unsigned(row.rank, "rank")?,
            ranked: unsigned(row.ranked, "ranked")?,
            private_loss: row.private_loss,
            public_loss: row.public_loss,
            parameters: row
                .parameters
                .map(|p| unsigned(p, "parameters"))
                .transpose()?
                .unwrap_or(0),
            max_parameters: unsigned(row.max_parameters, "max_parameters")?,
            seq_len: unsigned(row.seq_len, "seq_len")?,
            windows: unsigned(row.windows, "windows")?,
            dataset: row.dataset,
            weights_sha256: row.weights_sha256.unwrap_or_default(),
            files,
            scored_at: row.scored_at.unwrap_or(0),
            signed_by: row.score_key,
        },
    }))
}

/// A finalized phase's split secret, published so anyone can recompute the public and
/// private parts of its signed window losses; `None` until the phase is finalized.
pub async fn published_split_secret(pool: &SqlitePool, number: u8) -> Result<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT split_secret FROM phases WHERE number = ? AND state = 'finalized'",
    )
    .bind(i64::from(number))
    .fetch_optional(pool)
    .await?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::phases::{load_preset, tests::demo_preset};
    use crate::submissions::tests::scored_parts;
    pub(crate) use crate::submissions::tests::user;
    use crate::{audit, moderation, standings, uploads};
    use ascent_domain::entry::{check_entry, Refusal};

    pub(crate) const NOW: i64 = 1_800_000_000;

    pub(crate) async fn audit_actions(pool: &SqlitePool) -> Result<Vec<String>> {
        Ok(audit::recent(pool, 100, None)
            .await?
            .into_iter()
            .rev()
            .map(|e| format!("{} {}", e.action, e.subject))
            .collect())
    }

    /// Phase 1 open with five contributors; the demo preset advances the best five, so
    /// use top-2 to see someone left out.
    async fn phase_with_scores(pool: &SqlitePool) -> Result<(i64, Vec<i64>)> {
        load_preset(pool, &demo_preset(NOW), NOW, false).await?;
        sqlx::query(
            "UPDATE phases SET advancement_rule = 'top_k', advancement_value = 2 WHERE number = 1",
        )
        .execute(pool)
        .await?;
        let organizer = user(pool, "org").await?;
        let mut people = Vec::new();
        for handle in ["ada", "bob", "cy", "dee"] {
            people.push(user(pool, handle).await?);
        }
        // Public board: ada, bob, cy, dee. Private part: cy, ada, bob, dee.
        scored_parts(pool, 1, people[0], (2.00, 2.10), NOW + 1).await?;
        scored_parts(pool, 1, people[1], (2.05, 2.20), NOW + 2).await?;
        scored_parts(pool, 1, people[2], (2.10, 2.00), NOW + 3).await?;
        scored_parts(pool, 1, people[3], (2.30, 2.30), NOW + 4).await?;
        Ok((organizer, people))
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn a_phase_closes_ranks_privately_and_promotes(pool: SqlitePool) -> Result<()> {
        let (org, people) = phase_with_scores(&pool).await?;
        assert_eq!(
            final_board(&pool, 1).await?,
            None,
            "no final ranking while open"
        );
        let public: Vec<String> = standings::leaderboard(&pool, 1, 0, 10)
            .await?
            .expect("phase")
            .rows
            .into_iter()
            .map(|r| r.handle)
            .collect();
        assert_eq!(public, ["ada", "bob", "cy", "dee"]);

        move_phase(
            &pool,
            1,
            PhaseState::Closed,
            org,
            "end of the prototype",
            NOW + 10,
        )
        .await?;
        let board = final_board(&pool, 1).await?.expect("closed");
        let ranked: Vec<(&str, u64, i64, bool)> = board
            .rows
            .iter()
            .map(|r| (r.handle.as_str(), r.public_rank, r.movement, r.advances))
            .collect();
        assert_eq!(
            ranked,
            [
                ("cy", 3, 2, true),
                ("ada", 1, -1, true),
                ("bob", 2, -1, false),
                ("dee", 4, 0, false)
            ]
        );
        assert_eq!(board.rule, "The best 2 contributors advance.");

        adjust(
            &pool,
            1,
            "bob",
            true,
            org,
            "tied within noise with ada",
            NOW + 11,
        )
        .await?;
        adjust(
            &pool,
            1,
            "ada",
            false,
            org,
            "shared weights with a banned account",
            NOW + 12,
        )
        .await?;
        let board = final_board(&pool, 1).await?.expect("closed");
        let advancing: Vec<&str> = board
            .rows
            .iter()
            .filter(|r| r.advances)
            .map(|r| r.handle.as_str())
            .collect();
        assert_eq!(advancing, ["cy", "bob"]);
        assert!(board.rows[1].proposed && !board.rows[1].advances);
        assert!(adjust(&pool, 1, "nobody", true, org, "x", NOW)
            .await
            .is_err());
        assert!(matches!(
            adjust(&pool, 1, "dee", true, org, "  ", NOW).await,
            Err(StoreError::Refused(_))
        ));

        // Phase 2 is still a draft: promoted contributors cannot see it yet.
        sqlx::query("UPDATE phases SET state = 'draft' WHERE number = 2")
            .execute(&pool)
            .await?;
        let next_page =
            crate::phases::page_version(&pool, 2, crate::phases::Audience::Organizers).await?;
        let done = finalize(&pool, 1, org, "reviewed", NOW + 20).await?;
        // Phase 2's page says who may enter: its cached copy is now stale.
        assert_ne!(
            crate::phases::page_version(&pool, 2, crate::phases::Audience::Organizers).await?,
            next_page
        );
        assert_eq!(done.promoted, ["cy", "bob"]);
        assert_eq!(done.next_phase, Some(2));
        let frozen = final_board(&pool, 1).await?.expect("finalized");
        assert_eq!(frozen.state, PhaseState::Finalized);
        assert_eq!(
            frozen
                .rows
                .iter()
                .map(|r| (r.handle.as_str(), r.advances, r.proposed))
                .collect::<Vec<_>>(),
            [
                ("cy", true, true),
                ("ada", false, true),
                ("bob", true, false),
                ("dee", false, false)
            ]
        );
        assert_eq!(
            frozen.rows[1].adjustment.as_deref(),
            Some("shared weights with a banned account")
        );
        assert_eq!(promoted(&pool, 1).await?, ["cy", "bob"]);
        assert_eq!(promoted_counts(&pool).await?, [(1, 2)]);

        // Promoted contributors may enter phase 2 once it opens; the others may not.
        sqlx::query("UPDATE phases SET state = 'open' WHERE number = 2")
            .execute(&pool)
            .await?;
        let mut conn = pool.acquire().await?;
        for (who, allowed) in [
            (people[2], true),
            (people[1], true),
            (people[0], false),
            (people[3], false),
        ] {
            let facts = uploads::entry_facts(&mut conn, 2, who, 10, NOW + 30).await?;
            // (No held-out data is attached here: eligibility is the rule under test.)
            let eligible = !matches!(check_entry(&facts), Err(Refusal::NotEligible { .. }));
            assert_eq!(eligible, allowed, "user {who}");
        }
        drop(conn);
        let cy_news = notifications::of_user(&pool, people[2], 10).await?;
        assert!(
            cy_news
                .iter()
                .any(|n| n.text.contains("advanced to phase 2") && n.link == "/phases/1"),
            "the link is to a page cy can see: {cy_news:?}"
        );
        // The preset's 1,000 points by place among those who advance: first and
        // third weigh 1 and 1/3.
        assert!(
            cy_news
                .iter()
                .any(|n| n.text.contains("You earned 750 points in phase 1 (#1)")),
            "{cy_news:?}"
        );
        let dee_news = notifications::of_user(&pool, people[3], 10).await?;
        assert!(dee_news[0].text.contains("#4 of 4"), "{dee_news:?}");

        // A finalized phase is final.
        assert!(matches!(
            finalize(&pool, 1, org, "again", NOW).await,
            Err(StoreError::Refused(_))
        ));
        let cy_best: i64 =
            sqlx::query_scalar("SELECT submission_id FROM final_standings WHERE rank = 1")
                .fetch_one(&pool)
                .await?;
        assert!(matches!(
            moderation::disqualify(&pool, cy_best, org, "late", NOW).await,
            Err(StoreError::Refused(_))
        ));
        assert_eq!(
            audit_actions(&pool).await?,
            [
                "phase moved phase 1",
                "advancement added phase 1 / bob",
                "advancement removed phase 1 / ada",
                "phase moved phase 1",
                "winners promoted phase 1",
            ]
        );
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn finalizing_waits_for_submissions_in_the_queue(pool: SqlitePool) -> Result<()> {
        let (org, people) = phase_with_scores(&pool).await?;
        crate::submissions::create(
            &pool,
            &crate::submissions::NewSubmission {
                phase: 1,
                user_id: people[3],
                weights_sha256: "late".into(),
                bytes: 10,
                at: NOW + 5,
            },
        )
        .await?;
        move_phase(&pool, 1, PhaseState::Closed, org, "closing", NOW + 10).await?;
        assert_eq!(final_board(&pool, 1).await?.expect("closed").pending, 1);
        let refused = finalize(&pool, 1, org, "too early", NOW + 11).await;
        assert!(
            matches!(&refused, Err(StoreError::Refused(m)) if m.contains("still being scored")),
            "{refused:?}"
        );
        let state: String = sqlx::query_scalar("SELECT state FROM phases WHERE number = 1")
            .fetch_one(&pool)
            .await?;
        assert_eq!(state, "closed", "nothing changed");

        // One that can never be scored (its evaluation key lost, say) is disqualified:
        // its job ends, it fails, nothing waits for it, and the phase can be finalized.
        let late: i64 =
            sqlx::query_scalar("SELECT id FROM submissions WHERE weights_sha256 = 'late'")
                .fetch_one(&pool)
                .await?;
        sqlx::query("INSERT INTO jobs (submission_id, available_at) VALUES (?, ?)")
            .bind(late)
            .bind(NOW + 5)
            .execute(&pool)
            .await?;
        assert_eq!(crate::jobs::queue_counts(&pool, NOW + 11).await?, (1, 0));
        crate::moderation::disqualify(&pool, late, org, "evaluation key lost", NOW + 12).await?;
        let (state, error): (String, String) =
            sqlx::query_as("SELECT state, error FROM submissions WHERE id = ?")
                .bind(late)
                .fetch_one(&pool)
                .await?;
        assert_eq!(state, "failed");
        assert!(error.contains("Disqualified"), "{error}");
        assert!(matches!(
            crate::moderation::rerun(&pool, late, org, "try again", NOW + 12).await,
            Err(StoreError::Refused(m)) if m.contains("disqualified")
        ));
        let key = ascent_domain::statement::WorkerKey::from_secret([7; 32]).public_hex();
        crate::workers::create(&pool, "w", &key, None, NOW).await?;
        let worker: i64 = sqlx::query_scalar("SELECT id FROM workers WHERE name = 'w'")
            .fetch_one(&pool)
            .await?;
        assert!(crate::jobs::claim(&pool, worker, &[], NOW + 13)
            .await?
            .is_none());
        assert_eq!(crate::jobs::queue_counts(&pool, NOW + 13).await?, (0, 0));
        assert_eq!(crate::submissions::unscored(&pool).await?, 0);
        assert_eq!(final_board(&pool, 1).await?.expect("closed").pending, 0);
        finalize(&pool, 1, org, "all scored", NOW + 14).await?;
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn organizers_move_phases_by_the_rules(pool: SqlitePool) -> Result<()> {
        load_preset(&pool, &demo_preset(NOW), NOW, false).await?;
        let org = user(&pool, "org").await?;
        assert!(matches!(
            move_phase(&pool, 2, PhaseState::Closed, org, "skip", NOW).await,
            Err(StoreError::Refused(_))
        ));
        assert!(matches!(
            move_phase(&pool, 2, PhaseState::Open, org, "", NOW).await,
            Err(StoreError::Refused(_))
        ));
        move_phase(
            &pool,
            2,
            PhaseState::Open,
            org,
            "phase 1 ended early",
            NOW + 5,
        )
        .await?;
        let (state, opens_at): (String, i64) =
            sqlx::query_as("SELECT state, opens_at FROM phases WHERE number = 2")
                .fetch_one(&pool)
                .await?;
        assert_eq!(
            (state.as_str(), opens_at),
            ("open", NOW + 5),
            "the schedule follows"
        );
        assert!(matches!(
            move_phase(&pool, 9, PhaseState::Open, org, "x", NOW).await,
            Err(StoreError::NotFound(_))
        ));
        Ok(())
    }

    #[sqlx::test(migrations = "../migrations")]
    async fn disqualifying_and_rerunning_refresh_the_standings(pool: SqlitePool) -> Result<()> {
        let (org, people) = phase_with_scores(&pool).await?;
        let ada_best: i64 =
            sqlx::query_scalar("SELECT submission_id FROM standings WHERE user_id = ?")
                .bind(people[0])
                .fetch_one(&pool)
                .await?;
        moderation::disqualify(&pool, ada_best, org, "copied weights", NOW + 5).await?;
        assert!(matches!(
            moderation::rerun(&pool, ada_best, org, "look again", NOW + 5).await,
            Err(StoreError::Refused(m)) if m.contains("is disqualified")
        ));
        let board = standings::leaderboard(&pool, 1, 0, 10)
            .await?
            .expect("phase");
        assert_eq!(board.rows[0].handle, "bob");
        assert_eq!(board.total, 3);
        assert_eq!(standings::best_over_time(&pool, 1).await?[0].loss, 2.05);
        assert!(moderation::disqualify(&pool, ada_best, org, "again", NOW)
            .await
            .is_err());
        let found = moderation::search(
            &pool,
            &moderation::SubmissionQuery {
                disqualified_only: true,
                ..Default::default()
            },
            10,
        )
        .await?;
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].disqualified_reason.as_deref(),
            Some("copied weights")
        );

        // Re-running needs stored files: these test submissions have none.
        let bob_best: i64 =
            sqlx::query_scalar("SELECT submission_id FROM standings WHERE user_id = ?")
                .bind(people[1])
                .fetch_one(&pool)
                .await?;
        assert!(matches!(
            moderation::rerun(&pool, bob_best, org, "worker fault", NOW).await,
            Err(StoreError::Refused(m)) if m.contains("no stored files")
        ));
        // The audit log cannot be edited or emptied.
        assert!(sqlx::query("UPDATE audit_log SET reason = 'nothing'")
            .execute(&pool)
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM audit_log")
            .execute(&pool)
            .await
            .is_err());
        assert_eq!(
            audit_actions(&pool).await?.last().map(String::as_str),
            Some(&*format!("submission disqualified submission {ada_best}"))
        );
        Ok(())
    }
}
