//! `bench-gen requests`: exactly N keep-alive GETs, one at a time on one connection —
//! the fixed load that `bench/run`'s instruction count divides by. One at a time, so no
//! request is in flight when the count is read and every request costs the proxy the
//! same work (one wake-up, one read, one write each way): the figure repeats.
//!
//! The request is the P2 line's (`GET /tax/zzs/declare?year=2026`, the bench User-Agent),
//! its cookie rotating over the prepared sessions `bench-KIND-NNNNNN` (no cookie for
//! `none`). Answers must carry `expect`'s status; anything else fails the run, so a
//! count is never taken over refusals that cost less than what it claims to measure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

pub struct Load<'a> {
    pub addr: &'a str,
    /// `allow`, `deny` (prepared sessions) or `none` (no cookie).
    pub kind: &'a str,
    pub count: usize,
    pub sessions: usize,
    pub expect: u16,
}

pub fn run(load: &Load) -> Result<(), String> {
    let stream = TcpStream::connect(load.addr).map_err(|e| format!("{}: {e}", load.addr))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    for n in 0..load.count {
        let cookie = match load.kind {
            "none" => String::new(),
            kind => format!(
                "Cookie: taxgate_session=bench-{kind}-{:06}\r\n",
                n % load.sessions.max(1)
            ),
        };
        let request = format!(
            "GET /tax/zzs/declare?year=2026 HTTP/1.1\r\nHost: {}\r\nUser-Agent: taxgate-bench\r\n{cookie}\r\n",
            load.addr
        );
        writer
            .write_all(request.as_bytes())
            .map_err(|e| format!("request {n}: {e}"))?;
        let status = read_response(&mut reader).map_err(|e| format!("response {n}: {e}"))?;
        if status != load.expect {
            return Err(format!(
                "response {n} was {status}, expected {}",
                load.expect
            ));
        }
    }
    Ok(())
}

/// Reads one response with a `Content-Length` body; returns its status.
fn read_response(reader: &mut impl BufRead) -> Result<u16, String> {
    let mut line = String::new();
    read_line(reader, &mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {line:?}"))?;
    let mut length = None;
    loop {
        line.clear();
        read_line(reader, &mut line)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<u64>().ok();
            }
        }
    }
    let length = length.ok_or("no Content-Length (chunked answers are not expected here)")?;
    std::io::copy(&mut reader.take(length), &mut std::io::sink()).map_err(|e| e.to_string())?;
    Ok(status)
}

fn read_line(reader: &mut impl BufRead, line: &mut String) -> Result<(), String> {
    match reader.read_line(line) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
