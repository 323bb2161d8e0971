//! SMS verification codes (SPEC S3).
//!
//! Contract: a code is 6 CSPRNG digits, stored only as a keyed hash under
//! `purpose \0 scope` (scope = the ticket and person it was sent for), valid for the
//! configured minutes, consumed by the first correct use, and dead after the configured
//! number of wrong tries. A phone gets at most one code per resend interval and a daily
//! cap (China Standard Time days). A resend replaces the code but keeps its failure
//! count, so resending is no way around the try limit.

use crate::app::App;
use crate::error::{Code, Error};
use crate::providers::sms::{Purpose, SmsMessage};
use crate::store::records::{SmsCode, SmsQuota};
use crate::store::{codec, keys, Tree};

impl App {
    /// Sends a fresh code for (`purpose`, `scope`) to `phone`; returns the seconds until
    /// the next one may be sent.
    pub async fn send_sms_code(
        &self,
        purpose: Purpose,
        scope: &str,
        phone: &str,
        now: i64,
    ) -> Result<u64, Error> {
        let limits = &self.config.limits;
        let resend = limits.sms_resend.as_secs() as i64;
        let day = crate::clock::cst_day(now);
        // The phone's quota is taken atomically before sending, so two nodes (or two
        // requests) cannot both send inside one resend interval.
        let mut refusal = None;
        let mut before = SmsQuota::default();
        let taken = SmsQuota {
            last_sent: now,
            day,
            sent_today: 0,
        };
        let reserved = self
            .store
            .update::<SmsQuota>(Tree::SmsQuota, phone, |old| {
                let quota = old.unwrap_or_default();
                before = quota.clone();
                refusal = quota_refusal(&quota, now, day, resend, limits.sms_daily_per_phone);
                if refusal.is_some() {
                    return Some(quota);
                }
                Some(SmsQuota {
                    sent_today: if quota.day == day {
                        quota.sent_today
                    } else {
                        0
                    } + 1,
                    ..taken.clone()
                })
            })
            .await?;
        if let Some(e) = refusal {
            return Err(e);
        }

        let key = keys::sms_code(purpose.as_str(), scope);
        let previous: Option<SmsCode> = self.store.get(Tree::SmsCodes, &key).await?;
        let code = crate::crypto::secrets::six_digits();
        let record = SmsCode {
            phone: phone.to_string(),
            code_hash: self.keyed.hash(&sms_domain(purpose, scope), &code),
            expires_at: now + limits.sms_code.as_secs() as i64,
            failures: previous.map_or(0, |p| p.failures),
        };
        let sent = self
            .sms
            .send(&SmsMessage {
                phone,
                code: &code,
                purpose,
            })
            .await;
        if let Err(e) = sent {
            // Nothing was sent: give the quota back unless another send took it since.
            let reserved = reserved.map(|q| codec::encode(&q)).transpose()?;
            let before = codec::encode(&before)?;
            self.store
                .compare_and_swap(Tree::SmsQuota, phone, reserved.as_deref(), Some(&before))
                .await?;
            return Err(e.into());
        }
        self.store.put(Tree::SmsCodes, &key, &record).await?;
        self.store.flush().await?;
        Ok(resend as u64)
    }

    /// Checks and consumes the code for (`purpose`, `scope`). Wrong, unknown, expired and
    /// exhausted codes are all `SMS_CODE_INVALID`.
    pub async fn verify_sms_code(
        &self,
        purpose: Purpose,
        scope: &str,
        code: &str,
        now: i64,
    ) -> Result<(), Error> {
        let key = keys::sms_code(purpose.as_str(), scope);
        let invalid = || Error::new(Code::SmsCodeInvalid).with_field("sms_code");
        let Some(raw) = self.store.get_raw(Tree::SmsCodes, &key).await? else {
            return Err(invalid());
        };
        let record: SmsCode = codec::decode(&raw)?;
        let max = self.config.limits.sms_max_attempts;
        if record.expires_at <= now || record.failures >= max {
            return Err(invalid());
        }
        // Every change is a compare-and-swap against the record as read, so parallel
        // attempts can neither both use one code nor get more tries than allowed.
        if self
            .keyed
            .verify(&sms_domain(purpose, scope), code.trim(), &record.code_hash)
        {
            let swapped = self
                .store
                .compare_and_swap(Tree::SmsCodes, &key, Some(&raw), None)
                .await?;
            self.store.flush().await?;
            return if swapped { Ok(()) } else { Err(invalid()) };
        }
        let failed = SmsCode {
            failures: record.failures + 1,
            ..record
        };
        self.store
            .compare_and_swap(
                Tree::SmsCodes,
                &key,
                Some(&raw),
                Some(&codec::encode(&failed)?),
            )
            .await?;
        self.store.flush().await?;
        let left = max.saturating_sub(failed.failures);
        Err(if left == 0 {
            invalid().with_message("短信验证码错误次数过多，请重新获取")
        } else {
            invalid().with_message(format!("短信验证码错误，还可尝试{left}次"))
        })
    }
}

/// Why a code may not be sent to a phone with `quota` now, if it may not.
fn quota_refusal(quota: &SmsQuota, now: i64, day: i64, resend: i64, daily: u32) -> Option<Error> {
    // A twin request that read the clock a moment later may have reserved first: its
    // send is not in this one's future.
    let since_last = (now - quota.last_sent).max(0);
    if quota.last_sent != 0 && since_last < resend {
        return Some(Error::new(Code::RateLimited).retry_after((resend - since_last) as u64));
    }
    let sent_today = if quota.day == day {
        quota.sent_today
    } else {
        0
    };
    if sent_today >= daily {
        let tomorrow = (day + 1) * 86_400 - 8 * 3600;
        return Some(
            Error::new(Code::RateLimited)
                .with_message("今日短信发送次数已达上限")
                .retry_after((tomorrow - now) as u64),
        );
    }
    None
}

fn sms_domain(purpose: Purpose, scope: &str) -> String {
    format!("sms\0{}\0{scope}", purpose.as_str())
}
