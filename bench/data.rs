//! Shared by the bench programs (included with `#[path]`): the province-sized store
//! generator, the sessions and login tickets the load tests use, and the `Config` the
//! benches build in code.
//!
//! The store is written straight into a sled data dir with the crate's own types
//! (`taxgate::store::{sled_store, Store, Tree, records, keys}`), so the gateway reads it
//! exactly as it reads an imported registry. Everything is derived from one seed: the
//! same seed and sizes give the same enterprises, persons, officers, roles, sources and
//! grants (only the salt of the two argon2 PHC strings differs, as `Hasher` draws it from
//! the OS).
//!
//! Layout of a bench data dir `BASE`: `BASE/store` (sled), `BASE/manifest.json` (sizes,
//! seed, and samples of officers for the benchmarks: permitted, denied, password-capable),
//! written last, so a dir without a manifest is incomplete and is generated again.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use taxgate::config::{
    Argon2Params, CaptchaProvider, Config, Limits, Mode, Route, SecretKey, SmsProvider, StoreKind,
    TrustedProxies,
};
use taxgate::crypto::password::Hasher;
use taxgate::store::records::{Enterprise, LoginTicket, Officer, Person, Role, Session};
use taxgate::store::{codec, keys, sled_store, Store, Tree, Write};

/// The secret key of every bench gateway (sessions and tickets are hashed with it).
pub const SECRET_HEX: &str = "62656e63686d61726b206b6579206f6620746178676174652062656e63682121";
/// The enterprise password of every generated enterprise.
pub const ENTERPRISE_PASSWORD: &str = "Bench#Enterprise-2026";
/// The personal password of every generated person who has one.
pub const PERSON_PASSWORD: &str = "Bench#Person-2026";
/// The User-Agent the load generator sends; login tickets are bound to it.
pub const USER_AGENT: &str = "taxgate-bench";
/// The module the benchmarks request (增值税申报, under 我要办税).
pub const MODULE: &str = "wybs.sfsb.zzs";
/// Samples of each kind kept in the manifest.
const SAMPLES: usize = 20_000;

pub fn secret() -> Vec<u8> {
    hex::decode(SECRET_HEX).unwrap_or_default()
}

pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A `Config` for a bench gateway on `data_dir` (development mode, outbox providers,
/// production argon2 parameters, per-address limits lifted so one load generator on
/// 127.0.0.1 is not throttled).
pub fn config(data_dir: &Path, routes: Vec<Route>) -> Config {
    let repo = repo_dir();
    let outbox = data_dir.join("outbox.jsonl");
    Config {
        mode: Mode::Development,
        listen: "127.0.0.1:0".into(),
        admin_listen: Some("127.0.0.1:0".into()),
        data_dir: data_dir.to_path_buf(),
        secret_key: SecretKey(secret()),
        cookie_secure: false,
        tls: None,
        trusted_proxies: TrustedProxies::default(),
        upstream_ca_file: None,
        ca_roots: Vec::new(),
        threads: 2,
        work_stealing: false,
        shutdown_grace: Duration::from_secs(1),
        // `TAXGATE_BENCH_STORE_URL`: the same store copied into PostgreSQL (bench/run).
        store: match std::env::var("TAXGATE_BENCH_STORE_URL") {
            Ok(url) => StoreKind::Postgres {
                url: taxgate::config::PostgresUrl(url),
                pool_size: 8,
            },
            Err(_) => StoreKind::Sled {
                cache_bytes: std::env::var("TAXGATE_BENCH_SLED_MIB")
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(64)
                    << 20,
            },
        },
        session_cache_entries: std::env::var("TAXGATE_BENCH_SESSION_CACHE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50_000),
        background_nice: 10,
        test_clock: false,
        schema: repo.join("schema/taxgate.cedarschema"),
        policies: repo.join("policies"),
        modules: repo.join("config/modules.yaml"),
        routes,
        captcha: CaptchaProvider::Outbox(outbox.clone()),
        sms: SmsProvider::Outbox(outbox),
        realname: None,
        limits: Limits {
            ip_requests_per_minute: 100_000_000,
            ..Limits::default()
        },
        argon2: production_argon2(),
    }
}

pub fn production_argon2() -> Argon2Params {
    Argon2Params {
        memory_kib: Argon2Params::PRODUCTION_FLOOR_KIB,
        iterations: 2,
        parallelism: 1,
        concurrency: 1,
        nice: 0,
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Params {
    pub enterprises: usize,
    pub officers: usize,
    pub seed: u64,
    /// Bumped when the generator changes what a seed produces.
    #[serde(default)]
    pub generator: u32,
}

/// The current generator version (see [`Params::generator`]).
pub const GENERATOR: u32 = 2;

/// One officer named by the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfficerRef {
    pub enterprise: String,
    pub person: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub params: Params,
    pub persons: usize,
    pub officers: usize,
    /// Officers by kind, for the report.
    pub counts: BTreeMap<String, usize>,
    pub generate_seconds: f64,
    /// Bound officers that Cedar permits on [`MODULE`].
    pub allow: Vec<OfficerRef>,
    /// Bound officers that Cedar denies on [`MODULE`] (customized grants elsewhere).
    pub deny: Vec<OfficerRef>,
    /// Bound officers with a personal password (`added` / `self_registered`).
    pub password: Vec<OfficerRef>,
}

pub fn store_dir(base: &Path) -> PathBuf {
    base.join("store")
}

pub fn read_manifest(base: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(base.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// splitmix64: a bijection, so distinct indexes give distinct ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const REGIONS: &[&str] = &[
    "530102", "530103", "530111", "530112", "530113", "530114", "530181", "530302", "530402",
    "532301", "532501", "532801",
];
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "欧阳", "段",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "滇", "池", "云", "海",
];
/// Customized grant sets given to some added / self-registered officers: none of them
/// covers [`MODULE`], so these officers are the "denied" sample.
const CUSTOM_GRANTS: &[&[&str]] = &[
    &["wycx"],
    &["wycx.sbxx", "wycx.jkxx"],
    &["wybs.fpsy", "wycx"],
    &["hdzx", "gzfw"],
    &["wybs.zhxxbg", "wybs.sfsb.qysds", "wdxx"],
];
/// Customized grant sets that do cover [`MODULE`].
const CUSTOM_GRANTS_ALLOW: &[&[&str]] = &[&["wybs.sfsb"], &["wybs.sfsb.zzs", "wycx"], &["wybs"]];

fn uscc(i: u64, rng: &mut StdRng) -> String {
    let mut s = String::with_capacity(18);
    s.push_str("91");
    s.push_str(REGIONS[rng.gen_range(0..REGIONS.len())]);
    // 9 characters of base-31 digits of the index: unique by construction.
    let mut digits = [b'0'; 9];
    let mut n = i;
    for d in digits.iter_mut().rev() {
        *d = USCC_ALPHABET[(n % 31) as usize];
        n /= 31;
    }
    s.push_str(std::str::from_utf8(&digits).unwrap_or("000000000"));
    let c = taxgate::identity::uscc::check_char(&s).unwrap_or('0');
    s.push(c);
    s
}

/// Permutes `g` over `0..n` (n coprime with the multiplier): distinct in, distinct out.
fn permute(g: u64, n: u64) -> u64 {
    ((g % n) as u128 * 2_654_435_761u128 % n as u128) as u64
}

/// A valid 居民身份证号 (GB 11643-1999) for global person index `g`, unique per index.
fn id_number(g: u64) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    const DAYS: u64 = 55 * 12 * 28;
    let n = REGIONS.len() as u64 * DAYS * 1000;
    let h = permute(g, n);
    let region = REGIONS[(h % REGIONS.len() as u64) as usize];
    let rest = h / REGIONS.len() as u64;
    let (day, seq) = (rest % DAYS, rest / DAYS);
    let (year, month, dom) = (1950 + day / (12 * 28), 1 + (day / 28) % 12, 1 + day % 28);
    let first = format!("{region}{year:04}{month:02}{dom:02}{seq:03}");
    let sum: u32 = first
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let mut s = first;
    s.push(char::from(C[(sum % 11) as usize]));
    s
}

/// A mobile number (`^1[3-9]\d{9}$`) for global person index `g`, unique per index.
fn phone(g: u64) -> String {
    let h = permute(g, 7_000_000_000);
    format!("1{}{:09}", 3 + h / 1_000_000_000, h % 1_000_000_000)
}

fn name(rng: &mut StdRng) -> String {
    let mut n = SURNAMES[rng.gen_range(0..SURNAMES.len())].to_string();
    for _ in 0..rng.gen_range(1..=2) {
        n.push_str(GIVEN[rng.gen_range(0..GIVEN.len())]);
    }
    n
}

/// Runs the store's async calls of a synchronous bench function on a runtime of its own.
pub fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(work)
}

/// Opens the sled store of a bench data dir (generator only: the benchmarks open it
/// through `App::open` and [`config`]).
fn open_store(base: &Path) -> Result<Store, String> {
    sled_store::open(&store_dir(base), 64 << 20).map_err(|e| e.to_string())
}

/// Applies the generator's buffered writes as one atomic batch (`Store::apply`, one sled
/// transaction over the trees it touches) and empties the buffer; called every few
/// thousand enterprises. An empty buffer is skipped.
async fn apply(store: &Store, writes: &mut Vec<Write>) -> Result<(), String> {
    if writes.is_empty() {
        return Ok(());
    }
    store
        .apply(std::mem::take(writes))
        .await
        .map_err(|e| e.to_string())
}

fn put(writes: &mut Vec<Write>, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
    writes.push((tree, key.into(), Some(value.into())));
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    codec::encode(v).unwrap_or_default()
}

/// Reservoir sampling of up to `cap` officers, deterministic with its own rng.
struct Reservoir {
    seen: usize,
    cap: usize,
    items: Vec<OfficerRef>,
    rng: StdRng,
}

impl Reservoir {
    fn new(seed: u64, cap: usize) -> Reservoir {
        Reservoir {
            seen: 0,
            cap,
            items: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn offer(&mut self, enterprise: &str, person: &str) {
        self.seen += 1;
        let r = OfficerRef {
            enterprise: enterprise.to_string(),
            person: person.to_string(),
        };
        if self.items.len() < self.cap {
            self.items.push(r);
        } else {
            let j = self.rng.gen_range(0..self.seen);
            if j < self.cap {
                self.items[j] = r;
            }
        }
    }
}

/// Enterprises written by one generator process. sled keeps what a process wrote in
/// memory (about 3 GB per 100k officers), so the store is written in chunks, each by a
/// child process (`TAXGATE_BENCH_CHUNK`), to keep the generator's RSS bounded.
const CHUNK_ENTERPRISES: usize = 20_000;
/// Global person index = chunk × this + index within the chunk.
const PERSONS_PER_CHUNK: u64 = 2_000_000;
const CHUNK_ENV: &str = "TAXGATE_BENCH_CHUNK";

/// What the parent decides once and every chunk reads.
#[derive(Serialize, Deserialize)]
struct Plan {
    params: Params,
    now: i64,
    enterprise_hash: String,
    person_hash: String,
    authorities: Vec<String>,
    /// Officers per enterprise.
    counts: Vec<u8>,
}

#[derive(Serialize, Deserialize, Default)]
struct ChunkResult {
    persons: usize,
    counts: BTreeMap<String, usize>,
    allow: Vec<OfficerRef>,
    deny: Vec<OfficerRef>,
    password: Vec<OfficerRef>,
}

/// Call first in `main` of every bench program that may generate a store: when this
/// process is a generator chunk, it writes its chunk and exits.
pub fn run_chunk_if_asked() {
    let Ok(v) = std::env::var(CHUNK_ENV) else {
        return;
    };
    let result = v
        .split_once('|')
        .ok_or_else(|| "bad chunk spec".to_string())
        .and_then(|(k, base)| {
            let k: usize = k.parse().map_err(|_| "bad chunk index".to_string())?;
            generate_chunk(Path::new(base), k)
        });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("bench generator chunk {v}: {e}");
            std::process::exit(1);
        }
    }
}

fn chunks_of(p: &Params) -> usize {
    p.enterprises.max(1).div_ceil(CHUNK_ENTERPRISES)
}

/// Generates the store under `base` (removing whatever was there).
pub fn generate(base: &Path, p: Params) -> Result<Manifest, String> {
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(base);
    std::fs::create_dir_all(base).map_err(|e| e.to_string())?;
    let hasher = Hasher::new(&production_argon2()).map_err(|e| e.to_string())?;
    let now = taxgate::clock::now();
    let mut rng = StdRng::seed_from_u64(p.seed);
    // Officers per enterprise: 2..=8 at random, then nudged until they add up exactly.
    let n = p.enterprises.max(1);
    let mut counts: Vec<u8> = (0..n).map(|_| rng.gen_range(2..=8)).collect();
    let mut total: usize = counts.iter().map(|&c| usize::from(c)).sum();
    while total != p.officers {
        let i = rng.gen_range(0..n);
        if total < p.officers && counts[i] < 14 {
            counts[i] += 1;
            total += 1;
        } else if total > p.officers && counts[i] > 1 {
            counts[i] -= 1;
            total -= 1;
        }
    }
    let plan = Plan {
        params: p,
        now,
        enterprise_hash: hasher
            .hash_sync(ENTERPRISE_PASSWORD)
            .map_err(|e| e.to_string())?,
        person_hash: hasher
            .hash_sync(PERSON_PASSWORD)
            .map_err(|e| e.to_string())?,
        authorities: (0..16).map(|i| format!("1530100{i:04}")).collect(),
        counts,
    };
    {
        // Closed (dropped) before the chunks open it: sled lets one process open a store.
        let store = open_store(base)?;
        block_on(async {
            for (i, code) in plan.authorities.iter().enumerate() {
                let rec = taxgate::store::records::TaxAuthority {
                    code: code.clone(),
                    name: format!("国家税务总局昆明市第{}税务分局", i + 1),
                };
                store
                    .put(Tree::TaxAuthorities, code, &rec)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            store.flush().await.map_err(|e| e.to_string())
        })?;
    }
    let plan_text = serde_json::to_string(&plan).map_err(|e| e.to_string())?;
    std::fs::write(base.join("plan.json"), plan_text).map_err(|e| e.to_string())?;

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut merged = ChunkResult::default();
    for k in 0..chunks_of(&p) {
        let status = std::process::Command::new(&exe)
            .env(CHUNK_ENV, format!("{k}|{}", base.display()))
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("generator chunk {k} failed"));
        }
        let path = base.join(format!("chunk-{k}.json"));
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let r: ChunkResult = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(path);
        merged.persons += r.persons;
        for (kind, c) in r.counts {
            *merged.counts.entry(kind).or_default() += c;
        }
        merged.allow.extend(r.allow);
        merged.deny.extend(r.deny);
        merged.password.extend(r.password);
    }
    {
        let store = open_store(base)?;
        block_on(async {
            store
                .put(Tree::Meta, "registry_imported_at", &now)
                .await
                .map_err(|e| e.to_string())?;
            store.flush().await.map_err(|e| e.to_string())
        })?;
    }
    let manifest = Manifest {
        params: p,
        persons: merged.persons,
        officers: total,
        counts: merged.counts,
        generate_seconds: started.elapsed().as_secs_f64(),
        allow: merged.allow,
        deny: merged.deny,
        password: merged.password,
    };
    let text = serde_json::to_string(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(base.join("manifest.json"), text).map_err(|e| e.to_string())?;
    Ok(manifest)
}

/// Writes the enterprises of chunk `k` of the plan in `base`.
fn generate_chunk(base: &Path, k: usize) -> Result<(), String> {
    let store = open_store(base)?;
    block_on(write_chunk(&store, base, k))
}

async fn write_chunk(store: &Store, base: &Path, k: usize) -> Result<(), String> {
    let text = std::fs::read_to_string(base.join("plan.json")).map_err(|e| e.to_string())?;
    let plan: Plan = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let p = plan.params;
    let now = plan.now;
    let mut rng = StdRng::seed_from_u64(mix(p.seed ^ mix(k as u64 + 1)));
    let chunks = chunks_of(&p);
    let cap = SAMPLES.div_ceil(chunks);
    let range = k * CHUNK_ENTERPRISES..((k + 1) * CHUNK_ENTERPRISES).min(plan.counts.len());
    let chunk_officers: usize = plan.counts[range.clone()]
        .iter()
        .map(|&c| usize::from(c))
        .sum();

    // Agents (税务代理人员) come from a pool shared by the chunk's enterprises: each
    // serves several enterprises.
    let agent_pool = (chunk_officers / 25).max(4);
    let mut local_person: u64 = 0;
    let mut r = ChunkResult::default();
    let mut allow = Reservoir::new(mix(p.seed ^ 1 ^ (k as u64) << 8), cap);
    let mut deny = Reservoir::new(mix(p.seed ^ 2 ^ (k as u64) << 8), cap);
    let mut password = Reservoir::new(mix(p.seed ^ 3 ^ (k as u64) << 8), cap);
    let mut b: Vec<Write> = Vec::new();
    let person_hash = plan.person_hash.clone();
    let authorities = plan.authorities.clone();

    let mut new_person = |rng: &mut StdRng, b: &mut Vec<Write>, with_password: bool| {
        let g = k as u64 * PERSONS_PER_CHUNK + local_person;
        local_person += 1;
        let id = format!("{:016x}", mix(p.seed.wrapping_mul(1_000_003) ^ g));
        let idn = id_number(g);
        let ph = phone(g);
        let person = Person {
            id: id.clone(),
            name: name(rng),
            id_number: idn.clone(),
            phone: ph.clone(),
            password_hash: with_password.then(|| person_hash.clone()),
            realname_verified: with_password,
            registered_at: with_password.then_some(now - rng.gen_range(0..86_400 * 900)),
            tax_authority: with_password
                .then(|| authorities[rng.gen_range(0..authorities.len())].clone()),
        };
        put(b, Tree::Persons, id.as_bytes(), enc(&person));
        put(b, Tree::PersonsByIdNumber, idn.as_bytes(), id.as_bytes());
        if with_password {
            put(b, Tree::PersonsByPhone, ph.as_bytes(), id.as_bytes());
        }
        (id, ph)
    };
    // The pool's persons are created on first use.
    let mut pool: Vec<Option<(String, String)>> = vec![None; agent_pool];

    for i in range {
        let count = usize::from(plan.counts[i]);
        let key = uscc(i as u64, &mut rng);
        let enterprise = Enterprise {
            key: key.clone(),
            uscc: Some(key.clone()),
            tin: None,
            name: format!(
                "云南{}{}有限公司",
                name(&mut rng),
                ["科技", "商贸", "建设", "物流"][i % 4]
            ),
            tax_authority: authorities[i % authorities.len()].clone(),
            password_hash: plan.enterprise_hash.clone(),
            password_epoch: 0,
        };
        put(&mut b, Tree::Enterprises, key.as_bytes(), enc(&enterprise));
        put(&mut b, Tree::Accounts, key.as_bytes(), key.as_bytes());

        let mut here: BTreeSet<String> = BTreeSet::new();
        let legal_rep_is_finance = count == 1 || rng.gen_bool(0.25);
        for slot in 0..count {
            let mut o;
            let kind: &str;
            if slot == 0 {
                let pw = rng.gen_bool(0.3);
                let (id, ph) = new_person(&mut rng, &mut b, pw);
                o = Officer::new(&key, &id);
                o.registry_roles.insert(Role::LegalRep);
                if legal_rep_is_finance {
                    o.registry_roles.insert(Role::FinanceOfficer);
                }
                o.registry_phone = Some(ph);
                kind = "registry_legal_rep";
            } else if slot == 1 && !legal_rep_is_finance {
                let pw = rng.gen_bool(0.3);
                let (id, ph) = new_person(&mut rng, &mut b, pw);
                o = Officer::new(&key, &id);
                o.registry_roles.insert(Role::FinanceOfficer);
                o.registry_phone = Some(ph);
                kind = "registry_finance_officer";
            } else {
                let roll: f64 = rng.gen();
                if roll < 0.15 {
                    // An agent from the pool (not twice in one enterprise).
                    let mut j = rng.gen_range(0..agent_pool);
                    while pool[j]
                        .as_ref()
                        .is_some_and(|(id, _)| here.contains(id.as_str()))
                    {
                        j = rng.gen_range(0..agent_pool);
                    }
                    if pool[j].is_none() {
                        pool[j] = Some(new_person(&mut rng, &mut b, false));
                    }
                    let (id, ph) = pool[j].clone().unwrap_or_default();
                    o = Officer::new(&key, &id);
                    o.registry_roles.insert(Role::Agent);
                    o.registry_phone = Some(ph);
                    kind = "registry_agent";
                } else if roll < 0.45 {
                    let (id, ph) = new_person(&mut rng, &mut b, false);
                    o = Officer::new(&key, &id);
                    o.registry_roles.insert(Role::TaxOfficer);
                    o.registry_phone = Some(ph);
                    kind = "registry_tax_officer";
                } else {
                    // Bound by 企业用户注册 or 添加用户: has a personal password.
                    let (id, _) = new_person(&mut rng, &mut b, true);
                    o = Officer::new(&key, &id);
                    if rng.gen_bool(0.5) {
                        o.added = true;
                    } else {
                        o.self_registered = true;
                    }
                    let g: f64 = rng.gen();
                    kind = if g < 0.05 {
                        // Every permission revoked: a tombstone (AM4).
                        o.grants = Some(BTreeSet::new());
                        o.unbound_at = Some(now - 3600);
                        "unbound"
                    } else if g < 0.25 {
                        let set = CUSTOM_GRANTS[rng.gen_range(0..CUSTOM_GRANTS.len())];
                        o.grants = Some(set.iter().map(|s| s.to_string()).collect());
                        "customized_deny"
                    } else if g < 0.35 {
                        let set = CUSTOM_GRANTS_ALLOW[rng.gen_range(0..CUSTOM_GRANTS_ALLOW.len())];
                        o.grants = Some(set.iter().map(|s| s.to_string()).collect());
                        "customized_allow"
                    } else {
                        "default_grants"
                    };
                }
            }
            here.insert(o.person.clone());
            *r.counts.entry(kind.to_string()).or_default() += 1;
            match kind {
                "unbound" => {}
                "customized_deny" => deny.offer(&key, &o.person),
                _ => allow.offer(&key, &o.person),
            }
            if o.is_bound() && o.may_use_password() {
                password.offer(&key, &o.person);
            }
            put(
                &mut b,
                Tree::OfficersByPerson,
                keys::officer_by_person(&o.person, &key),
                Vec::new(),
            );
            put(
                &mut b,
                Tree::Officers,
                keys::officer(&key, &o.person),
                enc(&o),
            );
        }
        if i % 5_000 == 4_999 {
            apply(store, &mut b).await?;
        }
    }
    apply(store, &mut b).await?;
    store.flush().await.map_err(|e| e.to_string())?;
    r.persons = local_person as usize;
    r.allow = allow.items;
    r.deny = deny.items;
    r.password = password.items;
    let text = serde_json::to_string(&r).map_err(|e| e.to_string())?;
    std::fs::write(base.join(format!("chunk-{k}.json")), text).map_err(|e| e.to_string())
}

/// The store under `base` for `p`, generated if it is missing or was made with other
/// parameters.
pub fn ensure(base: &Path, p: Params) -> Result<Manifest, String> {
    match read_manifest(base) {
        Some(m) if m.params == p => Ok(m),
        _ => generate(base, p),
    }
}

/// Session tokens of the load tests: `bench-allow-NNNNNN` (permitted on [`MODULE`]) and
/// `bench-deny-NNNNNN` (denied); login tickets `bench-ticket-NNNNNNN` whose only
/// officer (`officer_id` "o") has a personal password, bound to 127.0.0.1 and
/// [`USER_AGENT`].
pub fn allow_token(i: usize) -> String {
    format!("bench-allow-{i:06}")
}

pub fn deny_token(i: usize) -> String {
    format!("bench-deny-{i:06}")
}

pub fn ticket_token(i: usize) -> String {
    format!("bench-ticket-{i:07}")
}

/// Removes every record of `tree`, a page at a time (not atomic, as sled's own `clear`).
async fn clear(store: &Store, tree: Tree) -> Result<(), String> {
    loop {
        let page = store
            .scan_page(tree, &[], None, 10_000)
            .await
            .map_err(|e| e.to_string())?;
        if page.is_empty() {
            return Ok(());
        }
        store
            .apply(page.into_iter().map(|(k, _)| (tree, k, None)).collect())
            .await
            .map_err(|e| e.to_string())?;
    }
}

/// A live session of `o` for `token`, with its entry in the officer's session index.
async fn put_session(
    app: &taxgate::app::App,
    token: &str,
    o: &OfficerRef,
    now: i64,
) -> Result<(), String> {
    let hash = app.session_token_hash(token);
    let s = Session {
        enterprise: o.enterprise.clone(),
        person: o.person.clone(),
        created_at: now,
        last_seen: now,
        csrf_token: "bench-csrf".into(),
        client_ip: "127.0.0.1".into(),
        login: Default::default(),
    };
    app.store
        .put(Tree::Sessions, &hash, &s)
        .await
        .map_err(|e| e.to_string())?;
    app.store
        .put_raw(
            Tree::SessionsByOfficer,
            keys::session_of_officer(&o.enterprise, &o.person, &hash),
            &[],
        )
        .await
        .map_err(|e| e.to_string())
}

/// Clears what earlier runs left (sessions, tickets, audit, rate windows, lockouts) and
/// writes `sessions` live sessions of each kind and `tickets` login tickets, at `now`.
/// Uses the crate's own hashing (`App::session_token_hash`, `client_fingerprint`).
pub async fn prepare(
    app: &taxgate::app::App,
    m: &Manifest,
    sessions: usize,
    tickets: usize,
    now: i64,
) -> Result<(), String> {
    for tree in [
        Tree::Sessions,
        Tree::SessionsByOfficer,
        Tree::LoginTickets,
        Tree::Audit,
        Tree::Rate,
        Tree::Lockouts,
    ] {
        clear(&app.store, tree).await?;
    }
    for (i, o) in m.allow.iter().cycle().take(sessions).enumerate() {
        put_session(app, &allow_token(i), o, now).await?;
    }
    for (i, o) in m.deny.iter().cycle().take(sessions).enumerate() {
        put_session(app, &deny_token(i), o, now).await?;
    }
    let fingerprint = taxgate::auth::client_fingerprint(app, "127.0.0.1", USER_AGENT);
    for (i, o) in m.password.iter().cycle().take(tickets).enumerate() {
        let ticket = LoginTicket {
            enterprise: o.enterprise.clone(),
            password_epoch: 0,
            client: fingerprint.clone(),
            expires_at: now + 3600,
            officers: BTreeMap::from([("o".to_string(), o.person.clone())]),
            failures: 0,
            login: Default::default(),
        };
        // The store key of a ticket is its keyed hash (auth/login.rs `ticket_hash`).
        let hash = app.keyed.hash("login-ticket", &ticket_token(i));
        app.store
            .put(Tree::LoginTickets, &hash, &ticket)
            .await
            .map_err(|e| e.to_string())?;
    }
    app.store.flush().await.map_err(|e| e.to_string())?;
    Ok(())
}
