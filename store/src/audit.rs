//! The append-only audit log: who did what, when and why. Rows are only ever
//! inserted (triggers refuse updates and deletions), in the same transaction as the
//! change they describe.

use ascent_domain::views::AuditEntry;
use sqlx::{SqliteConnection, SqlitePool};

use crate::Result;

/// One change to record. `actor` is the organizer's user id; `None` is the server.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub actor: Option<i64>,
    pub action: &'a str,
    pub subject: String,
    pub reason: &'a str,
    pub detail: serde_json::Value,
    pub at: i64,
}

pub(crate) async fn record(conn: &mut SqliteConnection, change: Change<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, action, subject, reason, detail)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(change.at)
    .bind(change.actor)
    .bind(change.action)
    .bind(&change.subject)
    .bind(change.reason)
    .bind(change.detail.to_string())
    .execute(&mut *conn)
    .await?;
    tracing::info!(
        actor = ?change.actor,
        action = change.action,
        subject = %change.subject,
        reason = change.reason,
        "audit"
    );
    Ok(())
}

/// Organizer actions need a reason a reader of the log understands.
pub(crate) fn required_reason(reason: &str) -> Result<&str> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(crate::StoreError::Refused(
            "a reason is required: it goes into the audit log".into(),
        ));
    }
    if reason.chars().count() > 500 {
        return Err(crate::StoreError::Refused(
            "the reason is too long (at most 500 characters)".into(),
        ));
    }
    Ok(reason)
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: i64,
    actor: Option<String>,
    action: String,
    subject: String,
    reason: String,
    detail: String,
}

/// The newest entries first, `limit` of them, older than entry `before` if given.
pub async fn recent(pool: &SqlitePool, limit: u32, before: Option<i64>) -> Result<Vec<AuditEntry>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a.id, a.at, u.handle AS actor, a.action, a.subject, a.reason, a.detail
         FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id
         WHERE a.id < ? ORDER BY a.id DESC LIMIT ?",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            reason: r.reason,
            detail: r.detail,
        })
        .collect())
}
