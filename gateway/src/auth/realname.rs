//! Real-name verification records (RG1, RG2, FP1, FP2).
//!
//! Contract: a verification checks one (name, ID number); it lives for ten minutes and
//! is consumed by the one step that relies on it. [`App::consume_realname`] refuses with
//! `REALNAME_FAILED` a verification that is unknown, expired, failed, still pending,
//! already used, or made for another person.

use crate::app::App;
use crate::error::{Code, Error};
use crate::providers::realname::RealnameStatus;
use crate::store::records::RealnameCheck;
use crate::store::Tree;

const LIFETIME: i64 = 600;

pub struct StartedCheck {
    pub verification_id: String,
    pub qr_payload: String,
    pub status: RealnameStatus,
}

impl App {
    fn realname_provider(
        &self,
    ) -> Result<&dyn crate::providers::realname::RealnameProvider, Error> {
        self.realname
            .as_deref()
            .ok_or_else(|| Error::new(Code::Unavailable).with_message("实名认证服务未配置"))
    }

    pub async fn start_realname(
        &self,
        name: &str,
        id_number: &str,
        now: i64,
    ) -> Result<StartedCheck, Error> {
        let started = self.realname_provider()?.start(name, id_number).await?;
        let id = crate::crypto::secrets::token();
        let check = RealnameCheck {
            name: name.to_string(),
            id_number: id_number.to_string(),
            reference: started.reference,
            passed: false,
            expires_at: now + LIFETIME,
        };
        self.store.put(Tree::Realname, &id, &check).await?;
        self.store.flush().await?;
        Ok(StartedCheck {
            verification_id: id,
            qr_payload: started.qr_payload,
            status: RealnameStatus::Pending,
        })
    }

    /// Asks the provider (until it has decided) and remembers a pass.
    pub async fn realname_status(&self, id: &str, now: i64) -> Result<RealnameStatus, Error> {
        let Some(mut check) = self.store.get::<RealnameCheck>(Tree::Realname, id).await? else {
            return Err(Error::new(Code::NotFound).with_message("实名认证记录不存在或已失效"));
        };
        if check.expires_at <= now {
            return Ok(RealnameStatus::Failed);
        }
        if check.passed {
            return Ok(RealnameStatus::Passed);
        }
        let status = self.realname_provider()?.status(&check.reference).await?;
        if status == RealnameStatus::Passed {
            check.passed = true;
            self.store.put(Tree::Realname, id, &check).await?;
            self.store.flush().await?;
        }
        Ok(status)
    }

    /// Uses up a passed verification of exactly this person.
    pub async fn consume_realname(
        &self,
        id: &str,
        name: &str,
        id_number: &str,
        now: i64,
    ) -> Result<(), Error> {
        let failed = || Error::new(Code::RealnameFailed).with_field("realname_verification_id");
        if id.is_empty() || self.realname_status(id, now).await.ok() != Some(RealnameStatus::Passed)
        {
            return Err(failed());
        }
        let Some(raw) = self.store.get_raw(Tree::Realname, id.as_bytes()).await? else {
            return Err(failed());
        };
        let check: RealnameCheck = crate::store::codec::decode(&raw)?;
        if check.name != name || !check.id_number.eq_ignore_ascii_case(id_number) {
            return Err(failed().with_message("实名认证信息与填写的姓名、身份证号不一致"));
        }
        // Single use: only the caller that removes it may rely on it.
        if !self
            .store
            .compare_and_swap(Tree::Realname, id, Some(&raw), None)
            .await?
        {
            return Err(failed());
        }
        Ok(())
    }
}
