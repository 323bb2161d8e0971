//! The operators' listener (API.md, "Operators"), loopback by default: health, policy
//! status and reload. It shares the gateway's state but not its port, so it can be kept
//! off the public network.

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

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let method = req.method.clone();
        match (method.as_str(), req.uri.path()) {
            ("GET", "/healthz") => json(200, &serde_json::json!({"status": "ok"})),
            ("GET", "/metrics") => {
                let body = self.app.metrics.render(&self.app.policy);
                Response::builder()
                    .status(200)
                    .header("content-type", "text/plain; version=0.0.4")
                    .header("content-length", body.len())
                    .body(body)
                    .unwrap_or_default()
            }
            ("GET", "/admin/policies") => json(200, &serde_json::json!(self.app.policy.status())),
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
