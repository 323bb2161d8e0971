//! Prometheus metrics (API.md `GET /metrics` on the admin listener).
//!
//! Contract: one registry per gateway (no process-global statics, so tests can run
//! several), counters incremented on the request path with atomics only.

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// Requests by kind: `api`, `proxy`, `refused` (bad path, not routed).
    pub requests: IntCounterVec,
    /// Cedar decisions on proxied requests by outcome: `allow`, `deny`.
    pub decisions: IntCounterVec,
    /// Login steps by stage (`enterprise`, `officer`) and result (`ok`, or an error code).
    pub logins: IntCounterVec,
    /// Policy reloads by result (`ok`, `failed`) and the version in force, read from
    /// the policy engine when scraped.
    reloads: IntGaugeVec,
    policy_version: IntGauge,
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("taxgate".into()), None)?;
        Ok(Metrics {
            requests: counter(&registry, "requests_total", "Requests by kind", &["kind"])?,
            decisions: counter(
                &registry,
                "decisions_total",
                "Cedar decisions on proxied requests",
                &["outcome"],
            )?,
            logins: counter(
                &registry,
                "logins_total",
                "Login steps by stage and result",
                &["stage", "result"],
            )?,
            reloads: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "policy_reloads_total",
                        "Policy reloads since start by result",
                    ),
                    &["result"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            policy_version: {
                let g = IntGauge::new("policy_version", "Version of the policy set in force")?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            registry,
        })
    }

    /// The text exposition format; `policy` gives the reload counts and version.
    pub fn render(&self, policy: &crate::policy::PolicyEngine) -> Vec<u8> {
        let (ok, failed) = policy.reload_counts();
        self.reloads.with_label_values(&["ok"]).set(ok as i64);
        self.reloads
            .with_label_values(&["failed"])
            .set(failed as i64);
        self.policy_version.set(policy.status().version as i64);
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters() {
        let m = Metrics::new().unwrap();
        m.decisions.with_label_values(&["deny"]).inc();
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("taxgate_decisions_total{outcome=\"deny\"} 1"),
            "{text}"
        );
    }
}
