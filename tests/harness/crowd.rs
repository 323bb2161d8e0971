//! Crowd load (issue 18): many parallel calls of every writing kind against one gateway.
//!
//! Contract:
//! - Every call goes through [`Crowd::send`]: answered within [`CALL_DEADLINE`] (the
//!   store's deadline + 5 s) or it is *unanswered*, a failure named by its kind. Every call
//!   is counted with its latency in the crowd's [`Tally`].
//! - A *kind* is one async function `(Arc<Crowd>, &mut Slot) -> Result<Done, String>`: it
//!   prepares what its one call needs (untimed helper calls, each a failure if refused),
//!   then [`Slot::fire`] waits for the rest of the burst (a barrier) and sends the timed
//!   call; the kind accepts the statuses it lists (never a 5xx) and returns the [`Effect`]
//!   its acknowledged write must leave. Adding a kind is writing that function and adding
//!   it to [`KINDS`].
//! - [`check`] verifies every recorded effect against the running gateway: after the load,
//!   and again after a `kill -9` + restart; a captcha is checked only then (its check
//!   spends it).
//! - The outbox is read through one [`OutboxTail`] (incremental; the file grows to many
//!   thousands of lines), and codes sent to a shared phone are read under a per-phone
//!   lock, so each caller gets its own code.

use super::client::masked;
use super::flows::{enterprise_user_form, Someone, PASSWORD, WUHUA};
use super::fx::*;
use super::{Browser, Gateway, GatewayOptions, Resp};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// Calls in one burst.
pub const BURST: usize = 64;
/// `limits.store_deadline_seconds` (its default) + 5 s: a call not answered by then is a
/// failure.
pub const CALL_DEADLINE: Duration = Duration::from_secs(5 + 5);

/// Limits of a crowd gateway: every call comes from 127.0.0.1, so the per-address request
/// window and connection cap are raised out of the crowd's way, and one phone may receive
/// codes back to back (several logins of one officer at once).
pub const CROWD_LIMITS: &str = "ip_requests_per_minute: 100000000, connections_per_ip: 100000, \
     sms_resend_seconds: 0, sms_daily_per_phone: 100000000";

/// A gateway for the crowd: [`CROWD_LIMITS`] plus `more_limits`, the real-name fixture
/// listing `people` (written to `dir`).
pub fn options(dir: &Path, people: &[Someone], more_limits: &str) -> GatewayOptions {
    let listed: Vec<Value> = people
        .iter()
        .map(|p| json!({"name": p.name, "id_number": p.id_number}))
        .collect();
    let fixture = dir.join("crowd-realname.yaml");
    let text = serde_yaml::to_string(&json!({ "people": listed })).expect("fixture yaml");
    std::fs::write(&fixture, text).expect("write the real-name fixture");
    let sep = if more_limits.is_empty() { "" } else { ", " };
    // Certificate login on, with the demo CA (certificates for the fixture enterprises).
    let pki = dir.join("pki");
    let registry = super::repo().join("tests/fixtures/registry.yaml");
    taxgate::demo::pki::ensure(&pki, &registry).expect("the crowd's CA");
    let ca_roots = format!(
        "ca_roots:\n  - {{name: crowd-ca, kind: ca, root_file: {}, crl_file: {}}}\n",
        pki.join("ca/root.pem").display(),
        pki.join("ca/crl.pem").display()
    );
    GatewayOptions {
        realname_fixture: Some(fixture),
        extra_yaml: format!("{ca_roots}limits: {{{CROWD_LIMITS}{sep}{more_limits}}}"),
        ..Default::default()
    }
}

/// `n` people the crowd's real-name fixture confirms: valid ID numbers, phones nobody
/// else has whose masked forms (`136****NNNN`) differ (n ≤ 10,000).
pub fn people(n: usize) -> Vec<Someone> {
    assert!(n <= 10_000, "masked phones must differ");
    const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    (0..n)
        .map(|i| {
            let digits: String = format!("{i}")
                .chars()
                .map(|d| DIGITS[d as usize - '0' as usize])
                .collect();
            let name = format!("群测{digits}");
            let first17 = format!("53010219{:02}0101{:03}", 60 + i / 1000, i % 1000);
            let check = taxgate::identity::id_number::check_char(&first17).expect("check char");
            Someone {
                name: leak(name),
                id_number: leak(format!("{first17}{check}")),
                phone: leak(format!("136{:08}", 10_000_000 + i)),
            }
        })
        .collect()
}

/// An officer of the fixture registry who logs in by SMS.
#[derive(Clone, Copy, Debug)]
pub struct Officer {
    pub account: &'static str,
    pub password: &'static str,
    pub phone: &'static str,
    pub name: &'static str,
}

/// The officers of enterprise A, whom the login kinds take in turn.
pub const OFFICERS_A: [Officer; 4] = [
    Officer {
        account: A_USCC,
        password: A_PASSWORD,
        phone: ZHAO_PHONE,
        name: "赵敏",
    },
    Officer {
        account: A_TIN,
        password: A_PASSWORD,
        phone: QIAN_PHONE,
        name: "钱进",
    },
    Officer {
        account: A_USCC,
        password: A_PASSWORD,
        phone: SUN_PHONE,
        name: "孙悦",
    },
    Officer {
        account: A_TIN,
        password: A_PASSWORD,
        phone: LI_PHONE,
        name: "李雷",
    },
];

