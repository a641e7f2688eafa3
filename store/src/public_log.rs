//! The public log's storage: appending an event inside the transaction that makes the
//! change it records (so the log and the tables cannot disagree), and reading pages.
//! The chain rules live in `ascent_domain::public_log`.

use ascent_domain::public_log::{entry_hash, Entry, Event, GENESIS};
use sqlx::{SqliteConnection, SqlitePool};

use crate::{unsigned, Result};

/// The latest entry's sequence number and hash.
const HEAD: &str = "SELECT seq, hash FROM public_log ORDER BY seq DESC LIMIT 1";

/// Appends `event` after the current head. Call it inside a write transaction
/// (`crate::write`), which serializes appends.
pub(crate) async fn append(conn: &mut SqliteConnection, event: &Event, at: i64) -> Result<()> {
    let head: Option<(i64, String)> = sqlx::query_as(HEAD).fetch_optional(&mut *conn).await?;
    let (seq, prev) = head.map_or((1, GENESIS.to_owned()), |(seq, hash)| (seq + 1, hash));
    let body = event.body();
    let hash = entry_hash(unsigned(seq, "log sequence")?, at, &prev, &body);
    sqlx::query(
        "INSERT INTO public_log (seq, at, kind, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(seq)
    .bind(at)
    .bind(event.kind())
    .bind(&body)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The latest entry's sequence number and hash; `None` while the log is empty.
pub async fn head(pool: &SqlitePool) -> Result<Option<(u64, String)>> {
    let head: Option<(i64, String)> = sqlx::query_as(HEAD).fetch_optional(pool).await?;
    head.map(|(seq, hash)| Ok((unsigned(seq, "log sequence")?, hash)))
        .transpose()
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    at: i64,
    body: String,
    prev_hash: String,
    hash: String,
}

/// Up to `limit` entries after sequence number `after`, in order.
pub async fn page(pool: &SqlitePool, after: u64, limit: u64) -> Result<Vec<Entry>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT seq, at, body, prev_hash, hash FROM public_log WHERE seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(i64::try_from(after).unwrap_or(i64::MAX))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Entry {
                seq: unsigned(r.seq, "log sequence")?,
                at: r.at,
                prev: r.prev_hash,
                hash: r.hash,
                body: r.body,
            })
        })
        .collect()
}

/// Logs phase `number`'s scoring rules as they now stand in `phases`; nothing for a
/// draft, which the log does not show until it is published (`lifecycle`).
pub(crate) async fn log_settings(conn: &mut SqliteConnection, number: u8, at: i64) -> Result<()> {
    #[allow(clippy::type_complexity)]
    let row: Option<(f64, f64, i64, i64, i64, Option<String>, bool)> = sqlx::query_as(
        "SELECT epsilon, public_share, seq_len, windows, max_parameters, evaluation_key, open_weights
             FROM phases WHERE number = ? AND state <> 'draft'",
    )
    .bind(i64::from(number))
    .fetch_optional(&mut *conn)
    .await?;
    let Some((
        epsilon,
        public_share,
        seq_len,
        windows,
        max_parameters,
        evaluation_key,
        open_weights,
    )) = row
    else {
        return Ok(());
    };
    let event = Event::PhaseSettings {
        phase: number,
        epsilon,
        public_share,
        seq_len: unsigned(seq_len, "seq_len")?,
        windows: unsigned(windows, "windows")?,
        max_parameters: unsigned(max_parameters, "max_parameters")?,
        evaluation_key,
        open_weights,
    };
    append(conn, &event, at).await
}

/// Logs the hash of phase `number`'s held-out data (`Event::HeldOutData`), if it has
/// any; nothing for a draft.
pub(crate) async fn log_data(conn: &mut SqliteConnection, number: u8, at: i64) -> Result<()> {
    let data: Option<(String, i64)> = sqlx::query_as(
        "SELECT d.sha256, d.tokens FROM phases p JOIN datasets d ON d.sha256 = p.data_sha256
         WHERE p.number = ? AND p.state <> 'draft'",
    )
    .bind(i64::from(number))
    .fetch_optional(&mut *conn)
    .await?;
    let Some((sha256, tokens)) = data else {
        return Ok(());
    };
    let event = Event::HeldOutData {
        phase: number,
        sha256,
        tokens: unsigned(tokens, "tokens")?,
    };
    append(conn, &event, at).await
}

/// Publishes the signed statement behind submission `id`'s score, if it has one.
pub(crate) async fn reveal(conn: &mut SqliteConnection, id: i64, at: i64) -> Result<()> {
    reveal_where(conn, "s.id = ?", id, at).await
}

/// Publishes the statements behind every standing score of a phase that just closed.
pub(crate) async fn reveal_phase(conn: &mut SqliteConnection, phase: u8, at: i64) -> Result<()> {
    reveal_where(conn, "s.phase = ?", i64::from(phase), at).await
}

/// Publishes the statements of the scored submissions matching `filter` (bound to
/// `value`), in submission order, read in one query.
async fn reveal_where(
    conn: &mut SqliteConnection,
    filter: &str,
    value: i64,
    at: i64,
) -> Result<()> {
    let statements: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT s.id, s.score_statement FROM submissions s
         WHERE {filter} AND s.state = 'scored' AND s.score_statement IS NOT NULL ORDER BY s.id"
    ))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    for (id, text) in statements {
        match serde_json::from_str(&text) {
            Ok(statement) => {
                let event = Event::ScoreRevealed {
                    submission: id,
                    statement,
                };
                append(conn, &event, at).await?;
            }
            // Left sealed: `ascent-eval verify` reports it as never revealed.
            Err(error) => {
                tracing::error!(submission = id, %error, "stored score statement is unreadable");
            }
        }
    }
    Ok(())
}

/// Logs a submission just received, naming its contributor by handle.
pub(crate) async fn log_received(
    conn: &mut SqliteConnection,
    submission: i64,
    phase: u8,
    user_id: i64,
    sha256: &str,
    at: i64,
) -> Result<()> {
    let contributor: String = sqlx::query_scalar("SELECT handle FROM users WHERE id = ?")
        .bind(user_id)
        .fetch_one(&mut *conn)
        .await?;
    let received = Event::SubmissionReceived {
        submission,
        phase,
        contributor,
        sha256: sha256.to_owned(),
        at,
    };
    append(conn, &received, at).await
}
