//! Reading the development outbox: captcha answers and SMS codes.

use std::path::Path;

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn captcha_answer(path: &Path, captcha_id: &str) -> String {
    lines(path)
        .into_iter()
        .rev()
        .find(|v| v["kind"] == "captcha" && v["captcha_id"] == captcha_id)
        .and_then(|v| v["answer"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no captcha {captcha_id} in the outbox"))
}

/// The newest SMS code sent to `phone`.
pub fn last_sms(path: &Path, phone: &str) -> Option<serde_json::Value> {
    lines(path)
        .into_iter()
        .rev()
        .find(|v| v["kind"] == "sms" && v["phone"] == phone)
}

pub fn sms_count(path: &Path, phone: &str) -> usize {
    lines(path)
        .into_iter()
        .filter(|v| v["kind"] == "sms" && v["phone"] == phone)
        .count()
}
