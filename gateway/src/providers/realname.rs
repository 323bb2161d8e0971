//! Real-name verification (实名认证 / 实人认证 via 支付宝 or 微信 in production).
//!
//! Contract: [`RealnameProvider::start`] opens a verification of one (name, ID number)
//! and returns the provider's reference and the QR payload the person scans;
//! [`RealnameProvider::status`] tells whether it is still pending, passed or failed.
//! Production ([`HttpRealname`]) calls a configured service:
//! `POST {url}/verifications {"name","id_number"}` → `{"id","qr_payload"}`, and
//! `GET {url}/verifications/{id}` → `{"status":"pending"|"passed"|"failed"}`.
//! Development ([`FixtureRealname`]) passes exactly the people listed in a YAML fixture
//! (`people: [{name, id_number}]`), as soon as the status is asked for.

use super::http_client::{self, HttpClient};
use super::ProviderError;
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RealnameStatus {
    Pending,
    Passed,
    Failed,
}

pub struct Started {
    pub reference: String,
    pub qr_payload: String,
}

#[async_trait]
pub trait RealnameProvider: Send + Sync {
    async fn start(&self, name: &str, id_number: &str) -> Result<Started, ProviderError>;
    async fn status(&self, reference: &str) -> Result<RealnameStatus, ProviderError>;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixtureFile {
    people: Vec<FixturePerson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixturePerson {
    name: String,
    id_number: String,
}

/// Development: the fixture decides. The reference encodes the verdict, computed at start.
pub struct FixtureRealname {
    people: HashSet<(String, String)>,
}

impl FixtureRealname {
    pub fn load(path: &Path) -> Result<FixtureRealname, ProviderError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProviderError::Unavailable(format!("{}: {e}", path.display())))?;
        let file: FixtureFile = serde_yaml::from_str(&text)
            .map_err(|e| ProviderError::Unavailable(format!("{}: {e}", path.display())))?;
        Ok(FixtureRealname {
            people: file
                .people
                .into_iter()
                .map(|p| (p.name, p.id_number.to_ascii_uppercase()))
                .collect(),
        })
    }
}

#[async_trait]
impl RealnameProvider for FixtureRealname {
    async fn start(&self, name: &str, id_number: &str) -> Result<Started, ProviderError> {
        let listed = self
            .people
            .contains(&(name.to_string(), id_number.to_ascii_uppercase()));
        let reference = format!(
            "fixture-{}-{}",
            if listed { "pass" } else { "fail" },
            crate::crypto::secrets::short_id()
        );
        Ok(Started {
            qr_payload: format!("taxgate-dev://realname/{reference}"),
            reference,
        })
    }

    async fn status(&self, reference: &str) -> Result<RealnameStatus, ProviderError> {
        Ok(if reference.starts_with("fixture-pass-") {
            RealnameStatus::Passed
        } else {
            RealnameStatus::Failed
        })
    }
}

pub struct HttpRealname {
    base: String,
    timeout: Duration,
    client: HttpClient,
}

impl HttpRealname {
    /// `ca_file`: the roots for an `https://` URL (default: the system's).
    pub fn new(
        url: &str,
        timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<HttpRealname, ProviderError> {
        Ok(HttpRealname {
            base: url.trim_end_matches('/').to_string(),
            timeout,
            client: http_client::client(ca_file)?,
        })
    }

    async fn call(
        &self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<serde_json::Value, ProviderError> {
        let unavailable = |m: String| ProviderError::Unavailable(format!("realname service: {m}"));
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| unavailable("timed out".into()))?
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("answered {}", resp.status())));
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unavailable(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|e| unavailable(e.to_string()))
    }
}

#[async_trait]
impl RealnameProvider for HttpRealname {
    async fn start(&self, name: &str, id_number: &str) -> Result<Started, ProviderError> {
        let body = serde_json::json!({"name": name, "id_number": id_number}).to_string();
        let req = hyper::Request::post(format!("{}/verifications", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let v = self.call(req).await?;
        match (v["id"].as_str(), v["qr_payload"].as_str()) {
            (Some(id), Some(qr)) => Ok(Started {
                reference: id.to_string(),
                qr_payload: qr.to_string(),
            }),
            _ => Err(ProviderError::Unavailable(
                "realname service: malformed answer".into(),
            )),
        }
    }

    async fn status(&self, reference: &str) -> Result<RealnameStatus, ProviderError> {
        if !reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ProviderError::Unavailable(
                "realname service: bad reference".into(),
            ));
        }
        let req = hyper::Request::get(format!("{}/verifications/{reference}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        let v = self.call(req).await?;
        serde_json::from_value(v["status"].clone())
            .map_err(|_| ProviderError::Unavailable("realname service: unknown status".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::fake_service;

    #[tokio::test]
    async fn http_realname_starts_and_polls() {
        let (url, seen) = fake_service::start(|method, path, _| match (method, path) {
            ("POST", "/verifications") => {
                (200, r#"{"id":"v-1","qr_payload":"alipays://x"}"#.into())
            }
            ("GET", "/verifications/v-1") => (200, r#"{"status":"passed"}"#.into()),
            ("GET", _) => (200, r#"{"status":"pending"}"#.into()),
            _ => (404, String::new()),
        })
        .await;
        let p = HttpRealname::new(&format!("{url}/"), Duration::from_secs(2), None).unwrap();
        let s = p.start("张三", "11010519491231002X").await.unwrap();
        assert_eq!(
            (s.reference.as_str(), s.qr_payload.as_str()),
            ("v-1", "alipays://x")
        );
        let body: serde_json::Value = serde_json::from_str(&seen.lock().unwrap()[0].2).unwrap();
        assert_eq!(body["id_number"], "11010519491231002X");
        assert_eq!(p.status("v-1").await.unwrap(), RealnameStatus::Passed);
        assert_eq!(p.status("v-2").await.unwrap(), RealnameStatus::Pending);
        assert!(
            p.status("../admin").await.is_err(),
            "references are not paths"
        );
    }

    #[tokio::test]
    async fn fixture_passes_exactly_the_listed_people() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("people.yaml");
        std::fs::write(
            &path,
            "people:\n  - {name: 张三, id_number: 11010519491231002x}\n",
        )
        .unwrap();
        let f = FixtureRealname::load(&path).unwrap();
        let ok = f.start("张三", "11010519491231002X").await.unwrap();
        assert_eq!(
            f.status(&ok.reference).await.unwrap(),
            RealnameStatus::Passed
        );
        let other = f.start("李四", "11010519491231002X").await.unwrap();
        assert_eq!(
            f.status(&other.reference).await.unwrap(),
            RealnameStatus::Failed
        );
    }
}
