//! Prometheus metrics (API.md `GET /metrics` on the admin listener).
//!
//! Contract: one registry per gateway (no process-global statics, so tests can run
//! several), counters incremented on the request path with atomics only.

use prometheus::{
    Encoder, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Requests by kind: `api`, `proxy`, `refused` (bad path, not routed).
    /// Resolved once per label (in [`RequestKind`] order), so the request path does no
    /// label lookup.
    requests: [IntCounter; 4],
    /// Cedar decisions on proxied requests by outcome: `allow`, `deny`.
    decisions: [IntCounter; 2],
    /// Login steps by stage (`enterprise`, `officer`) and result (`ok`, or an error code).
    pub logins: IntCounterVec,
    /// Policy reloads by result (`ok`, `failed`) and the version in force, read from
    /// the policy engine when scraped.
    reloads: IntGaugeVec,
    policy_version: IntGauge,
    /// When each certificate-login CA's CRL goes stale (Unix seconds), set when scraped:
    /// alert well before it, as that CA's logins stop then.
    crl_next_update: IntGaugeVec,
    /// Store calls that missed their deadline (answered 503), by kind of call; read from
    /// the store when scraped.
    store_deadline_missed: IntGaugeVec,
    /// Store transactions and updates that met a concurrent write and ran again.
    store_retries: IntGauge,
    /// Events of denied requests the audit queue had no room for (audit.rs).
    audit_dropped: IntGauge,
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

/// A gauge set from a figure read when scraped (a counter kept elsewhere, a version).
fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// The store's own counters and the audit trail's, read when scraped.
pub struct StoreCounters<'a> {
    /// Calls past their deadline by kind of call.
    pub deadline_missed: Vec<(&'a str, u64)>,
    pub retries: u64,
    /// Events of denied requests dropped because the audit queue was full.
    pub audit_dropped: u64,
}

/// What a request to the public listener turned out to be.
#[derive(Debug, Clone, Copy)]
pub enum RequestKind {
    Api = 0,
    Portal = 1,
    Proxy = 2,
    /// A refused path or an unrouted one.
    Refused = 3,
}

impl Metrics {
    pub fn request(&self, kind: RequestKind) {
        self.requests[kind as usize].inc();
    }

    pub fn decision(&self, allowed: bool) {
        self.decisions[usize::from(!allowed)].inc();
    }

    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("taxgate".into()), None)?;
        Ok(Metrics {
            requests: {
                let c = counter(&registry, "requests_total", "Requests by kind", &["kind"])?;
                ["api", "portal", "proxy", "refused"].map(|k| c.with_label_values(&[k]))
            },
            decisions: {
                let c = counter(
                    &registry,
                    "decisions_total",
                    "Cedar decisions on proxied requests",
                    &["outcome"],
                )?;
                ["allow", "deny"].map(|k| c.with_label_values(&[k]))
            },
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
            policy_version: gauge(
                &registry,
                "policy_version",
                "Version of the policy set in force",
            )?,
            crl_next_update: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "ca_crl_next_update_seconds",
                        "When the CRL of a certificate-login CA goes stale (Unix time)",
                    ),
                    &["ca"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            store_deadline_missed: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "store_deadline_missed_total",
                        "Store calls past their deadline (answered 503) since start",
                    ),
                    &["op"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            store_retries: gauge(
                &registry,
                "store_retries_total",
                "Store transactions and updates run again after a concurrent write",
            )?,
            audit_dropped: gauge(
                &registry,
                "audit_events_dropped_total",
                "Audit events of denied requests dropped because the queue was full",
            )?,
            registry,
        })
    }

    /// The text exposition format; `policy` gives the reload counts and version, `crls`
    /// each CA's name and its CRL's next update, `store` the store's counters.
    pub fn render(
        &self,
        policy: &crate::policy::PolicyEngine,
        crls: &[(&str, i64)],
        store: &StoreCounters,
    ) -> Vec<u8> {
        self.store_retries.set(store.retries as i64);
        self.audit_dropped.set(store.audit_dropped as i64);
        let store_missed = &store.deadline_missed;
        for (op, n) in store_missed {
            self.store_deadline_missed
                .with_label_values(&[op])
                .set(*n as i64);
        }
        for (ca, next_update) in crls {
            self.crl_next_update
                .with_label_values(&[ca])
                .set(*next_update);
        }
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
        m.decision(false);
        m.request(RequestKind::Portal);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&m.registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("taxgate_decisions_total{outcome=\"deny\"} 1")
                && text.contains("taxgate_requests_total{kind=\"portal\"} 1"),
            "{text}"
        );
    }
}
