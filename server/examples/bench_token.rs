//! For `scripts/bench-upload`: registers a contributor in the database at the given URL
//! and prints a fresh API token for it.

use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::views::Role;
use ascent_store::{accounts, api_tokens};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench_token DATABASE_URL"))?;
    let pool = ascent_store::connect(&url).await?;
    let viewer = accounts::register(
        &pool,
        &Email::parse("bench@example.org").map_err(|e| anyhow::anyhow!("{e}"))?,
        &Handle::parse("bench").map_err(|e| anyhow::anyhow!("{e}"))?,
        &Password::parse("benchmark password").map_err(|e| anyhow::anyhow!("{e}"))?,
        Role::Contributor,
    )
    .await?;
    println!(
        "{}",
        api_tokens::create(&pool, viewer.id, "bench", ascent_store::now()).await?
    );
    Ok(())
}
