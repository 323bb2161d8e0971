//! The registration and recovery flows (SPEC RG1, RG2, FP1, FP2) as browser steps.
//!
//! Helpers named after a flow run it to the end and assert every step succeeded; the
//! `*_resp` variants send one step and return the raw answer for negative tests.

use super::client::{masked, officer_id};
use super::{Browser, Gateway, GatewayOptions, Resp};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// A natural person of the fixtures (tests/fixtures/README.md).
#[derive(Clone, Copy, Debug)]
pub struct Someone {
    pub name: &'static str,
    pub id_number: &'static str,
    pub phone: &'static str,
}

impl Someone {
    /// The same person with another phone.
    pub fn with_phone(self, phone: &'static str) -> Someone {
        Someone { phone, ..self }
    }
}

// Registry people.
pub const ZHAO: Someone = Someone {
    name: "赵敏",
    id_number: "530103198302280023",
    phone: "13900000001",
};
pub const QIAN: Someone = Someone {
    name: "钱进",
    id_number: "530102198001150018",
    phone: "13900000002",
};
pub const LI: Someone = Someone {
    name: "李雷",
    id_number: "530111199505050054",
    phone: "13900000004",
};
pub const ZHOU: Someone = Someone {
    name: "周杰",
    id_number: "530102197809090076",
    phone: "13900000005",
};
// In no enterprise, known to the real-name fixture.
pub const HAN: Someone = Someone {
    name: "韩梅梅",
    id_number: "530103198911110046",
    phone: "13900000101",
};
pub const WANG: Someone = Someone {
    name: "王小明",
    id_number: "530102199901010111",
    phone: "13900000102",
};
pub const OUYANG: Someone = Someone {
    name: "欧阳雪",
    id_number: "532101200002290085",
    phone: "13900000103",
};

/// A phone nobody has.
pub const FREE_PHONE: &str = "13900000199";
/// Passwords the policy accepts.
pub const PASSWORD: &str = "Person-Pass-2026";
pub const PASSWORD2: &str = "Zhoufang#2026";
/// Refused by the policy: common, common, one char repeated, too short.
pub const WEAK_PASSWORDS: &[&str] = &["12345678", "Aa123456", "aaaaaaaa", "Ab1!x"];
/// Bad ID numbers: wrong check character; 1999-02-30 (check character correct).
pub const BAD_CHECK_ID: &str = "340524198001010013";
pub const BAD_DATE_ID: &str = "110105199902300015";
pub const BAD_PHONE: &str = "12800001234";
/// 国家税务总局昆明市五华区税务局.
pub const WUHUA: &str = "15301020000";
/// A valid USCC (public test vector) that is not in the fixture registry.
pub const UNKNOWN_USCC: &str = "91110000600037341L";

/// A gateway that lets one phone receive several codes in a row (no 60 s resend wait),
/// for tests that walk a phone through more than one flow. The resend limit itself is
/// tested on a default gateway.
pub async fn quick_gateway() -> Gateway {
    Gateway::start_with(GatewayOptions {
        extra_yaml: "limits: {sms_resend_seconds: 0}".into(),
        ..Default::default()
    })
    .await
}

fn outbox_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every SMS sent to `phone` for `purpose`, oldest first.
pub fn sms_codes(outbox: &Path, phone: &str, purpose: &str) -> Vec<String> {
    outbox_lines(outbox)
        .into_iter()
        .filter(|v| v["kind"] == "sms" && v["phone"] == phone && v["purpose"] == purpose)
        .filter_map(|v| v["code"].as_str().map(str::to_string))
        .collect()
}

/// The newest code sent to `phone` for `purpose`.
pub fn last_code(outbox: &Path, phone: &str, purpose: &str) -> String {
    sms_codes(outbox, phone, purpose)
        .pop()
        .unwrap_or_else(|| panic!("no {purpose} SMS to {phone} in the outbox"))
}

/// A six-digit code that is not `code`.
pub fn wrong_code(code: &str) -> &'static str {
    if code == "000000" {
        "111111"
    } else {
        "000000"
    }
}

/// The `retry_after` of an error answer.
pub fn retry_after(r: &Resp) -> u64 {
    r.json()["error"]["retry_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retry_after in {}", String::from_utf8_lossy(&r.body)))
}