/// The grant sets the grant writers cycle through (never empty: no unbind).
pub const GRANT_SETS: [&[&str]; 4] = [
    &["wybs"],
    &["wybs.fpsy", "wycx"],
    &["wycx.sbxx"],
    &["wybs.sfsb", "wycx.sbxx"],
];

fn grant_set(i: usize) -> BTreeSet<String> {
    GRANT_SETS[i % GRANT_SETS.len()]
        .iter()
        .map(|m| m.to_string())
        .collect()
}

/// What an acknowledged write must have left, checked by [`check`].
#[derive(Clone, Debug)]
pub enum Effect {
    /// An issued captcha: answerable once, then refused.
    Captcha { id: String, answer: String },
    /// A started real-name verification: found.
    Verification { id: String },
    /// A stage-1 login ticket: accepted by the next step (an SMS for this officer).
    Ticket {
        ticket: String,
        officer_id: String,
        phone: String,
    },
    /// A login SMS sent to `phone`: in the outbox (counted per phone, see [`check`]).
    Sms { phone: String },
    /// An opened session: `GET /session` answers as its officer.
    Session { cookie: String, name: String },
    /// A logged-out session: `GET /session` answers 401.
    LoggedOut { cookie: String },
    /// A grant set acknowledged for `person` of enterprise A; of each person's grants the
    /// one with the highest `seq` must be in force.
    Grant {
        person: String,
        seq: usize,
        modules: BTreeSet<String>,
    },
    /// A person bound to enterprise B by 企业用户注册: logs in with his password.
    Registered { who: Someone },
    /// An issued certificate-login challenge: taken once by a login (a bad signature
    /// proves it was there: SIGNATURE_INVALID, not CHALLENGE_INVALID).
    Challenge { id: String },
}

impl Effect {
    fn label(&self) -> &'static str {
        match self {
            Effect::Captcha { .. } => "captcha",
            Effect::Verification { .. } => "real-name verification",
            Effect::Ticket { .. } => "login ticket",
            Effect::Sms { .. } => "SMS",
            Effect::Session { .. } => "session",
            Effect::LoggedOut { .. } => "logout",
            Effect::Grant { .. } => "grant",
            Effect::Registered { .. } => "registration",
            Effect::Challenge { .. } => "certificate challenge",
        }
    }
}

/// Every request sent through a crowd: how many, their latencies, the unanswered.
#[derive(Default)]
pub struct Tally {
    pub requests: AtomicUsize,
    latencies_us: Mutex<Vec<u64>>,
    pub unanswered: Mutex<Vec<String>>,
}

impl Tally {
    /// (p50, p99) of every answered request.
    pub fn percentiles(&self) -> (Duration, Duration) {
        let mut all = self.latencies_us.lock().expect("tally").clone();
        all.sort_unstable();
        (
            Duration::from_micros(percentile(&all, 50)),
            Duration::from_micros(percentile(&all, 99)),
        )
    }
}

/// The `p`th percentile of sorted values (0 for none).
pub fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

/// The outbox read incrementally: captcha answers by id, SMS codes by phone and purpose.
pub struct OutboxTail {
    path: PathBuf,
    state: Mutex<TailState>,
}

#[derive(Default)]
struct TailState {
    offset: u64,
    captchas: HashMap<String, String>,
    sms: HashMap<(String, String), Vec<String>>,
}

impl OutboxTail {
    pub fn new(path: &Path) -> OutboxTail {
        OutboxTail {
            path: path.to_path_buf(),
            state: Mutex::new(TailState::default()),
        }
    }

