//! The HTML report in a real browser: headless Chromium (Debian's `chromium`) opens the page
//! `memscope report` wrote and, over the DevTools protocol, this test checks that it loads
//! with no console error, no exception and no error logged; that no request leaves the page
//! (the page itself is the only URL fetched; `data:` URLs are inline); and that every
//! figure's SVG is drawn with a non-zero width and height. It saves a screenshot of the
//! whole page under target/tmp (`MEMSCOPE_RECORD_SCREENSHOT=1`: from the full default report,
//! into assets/report.png for the README).
//!
//! The DevTools client is a few dozen lines over a TCP socket (one WebSocket, text frames),
//! so the check needs nothing but the browser.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The browser's names on Debian and elsewhere.
const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

fn browser() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in BROWSERS {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!("none of {} is on PATH (Debian: apt-get install -y chromium)", BROWSERS.join(", ")))
}

/// A headless browser, stopped when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary` headless and returns it with the address of its DevTools socket.
fn start(binary: &Path) -> (Browser, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let browser = Browser { child, _profile: profile };
    let mut lines = BufReader::new(stderr).lines();
    let ws = loop {
        let line = lines.next().expect("the browser ended before it opened its DevTools socket").unwrap();
        if let Some(at) = line.find("ws://") {
            break line[at..].trim().to_string();
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (browser, ws)
}

/// One WebSocket to the DevTools endpoint: numbered commands, events kept as they come.
struct DevTools {
    socket: TcpStream,
    next: u64,
    events: Vec<Value>,
}

impl DevTools {
    fn connect(url: &str) -> DevTools {
        let rest = url.strip_prefix("ws://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut socket = TcpStream::connect(host).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(
            socket,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "no WebSocket upgrade: {head}");
        DevTools { socket, next: 1, events: Vec::new() }
    }

    /// Sends one masked text frame.
    fn send(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mut frame = vec![0x81u8];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n < 65536 => {
                frame.push(0x80 | 126);
                frame.extend((n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend((n as u64).to_be_bytes());
            }
        }
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.socket.write_all(&frame).unwrap();
    }

    /// Reads one whole message (continuation frames joined; pings and others skipped).
    fn receive(&mut self) -> Value {
        let mut message = Vec::new();
        loop {
            let mut head = [0u8; 2];
            self.socket.read_exact(&mut head).unwrap();
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.socket.read_exact(&mut b).unwrap();
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.socket.read_exact(&mut b).unwrap();
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            let mut payload = vec![0u8; len];
            self.socket.read_exact(&mut payload).unwrap();
            if opcode <= 2 {
                message.extend(payload);
                if fin {
                    return serde_json::from_slice(&message).unwrap();
                }
            }
        }
    }

    /// Runs `method` (in `session` when given) and returns its result; events that arrive
    /// meanwhile are kept.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            command["sessionId"] = json!(s);
        }
        self.send(&command.to_string());
        loop {
            let message = self.receive();
            if message["id"] == json!(id) {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            self.events.push(message);
        }
    }

    /// Waits for the event `method`, keeping every event.
    fn wait_for(&mut self, method: &str, limit: Duration) {
        let start = Instant::now();
        while !self.events.iter().any(|e| e["method"] == json!(method)) {
            assert!(start.elapsed() < limit, "no {method} within {limit:?}");
            let message = self.receive();
            self.events.push(message);
        }
    }
}

/// What went wrong on the page, in words: console errors, exceptions, errors logged.
fn errors(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| {
            let p = &e["params"];
            match e["method"].as_str()? {
                "Runtime.consoleAPICalled" if matches!(p["type"].as_str(), Some("error" | "assert")) => {
                    Some(format!("console.{}: {}", p["type"], p["args"]))
                }
                "Runtime.exceptionThrown" => Some(format!("exception: {}", p["exceptionDetails"])),
                "Log.entryAdded" if p["entry"]["level"] == json!("error") => {
                    Some(format!("log: {}", p["entry"]["text"]))
                }
                _ => None,
            }
        })
        .collect()
}

/// Every URL the page requested other than `page` itself and inline `data:` URLs.
fn requests_out(events: &[Value], page: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["method"] == json!("Network.requestWillBeSent"))
        .filter_map(|e| e["params"]["request"]["url"].as_str())
        .filter(|url| *url != page && !url.starts_with("data:"))
        .map(str::to_string)
        .collect()
}

/// Decodes standard base64 (the screenshot's PNG).
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| u32::from(value(c))).collect();
        let n = v.iter().enumerate().fold(0u32, |n, (i, &x)| n | (x << (18 - 6 * i)));
        out.extend(n.to_be_bytes()[1..chunk.len()].iter());
    }
    out
}

