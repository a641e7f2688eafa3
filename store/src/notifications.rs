//! In-app notices for one person: "you advanced to phase 2".

use ascent_domain::views::Notification;
use sqlx::{SqliteConnection, SqlitePool};

use crate::Result;

pub(crate) async fn send(
    conn: &mut SqliteConnection,
    user_id: i64,
    text: &str,
    link: &str,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO notifications (user_id, at, text, link) VALUES (?, ?, ?, ?)")
        .bind(user_id)
        .bind(at)
        .bind(text)
        .bind(link)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A person's newest notices first.
pub async fn of_user(pool: &SqlitePool, user_id: i64, limit: u32) -> Result<Vec<Notification>> {
    let rows: Vec<(i64, i64, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT id, at, text, link, read_at FROM notifications
         WHERE user_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(user_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, at, text, link, read_at)| Notification {
            id,
            at,
            text,
            link,
            read: read_at.is_some(),
        })
        .collect())
}

/// How many notices a person has not read.
pub async fn unread(pool: &SqlitePool, user_id: i64) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE user_id = ? AND read_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Marks all of a person's notices read.
pub async fn mark_read(pool: &SqlitePool, user_id: i64, at: i64) -> Result<()> {
    sqlx::query("UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL")
        .bind(at)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(())
}
