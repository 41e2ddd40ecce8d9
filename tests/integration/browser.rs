//! The visitor pages in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! through `fantoccini`). A declared form is filled in with the keyboard as a person would, sent
//! with Enter, and must land on "Check your inbox"; a bad value must come back with the error
//! beside its field and the rest of the input kept; the strict CSP must not block anything the
//! pages themselves use; and all of it must hold at a phone-sized window.
//!
//! Without chromium and chromedriver these tests say SKIPPED, unless `FORMGATE_REQUIRE_BROWSER=1`
//! (as `.ci/run` sets), which makes a missing browser a failure.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use formgate::config::{Config, MailTarget, SmtpUrl};
use formgate::domain::{Field, FieldValue, MessageId, Status};
use serde_json::{Value, json};

use crate::support::app::{Options, TestApp, code};
use crate::support::smtp::TestSmtp;

/// Where Debian's `chromium-driver` and `chromium` put them; `FORMGATE_CHROMEDRIVER` and
/// `FORMGATE_CHROMIUM` name others.
fn chromedriver() -> String {
    std::env::var("FORMGATE_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium() -> String {
    std::env::var("FORMGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The declared form the tests fill in: every kind of widget a person meets.
const QUOTE_FORM: &str = r#"
default_form = "quote"

[forms.quote]
title = "Request a quote"
fields = [
  { name = "name", type = "text", label = "Your name", required = true },
  { name = "email", type = "email", label = "Email", required = true },
  { name = "budget", type = "select", label = "Budget", options = ["< 5k", "5–20k", "> 20k"], required = true },
  { name = "topics", type = "checkboxes", label = "Interested in", options = ["Web", "App", "Hosting"] },
  { name = "message", type = "textarea", label = "Tell us more", required = true },
  { name = "consent", type = "checkbox", label = "You may contact me", required = true },
]
"#;

/// A desktop window, and a phone's (CSS pixels).
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (375, 740);

fn required() -> bool {
    std::env::var("FORMGATE_REQUIRE_BROWSER").is_ok_and(|v| v.trim() == "1")
}

/// Skips the test (None) or, when the browser is required, fails it.
fn unavailable<T>(why: &str) -> Option<T> {
    assert!(
        !required(),
        "no browser ({why}), and FORMGATE_REQUIRE_BROWSER=1 says the browser tests must run; \
         install chromium chromium-driver"
    );
    eprintln!("SKIPPED: no browser (install chromium chromium-driver): {why}");
    None
}

/// The app with the quote form declared, mailing a test SMTP listener.
async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("formgate.db").display());
    let smtp = TestSmtp::start().await;
    let mail = MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).expect("smtp url"));
    let mut config = Config::for_tests(db, mail);
    config.forms = Config::from_toml(QUOTE_FORM, &|_| None)
        .expect("the quote form is a valid form table")
        .forms;
    TestApp::spawn_config(config, dir, Some(smtp), &Options::default()).await
}