/// The `field` of an error answer.
pub fn field(r: &Resp) -> String {
    r.json()["error"]["field"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The row with this phone in a list of masked people (authorizers, recipients).
pub fn row_by_phone<'a>(list: &'a Value, phone: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|r| r["phone_masked"] == masked(phone))
        .unwrap_or_else(|| panic!("nobody with phone {phone} in {list}"))
}

/// The `/register/person` body.
pub fn person_form(who: Someone, code: &str, password: &str, verification: &str) -> Value {
    json!({
        "phone": who.phone, "sms_code": code, "name": who.name, "id_number": who.id_number,
        "password": password, "tax_authority": WUHUA, "realname_verification_id": verification,
    })
}

/// The `/register/enterprise-user/start` body.
pub fn enterprise_user_form(who: Someone, code: &str, password: &str, verification: &str) -> Value {
    json!({
        "phone": who.phone, "sms_code": code, "name": who.name, "id_number": who.id_number,
        "password": password, "realname_verification_id": verification,
    })
}

impl Browser {
    // --- Real-name verification ---------------------------------------------------

    pub async fn realname_start(&self, name: &str, id_number: &str) -> Resp {
        self.post(
            "/api/v1/realname/start",
            &json!({"name": name, "id_number": id_number}),
        )
        .await
    }

