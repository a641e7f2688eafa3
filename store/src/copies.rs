//! Near-copy detection beyond exact hashes: a scored submission's weight fingerprint is
//! compared with those of other contributors' submissions, and the later of a pair
//! whose similarity reaches `fingerprint::NEAR_COPY` is flagged for organizers (never
//! refused automatically: fine-tuning a published checkpoint may be allowed).

use ascent_domain::fingerprint::{similarity, NEAR_COPY};
use ascent_domain::views::NearCopy;
use serde_json::json;
use sqlx::SqlitePool;

use crate::audit::{self, Change};
use crate::Result;

/// What a check found: the flagged submission and what it nearly copies.
#[derive(Debug, Clone, PartialEq)]
pub struct Flagged {
    pub submission: i64,
    pub copy_of: NearCopy,
}

fn parse(text: &str) -> Vec<f32> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Compares submission `id`'s fingerprint with every other contributor's and flags the
/// later of the closest near-copy pair, if any. Submissions already flagged stay as
/// they are.
pub async fn check(pool: &SqlitePool, id: i64, now: i64) -> Result<Option<Flagged>> {
    let own: Option<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT s.user_id, u.handle, s.fingerprint FROM submissions s JOIN users u ON u.id = s.user_id
         WHERE s.id = ?",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some((user_id, own_handle, Some(text))) = own else {
        return Ok(None);
    };
    let fingerprint = parse(&text);
    if fingerprint.is_empty() {
        return Ok(None);
    }
    let others: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT s.id, u.handle, s.fingerprint FROM submissions s JOIN users u ON u.id = s.user_id
         WHERE s.user_id != ? AND s.fingerprint IS NOT NULL ORDER BY s.id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let closest = others
        .iter()
        .filter_map(|(other, handle, text)| {
            similarity(&fingerprint, &parse(text)).map(|s| (*other, handle.as_str(), s))
        })
        .filter(|(_, _, s)| *s >= NEAR_COPY)
        .max_by(|a, b| a.2.total_cmp(&b.2));
    let Some((other, other_handle, similarity)) = closest else {
        return Ok(None);
    };
    // The later submission is the copy.
    let (flagged, original, original_handle) = if other < id {
        (id, other, other_handle.to_owned())
    } else {
        (other, id, own_handle)
    };
    let mut tx = crate::write(pool).await?;
    let updated = sqlx::query(
        "UPDATE submissions SET near_copy_of = ?, near_copy_similarity = ?
         WHERE id = ? AND near_copy_of IS NULL",
    )
    .bind(original)
    .bind(similarity)
    .bind(flagged)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    audit::record(
        &mut tx,
        Change {
            actor: None,
            action: "near copy flagged",
            subject: format!("submission {flagged}"),
            reason: "weights fingerprint",
            detail: json!({ "copy_of": original, "similarity": similarity }),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(
        submission = flagged,
        copy_of = original,
        similarity,
        "near copy flagged"
    );
    Ok(Some(Flagged {
        submission: flagged,
        copy_of: NearCopy {
            submission: original,
            handle: original_handle,
            similarity,
        },
    }))
}
