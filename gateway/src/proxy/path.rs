//! Request path normalization (SPEC S7).
//!
//! Contract: [`check`] accepts a path only when it has exactly one meaning, and then that
//! path is the one routing and policy see and the one forwarded. Refused with 400:
//! backslashes, NUL and other control bytes, empty segments (`//`), `.` and `..`
//! segments, and percent-encodings that could change the path's structure once decoded
//! (`%2e` `.`, `%2f` `/`, `%5c` `\`, `%00`, and `%25`, which would hide any of these
//! behind a second decoding), and malformed `%` escapes. Other escapes (e.g. UTF-8 of a
//! Chinese file name) pass unchanged. Refusing instead of rewriting means a module never
//! receives a path the gateway interpreted differently.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    Backslash,
    ControlByte,
    EmptySegment,
    DotSegment,
    EncodedSeparator,
    BadEscape,
}

impl PathError {
    pub fn message_zh(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "请求路径必须以 / 开头",
            PathError::Backslash => "请求路径不能包含反斜杠",
            PathError::ControlByte => "请求路径不能包含控制字符",
            PathError::EmptySegment => "请求路径不能包含连续的 /",
            PathError::DotSegment => "请求路径不能包含 . 或 .. 段",
            PathError::EncodedSeparator => "请求路径不能包含编码的 . / \\ % 或 NUL",
            PathError::BadEscape => "请求路径包含不合法的 % 编码",
        }
    }
}

pub fn check(path: &str) -> Result<(), PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => return Err(PathError::Backslash),
            0..=0x1f | 0x7f => return Err(PathError::ControlByte),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(PathError::BadEscape)?;
                if matches!(hex, b'.' | b'/' | b'\\' | b'%') || hex < 0x20 || hex == 0x7f {
                    return Err(PathError::EncodedSeparator);
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Segments between the leading slash and an optional trailing slash.
    let inner = &path[1..];
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if path != "/" {
        for segment in inner.split('/') {
            match segment {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_escaped_text() {
        for p in [
            "/",
            "/tax/vat",
            "/tax/vat/report.json",
            "/tax/%E5%A2%9E%E5%80%BC",
            "/a/b-c_d~e",
            "/tax/vat/",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn refuses_every_ambiguous_form() {
        let cases = [
            ("tax", PathError::NotAbsolute),
            ("/tax/a/../b", PathError::DotSegment),
            ("/tax/./b", PathError::DotSegment),
            ("/tax/..", PathError::DotSegment),
            ("/tax//b", PathError::EmptySegment),
            ("//tax", PathError::EmptySegment),
            ("//", PathError::EmptySegment),
            ("/tax//", PathError::EmptySegment),
            ("/tax\\b", PathError::Backslash),
            ("/tax/%2e%2e/b", PathError::EncodedSeparator),
            ("/tax/%2E%2E/b", PathError::EncodedSeparator),
            ("/tax%2fb", PathError::EncodedSeparator),
            ("/tax%2Fb", PathError::EncodedSeparator),
            ("/tax%5cb", PathError::EncodedSeparator),
            ("/tax%00", PathError::EncodedSeparator),
            ("/tax%252e", PathError::EncodedSeparator),
            ("/tax%zz", PathError::BadEscape),
            ("/tax%2", PathError::BadEscape),
            ("/tax\0", PathError::ControlByte),
        ];
        for (p, e) in cases {
            assert_eq!(check(p), Err(e), "{p:?}");
        }
    }
}
