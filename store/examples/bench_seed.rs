//! Fills a database for the site benchmark (`scripts/bench-site`): N contributors and M
//! scored submissions in phase 1 of the demo preset, scores recorded through the same
//! `submissions::record_score` path the evaluator uses.
//!
//! `cargo run --release -p ascent-store --example bench_seed -- DATABASE_URL CONTRIBUTORS SUBMISSIONS`

use ascent_domain::account::Password;
use ascent_domain::preset::parse_preset;
use ascent_store::submissions::{self, NewSubmission, ScoreRecord};
use ascent_store::{accounts, phases};

/// A small deterministic generator, so two runs seed the same data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let value = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        value
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, contributors, submissions] = args.as_slice() else {
        return Err("usage: bench_seed DATABASE_URL CONTRIBUTORS SUBMISSIONS".into());
    };
    let contributors: i64 = contributors.parse()?;
    let submissions: i64 = submissions.parse()?;
    let pool = ascent_store::connect(url).await?;
    ascent_store::migrate(&pool).await?;
    let start = ascent_store::now() - 86_400;
    let preset = parse_preset(include_str!("../../presets/demo.toml"), start)?;
    phases::load_preset(&pool, &preset, start, true).await?;

    // One real argon2id hash shared by every seeded account: hashing 10,000 passwords
    // would dominate the seeding time and is not what the benchmark measures.
    let hash = accounts::hash_password(&Password::parse("bench password, not used")?).await?;
    let mut tx = pool.begin().await?;
    for i in 0..contributors {
        sqlx::query(
            "INSERT INTO users (email, handle, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(format!("c{i}@bench.test"))
        .bind(format!("contributor-{i}"))
        .bind(&hash)
        .bind(start)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let first_id: i64 = sqlx::query_scalar("SELECT MIN(id) FROM users")
        .fetch_one(&pool)
        .await?;

    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let began = std::time::Instant::now();
    for n in 0..submissions {
        let user_id = first_id + i64::try_from(random.next() % u64::try_from(contributors)?)?;
        #[allow(clippy::cast_precision_loss)]
        let progress = n as f64 / submissions as f64;
        // Losses drift down over the phase with per-submission noise.
        let loss = 2.2 - 0.6 * progress + 0.4 * random.unit();
        let at = start + n * 86_400 / submissions.max(1);
        let id = submissions::create(
            &pool,
            &NewSubmission {
                phase: 1,
                user_id,
                weights_sha256: format!("{n:064x}"),
                bytes: 400_000,
                at,
            },
        )
        .await?;
        let score = ScoreRecord {
            loss,
            public_loss: loss + 0.01 * (random.unit() - 0.5),
            private_loss: loss + 0.01 * (random.unit() - 0.5),
            parameters: 50_000 + random.next() % 50_000,
            at,
        };
        submissions::record_score(&pool, id, score).await?;
    }
    println!(
        "seeded {contributors} contributors and {submissions} scored submissions in {:.1}s",
        began.elapsed().as_secs_f64()
    );
    Ok(())
}
