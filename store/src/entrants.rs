//! Who may enter a phase after the first: those promoted from the phase before (written
//! at finalization, `lifecycle::finalize`) and those the organizers invite, here.

use ascent_domain::public_log::Event;
use ascent_domain::PhaseState;
use serde_json::json;
use sqlx::SqlitePool;

use crate::audit::{self, required_reason, Change};
use crate::lifecycle::touch;
use crate::{notifications, public_log, Result, StoreError};

/// One contributor who may enter a phase, and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entrant {
    pub handle: String,
    /// "promoted" or "invited".
    pub reason: String,
    pub at: i64,
}

/// Lets the contributor `handle` enter phase `number` though they did not advance to it
/// (scored after an outage, say): recorded with the reason in the audit log and the
/// public log, and the contributor is told. Only for phases after the first (which is
/// open to everyone) that have not closed.
pub async fn invite(
    pool: &SqlitePool,
    number: u8,
    handle: &str,
    actor: i64,
    reason: &str,
    now: i64,
) -> Result<()> {
    let reason = required_reason(reason)?;
    let handle = handle.trim();
    let mut tx = crate::write(pool).await?;
    let state = touch(&mut tx, number, now).await?;
    // As the door sees it: closed once its closing time has passed.
    let (opens_at, closes_at): (i64, i64) =
        sqlx::query_as("SELECT opens_at, closes_at FROM phases WHERE number = ?")
            .bind(i64::from(number))
            .fetch_one(&mut *tx)
            .await?;
    let state = state.at_the_door(now, opens_at, closes_at);
    if number <= 1 {
        return Err(StoreError::Refused(
            "phase 1 is open to every contributor; invitations are for later phases".into(),
        ));
    }
    if matches!(state, PhaseState::Closed | PhaseState::Finalized) {
        return Err(StoreError::Refused(format!(
            "phase {number} is {state}; invitations are for phases that have not closed"
        )));
    }
    if state == PhaseState::Draft {
        // An invitation is public (log, profile, notification): publish the phase first.
        return Err(StoreError::Refused(format!(
            "phase {number} is a draft: publish it before inviting anyone"
        )));
    }
    let user: Option<(i64, String)> =
        // Handles are stored lowercase (`Handle::parse`).
        sqlx::query_as("SELECT id, handle FROM users WHERE handle = ?")
            .bind(handle.to_lowercase())
            .fetch_optional(&mut *tx)
            .await?;
    let Some((user_id, handle)) = user else {
        return Err(StoreError::NotFound(format!(
            "there is no contributor with the handle {handle:?}"
        )));
    };
    let already: Option<String> =
        sqlx::query_scalar("SELECT reason FROM phase_entrants WHERE phase = ? AND user_id = ?")
            .bind(i64::from(number))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(why) = already {
        return Err(StoreError::Refused(format!(
            "{handle} may already enter phase {number} ({why})"
        )));
    }
    sqlx::query(
        "INSERT INTO phase_entrants (phase, user_id, reason, at, actor_id)
         VALUES (?, ?, 'invited', ?, ?)",
    )
    .bind(i64::from(number))
    .bind(user_id)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    notifications::send(
        &mut tx,
        user_id,
        &format!("The organizers invited you to phase {number}: you may submit to it."),
        &format!("/phases/{number}"),
        now,
    )
    .await?;
    let event = Event::Invited {
        phase: number,
        contributor: handle.clone(),
        reason: reason.to_owned(),
    };
    public_log::append(&mut tx, &event, now).await?;
    let change = Change {
        actor: Some(actor),
        action: "contributor invited",
        subject: format!("phase {number} / {handle}"),
        reason,
        detail: json!({ "phase": number, "contributor": handle }),
        at: now,
    };
    audit::record(&mut tx, change).await?;
    tx.commit().await?;
    Ok(())
}

/// Everyone who may enter phase `number` (promoted or invited), by handle.
pub async fn of_phase(pool: &SqlitePool, number: u8) -> Result<Vec<Entrant>> {
    Ok(sqlx::query_as(
        "SELECT u.handle, e.reason, e.at FROM phase_entrants e JOIN users u ON u.id = e.user_id
         WHERE e.phase = ? ORDER BY e.reason DESC, u.handle",
    )
    .bind(i64::from(number))
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::tests::{audit_actions, user, NOW};
    use crate::phases::{load_preset, tests::demo_preset};

    #[sqlx::test(migrations = "../migrations")]
    async fn organizers_invite_contributors_into_later_phases(pool: SqlitePool) -> Result<()> {
        load_preset(&pool, &demo_preset(NOW), NOW, false).await?;
        let org = user(&pool, "org").await?;
        let ada = user(&pool, "ada").await?;

        assert!(matches!(
            invite(&pool, 2, "ada", org, " ", NOW).await,
            Err(StoreError::Refused(m)) if m.contains("reason")
        ));
        assert!(matches!(
            invite(&pool, 1, "ada", org, "why not", NOW).await,
            Err(StoreError::Refused(m)) if m.contains("open to every contributor")
        ));
        assert!(matches!(
            invite(&pool, 2, "nobody", org, "why not", NOW).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            invite(&pool, 9, "ada", org, "why not", NOW).await,
            Err(StoreError::NotFound(_))
        ));

        invite(&pool, 2, "ADA", org, "scored after an outage", NOW + 1).await?;
        assert_eq!(
            of_phase(&pool, 2).await?,
            [Entrant {
                handle: "ada".into(),
                reason: "invited".into(),
                at: NOW + 1
            }]
        );
        assert!(matches!(
            invite(&pool, 2, "ada", org, "again", NOW + 2).await,
            Err(StoreError::Refused(m)) if m.contains("already enter phase 2 (invited)")
        ));
        // A closed phase takes no invitations, even before the schedule has moved it.
        sqlx::query("UPDATE phases SET opens_at = ?, closes_at = ? WHERE number = 3")
            .bind(NOW + 1)
            .bind(NOW + 3)
            .execute(&pool)
            .await?;
        assert!(matches!(
            invite(&pool, 3, "ada", org, "why not", NOW + 4).await,
            Err(StoreError::Refused(m)) if m.contains("not closed")
        ));
        let notices = crate::notifications::of_user(&pool, ada, 10).await?;
        assert!(notices[0].text.contains("invited you to phase 2"));
        assert_eq!(
            audit_actions(&pool).await?.last().map(String::as_str),
            Some("contributor invited phase 2 / ada")
        );
        let logged: String = sqlx::query_scalar(
            "SELECT body FROM public_log WHERE kind = 'invited' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(&pool)
        .await?;
        assert!(logged.contains("\"contributor\":\"ada\"") && logged.contains("outage"));
        Ok(())
    }
}
