//! The 电子税务局 portal: static pages served by the gateway at `/` (issue 5), built on
//! the JSON API. Assets are embedded in the binary: no CDN, fonts or scripts from
//! elsewhere.
//!
//! Contract: [`asset`] maps a request path to an embedded file, or `None` when the path
//! is not the portal's (then routing continues: API, modules, 404). Pages are one
//! document (`/`) with hash routes (`#/login`, `#/home`, `#/users` …), so no other page
//! path is needed; `app.js` builds every page from the API (no inline script or style:
//! the CSP allows only `'self'`).

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
        "/assets/app.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/app.js"),
        ),
        "/assets/qr.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("assets/qr.js"),
        ),
        "/assets/app.css" => ("text/css; charset=utf-8", include_bytes!("assets/app.css")),
        "/assets/favicon.svg" | "/favicon.ico" => {
            ("image/svg+xml", include_bytes!("assets/favicon.svg"))
        }
        _ => return None,
    };
    Some(Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_pages_and_assets() {
        for (path, ty) in [
            ("/", "text/html; charset=utf-8"),
            ("/assets/app.js", "text/javascript; charset=utf-8"),
            ("/assets/app.css", "text/css; charset=utf-8"),
            ("/assets/qr.js", "text/javascript; charset=utf-8"),
            ("/favicon.ico", "image/svg+xml"),
        ] {
            let a = asset(path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(a.content_type, ty);
            assert!(!a.body.is_empty());
        }
        assert!(asset("/tax/zzs").is_none());
        assert!(asset("/assets/nope.js").is_none());
    }

    #[test]
    fn nothing_from_elsewhere_nothing_inline() {
        let text = |p: &str| {
            std::str::from_utf8(asset(p).unwrap().body)
                .unwrap()
                .to_owned()
        };
        let html = text("/");
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("style=") && !html.contains("<style"));
        assert!(!html.contains("<script>"), "inline script");
        let js = text("/assets/app.js");
        assert!(!js.contains("http://") && !js.contains("https://"));
        assert!(!js.contains("innerHTML") && !js.contains("eval("));
        let qr = text("/assets/qr.js");
        assert!(!qr.contains("http://") && !qr.contains("https://"));
        let css = text("/assets/app.css");
        assert!(!css.contains("url(") && !css.contains("@import"));
    }
}
