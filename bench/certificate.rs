//! Certificate login, stage 1 (issue 13): what one verification costs on one core, as a
//! ratio of the verification it stands beside, one argon2id password check at the
//! production parameters (19 MiB, t = 2, p = 1; the enterprise password of stage 1).
//!
//! Lines: an SM2 leaf issued by the SM2 root (two SM2 verifications: the certificate
//! and the challenge), the same through an intermediate (three), ECDSA P-256, RSA 2048
//! (the fixture key), and the SM2 leaf against a root whose CRL lists 100,000 serials
//! (a large CA's CRL). Each line runs for `BENCH_CERT_SECONDS` (2) after a warm-up; the
//! figures are the mean per verification.
//!
//! `cargo bench --bench bench-certificate` or `BENCH_ONLY=cert bench/run`.

use std::time::{Duration, Instant, SystemTime};
use taxgate::crypto::certificate::{verify, Anchor};
use taxgate::crypto::dev_ca::{self, Algorithm, DevKey, Spec};
use x509_cert::serial_number::SerialNumber;

const CHALLENGE: &[u8] = b"taxgate-ca-login:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn main() -> Result<(), String> {
    let seconds: u64 = std::env::var("BENCH_CERT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let budget = Duration::from_secs(seconds);

    let argon2 = {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
        let params = argon2::Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"bench-salt-16byt").map_err(|e| e.to_string())?;
        let hash = a
            .hash_password(b"Dianchi@2026", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        time(budget, move || {
            let parsed = argon2::PasswordHash::new(&hash).map_err(|e| e.to_string())?;
            a.verify_password(b"Dianchi@2026", &parsed)
                .map_err(|e| e.to_string())
        })?
    };

    let uscc = "91530102MA6K0A0018";
    let sm2_root_key = DevKey::generate(Algorithm::Sm2)?;
    let sm2_root = dev_ca::issue(&Spec::ca("Bench CA", 1, 30), &sm2_root_key, None)?;
    let leaf = |key: &DevKey, issuer: (&DevKey, &x509_cert::Certificate), serial| {
        dev_ca::issue(&Spec::enterprise("甲", uscc, serial, 30), key, Some(issuer))
            .and_then(|c| der::Encode::to_der(&c).map_err(|e| e.to_string()))
    };
    let plain =
        |root: &x509_cert::Certificate| Anchor::new(root.clone(), None).map_err(|e| e.to_string());

    let mut lines = vec![("argon2id password (19 MiB, t=2)", argon2)];

    let key = DevKey::generate(Algorithm::Sm2)?;
    let cert = leaf(&key, (&sm2_root_key, &sm2_root), 10)?;
    lines.push((
        "SM2 leaf + SM2 root",
        login(budget, &[plain(&sm2_root)?], &cert, &[], &key)?,
    ));

    let mid_key = DevKey::generate(Algorithm::Sm2)?;
    let mid = dev_ca::issue(
        &Spec::ca("Bench Sub CA", 2, 30),
        &mid_key,
        Some((&sm2_root_key, &sm2_root)),
    )?;
    let mid_der = der::Encode::to_der(&mid).map_err(|e| e.to_string())?;
    let below = leaf(&key, (&mid_key, &mid), 11)?;
    lines.push((
        "SM2 leaf + intermediate + root",
        login(budget, &[plain(&sm2_root)?], &below, &[mid_der], &key)?,
    ));

    let p256_root_key = DevKey::generate(Algorithm::P256)?;
    let p256_root = dev_ca::issue(&Spec::ca("Bench Device CA", 1, 30), &p256_root_key, None)?;
    let p256_key = DevKey::generate(Algorithm::P256)?;
    let p256_cert = leaf(&p256_key, (&p256_root_key, &p256_root), 12)?;
    lines.push((
        "ECDSA P-256 leaf + root",
        login(budget, &[plain(&p256_root)?], &p256_cert, &[], &p256_key)?,
    ));

    let rsa_pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/rsa-2048-test.key"
    ))
    .map_err(|e| e.to_string())?;
    let rsa_key = DevKey::from_pkcs8_pem(&rsa_pem)?;
    let rsa_root = dev_ca::issue(&Spec::ca("Bench RSA CA", 1, 30), &rsa_key, None)?;
    let rsa_cert = leaf(&rsa_key, (&rsa_key, &rsa_root), 13)?;
    lines.push((
        "RSA 2048 leaf + root",
        login(budget, &[plain(&rsa_root)?], &rsa_cert, &[], &rsa_key)?,
    ));

    let serials = (1_000_000u64..1_100_000).map(SerialNumber::from);
    let next = SystemTime::now() + Duration::from_secs(86400);
    let big = dev_ca::crl_of_serials(&sm2_root_key, &sm2_root, serials, 2, next)?;
    let big_der = der::Encode::to_der(&big).map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (root_file, crl_file) = (dir.path().join("root.pem"), dir.path().join("crl.der"));
    std::fs::write(&root_file, dev_ca::certificate_pem(&sm2_root)?).map_err(|e| e.to_string())?;
    std::fs::write(&crl_file, &big_der).map_err(|e| e.to_string())?;
    let loaded = Instant::now();
    let anchor = Anchor::load(&root_file, Some(&crl_file))?;
    let load_time = loaded.elapsed();
    lines.push((
        "SM2 leaf + root, CRL of 100,000 serials",
        login(budget, &[anchor], &cert, &[], &key)?,
    ));

    println!(
        "certificate login, stage 1: one verification on one core (mean), against one argon2 check"
    );
    for (name, per) in &lines {
        println!(
            "  {name:<42} {:>9.3} ms  {:>6.3}×",
            per.as_secs_f64() * 1e3,
            per.as_secs_f64() / argon2.as_secs_f64()
        );
    }
    println!(
        "  loading that CRL ({} KiB, signature checked once): {:.1} ms",
        big_der.len() / 1024,
        load_time.as_secs_f64() * 1e3
    );
    Ok(())
}

/// One certificate login's verification: the chain, the CRL and the signature.
fn login(
    budget: Duration,
    anchors: &[Anchor],
    leaf: &[u8],
    chain: &[Vec<u8>],
    key: &DevKey,
) -> Result<Duration, String> {
    let signature = key.sign(CHALLENGE);
    time(budget, || {
        verify(
            anchors,
            leaf,
            chain,
            CHALLENGE,
            &signature,
            SystemTime::now(),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    })
}

/// Mean time of `f` over `budget`, after a warm-up of a tenth of it.
fn time(budget: Duration, mut f: impl FnMut() -> Result<(), String>) -> Result<Duration, String> {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        f()?;
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        f()?;
        n += 1;
    }
    Ok(start.elapsed() / n.max(1))
}