    /// Starts a verification and polls it until it is decided; returns (id, status).
    pub async fn realname_decided(&self, name: &str, id_number: &str) -> (String, String) {
        let v = self
            .realname_start(name, id_number)
            .await
            .expect(200)
            .json();
        assert_eq!(v["status"], "pending", "{v}");
        assert!(v["qr_payload"].is_string(), "{v}");
        let id = v["verification_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no verification_id in {v}"))
            .to_string();
        for _ in 0..100 {
            let s = self
                .get(&format!("/api/v1/realname/{id}"))
                .await
                .expect(200)
                .json();
            let status = s["status"].as_str().unwrap_or("").to_string();
            if status != "pending" {
                return (id, status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("real-name verification {id} still pending");
    }

    /// A passed verification of `who`.
    pub async fn realname(&self, who: Someone) -> String {
        let (id, status) = self.realname_decided(who.name, who.id_number).await;
        assert_eq!(status, "passed", "{} {}", who.name, who.id_number);
        id
    }

    // --- 自然人注册 (RG1) -----------------------------------------------------------

    pub async fn register_sms_resp(&self, phone: &str) -> Resp {
        let (captcha_id, answer) = self.captcha().await;
        self.post(
            "/api/v1/register/sms",
            &json!({"phone": phone, "captcha_id": captcha_id, "captcha_answer": answer}),
        )
        .await
    }

    /// Asks for a registration code for `phone`; returns it from the outbox.
    pub async fn register_sms(&self, phone: &str) -> String {
        let before = sms_codes(&self.outbox, phone, "register").len();
        let v = self.register_sms_resp(phone).await.expect(200).json();
        assert!(v["resend_after"].is_u64(), "{v}");
        let codes = sms_codes(&self.outbox, phone, "register");
        assert_eq!(codes.len(), before + 1, "one registration SMS to {phone}");
        codes.last().unwrap().clone()
    }

    pub async fn register_person_resp(&self, form: &Value) -> Resp {
        self.post("/api/v1/register/person", form).await
    }

    /// The whole 自然人注册 of `who`; returns the person id.
    pub async fn register_person(&self, who: Someone, password: &str) -> String {
        let code = self.register_sms(who.phone).await;
        let vid = self.realname(who).await;
        let v = self
            .register_person_resp(&person_form(who, &code, password, &vid))
            .await
            .expect(201)
            .json();
        let id = v["person_id"].as_str().unwrap_or("");
        assert!(!id.is_empty(), "{v}");
        id.to_string()
    }

    // --- 企业用户注册 (RG2) ---------------------------------------------------------

    pub async fn enterprise_user_start_resp(&self, form: &Value) -> Resp {
        self.post("/api/v1/register/enterprise-user/start", form)
            .await
    }

    /// SMS code, real-name verification and the first step; returns the ticket.
    pub async fn enterprise_user_start(&self, who: Someone, password: &str) -> String {
        let code = self.register_sms(who.phone).await;
        let vid = self.realname(who).await;
        let v = self
            .enterprise_user_start_resp(&enterprise_user_form(who, &code, password, &vid))
            .await
            .expect(200)
            .json();
        v["registration_ticket"]
            .as_str()
            .unwrap_or_else(|| panic!("no registration_ticket in {v}"))
            .to_string()
    }

    pub async fn authorizers(&self, ticket: &str, uscc: &str) -> Resp {
        self.get(&format!(
            "/api/v1/register/enterprise-user/authorizers?uscc={uscc}&ticket={ticket}"
        ))
        .await
    }

    /// The authorizer id of the legal rep / finance officer with this phone.
    pub async fn authorizer_id(&self, ticket: &str, uscc: &str, phone: &str) -> String {
        let v = self.authorizers(ticket, uscc).await.expect(200).json();
        row_by_phone(&v["authorizers"], phone)["authorizer_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn authorizer_sms_resp(&self, ticket: &str, uscc: &str, authorizer_id: &str) -> Resp {
        self.post(
            "/api/v1/register/enterprise-user/authorizer-sms",
            &json!({"registration_ticket": ticket, "uscc": uscc, "authorizer_id": authorizer_id}),
        )
        .await
    }

    /// Sends the approval code to the authorizer; returns it from the outbox.
    pub async fn authorizer_sms(
        &self,
        ticket: &str,
        uscc: &str,
        authorizer_id: &str,
        phone: &str,
    ) -> String {
        self.authorizer_sms_resp(ticket, uscc, authorizer_id)
            .await
            .expect(200);
        last_code(&self.outbox, phone, "authorize")
    }

    pub async fn confirm_resp(
        &self,
        ticket: &str,
        uscc: &str,
        authorizer_id: &str,
        code: &str,
    ) -> Resp {
        self.post(
            "/api/v1/register/enterprise-user/confirm",
            &json!({"registration_ticket": ticket, "uscc": uscc, "authorizer_id": authorizer_id, "sms_code": code}),
        )
        .await
    }

    /// The whole 企业用户注册 of `who` into `uscc`, approved by the admin with phone
    /// `authorizer_phone`; returns the confirmation.
    pub async fn enterprise_user(
        &self,
        who: Someone,
        password: &str,
        uscc: &str,
        authorizer_phone: &str,
    ) -> Value {
        let ticket = self.enterprise_user_start(who, password).await;
        let aid = self.authorizer_id(&ticket, uscc, authorizer_phone).await;
        let code = self
            .authorizer_sms(&ticket, uscc, &aid, authorizer_phone)
            .await;
        self.confirm_resp(&ticket, uscc, &aid, &code)
            .await
            .expect(201)
            .json()
    }

    // --- Login by personal password -------------------------------------------------

    /// Stage 1, then stage 2 by personal password for the officer with `phone`. Keeps
    /// the session on success; returns stage 2's answer.
    pub async fn login_by_password(
        &mut self,
        account: &str,
        enterprise_password: &str,
        phone: &str,
        password: &str,
    ) -> Resp {
        let s1 = self
            .stage1(account, enterprise_password)
            .await
            .expect(200)
            .json();
        let r = self
            .post(
                "/api/v1/login/officer",
                &json!({"login_ticket": s1["login_ticket"], "officer_id": officer_id(&s1, phone),
                        "method": "password", "password": password}),
            )
            .await;
        if r.status == 200 {
            self.keep_session(&r);
        }
        r
    }

    // --- 忘记密码 (FP1, FP2) ----------------------------------------------------------

    pub async fn person_recovery_start_resp(&self, phone: &str) -> Resp {
        let (captcha_id, answer) = self.captcha().await;
        self.post(
            "/api/v1/recovery/person/start",
            &json!({"phone": phone, "captcha_id": captcha_id, "captcha_answer": answer}),
        )
        .await
    }

    /// Starts FP1 for `phone`; returns (ticket, recovery code).
    pub async fn person_recovery_start(&self, phone: &str) -> (String, String) {
        let before = sms_codes(&self.outbox, phone, "recovery").len();
        let v = self
            .person_recovery_start_resp(phone)
            .await
            .expect(200)
            .json();
        assert!(v["resend_after"].is_u64(), "{v}");
        let codes = sms_codes(&self.outbox, phone, "recovery");
        assert_eq!(codes.len(), before + 1, "one recovery SMS to {phone}");
        let ticket = v["recovery_ticket"]
            .as_str()
            .unwrap_or_else(|| panic!("no recovery_ticket in {v}"))
            .to_string();
        (ticket, codes.last().unwrap().clone())
    }

    pub async fn person_recovery_verify_resp(
        &self,
        ticket: &str,
        code: &str,
        verification: &str,
    ) -> Resp {
        self.post(
            "/api/v1/recovery/person/verify",
            &json!({"recovery_ticket": ticket, "sms_code": code, "realname_verification_id": verification}),
        )
        .await
    }

    pub async fn person_recovery_reset_resp(&self, ticket: &str, new_password: &str) -> Resp {
        self.post(
            "/api/v1/recovery/person/reset",
            &json!({"recovery_ticket": ticket, "new_password": new_password}),
        )
        .await
    }

    /// The whole FP1 of `who`: start, verify; returns the verified ticket.
    pub async fn person_recovery_verified(&self, who: Someone) -> String {
        let (ticket, code) = self.person_recovery_start(who.phone).await;
        let vid = self.realname(who).await;
        self.person_recovery_verify_resp(&ticket, &code, &vid)
            .await
            .expect(204);
        ticket
    }

    /// The whole FP1 of `who`, ending with `new_password`.
    pub async fn reset_person_password(&self, who: Someone, new_password: &str) {
        let ticket = self.person_recovery_verified(who).await;
        self.person_recovery_reset_resp(&ticket, new_password)
            .await
            .expect(204);
    }

    pub async fn enterprise_recovery_start_resp(&self, account: &str) -> Resp {
        let (captcha_id, answer) = self.captcha().await;
        self.post(
            "/api/v1/recovery/enterprise/start",
            &json!({"account": account, "captcha_id": captcha_id, "captcha_answer": answer}),
        )
        .await
    }

    /// Starts FP2; returns (ticket, recipients).
    pub async fn enterprise_recovery_start(&self, account: &str) -> (String, Value) {
        let v = self
            .enterprise_recovery_start_resp(account)
            .await
            .expect(200)
            .json();
        let ticket = v["recovery_ticket"]
            .as_str()
            .unwrap_or_else(|| panic!("no recovery_ticket in {v}"))
            .to_string();
        (ticket, v["recipients"].clone())
    }

    pub async fn enterprise_recovery_sms_resp(&self, ticket: &str, recipient_id: &str) -> Resp {
        self.post(
            "/api/v1/recovery/enterprise/sms",
            &json!({"recovery_ticket": ticket, "recipient_id": recipient_id}),
        )
        .await
    }

    /// Sends the recovery code to the recipient with `phone`; returns it.
    pub async fn enterprise_recovery_sms(
        &self,
        ticket: &str,
        recipients: &Value,
        phone: &str,
    ) -> String {
        let rid = row_by_phone(recipients, phone)["recipient_id"]
            .as_str()
            .unwrap()
            .to_string();
        let before = sms_codes(&self.outbox, phone, "recovery").len();
        self.enterprise_recovery_sms_resp(ticket, &rid)
            .await
            .expect(200);
        let codes = sms_codes(&self.outbox, phone, "recovery");
        assert_eq!(codes.len(), before + 1, "one recovery SMS to {phone}");
        codes.last().unwrap().clone()
    }

    pub async fn enterprise_recovery_verify_resp(
        &self,
        ticket: &str,
        code: &str,
        verification: &str,
    ) -> Resp {
        self.post(
            "/api/v1/recovery/enterprise/verify",
            &json!({"recovery_ticket": ticket, "sms_code": code, "realname_verification_id": verification}),
        )
        .await
    }

    pub async fn enterprise_recovery_reset_resp(&self, ticket: &str, new_password: &str) -> Resp {
        self.post(
            "/api/v1/recovery/enterprise/reset",
            &json!({"recovery_ticket": ticket, "new_password": new_password}),
        )
        .await
    }

    /// FP2 of `account` up to a verified ticket, with `recipient` receiving the code.
    pub async fn enterprise_recovery_verified(&self, account: &str, recipient: Someone) -> String {
        let (ticket, recipients) = self.enterprise_recovery_start(account).await;
        let code = self
            .enterprise_recovery_sms(&ticket, &recipients, recipient.phone)
            .await;
        let vid = self.realname(recipient).await;
        self.enterprise_recovery_verify_resp(&ticket, &code, &vid)
            .await
            .expect(204);
        ticket
    }

    /// The whole FP2 of `account`, ending with `new_password`.
    pub async fn reset_enterprise_password(
        &self,
        account: &str,
        recipient: Someone,
        new_password: &str,
    ) {
        let ticket = self.enterprise_recovery_verified(account, recipient).await;
        self.enterprise_recovery_reset_resp(&ticket, new_password)
            .await
            .expect(204);
    }
}
