//! Image captchas in the login and recovery flows (SPEC S2): issued with a random id,
//! stored as a keyed hash of the lower-case answer, valid for the configured time and
//! consumed by the first attempt, right or wrong.

use crate::app::App;
use crate::error::{Code, Error};
use crate::providers::captcha::{generate, normalize_answer};
use crate::store::records::Captcha;
use crate::store::Tree;
use base64::Engine;

pub struct IssuedCaptcha {
    pub captcha_id: String,
    /// `data:image/png;base64,…`
    pub image: String,
}

impl App {
    pub async fn issue_captcha(&self, now: i64) -> Result<IssuedCaptcha, Error> {
        let drawn = generate().await?;
        let captcha_id = crate::crypto::secrets::token();
        let record = Captcha {
            answer_hash: self.keyed.hash("captcha", &drawn.answer),
            expires_at: now + self.config.limits.captcha.as_secs() as i64,
        };
        self.store.put(Tree::Captchas, &captcha_id, &record).await?;
        if let Some(outbox) = &self.captcha_outbox {
            outbox.append(&serde_json::json!({
                "kind": "captcha",
                "captcha_id": captcha_id,
                "answer": drawn.answer,
            }))?;
        }
        self.store.flush().await?;
        Ok(IssuedCaptcha {
            captcha_id,
            image: format!(
                "data:image/png;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&drawn.png)
            ),
        })
    }

    /// Consumes the captcha and checks the answer. Unknown, expired, used and wrong
    /// captchas are all `CAPTCHA_INVALID`; a wrong answer also counts against the client.
    pub async fn check_captcha(
        &self,
        captcha_id: &str,
        answer: &str,
        client_ip: &str,
        now: i64,
    ) -> Result<(), Error> {
        let taken = self
            .store
            .remove(Tree::Captchas, captcha_id.as_bytes())
            .await?;
        let valid = match taken {
            Some(bytes) => {
                let c: Captcha = crate::store::codec::decode(&bytes)?;
                c.expires_at > now
                    && self
                        .keyed
                        .verify("captcha", &normalize_answer(answer), &c.answer_hash)
            }
            None => false,
        };
        if valid {
            Ok(())
        } else {
            self.count_failure_for_client(client_ip, now).await?;
            Err(Error::new(Code::CaptchaInvalid).with_field("captcha_answer"))
        }
    }
}