/// The sizes of every figure's SVG, as the browser laid them out.
const FIGURE_SIZES: &str = "JSON.stringify({figures: document.querySelectorAll('figure').length, \
     svgs: [...document.querySelectorAll('figure svg')].map(s => { const r = s.getBoundingClientRect(); \
     return [r.width, r.height]; })})";

/// What the browser saw of one page: every event, the figures' sizes, a screenshot.
struct Loaded {
    events: Vec<Value>,
    /// `{figures: n, svgs: [[w, h], ...]}`.
    sizes: Value,
    png: Vec<u8>,
}

/// Opens `url` in a fresh headless browser 1200 pixels wide and waits for its load event.
fn load(binary: &Path, url: &str) -> Loaded {
    let (_browser, endpoint) = start(binary);
    let mut tools = DevTools::connect(&endpoint);
    let target = tools.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
    let attached =
        tools.call(None, "Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }));
    let session = attached["sessionId"].as_str().unwrap().to_string();
    let s = Some(session.as_str());
    for domain in ["Page", "Runtime", "Log", "Network"] {
        tools.call(s, &format!("{domain}.enable"), json!({}));
    }
    tools.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
    );
    tools.call(s, "Page.navigate", json!({ "url": url }));
    tools.wait_for("Page.loadEventFired", Duration::from_secs(60));
    let sizes =
        tools.call(s, "Runtime.evaluate", json!({ "expression": FIGURE_SIZES, "returnByValue": true }));
    let sizes: Value = serde_json::from_str(sizes["result"]["value"].as_str().unwrap()).unwrap();
    let metrics = tools.call(s, "Page.getLayoutMetrics", json!({}));
    let height = metrics["cssContentSize"]["height"].as_f64().unwrap();
    let shot = tools.call(
        s,
        "Page.captureScreenshot",
        json!({ "format": "png", "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": 1200, "height": height, "scale": 1 } }),
    );
    Loaded { events: std::mem::take(&mut tools.events), sizes, png: base64(shot["data"].as_str().unwrap()) }
}

#[test]
fn the_report_loads_in_a_real_browser_with_every_figure_drawn_and_nothing_fetched() {
    let Some(binary) = common::requires("chromium (apt-get install -y chromium)", browser()) else { return };
    let record = std::env::var("MEMSCOPE_RECORD_SCREENSHOT").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = page.display().to_string();
    if record {
        common::succeeds(&["report", "--out", &out]);
    } else {
        common::succeeds(&["report", "--repeats", "2", "--max-per-group", "40", "--out", &out]);
    }
    let url = format!("file://{out}");
    let loaded = load(&binary, &url);

    let svgs = loaded.sizes["svgs"].as_array().unwrap();
    assert!(!svgs.is_empty(), "no figure on the page");
    let figures = loaded.sizes["figures"].as_u64().unwrap();
    assert_eq!(svgs.len() as u64, figures, "a figure without its SVG: {}", loaded.sizes);
    for (i, wh) in svgs.iter().enumerate() {
        let (w, h) = (wh[0].as_f64().unwrap(), wh[1].as_f64().unwrap());
        assert!(w > 100.0 && h > 100.0, "figure {i} is drawn {w}x{h}");
    }
    let wrong = errors(&loaded.events);
    assert!(wrong.is_empty(), "the page logged errors: {wrong:#?}");
    let out_of_page = requests_out(&loaded.events, &url);
    assert!(out_of_page.is_empty(), "the page fetched {out_of_page:?}");
    assert_eq!(requests_out(&loaded.events, ""), [url.as_str()], "the network log missed the page itself");

    assert!(loaded.png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
    let saved = if record {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/report.png")
    } else {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report.png")
    };
    std::fs::write(&saved, &loaded.png).unwrap();
}

#[test]
fn the_check_sees_a_console_error_a_request_out_and_an_empty_figure() {
    let Some(binary) = common::requires("chromium (apt-get install -y chromium)", browser()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><figure><svg width=\"0\" height=\"0\"></svg></figure>\
         <img src=\"http://127.0.0.1:9/x.png\"><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let url = format!("file://{}", page.display());
    let loaded = load(&binary, &url);
    let wrong = errors(&loaded.events);
    assert!(wrong.iter().any(|e| e.contains("boom")), "{wrong:?}");
    assert_eq!(requests_out(&loaded.events, &url), ["http://127.0.0.1:9/x.png"]);
    assert_eq!(loaded.sizes["svgs"], json!([[0, 0]]));
}

#[test]
fn the_base64_decoder_reads_what_the_browser_sends() {
    assert_eq!(base64("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    assert_eq!(base64("TWFu"), b"Man");
    assert_eq!(base64("TWE="), b"Ma");
}
