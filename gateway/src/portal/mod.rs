//! The 电子税务局 portal: static pages served by the gateway at `/` (issue 5), built on
//! the JSON API. Assets are embedded in the binary: no CDN, fonts or scripts from
//! elsewhere.
//!
//! Contract: [`asset`] maps a request path to an embedded file, or `None` when the path
//! is not the portal's (then routing continues: API, modules, 404).

/// One embedded file.
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static [u8],
}

pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, body): (&str, &[u8]) = match path {
        "/" | "/index.html" => (
            "text/html; charset=utf-8",
            include_bytes!("assets/index.html"),
        ),
        _ => return None,
    };
    Some(Asset { content_type, body })
}