    /// Reads the complete lines written since the last call.
    fn refresh(&self, st: &mut TailState) {
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return;
        };
        let mut text = Vec::new();
        if f.seek(SeekFrom::Start(st.offset)).is_err() || f.read_to_end(&mut text).is_err() {
            return;
        }
        let Some(end) = text.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        st.offset += end as u64 + 1;
        for line in text[..end].split(|b| *b == b'\n') {
            let Ok(v) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            match v["kind"].as_str() {
                Some("captcha") => {
                    st.captchas.insert(s("captcha_id"), s("answer"));
                }
                Some("sms") => st
                    .sms
                    .entry((s("phone"), s("purpose")))
                    .or_default()
                    .push(s("code")),
                _ => {}
            }
        }
    }

    pub fn captcha(&self, id: &str) -> Option<String> {
        let mut st = self.state.lock().expect("outbox tail");
        self.refresh(&mut st);
        st.captchas.get(id).cloned()
    }

    /// Every code sent to `phone` for `purpose`, oldest first.
    pub fn sms(&self, phone: &str, purpose: &str) -> Vec<String> {
        let mut st = self.state.lock().expect("outbox tail");
        self.refresh(&mut st);
        st.sms
            .get(&(phone.to_string(), purpose.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

/// One call's place in a burst: its own browser (connection) and the burst's barrier.
pub struct Slot {
    pub b: Browser,
    pub i: usize,
    go: Option<Arc<Barrier>>,
}

impl Slot {
    /// A slot outside any burst (the soak's workers): [`Slot::fire`] sends at once.
    pub fn alone(b: Browser, i: usize) -> Slot {
        Slot { b, i, go: None }
    }

    /// Waits for the whole burst (once).
    async fn arrive(&mut self) {
        if let Some(go) = self.go.take() {
            go.wait().await;
        }
    }

    /// Waits for the burst, then sends the timed call; returns it with its latency.
    pub async fn fire(
        &mut self,
        cx: &Crowd,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(Resp, Duration), String> {
        self.arrive().await;
        let started = Instant::now();
        let r = cx.send(&self.b, method, path, body).await?;
        Ok((r, started.elapsed()))
    }
}

/// A kind's timed call, acknowledged: its status, latency and what it wrote.
pub struct Done {
    pub status: u16,
    pub took: Duration,
    pub effect: Option<Effect>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type KindFn = for<'a> fn(Arc<Crowd>, &'a mut Slot) -> BoxFuture<'a, Result<Done, String>>;

/// A writing kind of the crowd.
pub struct Kind {
    pub name: &'static str,
    pub run: KindFn,
}

/// Every writing kind, in the order a round bursts them.
pub const KINDS: &[Kind] = &[
    Kind {
        name: "captcha",
        run: |cx, s| Box::pin(captcha(cx, s)),
    },
    Kind {
        name: "real-name start",
        run: |cx, s| Box::pin(realname_start(cx, s)),
    },
    Kind {
        name: "stage 1",
        run: |cx, s| Box::pin(stage1(cx, s)),
    },
    Kind {
        name: "SMS",
        run: |cx, s| Box::pin(sms(cx, s)),
    },
    Kind {
        name: "stage 2",
        run: |cx, s| Box::pin(stage2(cx, s)),
    },
    Kind {
        name: "logout",
        run: |cx, s| Box::pin(logout(cx, s)),
    },
    Kind {
        name: "grants",
        run: |cx, s| Box::pin(grants(cx, s)),
    },
    Kind {
        name: "registration",
        run: |cx, s| Box::pin(registration(cx, s)),
    },
    Kind {
        name: "certificate challenge",
        run: |cx, s| Box::pin(challenge(cx, s)),
    },
];

/// A's certificate of the CA that [`options`] configured (read from the gateway's
/// config: the CA's directory holds `certs/` beside it).
fn certificate_of_a(gw: &Gateway) -> PathBuf {
    let config: Value = std::fs::read_to_string(&gw.config)
        .ok()
        .and_then(|t| serde_yaml::from_str(&t).ok())
        .unwrap_or_default();
    let root = PathBuf::from(config["ca_roots"][0]["root_file"].as_str().unwrap_or(""));
    root.parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new(""))
        .join("certs")
        .join(format!("{A_USCC}.pem"))
}

/// The shared state of a crowd against one gateway.
pub struct Crowd {
    pub tally: Tally,
    pub outbox: OutboxTail,
    people: Vec<Someone>,
    next_person: AtomicUsize,
    /// The burst round (the grants kind writes one set per person per round).
    pub round: AtomicUsize,
    /// Sequence of grant writes (the soak's, serialized per person).
    pub grant_seq: AtomicUsize,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Login SMS acknowledged per phone, by any call (kinds, helpers, checks).
    sms_acked: Mutex<BTreeMap<String, usize>>,
    /// The session (cookie, CSRF token) of A's legal rep 赵敏, who changes grants.
    pub admin: (String, String),
    /// Person ids of A's tax officers 李雷 and 孙悦, whose grants change.
    pub grantees: Vec<String>,
    /// A's certificate from the crowd's CA ([`options`]), for checking challenges.
    certificate: PathBuf,
}

impl Crowd {
    /// Logs A's legal rep in and finds the grantees.
    pub async fn new(gw: &Gateway, people: Vec<Someone>) -> Result<Crowd, String> {
        let mut cx = Crowd {
            tally: Tally::default(),
            outbox: OutboxTail::new(&gw.outbox),
            people,
            next_person: AtomicUsize::new(0),
            round: AtomicUsize::new(0),
            grant_seq: AtomicUsize::new(0),
            locks: Mutex::default(),
            sms_acked: Mutex::default(),
            admin: (String::new(), String::new()),
            grantees: Vec::new(),
            certificate: certificate_of_a(gw),
        };
        let mut admin = Browser::new(gw);
        cx.login(&mut admin, &OFFICERS_A[0]).await?;
        let users = cx
            .send(&admin, "GET", "/api/v1/enterprise/users", None)
            .await?;
        let users = accept("users", users, &[200])?.json();
        for name in ["李雷", "孙悦"] {
            let id = users
                .as_array()
                .and_then(|u| u.iter().find(|u| u["name"] == name))
                .and_then(|u| u["person_id"].as_str())
                .ok_or_else(|| format!("no {name} in {users}"))?;
            cx.grantees.push(id.to_string());
        }
        cx.admin = (
            admin.cookie.clone().unwrap_or_default(),
            admin.csrf.clone().unwrap_or_default(),
        );
        Ok(cx)
    }

    /// One request, answered within [`CALL_DEADLINE`] or a failure; counted.
    pub async fn send(
        &self,
        b: &Browser,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let body = body.map(Value::to_string);
        let started = Instant::now();
        let sent = tokio::time::timeout(
            CALL_DEADLINE,
            b.try_send(method, path, &[], body.as_deref()),
        )
        .await;
        let why = match sent {
            Ok(Ok(r)) => {
                let us = started.elapsed().as_micros() as u64;
                self.tally.latencies_us.lock().expect("tally").push(us);
                return Ok(r);
            }
            Ok(Err(e)) => format!("{method} {path}: connection error: {e}"),
            Err(_) => format!("{method} {path}: no answer within {CALL_DEADLINE:?}"),
        };
        self.tally
            .unanswered
            .lock()
            .expect("tally")
            .push(why.clone());
        Err(why)
    }

    /// The lock of one phone's codes.
    async fn lock(&self, phone: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("locks")
            .entry(phone.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// The next unused person of the fixture.
    fn next_person(&self) -> Result<Someone, String> {
        let i = self.next_person.fetch_add(1, Ordering::SeqCst);
        self.people
            .get(i)
            .copied()
            .ok_or_else(|| format!("the crowd's {} people are used up", self.people.len()))
    }

    fn count_sms(&self, phone: &str) {
        *self
            .sms_acked
            .lock()
            .expect("sms")
            .entry(phone.to_string())
            .or_default() += 1;
    }

    /// A fresh captcha and its answer.
    pub async fn captcha(&self, b: &Browser) -> Result<(String, String), String> {
        let r = self.send(b, "GET", "/api/v1/captcha", None).await?;
        let v = accept("captcha", r, &[200])?.json();
        let id = str_of(&v, "captcha_id")?;
        let answer = self
            .outbox
            .captcha(&id)
            .ok_or_else(|| format!("captcha {id} not in the outbox"))?;
        Ok((id, answer))
    }

    /// Stage 1 with a fresh captcha: the answer (login ticket, officers).
    pub async fn stage1(
        &self,
        b: &Browser,
        account: &str,
        password: &str,
    ) -> Result<Value, String> {
        let (id, answer) = self.captcha(b).await?;
        let body = json!({"account": account, "password": password, "captcha_id": id, "captcha_answer": answer});
        let r = self
            .send(b, "POST", "/api/v1/login/enterprise", Some(&body))
            .await?;
        Ok(accept("stage 1", r, &[200])?.json())
    }

    /// Sends the login code for `officer_id` to `phone` and reads it (under the phone's
    /// lock, so it is this call's code).
    pub async fn login_code(
        &self,
        b: &Browser,
        ticket: &str,
        officer_id: &str,
        phone: &str,
    ) -> Result<String, String> {
        let _held = self.lock(phone).await;
        let before = self.outbox.sms(phone, "login").len();
        let body = json!({"login_ticket": ticket, "officer_id": officer_id});
        let r = self
            .send(b, "POST", "/api/v1/login/officer/sms", Some(&body))
            .await?;
        accept("login SMS", r, &[200])?;
        self.count_sms(phone);
        let codes = self.outbox.sms(phone, "login");
        if codes.len() != before + 1 {
            return Err(format!(
                "one login SMS to {phone}: {} new in the outbox",
                codes.len() - before
            ));
        }
        Ok(codes[before].clone())
    }

    /// Stage 1 and the SMS code of `who`: (ticket, officer id, code).
    async fn ready_for_stage2(
        &self,
        b: &Browser,
        who: &Officer,
    ) -> Result<(String, String, String), String> {
        let s1 = self.stage1(b, who.account, who.password).await?;
        let ticket = str_of(&s1, "login_ticket")?;
        let officer = officer_with_phone(&s1, who.phone)?;
        let code = self.login_code(b, &ticket, &officer, who.phone).await?;
        Ok((ticket, officer, code))
    }

    /// The whole SMS login of `who`; keeps the session in `b`.
    pub async fn login(&self, b: &mut Browser, who: &Officer) -> Result<(), String> {
        let (ticket, officer, code) = self.ready_for_stage2(b, who).await?;
        let r = self
            .send(
                b,
                "POST",
                "/api/v1/login/officer",
                Some(&stage2_body(&ticket, &officer, &code)),
            )
            .await?;
        let r = accept("stage 2", r, &[200])?;
        b.keep_session(&r);
        Ok(())
    }

    /// `PUT` of a grant set for `person` in A, by the legal rep, on `b`.
    pub async fn put_grants(
        &self,
        b: &mut Browser,
        person: &str,
        modules: &BTreeSet<String>,
    ) -> Result<(Resp, Duration), String> {
        b.cookie = Some(self.admin.0.clone());
        b.csrf = Some(self.admin.1.clone());
        let path = format!("/api/v1/enterprise/users/{person}/grants");
        let started = Instant::now();
        let r = self
            .send(b, "PUT", &path, Some(&json!({ "modules": modules })))
            .await?;
        Ok((r, started.elapsed()))
    }

    /// The soak's grant write: one writer per person at a time, so the last acknowledged
    /// set is the one in force.
    pub async fn serialized_grant(&self, b: &mut Browser, k: usize) -> Result<Effect, String> {
        let person = self.grantees[k % self.grantees.len()].clone();
        let _held = self.lock(&person).await;
        let seq = self.grant_seq.fetch_add(1, Ordering::SeqCst);
        let modules = grant_set(seq);
        let (r, _) = self.put_grants(b, &person, &modules).await?;
        accept("grants", r, &[200])?;
        Ok(Effect::Grant {
            person,
            seq,
            modules,
        })
    }
}

/// `r` if its status is one of `ok`, else a failure naming `what`, the status and body.
pub fn accept(what: &str, r: Resp, ok: &[u16]) -> Result<Resp, String> {
    if ok.contains(&r.status) {
        return Ok(r);
    }
    Err(format!(
        "{what}: answered {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    ))
}

pub fn str_of(v: &Value, key: &str) -> Result<String, String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {key} in {v}"))
}

pub fn officer_with_phone(stage1: &Value, phone: &str) -> Result<String, String> {
    stage1["officers"]
        .as_array()
        .and_then(|os| os.iter().find(|o| o["phone_masked"] == masked(phone)))
        .and_then(|o| o["officer_id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("no officer with phone {phone} in the stage-1 answer"))
}

fn stage2_body(ticket: &str, officer: &str, code: &str) -> Value {
    json!({"login_ticket": ticket, "officer_id": officer, "method": "sms", "sms_code": code})
}

fn done(status: u16, took: Duration, effect: Effect) -> Result<Done, String> {
    Ok(Done {
        status,
        took,
        effect: Some(effect),
    })
}

// --- The kinds ------------------------------------------------------------------------
// Each accepts 200 (201 for a registration, 204 for a logout) only: every call has its
// own ticket, code and captcha, so no parallel twin can spend a secret it relies on;
// parallel calls share only the officer, the phone's quota, the enterprise and (grants)
// the person whose grants they set.

/// `GET /captcha`.
async fn captcha(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let (r, took) = s.fire(&cx, "GET", "/api/v1/captcha", None).await?;
    let r = accept("captcha", r, &[200])?;
    let id = str_of(&r.json(), "captcha_id")?;
    let answer = cx
        .outbox
        .captcha(&id)
        .ok_or_else(|| format!("captcha {id} not in the outbox"))?;
    done(r.status, took, Effect::Captcha { id, answer })
}

/// `POST /login/ca/challenge`, paid with a captcha fetched before.
async fn challenge(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let (id, answer) = cx.captcha(&s.b).await?;
    let body = json!({"captcha_id": id, "captcha_answer": answer});
    let (r, took) = s
        .fire(&cx, "POST", "/api/v1/login/ca/challenge", Some(&body))
        .await?;
    let r = accept("certificate challenge", r, &[200])?;
    let id = str_of(&r.json(), "challenge_id")?;
    done(r.status, took, Effect::Challenge { id })
}

/// `POST /realname/start` of a fixture person.
async fn realname_start(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let who = cx.people[s.i % cx.people.len()];
    let body = json!({"name": who.name, "id_number": who.id_number});
    let (r, took) = s
        .fire(&cx, "POST", "/api/v1/realname/start", Some(&body))
        .await?;
    let r = accept("real-name start", r, &[200])?;
    let id = str_of(&r.json(), "verification_id")?;
    done(r.status, took, Effect::Verification { id })
}

/// `POST /login/enterprise` (A, by USCC or TIN), with a captcha fetched before.
async fn stage1(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let who = OFFICERS_A[s.i % OFFICERS_A.len()];
    let (id, answer) = cx.captcha(&s.b).await?;
    let body = json!({"account": who.account, "password": who.password, "captcha_id": id, "captcha_answer": answer});
    let (r, took) = s
        .fire(&cx, "POST", "/api/v1/login/enterprise", Some(&body))
        .await?;
    let r = accept("stage 1", r, &[200])?;
    let v = r.json();
    let effect = Effect::Ticket {
        ticket: str_of(&v, "login_ticket")?,
        officer_id: officer_with_phone(&v, who.phone)?,
        phone: who.phone.to_string(),
    };
    done(r.status, took, effect)
}

/// `POST /login/officer/sms` on a ticket of its own; a quarter of the calls per officer.
async fn sms(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let who = OFFICERS_A[s.i % OFFICERS_A.len()];
    let s1 = cx.stage1(&s.b, who.account, who.password).await?;
    let body = json!({"login_ticket": str_of(&s1, "login_ticket")?,
                      "officer_id": officer_with_phone(&s1, who.phone)?});
    let (r, took) = s
        .fire(&cx, "POST", "/api/v1/login/officer/sms", Some(&body))
        .await?;
    let r = accept("SMS", r, &[200])?;
    cx.count_sms(who.phone);
    let phone = who.phone.to_string();
    done(r.status, took, Effect::Sms { phone })
}

/// `POST /login/officer` by SMS code.
async fn stage2(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let who = OFFICERS_A[s.i % OFFICERS_A.len()];
    let (ticket, officer, code) = cx.ready_for_stage2(&s.b, &who).await?;
    let body = stage2_body(&ticket, &officer, &code);
    let (r, took) = s
        .fire(&cx, "POST", "/api/v1/login/officer", Some(&body))
        .await?;
    let r = accept("stage 2", r, &[200])?;
    s.b.keep_session(&r);
    let cookie = s.b.cookie.clone().unwrap_or_default();
    let name = who.name.to_string();
    done(r.status, took, Effect::Session { cookie, name })
}

/// `POST /logout` of a session of its own.
async fn logout(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let who = OFFICERS_A[s.i % OFFICERS_A.len()];
    cx.login(&mut s.b, &who).await?;
    let (r, took) = s.fire(&cx, "POST", "/api/v1/logout", None).await?;
    let r = accept("logout", r, &[204])?;
    let cookie = s.b.cookie.clone().unwrap_or_default();
    done(r.status, took, Effect::LoggedOut { cookie })
}

/// `PUT /enterprise/users/{id}/grants` by A's legal rep: the calls alternate between the
/// two grantees, and every call of a round to one person sends the same set, so the last
/// acknowledged set of each person is that of the last round.
async fn grants(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let round = cx.round.load(Ordering::SeqCst);
    let k = s.i % cx.grantees.len();
    let person = cx.grantees[k].clone();
    let modules = grant_set(round + k);
    s.arrive().await;
    let (r, took) = cx.put_grants(&mut s.b, &person, &modules).await?;
    let r = accept("grants", r, &[200])?;
    let effect = Effect::Grant {
        person,
        seq: round,
        modules,
    };
    done(r.status, took, effect)
}

/// `POST /register/enterprise-user/confirm`: a new person binds himself to B, approved by
/// its legal rep 周杰 (SMS code, real-name verification and the first step before).
async fn registration(cx: Arc<Crowd>, s: &mut Slot) -> Result<Done, String> {
    let who = cx.next_person()?;
    let b = &s.b;
    let (captcha_id, answer) = cx.captcha(b).await?;
    let body = json!({"phone": who.phone, "captcha_id": captcha_id, "captcha_answer": answer});
    let r = cx
        .send(b, "POST", "/api/v1/register/sms", Some(&body))
        .await?;
    accept("registration SMS", r, &[200])?;
    let code = cx
        .outbox
        .sms(who.phone, "register")
        .pop()
        .ok_or_else(|| format!("no registration SMS to {}", who.phone))?;
    let vid = passed_verification(&cx, b, who).await?;
    let form = enterprise_user_form(who, &code, PASSWORD, &vid);
    let r = cx
        .send(
            b,
            "POST",
            "/api/v1/register/enterprise-user/start",
            Some(&form),
        )
        .await?;
    let ticket = str_of(
        &accept("registration start", r, &[200])?.json(),
        "registration_ticket",
    )?;
    let path =
        format!("/api/v1/register/enterprise-user/authorizers?uscc={B_USCC}&ticket={ticket}");
    let r = cx.send(b, "GET", &path, None).await?;
    let list = accept("authorizers", r, &[200])?.json();
    let authorizer = list["authorizers"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["phone_masked"] == masked(ZHOU_PHONE)))
        .and_then(|r| r["authorizer_id"].as_str())
        .ok_or_else(|| format!("周杰 not among the authorizers: {list}"))?
        .to_string();
    let approval = {
        let _held = cx.lock(ZHOU_PHONE).await;
        let before = cx.outbox.sms(ZHOU_PHONE, "authorize").len();
        let body =
            json!({"registration_ticket": ticket, "uscc": B_USCC, "authorizer_id": authorizer});
        let r = cx
            .send(
                b,
                "POST",
                "/api/v1/register/enterprise-user/authorizer-sms",
                Some(&body),
            )
            .await?;
        accept("authorizer SMS", r, &[200])?;
        let codes = cx.outbox.sms(ZHOU_PHONE, "authorize");
        codes
            .get(before)
            .filter(|_| codes.len() == before + 1)
            .cloned()
            .ok_or_else(|| "one approval code to 周杰".to_string())?
    };
    let body = json!({"registration_ticket": ticket, "uscc": B_USCC,
                      "authorizer_id": authorizer, "sms_code": approval});
    let (r, took) = s
        .fire(
            &cx,
            "POST",
            "/api/v1/register/enterprise-user/confirm",
            Some(&body),
        )
        .await?;
    let r = accept("registration", r, &[201])?;
    done(r.status, took, Effect::Registered { who })
}

/// A real-name verification of `who`, polled until passed.
async fn passed_verification(cx: &Crowd, b: &Browser, who: Someone) -> Result<String, String> {
    let body = json!({"name": who.name, "id_number": who.id_number});
    let r = cx
        .send(b, "POST", "/api/v1/realname/start", Some(&body))
        .await?;
    let id = str_of(
        &accept("real-name start", r, &[200])?.json(),
        "verification_id",
    )?;
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let r = cx
            .send(b, "GET", &format!("/api/v1/realname/{id}"), None)
            .await?;
        match accept("real-name status", r, &[200])?.json()["status"].as_str() {
            Some("passed") => return Ok(id),
            Some("pending") => tokio::time::sleep(Duration::from_millis(20)).await,
            other => return Err(format!("real-name verification of {}: {other:?}", who.name)),
        }
    }
    Err(format!(
        "real-name verification of {} still pending",
        who.name
    ))
}

/// What one burst gave: the kind's acknowledged calls and its failures.
pub struct Burst {
    pub done: Vec<Done>,
    pub failed: Vec<String>,
}

/// `n` calls of `kind` at once (each prepared first, then released together).
pub async fn burst(gw: &Gateway, cx: &Arc<Crowd>, kind: &Kind, n: usize) -> Burst {
    let go = Arc::new(Barrier::new(n));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let mut slot = Slot {
            b: Browser::new(gw),
            i,
            go: Some(go.clone()),
        };
        let (cx, run) = (cx.clone(), kind.run);
        set.spawn(async move {
            let result = run(cx, &mut slot).await;
            // A slot that failed before its call still releases the others.
            slot.arrive().await;
            result
        });
    }
    let mut out = Burst {
        done: Vec::new(),
        failed: Vec::new(),
    };
    let all = async {
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(d)) => out.done.push(d),
                Ok(Err(e)) => out.failed.push(e),
                Err(e) => out.failed.push(format!("panicked: {e}")),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .is_err()
    {
        out.failed
            .push("the burst did not end within 120 s".to_string());
    }
    out
}

/// What [`check`] found: how many checks, and every effect not found.
#[derive(Default)]
pub struct Checked {
    pub checks: usize,
    pub lost: Vec<String>,
}

/// Checks every effect against the gateway, 64 at a time; captchas only `after_restart`.
pub async fn check(
    gw: &Gateway,
    cx: &Arc<Crowd>,
    effects: &[Effect],
    after_restart: bool,
) -> Checked {
    let mut out = Checked::default();
    let mut queues: Vec<Vec<Effect>> = vec![Vec::new(); BURST];
    let mut grants: BTreeMap<String, (usize, BTreeSet<String>)> = BTreeMap::new();
    for (i, e) in effects.iter().enumerate() {
        match e {
            Effect::Grant {
                person,
                seq,
                modules,
            } => {
                let last = grants
                    .entry(person.clone())
                    .or_insert((*seq, modules.clone()));
                if *seq >= last.0 {
                    *last = (*seq, modules.clone());
                }
            }
            Effect::Sms { .. } => {}
            Effect::Captcha { .. } | Effect::Challenge { .. } if !after_restart => {}
            _ => queues[i % BURST].push(e.clone()),
        }
    }
    let mut set = tokio::task::JoinSet::new();
    for queue in queues {
        let (cx, b) = (cx.clone(), Browser::new(gw));
        set.spawn(async move {
            let mut lost = Vec::new();
            let checks = queue.len();
            for e in queue {
                if let Err(why) = check_one(&cx, &b, &e).await {
                    lost.push(format!("{}: {why}", e.label()));
                }
            }
            (checks, lost)
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((checks, lost)) => {
                out.checks += checks;
                out.lost.extend(lost);
            }
            Err(e) => out.lost.push(format!("a check panicked: {e}")),
        }
    }
    check_grants(gw, cx, &grants, &mut out).await;
    check_sms(cx, effects, &mut out);
    out
}

async fn check_one(cx: &Crowd, b: &Browser, e: &Effect) -> Result<(), String> {
    let status_of = |r: Resp| r.status;
    match e {
        Effect::Captcha { id, answer } => {
            let body = json!({"account": A_USCC, "password": A_PASSWORD,
                              "captcha_id": id, "captcha_answer": answer});
            let r = cx
                .send(b, "POST", "/api/v1/login/enterprise", Some(&body))
                .await?;
            accept("answered", r, &[200])?;
            let again = cx
                .send(b, "POST", "/api/v1/login/enterprise", Some(&body))
                .await?;
            let again = accept("answered again", again, &[400])?;
            match again.code().as_str() {
                "CAPTCHA_INVALID" => Ok(()),
                other => Err(format!("answered again: {other}")),
            }
        }
        Effect::Challenge { id } => {
            let certificate = std::fs::read_to_string(&cx.certificate)
                .map_err(|e| format!("{}: {e}", cx.certificate.display()))?;
            let body = json!({"challenge_id": id, "certificate": certificate,
                              "signature": "A".repeat(88)});
            let r = cx.send(b, "POST", "/api/v1/login/ca", Some(&body)).await?;
            let r = accept("a login on it", r, &[401])?;
            match r.code().as_str() {
                "SIGNATURE_INVALID" => Ok(()),
                other => Err(format!("a login on it: {other}")),
            }
        }
        Effect::Verification { id } => {
            let r = cx
                .send(b, "GET", &format!("/api/v1/realname/{id}"), None)
                .await?;
            let v = accept("status", r, &[200])?.json();
            match v["status"].as_str() {
                Some("pending" | "passed") => Ok(()),
                other => Err(format!("status {other:?}")),
            }
        }
        Effect::Ticket {
            ticket,
            officer_id,
            phone,
        } => {
            let body = json!({"login_ticket": ticket, "officer_id": officer_id});
            let r = cx
                .send(b, "POST", "/api/v1/login/officer/sms", Some(&body))
                .await?;
            accept("an SMS on the ticket", r, &[200])?;
            cx.count_sms(phone);
            Ok(())
        }
        Effect::Session { cookie, name } => {
            let r = session_of(cx, b, cookie).await?;
            let v = accept("GET /session", r, &[200])?.json();
            if v["officer"]["name"] == name.as_str() {
                Ok(())
            } else {
                Err(format!("the session of {name} answers as {}", v["officer"]))
            }
        }
        Effect::LoggedOut { cookie } => {
            let status = status_of(session_of(cx, b, cookie).await?);
            if status == 401 {
                Ok(())
            } else {
                Err(format!("a logged-out session answers {status}"))
            }
        }
        Effect::Registered { who } => {
            let s1 = cx.stage1(b, B_USCC, B_PASSWORD).await?;
            let body = json!({"login_ticket": str_of(&s1, "login_ticket")?,
                              "officer_id": officer_with_phone(&s1, who.phone)?,
                              "method": "password", "password": PASSWORD});
            let r = cx
                .send(b, "POST", "/api/v1/login/officer", Some(&body))
                .await?;
            accept(&format!("{}'s login", who.name), r, &[200]).map(|_| ())
        }
        Effect::Grant { .. } | Effect::Sms { .. } => Ok(()),
    }
}

/// `GET /session` with `cookie` (on `b`'s connections).
async fn session_of(cx: &Crowd, b: &Browser, cookie: &str) -> Result<Resp, String> {
    let mut probe = b.sibling();
    probe.cookie = Some(cookie.to_string());
    cx.send(&probe, "GET", "/api/v1/session", None).await
}

/// The last acknowledged set of each grantee is in force.
async fn check_grants(
    gw: &Gateway,
    cx: &Crowd,
    last: &BTreeMap<String, (usize, BTreeSet<String>)>,
    out: &mut Checked,
) {
    if last.is_empty() {
        return;
    }
    let mut b = Browser::new(gw);
    b.cookie = Some(cx.admin.0.clone());
    let users = match cx.send(&b, "GET", "/api/v1/enterprise/users", None).await {
        Ok(r) => match accept("users", r, &[200]) {
            Ok(r) => r.json(),
            Err(e) => return out.lost.push(format!("grants: {e}")),
        },
        Err(e) => return out.lost.push(format!("grants: {e}")),
    };
    for (person, (seq, modules)) in last {
        out.checks += 1;
        let in_force: Option<BTreeSet<String>> = users
            .as_array()
            .and_then(|u| u.iter().find(|u| u["person_id"] == person.as_str()))
            .and_then(|u| serde_json::from_value(u["grants"].clone()).ok());
        if in_force.as_ref() != Some(modules) {
            out.lost.push(format!(
                "grant: {person} has {in_force:?}, the last acknowledged (#{seq}) was {modules:?}"
            ));
        }
    }
}

/// Every acknowledged login SMS is in the outbox: per phone, as many login codes as
/// acknowledged sends (no fewer: lost; no more: sent but refused).
fn check_sms(cx: &Crowd, effects: &[Effect], out: &mut Checked) {
    if !effects.iter().any(|e| matches!(e, Effect::Sms { .. })) {
        return;
    }
    let acked = cx.sms_acked.lock().expect("sms").clone();
    for (phone, n) in acked {
        out.checks += n;
        let sent = cx.outbox.sms(&phone, "login").len();
        if sent != n {
            out.lost.push(format!(
                "SMS: {n} login codes to {phone} acknowledged, {sent} in the outbox"
            ));
        }
    }
}

/// Figures of one kind's calls.
#[derive(Default)]
pub struct KindFigures {
    pub calls: usize,
    pub statuses: BTreeMap<u16, usize>,
    latencies_us: Vec<u64>,
}

impl KindFigures {
    pub fn add(&mut self, d: &Done) {
        self.calls += 1;
        *self.statuses.entry(d.status).or_default() += 1;
        self.latencies_us.push(d.took.as_micros() as u64);
    }

    /// `N calls (200×N), p50 X ms, p99 Y ms, max Z ms`.
    pub fn line(&self) -> String {
        let mut l = self.latencies_us.clone();
        l.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect();
        format!(
            "{} calls ({}), p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.calls,
            statuses.join(", "),
            ms(percentile(&l, 50)),
            ms(percentile(&l, 99)),
            ms(l.last().copied().unwrap_or(0))
        )
    }
}

/// The resident set (KiB) and open file descriptors of process `pid`.
pub fn process_stats(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    (rss, fds)
}
