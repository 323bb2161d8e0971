//! Record encoding: one version byte, then JSON.
//!
//! Contract: [`encode`] writes the current version; [`decode`] accepts every version it
//! knows and refuses the rest with [`StoreError::Corrupt`], so a record written by a newer
//! gateway is never misread by an older one. JSON keeps records inspectable and lets a
//! field be added with `#[serde(default)]` without a migration.

use super::StoreError;
use serde::{de::DeserializeOwned, Serialize};

pub const VERSION: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(128);
    out.push(VERSION);
    serde_json::to_writer(&mut out, value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(e.to_string()))
        }
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown record version {v}"))),
        None => Err(StoreError::Corrupt("empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_version() {
        let bytes = encode(&vec!["a".to_string()]).unwrap();
        assert_eq!(bytes[0], VERSION);
        let back: Vec<String> = decode(&bytes).unwrap();
        assert_eq!(back, vec!["a"]);
        let mut future = bytes.clone();
        future[0] = 9;
        assert!(decode::<Vec<String>>(&future).is_err());
        assert!(decode::<Vec<String>>(&[]).is_err());
    }
}
