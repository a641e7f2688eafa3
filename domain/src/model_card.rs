//! The model card published with an open checkpoint: what it is, how it was scored,
//! where it finished, and how to check the files.

use crate::format;

/// What a card says.
#[derive(Debug, Clone, PartialEq)]
pub struct CardFacts {
    pub submission_id: i64,
    pub contributor: String,
    pub phase: u8,
    pub phase_title: String,
    pub rank: u64,
    pub ranked: u64,
    pub private_loss: f64,
    pub public_loss: f64,
    pub parameters: u64,
    pub max_parameters: u64,
    pub seq_len: u32,
    pub windows: u32,
    pub dataset: String,
    pub weights_sha256: String,
    /// (file name, bytes, SHA-256), sorted by name.
    pub files: Vec<(String, u64, String)>,
    pub scored_at: i64,
    /// The signing worker's public key, if the score was signed.
    pub signed_by: Option<String>,
}

/// The card in Markdown.
pub fn render(c: &CardFacts) -> String {
    let mut card = format!(
        "# Ascent phase {phase} — {contributor}'s checkpoint (#{id})\n\n\
         A Llama-architecture causal language model in Hugging Face format (safetensors), \
         submitted to phase {phase} (\"{title}\") of the Ascent competition by {contributor}. \
         It finished #{rank} of {ranked} and was promoted.\n\n\
         ## Evaluation\n\n\
         | | |\n| --- | --- |\n\
         | Final ranking loss (private part) | {private} nats/token |\n\
         | Public leaderboard loss | {public} nats/token |\n\
         | Perplexity (private part) | {ppl:.2} |\n\
         | Parameters | {params} ({parameters}), cap {cap} |\n\
         | Held-out data | {dataset}: {windows} windows of {seq_len} tokens |\n\
         | Scored | {scored} |\n",
        phase = c.phase,
        contributor = c.contributor,
        id = c.submission_id,
        title = c.phase_title,
        rank = c.rank,
        ranked = c.ranked,
        private = format::loss(c.private_loss),
        public = format::loss(c.public_loss),
        ppl = c.private_loss.exp(),
        params = format::parameters(c.parameters),
        parameters = c.parameters,
        cap = format::parameters(c.max_parameters),
        dataset = c.dataset,
        windows = c.windows,
        seq_len = c.seq_len,
        scored = format::datetime(c.scored_at),
    );
    if let Some(key) = &c.signed_by {
        card.push_str(&format!("| Signed by worker key | `{key}` |\n"));
    }
    card.push_str(&format!(
        "\nThe loss is the mean cross-entropy per predicted token (lower is better). The \
         held-out windows were split into a public part (the live leaderboard) and a private \
         part (the final ranking) by a secret published when the phase was finalized.\n\n\
         ## Files\n\nTensor bytes SHA-256 (canonical, independent of file layout): `{}`\n\n\
         | File | Bytes | SHA-256 |\n| --- | --- | --- |\n",
        c.weights_sha256
    ));
    for (name, bytes, sha256) in &c.files {
        card.push_str(&format!("| {name} | {bytes} | `{sha256}` |\n"));
    }
    card.push_str("\nCheck a download with `sha256sum FILE`.\n");
    card
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_names_the_checkpoint_its_scores_and_its_files() {
        let card = render(&CardFacts {
            submission_id: 13,
            contributor: "ada".into(),
            phase: 1,
            phase_title: "Prototype".into(),
            rank: 1,
            ranked: 8,
            private_loss: 2.0794,
            public_loss: 2.1183,
            parameters: 98_624,
            max_parameters: 100_000,
            seq_len: 64,
            windows: 64,
            dataset: "shakespeare-heldout".into(),
            weights_sha256: "ab".repeat(32),
            files: vec![("config.json".into(), 600, "cd".repeat(32))],
            scored_at: 1_800_000_000,
            signed_by: Some("ef".repeat(32)),
        });
        assert!(card.starts_with("# Ascent phase 1 — ada's checkpoint (#13)"));
        assert!(card.contains("finished #1 of 8"));
        assert!(card.contains("| Final ranking loss (private part) | 2.0794 nats/token |"));
        assert!(card.contains(&format!("| config.json | 600 | `{}` |", "cd".repeat(32))));
        assert!(card.contains(&format!("`{}`", "ef".repeat(32))));
    }
}
