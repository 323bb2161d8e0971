//! An HTTP client that behaves like one browser: it keeps the session cookie and the
//! CSRF token, and sends a fixed User-Agent (login tickets are bound to the client).

use super::outbox;
use super::Gateway;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::path::PathBuf;
use taxgate::providers::http_client::{self, HttpClient};

pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON ({}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected answer: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts the status and the error code.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Resp {
        let r = self.expect(status);
        assert_eq!(r.code(), code, "{}", String::from_utf8_lossy(&r.body));
        r
    }
}

pub struct Browser {
    pub base: String,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
    pub user_agent: String,
    pub outbox: PathBuf,
    client: HttpClient,
}

/// The client of a plain-HTTP gateway: https is never used, so it trusts no root (and
/// reads none from the system).
fn plain_client() -> HttpClient {
    http_client::with_roots(pingora::tls::RootCertStore::empty())
}

impl Browser {
    pub fn new(gw: &Gateway) -> Browser {
        Browser::with_agent(gw, "taxgate-test/1")
    }

    pub fn with_agent(gw: &Gateway, user_agent: &str) -> Browser {
        Browser {
            base: gw.base(),
            cookie: None,
            csrf: None,
            user_agent: user_agent.to_string(),
            outbox: gw.outbox.clone(),
            client: match &gw.pki {
                Some(pki) => http_client::client(Some(&pki.ca_file)).unwrap(),
                None => plain_client(),
            },
        }
    }

    /// A browser on the same connections (pool) and User-Agent, without a session.
    pub fn sibling(&self) -> Browser {
        Browser {
            base: self.base.clone(),
            cookie: None,
            csrf: None,
            user_agent: self.user_agent.clone(),
            outbox: self.outbox.clone(),
            client: self.client.clone(),
        }
    }

    /// A client of the gateway's admin listener (the operators' port).
    pub fn admin(gw: &Gateway) -> Browser {
        let mut b = Browser::new(gw);
        b.base = format!("http://{}", gw.admin);
        b
    }

    /// Points the browser at a restarted gateway, keeping its cookie.
    pub fn follow(&mut self, gw: &Gateway) {
        self.base = gw.base();
    }

    /// Uses `other`'s session (cookie and CSRF token): the same person in a second tab.
    pub fn adopt_session(&mut self, other: &Browser) {
        self.cookie = other.cookie.clone();
        self.csrf = other.csrf.clone();
        self.user_agent = other.user_agent.clone();
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .await
            .expect("request")
    }

    /// [`Browser::send`], with a connection failure as an error (the drills kill the
    /// gateway under load).
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Resp, String> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path))
            .header("user-agent", &self.user_agent);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("taxgate_session={c}"));
        }
        if let Some(t) = &self.csrf {
            req = req.header("x-csrf-token", t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .unwrap();
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, &[], Some(&body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, &[], Some(&body.to_string())).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> Resp {
        self.send("POST", path, &[], Some(body)).await
    }

    /// A fresh captcha and its answer from the outbox.
    pub async fn captcha(&self) -> (String, String) {
        let r = self.get("/api/v1/captcha").await.expect(200);
        let v = r.json();
        assert!(v["image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,"));
        let id = v["captcha_id"].as_str().unwrap().to_string();
        let answer = outbox::captcha_answer(&self.outbox, &id);
        (id, answer)
    }

    /// Stage 1 with a correct captcha.
    pub async fn stage1(&self, account: &str, password: &str) -> Resp {
        let (id, answer) = self.captcha().await;
        self.post(
            "/api/v1/login/enterprise",
            &json!({"account": account, "password": password, "captcha_id": id, "captcha_answer": answer}),
        )
        .await
    }

    /// Remembers the session a successful stage 2 opened.
    pub fn keep_session(&mut self, r: &Resp) {
        let cookie = r
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("taxgate_session="))
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_string();
        self.cookie = Some(cookie);
        self.csrf = r.json()["csrf_token"].as_str().map(str::to_string);
    }

    /// Asks for an SMS code for `officer_id` and reads it from the outbox.
    pub async fn login_sms_code(&self, ticket: &str, officer_id: &str, phone: &str) -> String {
        self.post(
            "/api/v1/login/officer/sms",
            &json!({"login_ticket": ticket, "officer_id": officer_id}),
        )
        .await
        .expect(200);
        outbox::last_sms(&self.outbox, phone).expect("sms sent")["code"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The whole login by SMS; keeps the session. Returns stage 2's answer.
    pub async fn login_by_sms(&mut self, account: &str, password: &str, phone: &str) -> Resp {
        let s1 = self.stage1(account, password).await.expect(200).json();
        self.stage2_by_sms(&s1, phone).await
    }

    /// Stage 2 by SMS for the officer with `phone` of a stage-1 answer (by password or
    /// certificate); keeps the session.
    pub async fn stage2_by_sms(&mut self, stage1: &Value, phone: &str) -> Resp {
        let ticket = stage1["login_ticket"].as_str().unwrap();
        let officer = officer_id(stage1, phone);
        let code = self.login_sms_code(ticket, &officer, phone).await;
        self.finish_by_sms(ticket, &officer, &code).await
    }

    /// `POST /login/officer` with an SMS code; must be 200; keeps the session.
    pub async fn finish_by_sms(&mut self, ticket: &str, officer: &str, code: &str) -> Resp {
        let r = self
            .post(
                "/api/v1/login/officer",
                &json!({"login_ticket": ticket, "officer_id": officer, "method": "sms", "sms_code": code}),
            )
            .await
            .expect(200);
        self.keep_session(&r);
        r
    }
}

/// Masks a phone as the officer list does.
pub fn masked(phone: &str) -> String {
    format!("{}****{}", &phone[..3], &phone[7..])
}

/// The per-ticket officer id of the officer with this phone in a stage-1 answer.
pub fn officer_id(stage1: &Value, phone: &str) -> String {
    stage1["officers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["phone_masked"] == masked(phone))
        .unwrap_or_else(|| panic!("no officer with phone {phone} in {stage1}"))["officer_id"]
        .as_str()
        .unwrap()
        .to_string()
}