/// chromedriver as a child process on a free port, in a process group of its own with the
/// browsers it starts; the whole group is ended when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver, ended alone, leaves its browsers running when a test panics before it
        // closed its session: so the group goes, chromedriver and every Chromium process in it.
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline
                && Command::new("kill")
                    .args(["-0", "--", &group])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Driver {
    async fn start() -> Result<Driver, String> {
        let chromedriver = chromedriver();
        for path in [&chromedriver, &chromium()] {
            if !std::path::Path::new(path).exists() {
                return Err(format!("{path} not found"));
            }
        }
        let port = free_port();
        let child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{chromedriver} does not start: {e}"))?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Ready once /status says so.
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = http.get(format!("{}/status", driver.url)).send().await
                && let Ok(v) = res.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                return Ok(driver);
            }
            if Instant::now() > deadline {
                return Err(format!("{chromedriver} did not get ready on port {port}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One headless Chromium session, and the chromedriver that runs it.
struct Browser {
    client: Client,
    // Declared after the client: the driver ends after the session.
    _driver: Driver,
}

/// `POST /session/{id}/se/log`: chromedriver's console log for the page (entries since the last
/// call). fantoccini has no command for it, so it is sent as a raw WebDriver command.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

impl Browser {
    /// A browser at `size`; a phone is emulated as one (its viewport meta tag counts, touch, a
    /// device pixel ratio of 2). None: no browser here, and the test skips itself.
    async fn start(size: (u32, u32), phone: bool) -> Option<Browser> {
        let driver = match Driver::start().await {
            Ok(d) => d,
            Err(why) => return unavailable(&why),
        };
        let (w, h) = size;
        let mut chrome = json!({
            "binary": chromium(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                format!("--window-size={w},{h}"),
            ],
        });
        if phone {
            chrome["mobileEmulation"] = json!({
                "deviceMetrics": { "width": w, "height": h, "pixelRatio": 2.0, "mobile": true, "touch": true },
            });
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": chrome,
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&driver.url)
            .await
        {
            Ok(c) => c,
            Err(e) => return unavailable(&format!("no Chromium session: {e}")),
        };
        Some(Browser {
            client,
            _driver: driver,
        })
    }

    async fn close(self) {
        self.client.clone().close().await.expect("the session closes");
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script fails: {e}\n{script}"))
    }

    async fn path(&self) -> String {
        self.client.current_url().await.expect("current url").path().to_string()
    }

    /// Waits until the page at `path` has loaded (after a form was sent).
    async fn wait_for_page(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = self.js("return document.readyState").await;
            if self.path().await == path && ready == json!("complete") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still on {} (want {path}):\n{}",
                self.path().await,
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a page whose path ends with `suffix` has loaded; returns its path.
    async fn wait_for_path_ending(&self, suffix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let path = self.path().await;
            if path.ends_with(suffix) && self.js("return document.readyState").await == json!("complete") {
                return path;
            }
            assert!(
                Instant::now() < deadline,
                "still on {path} (want …{suffix}):\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self) -> String {
        self.js("return document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Presses each key in turn on whatever has the focus, as a person types: `keys` holds
    /// characters and [`Key`] codes.
    async fn press(&self, keys: &str) {
        let mut typing = KeyActions::new("keyboard".to_string());
        for c in keys.chars() {
            typing = typing
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(typing).await.expect("keys pressed");
        self.client.release_actions().await.expect("keys released");
    }

    /// The id (or, without one, the tag and name) of the element with the focus.
    async fn focused(&self) -> String {
        let v = self
            .js("const e = document.activeElement; \
                 return e ? (e.id || (e.tagName.toLowerCase() + (e.name ? '[' + e.name + ']' : '') \
                 + (e.value ? '=' + e.value : ''))) : ''")
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Tab, and the focus must land on `want`.
    async fn tab_to(&self, want: &str) {
        self.press(&Key::Tab).await;
        assert_eq!(self.focused().await, want, "Tab did not move the focus where expected");
    }

    /// Tabs from the top of the page to the first field: the form starts the tab order.
    async fn tab_into_form(&self, first: &str) {
        for _ in 0..5 {
            self.press(&Key::Tab).await;
            if self.focused().await == first {
                return;
            }
        }
        panic!("five Tabs never reached #{first} (focus on {:?})", self.focused().await);
    }

    /// The console's Content-Security-Policy violations since the last call, and the page's
    /// own `securitypolicyviolation` reports (see [`Browser::watch_csp`]).
    async fn csp_violations(&self) -> Vec<String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("chromedriver gives the browser log");
        let mut found: Vec<String> = log
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["source"] == json!("security")
                    || e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Content Security Policy"))
            })
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        let seen = self.js("return window.__cspViolations || []").await;
        found.extend(seen.as_array().into_iter().flatten().map(|v| format!("event: {v}")));
        found
    }

    /// Listens for `securitypolicyviolation` on this page (WebDriver's scripts are not bound by
    /// the page's CSP); the console log also catches what happened while the page loaded.
    async fn watch_csp(&self) {
        self.js("window.__cspViolations = []; \
             document.addEventListener('securitypolicyviolation', e => \
               window.__cspViolations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')));")
            .await;
    }

    async fn assert_no_csp_violation(&self, page: &str) {
        let found = self.csp_violations().await;
        assert!(
            found.is_empty(),
            "the CSP blocked something on the {page} page:\n{found:#?}"
        );
    }

    /// The page fits the window's width: nothing to scroll sideways.
    async fn assert_fits_width(&self, page: &str, width: u32) {
        let v = self
            .js(
                "return { scroll: document.documentElement.scrollWidth, inner: window.innerWidth, \
                 body: document.body.scrollWidth }",
            )
            .await;
        assert_eq!(
            v["inner"],
            json!(width),
            "the {page} page's viewport is not the window's width: {v}"
        );
        assert!(
            v["scroll"].as_u64() <= v["inner"].as_u64() && v["body"].as_u64() <= v["inner"].as_u64(),
            "the {page} page scrolls sideways at {width} px: {v}"
        );
    }

    /// The focused element is wholly inside the viewport and is what a tap on its middle hits.
    async fn assert_focused_in_view(&self, what: &str) {
        let v = self
            .js(
                "const e = document.activeElement; const r = e.getBoundingClientRect(); \
                 const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); \
                 return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, \
                   width: r.width, height: r.height, vw: window.innerWidth, vh: window.innerHeight, \
                   hit: hit === e || e.contains(hit) }",
            )
            .await;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        // Scrolled into view by the focus, it may end a fraction of a pixel past the edge.
        let slack = 1.0;
        assert!(
            f("left") >= -slack
                && f("right") <= f("vw") + slack
                && f("top") >= -slack
                && f("bottom") <= f("vh") + slack,
            "{what} is not wholly in the viewport: {v}"
        );
        assert!(
            f("height") >= 40.0 && f("width") >= 40.0,
            "{what} is too small to tap: {v}"
        );
        assert_eq!(v["hit"], json!(true), "{what} is covered by something else: {v}");
    }

    /// A DOM property of the element with this id.
    async fn prop(&self, id: &str, prop: &str) -> Option<String> {
        let el = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no #{id}: {e}"));
        el.prop(prop).await.expect("property")
    }

    async fn checked(&self, selector: &str) -> bool {
        let el = self
            .client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no {selector}: {e}"));
        el.is_selected().await.expect("checked state")
    }
}

/// Keyboard only, from the top of the quote form: name and address typed, a budget picked by
/// typing its first character, two topics and the consent box ticked with Space, two lines
/// of message; the focus is left on the Send button. `budget`/`consent` false leave those out.
async fn fill_quote_form(b: &Browser, budget: bool, consent: bool) {
    b.tab_into_form("name").await;
    b.press("Ada Lovelace").await;
    b.tab_to("email").await;
    b.press("ada@example.org").await;
    b.tab_to("budget").await;
    if budget {
        // A closed drop-down picks the option that starts with what is typed.
        b.press("5").await;
        assert_eq!(b.prop("budget", "value").await.as_deref(), Some("5–20k"));
    }
    b.tab_to("input[topics]=Web").await;
    b.press(&Key::Space).await;
    b.tab_to("input[topics]=App").await;
    b.tab_to("input[topics]=Hosting").await;
    b.press(&Key::Space).await;
    b.tab_to("message").await;
    b.press(&("Two lines:".to_string() + &Key::Enter + "the second one."))
        .await;
    b.tab_to("consent").await;
    if consent {
        b.press(&Key::Space).await;
    }
    // The honeypot is out of the tab order: the next stop is the button.
    b.tab_to("button").await;
}

#[tokio::test]
async fn browser_a_person_fills_the_declared_form_by_keyboard_and_is_told_to_check_their_inbox() {
    let Some(b) = Browser::start(DESKTOP, false).await else {
        return;
    };
    let app = spawn_app().await;
    b.goto(&app.url("/f/quote")).await;
    b.watch_csp().await;
    assert_eq!(b.client.title().await.unwrap(), "Request a quote");
    b.assert_no_csp_violation("form").await;

    fill_quote_form(&b, true, true).await;
    // A person takes longer than the time trap's few seconds.
    app.clock.advance(30);
    b.press(&Key::Enter).await;
    b.wait_for_page("/f/quote/sent").await;
    b.watch_csp().await;
    let text = b.text().await;
    assert!(text.contains("Check your inbox"), "{text}");
    b.assert_no_csp_violation("sent").await;

    let m = app.message(MessageId(1)).await;
    assert_eq!(m.status, Status::Pending, "a person is not spam: {m:?}");
    assert_eq!(m.form, "quote");
    assert_eq!(m.name, "Ada Lovelace");
    assert_eq!(m.email, "ada@example.org");
    assert_eq!(m.body.replace("\r\n", "\n"), "Two lines:\nthe second one.");
    let field = |name: &str| m.fields.iter().find(|f| f.name == name).map(|f| f.value.clone());
    assert_eq!(
        field("budget"),
        Some(FieldValue::Text("5–20k".into())),
        "{:?}",
        m.fields
    );
    assert_eq!(
        field("topics"),
        Some(FieldValue::List(vec!["Web".into(), "Hosting".into()])),
        "{:?}",
        m.fields
    );
    assert_eq!(field("consent"), Some(FieldValue::Flag(true)), "{:?}", m.fields);
    assert!(
        !m.fields
            .iter()
            .any(|f: &Field| f.name == "website" || f.name == "form_token"),
        "the bot filters are not visitor fields: {:?}",
        m.fields
    );
    b.close().await;
}

#[tokio::test]
async fn browser_a_bad_value_comes_back_beside_its_field_with_the_input_kept() {
    let Some(b) = Browser::start(DESKTOP, false).await else {
        return;
    };
    let app = spawn_app().await;
    b.goto(&app.url("/f/quote")).await;
    fill_quote_form(&b, false, false).await;
    app.clock.advance(30);
    b.press(&Key::Enter).await;
    b.wait_for_page("/f/quote").await;
    b.watch_csp().await;
    b.assert_no_csp_violation("error").await;
    assert!(b.text().await.contains("Please fix the 2 fields"), "{}", b.text().await);

    for id in ["budget", "consent"] {
        let v = b
            .js(&format!(
                "const f = document.getElementById('{id}'); const e = document.getElementById('{id}-error'); \
                 return {{ invalid: f.getAttribute('aria-invalid'), described: f.getAttribute('aria-describedby'), \
                   error: e && e.textContent.trim(), beside: !!e && e.closest('.field') === f.closest('.field'), \
                   visible: !!e && e.getBoundingClientRect().height > 0 }}"
            ))
            .await;
        assert_eq!(v["invalid"], json!("true"), "#{id}: {v}");
        let described = v["described"].as_str().unwrap_or_default();
        assert!(described.split(' ').any(|d| d == format!("{id}-error")), "#{id}: {v}");
        assert!(!v["error"].as_str().unwrap_or_default().is_empty(), "#{id}: {v}");
        assert_eq!(v["beside"], json!(true), "#{id}'s error is not in its field: {v}");
        assert_eq!(v["visible"], json!(true), "#{id}'s error is not shown: {v}");
    }
    // The fields that were fine are not marked, and keep what was typed and ticked.
    for id in ["name", "email", "message"] {
        assert_eq!(b.prop(id, "ariaInvalid").await, None, "#{id} is marked invalid");
    }
    assert_eq!(b.prop("name", "value").await.as_deref(), Some("Ada Lovelace"));
    assert_eq!(b.prop("email", "value").await.as_deref(), Some("ada@example.org"));
    assert_eq!(
        b.prop("message", "value")
            .await
            .map(|v| v.replace("\r\n", "\n"))
            .as_deref(),
        Some("Two lines:\nthe second one.")
    );
    assert!(b.checked("input[name=topics][value=Web]").await);
    assert!(!b.checked("input[name=topics][value=App]").await);
    assert!(b.checked("input[name=topics][value=Hosting]").await);
    assert!(!b.checked("#consent").await);
    assert!(
        app.store.message(MessageId(1)).await.unwrap().is_none(),
        "nothing is stored"
    );

    // Put right by keyboard, it goes through.
    b.tab_into_form("name").await;
    b.tab_to("email").await;
    b.tab_to("budget").await;
    b.press("<").await;
    assert_eq!(b.prop("budget", "value").await.as_deref(), Some("< 5k"));
    for _ in 0..5 {
        b.press(&Key::Tab).await;
    }
    assert_eq!(b.focused().await, "consent");
    b.press(&Key::Space).await;
    b.tab_to("button").await;
    b.press(&Key::Enter).await;
    b.wait_for_page("/f/quote/sent").await;
    let m = app.message(MessageId(1)).await;
    assert_eq!(m.status, Status::Pending, "{m:?}");
    assert!(
        m.fields
            .contains(&Field::new("budget", FieldValue::Text("< 5k".into()))),
        "{:?}",
        m.fields
    );
    b.close().await;
}

#[tokio::test]
async fn browser_the_csp_blocks_nothing_the_pages_use_and_the_check_would_see_it_if_it_did() {
    let Some(b) = Browser::start(DESKTOP, false).await else {
        return;
    };
    let app = spawn_app().await;
    for path in ["/f/quote", "/", "/f/quote/sent?r=not-a-receipt"] {
        b.goto(&app.url(path)).await;
        b.watch_csp().await;
        b.assert_no_csp_violation(path).await;
    }
    // The check itself: an inline style is what this CSP refuses, and the check says so.
    b.js("const s = document.createElement('style'); s.textContent = 'body { color: red }'; document.head.appendChild(s);")
        .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = b.csp_violations().await;
        if found.iter().any(|v| v.contains("style-src")) {
            break;
        }
        assert!(Instant::now() < deadline, "an inline style went unnoticed: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.close().await;
}

#[tokio::test]
async fn browser_at_a_phone_sized_window_the_form_fits_and_send_is_in_reach() {
    let Some(b) = Browser::start(PHONE, true).await else {
        return;
    };
    let app = spawn_app().await;
    b.goto(&app.url("/f/quote")).await;
    b.watch_csp().await;
    b.assert_fits_width("form", PHONE.0).await;

    // Sent empty: every required field's error, and still nothing to scroll sideways.
    b.tab_into_form("name").await;
    for _ in 0..8 {
        b.press(&Key::Tab).await;
    }
    assert_eq!(b.focused().await, "button");
    b.assert_focused_in_view("the Send button").await;
    b.assert_no_csp_violation("form").await;
    app.clock.advance(30);
    b.press(&Key::Enter).await;
    b.wait_for_page("/f/quote").await;
    b.watch_csp().await;
    assert!(b.text().await.contains("Please fix the"), "{}", b.text().await);
    b.assert_fits_width("error", PHONE.0).await;
    b.assert_no_csp_violation("error").await;

    fill_quote_form(&b, true, true).await;
    b.assert_focused_in_view("the Send button").await;
    b.press(&Key::Enter).await;
    b.wait_for_page("/f/quote/sent").await;
    b.watch_csp().await;
    assert!(b.text().await.contains("Check your inbox"), "{}", b.text().await);
    b.assert_fits_width("sent", PHONE.0).await;
    b.assert_no_csp_violation("sent").await;
    assert_eq!(app.message(MessageId(1)).await.status, Status::Pending);
    b.close().await;
}

#[tokio::test]
async fn browser_the_code_from_the_mail_typed_on_the_sent_page_confirms_the_message() {
    let Some(b) = Browser::start(DESKTOP, false).await else {
        return;
    };
    let app = spawn_app().await;
    b.goto(&app.url("/f/quote")).await;
    fill_quote_form(&b, true, true).await;
    app.clock.advance(30);
    b.press(&Key::Enter).await;
    b.wait_for_page("/f/quote/sent").await;

    // The sent page's own form posts too: the code goes in by keyboard, Enter sends it.
    let code = code(&app.mail(1).await);
    b.tab_into_form("code").await;
    b.press(&code).await;
    b.press(&Key::Enter).await;
    b.wait_for_path_ending("/confirmed").await;
    b.watch_csp().await;
    let text = b.text().await;
    assert!(text.contains("Thank you"), "{text}");
    b.assert_no_csp_violation("confirmed").await;
    let m = app.message(MessageId(1)).await;
    assert!(matches!(m.status, Status::Verified | Status::Released), "{m:?}");
    b.close().await;
}
