//! The operators' listener (API.md, "Operators"), loopback by default: health (a store
//! write made durable within the store's deadline), metrics, policy status (with every
//! node's policy hash) and reload, the certificate-login CAs, and in development with
//! `test_clock: true` the test clock. It shares the gateway's state but not its port, so
//! it can be kept off the public network.

use crate::app::App;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;

pub struct Admin {
    pub app: Arc<App>,
}

fn json(status: u16, value: &serde_json::Value) -> Response<Vec<u8>> {
    let body = value.to_string().into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

impl Admin {
    /// 200 when a write to the store is durable within the store's deadline; 503
    /// otherwise, so an orchestrator restarts a node whose store is stuck.
    async fn health(&self) -> Response<Vec<u8>> {
        let key = format!("healthz/{}", self.app.node_id);
        match self.app.store.probe(&key, crate::clock::now()).await {
            Ok(took) => json(
                200,
                &serde_json::json!({"status": "ok", "store_ms": took.as_secs_f64() * 1000.0}),
            ),
            Err(e) => {
                tracing::error!(error = %e, "health probe: the store did not take a write");
                json(
                    503,
                    &serde_json::json!({"status": "unavailable", "store": e.to_string()}),
                )
            }
        }
    }

    /// This node's policy status, its id, and every live node's policy hash (`nodes.rs`):
    /// `skew` is true when the nodes sharing the store enforce different policy sets.
    async fn policies(&self) -> serde_json::Value {
        let mut v = serde_json::json!(self.app.policy.status());
        v["node"] = serde_json::json!(self.app.node_id);
        match self.app.live_nodes(crate::clock::now()).await {
            Ok(nodes) => {
                let skew = nodes
                    .windows(2)
                    .any(|w| w[0].policy_hash != w[1].policy_hash);
                v["nodes"] = serde_json::json!(nodes);
                v["skew"] = serde_json::json!(skew);
            }
            Err(e) => v["nodes_error"] = serde_json::json!(e.to_string()),
        }
        v
    }
}

/// The request body, at most 4 KiB (the admin calls take small JSON); empty on error.
async fn read_body(session: &mut ServerSession) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = session.read_request_body().await {
        if body.len() + chunk.len() > 4096 {
            return Vec::new();
        }
        body.extend_from_slice(&chunk);
    }
    body
}

/// `/admin/clock` (config `test_clock`, development only; clock.rs): `GET` the clock,
/// `PUT {"now": UNIX}` or `PUT {"advance_seconds": N}` to freeze it there, `DELETE` to
/// give it back to the system.
fn test_clock(method: &str, body: &[u8]) -> Response<Vec<u8>> {
    let state = || {
        json(
            200,
            &serde_json::json!({"now": crate::clock::now(), "frozen": crate::clock::is_frozen()}),
        )
    };
    match method {
        "GET" => state(),
        "DELETE" => {
            crate::clock::freeze(None);
            state()
        }
        _ => {
            let asked: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let at = match (asked["now"].as_i64(), asked["advance_seconds"].as_i64()) {
                (Some(t), None) => t,
                (None, Some(n)) => crate::clock::now().saturating_add(n),
                _ => {
                    return json(
                        400,
                        &serde_json::json!({"error": {"code": "INVALID_INPUT", "message": "需要 now 或 advance_seconds（整数）之一"}}),
                    )
                }
            };
            crate::clock::freeze(Some(at));
            tracing::warn!(now = at, "test clock frozen");
            state()
        }
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_string();
        let allow = match path.as_str() {
            "/healthz" | "/metrics" | "/admin/policies" | "/admin/ca" => "GET",
            "/admin/policies/reload" => "POST",
            "/admin/clock" if self.app.config.test_clock => "GET, PUT, DELETE",
            _ => "",
        };
        if !allow.is_empty() && !allow.split(", ").any(|m| m == method.as_str()) {
            let mut resp = json(
                405,
                &serde_json::json!({"error": {"code": "HTTP_METHOD_NOT_ALLOWED", "message": format!("只接受 {allow} 请求")}}),
            );
            resp.headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
            return resp;
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/healthz") => self.health().await,
            ("GET", "/metrics") => {
                let cas = self.app.trust.status();
                let crls: Vec<(&str, i64)> = cas
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), c.crl_next_update?)))
                    .collect();
                let store = &self.app.store;
                let counters = crate::metrics::StoreCounters {
                    deadline_missed: store
                        .deadline()
                        .missed()
                        .iter()
                        .map(|(op, n)| (op.name(), *n))
                        .collect(),
                    retries: store.retries(),
                    audit_dropped: self.app.audit.dropped(),
                };
                let body = self.app.metrics.render(&self.app.policy, &crls, &counters);
                Response::builder()
                    .status(200)
                    .header("content-type", "text/plain; version=0.0.4")
                    .header("content-length", body.len())
                    .body(body)
                    .unwrap_or_default()
            }
            ("GET", "/admin/policies") => json(200, &self.policies().await),
            ("GET", "/admin/ca") => json(200, &serde_json::json!(self.app.trust.status())),
            (_, "/admin/clock") if self.app.config.test_clock => {
                let body = read_body(session).await;
                test_clock(method.as_str(), &body)
            }
            ("POST", "/admin/policies/reload") => {
                let started = std::time::Instant::now();
                match self.app.policy.reload() {
                    Ok(status) => json(
                        200,
                        &serde_json::json!({
                            "status": status,
                            "reload_ms": started.elapsed().as_secs_f64() * 1000.0,
                        }),
                    ),
                    Err(e) => json(
                        422,
                        &serde_json::json!({"error": {"code": "POLICY_INVALID", "message": e.to_string()}}),
                    ),
                }
            }
            _ => json(
                404,
                &serde_json::json!({"error": {"code": "NOT_FOUND", "message": "未找到"}}),
            ),
        }
    }
}
