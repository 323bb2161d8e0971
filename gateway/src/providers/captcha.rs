//! Image captchas (SPEC S2), drawn by the `captcha` crate.
//!
//! Contract: [`generate`] returns the answer (lower case: answers compare
//! case-insensitively) and a PNG; it runs on the blocking pool. The answer is never
//! logged; only its keyed hash is stored, by the caller.

use super::ProviderError;
use captcha::filters::{Dots, Noise, Wave};

pub struct Drawn {
    pub answer: String,
    pub png: Vec<u8>,
}

impl std::fmt::Debug for Drawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Drawn(<redacted>)")
    }
}

/// Draws a 5-character captcha, 160×60 pixels.
pub async fn generate() -> Result<Drawn, ProviderError> {
    tokio::task::spawn_blocking(draw)
        .await
        .map_err(|_| ProviderError::Unavailable("captcha drawing task failed".into()))?
}

fn draw() -> Result<Drawn, ProviderError> {
    let mut c = captcha::Captcha::new();
    c.add_chars(5)
        .apply_filter(Noise::new(0.2))
        .apply_filter(Wave::new(2.0, 12.0).horizontal())
        .view(160, 60)
        .apply_filter(Dots::new(6));
    match c.as_tuple() {
        Some((answer, png)) => Ok(Drawn {
            answer: normalize_answer(&answer),
            png,
        }),
        None => Err(ProviderError::Unavailable(
            "captcha could not be drawn".into(),
        )),
    }
}

/// Case-insensitive comparison: answers are stored and checked in lower case.
pub fn normalize_answer(answer: &str) -> String {
    answer.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn draws_a_png_with_a_five_char_answer() {
        let d = generate().await.unwrap();
        assert_eq!(d.answer.chars().count(), 5);
        assert_eq!(&d.png[1..4], b"PNG");
        assert!(!format!("{d:?}").contains(&d.answer));
    }
}
