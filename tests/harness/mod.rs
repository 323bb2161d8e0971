//! Test harness: start a gateway process against fixture data and talk to it over HTTP.

pub mod client;
pub mod crowd;
pub mod flows;
pub mod gateway;
pub mod outbox;
pub mod postgres;
pub mod tls;

pub use client::{Browser, Resp};
pub use gateway::{Gateway, GatewayOptions, TestStore};

/// Repository root (the tests live in `<repo>/tests`).
pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fixture enterprises and people (tests/fixtures/README.md).
pub mod fx {
    pub const A_USCC: &str = "91530102MA6K0A0018";
    pub const A_TIN: &str = "530102MA6K0A001";
    pub const A_PASSWORD: &str = "Fixture-A-2026";
    pub const B_USCC: &str = "91530103MA6K0B0021";
    pub const B_PASSWORD: &str = "Fixture-B-2026";
    pub const C_USCC: &str = "91530111MA6K0C003X";

    pub const ZHAO_PHONE: &str = "13900000001"; // A legal_rep 赵敏
    pub const QIAN_PHONE: &str = "13900000002"; // A finance_officer 钱进
    pub const SUN_PHONE: &str = "13900000003"; // A + B tax_officer 孙悦
    pub const LI_PHONE: &str = "13900000004"; // A tax_officer 李雷
    pub const ZHOU_PHONE: &str = "13900000005"; // B legal_rep 周杰
}
