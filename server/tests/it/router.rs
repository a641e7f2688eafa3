//! The real router against a fresh migrated database per test: pages, API, accounts,
//! CSRF, throttling and organizer access, over HTTP requests as a browser sends them.

use ascent_domain::account::{Email, Handle, Password};
use ascent_domain::preset::parse_preset;
use ascent_domain::views::Role;
use ascent_server::config::Config;
use ascent_server::http::router;
use ascent_server::state::AppState;
use ascent_store::submissions::{self, NewSubmission, ScoreRecord};
use ascent_store::{accounts, phases, SqlitePool};
use axum::body::Body;
use axum::Router;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

async fn app(pool: &SqlitePool) -> Result<Router, Box<dyn std::error::Error>> {
    let now = ascent_store::now();
    let preset = parse_preset(include_str!("../../../presets/demo.toml"), now)?;
    phases::load_preset(pool, &preset, now, false).await?;
    let config = Config {
        addr: "127.0.0.1:3000".parse()?,
        data_dir: "data".into(),
        database_url: String::new(),
        site_root: "target/site".into(),
        trust_forwarded_for: false,
        workers: 0,
        dev_attestation: false,
    };
    Ok(router(AppState::new(pool.clone(), config)))
}

async fn user(
    pool: &SqlitePool,
    handle: &str,
    role: Role,
) -> Result<i64, Box<dyn std::error::Error>> {
    let viewer = accounts::register(
        pool,
        &Email::parse(&format!("{handle}@example.org"))?,
        &Handle::parse(handle)?,
        &Password::parse("correct horse battery")?,
        role,
    )
    .await?;
    Ok(viewer.id)
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The value a `Set-Cookie` of this reply gives to `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            pair.strip_prefix(&format!("{name}=")).map(str::to_owned)
        })
    }

    /// The `action` of the form whose action contains `name`.
    fn form_action(&self, name: &str) -> Option<String> {
        self.body
            .match_indices("action=\"")
            .map(|(i, m)| &self.body[i + m.len()..])
            .filter_map(|rest| rest.split_once('"').map(|(action, _)| action.to_owned()))
            .find(|action| action.contains(name))
    }
}

async fn send(app: &Router, request: Request<Body>) -> Result<Reply, Box<dyn std::error::Error>> {
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

fn get(path: &str, cookie: &str) -> Result<Request<Body>, http::Error> {
    Request::get(path)
        .header(header::ACCEPT, "text/html")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
}

fn post_form(
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> Result<Request<Body>, http::Error> {
    let body = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('@', "%40").replace(' ', "+").replace('/', "%2F")
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    Request::post(path)
        .header(header::ACCEPT, "text/html")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "http://127.0.0.1:3000")
        .header(header::REFERER, "http://127.0.0.1:3000/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
}

/// A visitor's first page: the CSRF cookie it was given and the login form's action.
async fn visit_login(app: &Router) -> Result<(String, String), Box<dyn std::error::Error>> {
    let page = send(app, get("/login", "")?).await?;
    let csrf = page
        .cookie("__Host-ascent-csrf")
        .ok_or("no CSRF cookie on first visit")?;
    let action = page.form_action("login").ok_or("no login form")?;
    assert!(
        page.body.contains(&format!("value=\"{csrf}\"")),
        "the form repeats the CSRF token"
    );
    Ok((csrf, action))
}

/// Logs in through the form; returns the reply and the cookie header for later requests.
async fn log_in(
    app: &Router,
    email: &str,
    password: &str,
) -> Result<(Reply, String), Box<dyn std::error::Error>> {
    let (csrf, action) = visit_login(app).await?;
    let cookie = format!("__Host-ascent-csrf={csrf}");
    let reply = send(
        app,
        post_form(
            &action,
            &cookie,
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
            ],
        )?,
    )
    .await?;
    let session = reply.cookie("__Host-ascent-session").unwrap_or_default();
    Ok((reply, format!("{cookie}; __Host-ascent-session={session}")))
}

#[sqlx::test(migrations = "../migrations")]
async fn home_renders_the_seven_phases(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    let home = send(&app, get("/", "")?).await?;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.body.matches("class=\"phase-card").count(), 7);
    assert_eq!(home.body.matches("phase-card current").count(), 1);
    assert!(home.body.contains("How to take part"));
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn home_draws_the_scaling_curve_through_the_scored_phases(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    let ada = user(&pool, "ada", Role::Contributor).await?;
    // Phases 1, 2 and 4 have scores (phase 1 two of them); 3, 5, 6 and 7 none.
    for (phase, loss, at) in [(1, 3.1, 100), (1, 2.9, 150), (2, 2.6, 200), (4, 2.2, 300)] {
        let id = submissions::create(
            &pool,
            &NewSubmission {
                phase,
                user_id: ada,
                weights_sha256: format!("{phase}-{at}"),
                bytes: 1,
                at,
            },
        )
        .await?;
        let score = ScoreRecord {
            loss,
            public_loss: loss,
            private_loss: loss,
            parameters: 50_000,
            at,
        };
        submissions::record_score(&pool, id, score).await?;
    }
    let home = send(&app, get("/", "")?).await?;
    let body = &home.body;
    assert_eq!(body.matches("class=\"scaling-point\"").count(), 3);
    for phase in [1, 2, 4] {
        assert!(
            body.contains(&format!("data-phase=\"{phase}\" class=\"scaling-point\"")),
            "phase {phase} has its point: {body}"
        );
    }
    assert_eq!(body.matches("class=\"cap\"").count(), 3);
    assert_eq!(body.matches("class=\"cap unscored\"").count(), 4);
    assert_eq!(body.matches("class=\"scaling-line\"").count(), 1);
    assert!(body.contains("3 of 7 phases scored, from 2.9000 at 100K parameters to 2.2000 at 800K"));
    assert!(body.contains("<title id=\"scaling-chart-title\">"));

    // Phase 1's chart: two records, two scored submissions.
    let phase = send(&app, get("/phases/1", "")?).await?;
    assert!(phase.body.contains(">2 scored</text>"), "{}", phase.body);
    assert!(phase
        .body
        .contains("2 records, from 3.1000 to 2.9000; 2 submissions scored so far."));
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn the_api_lists_phases_and_leaderboards(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    let ada = user(&pool, "ada", Role::Contributor).await?;
    let bob = user(&pool, "bob", Role::Contributor).await?;
    for (who, loss, at) in [(ada, 3.0, 100), (bob, 2.5, 200), (ada, 2.0, 300)] {
        let id = submissions::create(
            &pool,
            &NewSubmission {
                phase: 1,
                user_id: who,
                weights_sha256: format!("{who}{at}"),
                bytes: 1,
                at,
            },
        )
        .await?;
        let score = ScoreRecord {
            loss,
            public_loss: loss,
            private_loss: loss,
            parameters: 50_000,
            at,
        };
        submissions::record_score(&pool, id, score).await?;
    }

    let phases: serde_json::Value =
        serde_json::from_str(&send(&app, get("/api/phases", "")?).await?.body)?;
    let list = phases.as_array().ok_or("an array")?;
    assert_eq!(list.len(), 7);
    assert_eq!(list[0]["number"], 1);
    assert_eq!(list[0]["state"], "open");
    assert_eq!(list[0]["contributors"], 2);
    assert_eq!(list[0]["best_loss"], 2.0);
    assert_eq!(list[6]["max_parameters"], 6_400_000);
    assert!(list[0]["opens_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));

    let board: serde_json::Value = serde_json::from_str(
        &send(&app, get("/api/phases/1/leaderboard", "")?)
            .await?
            .body,
    )?;
    assert_eq!(board["total"], 2);
    assert_eq!(board["rows"][0]["contributor"], "ada");
    assert_eq!(board["rows"][0]["best_loss"], 2.0);
    assert_eq!(board["rows"][1]["contributor"], "bob");

    let csv = send(&app, get("/api/phases/1/leaderboard.csv", "")?).await?;
    assert!(csv.header(header::CONTENT_TYPE).starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[1].starts_with("1,ada,2,"));
    assert!(lines[2].starts_with("2,bob,2.5,"));

    let page = send(&app, get("/phases/1", "")?).await?;
    assert!(
        page.body.contains("class=\"step\""),
        "the chart is rendered on the server: {}",
        page.body
    );
    assert!(page.body.contains(">ada</a>"));

    // The page is cached by the phase's version: a new score shows on the next visit.
    let cyd = user(&pool, "cyd", Role::Contributor).await?;
    let id = submissions::create(
        &pool,
        &NewSubmission {
            phase: 1,
            user_id: cyd,
            weights_sha256: "cyd".into(),
            bytes: 1,
            at: 400,
        },
    )
    .await?;
    let score = ScoreRecord {
        loss: 1.5,
        public_loss: 1.5,
        private_loss: 1.5,
        parameters: 60_000,
        at: 400,
    };
    submissions::record_score(&pool, id, score).await?;
    let page = send(&app, get("/phases/1", "")?).await?;
    assert!(
        page.body.contains(">cyd</a>"),
        "the cached page was refreshed"
    );
    assert!(page.body.contains("3 contributors · 4 submissions"));

    let missing = send(&app, get("/api/phases/9/leaderboard", "")?).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("error"));
    let too_many = send(&app, get("/api/phases/1/leaderboard?limit=5000", "")?).await?;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_pages_are_404(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    for path in [
        "/nope",
        "/phases/9",
        "/phases/x",
        "/contributors/nobody",
        "/submissions/77",
    ] {
        let reply = send(&app, get(path, "")?).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.body.contains("This page does not exist."), "{path}");
    }
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn login_sets_a_host_session_cookie(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    user(&pool, "ada", Role::Contributor).await?;
    let (reply, cookie) = log_in(&app, "ada@example.org", "correct horse battery").await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header(header::LOCATION), "/contributors/ada");
    let set = reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-ascent-session="))
        .ok_or("no session")?;
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    let home = send(&app, get("/", &cookie)?).await?;
    assert!(
        home.body.contains("href=\"/contributors/ada\""),
        "the header shows who is signed in"
    );

    // Logging out ends the session on the server, not only in the browser.
    let logout = home.form_action("logout").ok_or("no logout form")?;
    let csrf = cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let out = send(&app, post_form(&logout, &cookie, &[("csrf_token", &csrf)])?).await?;
    assert_eq!(out.status, StatusCode::FOUND);
    let after = send(&app, get("/", &cookie)?).await?;
    assert!(!after.body.contains("href=\"/contributors/ada\""));
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn register_through_the_form(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    let page = send(&app, get("/register", "")?).await?;
    let csrf = page.cookie("__Host-ascent-csrf").ok_or("csrf")?;
    let action = page.form_action("register").ok_or("no register form")?;
    let cookie = format!("__Host-ascent-csrf={csrf}");
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("email", "grace@example.org"),
        ("handle", "grace"),
        ("password", "compilers are fun"),
    ];
    let reply = send(&app, post_form(&action, &cookie, &fields)?).await?;
    assert_eq!(reply.status, StatusCode::FOUND);
    assert_eq!(reply.header(header::LOCATION), "/contributors/grace");
    assert!(reply.cookie("__Host-ascent-session").is_some());
    let profile = send(&app, get("/contributors/grace", "")?).await?;
    assert_eq!(profile.status, StatusCode::OK);

    // The same email again: refused, and the reason travels back to the form.
    let again = send(&app, post_form(&action, &cookie, &fields)?).await?;
    assert_eq!(again.status, StatusCode::FOUND);
    assert!(
        again.header(header::LOCATION).contains("__err="),
        "{}",
        again.header(header::LOCATION)
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&pool)
        .await?;
    assert_eq!(count, 1);
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn state_changes_without_the_csrf_token_are_refused(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    user(&pool, "ada", Role::Contributor).await?;
    let (csrf, action) = visit_login(&app).await?;
    let credentials = [
        ("email", "ada@example.org"),
        ("password", "correct horse battery"),
    ];
    let cookie = format!("__Host-ascent-csrf={csrf}");
    let with_field = |token: &str| {
        let mut fields = vec![("csrf_token", token)];
        fields.extend_from_slice(&credentials);
        post_form(&action, &cookie, &fields)
    };
    let cases = [
        ("no cookie, no field", post_form(&action, "", &credentials)?),
        (
            "cookie but no field",
            post_form(&action, &cookie, &credentials)?,
        ),
        ("wrong field", with_field(&"0".repeat(64))?),
    ];
    for (case, request) in cases {
        let reply = send(&app, request).await?;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{case}");
        assert!(reply.cookie("__Host-ascent-session").is_none(), "{case}");
    }
    let mut foreign = with_field(&csrf)?;
    foreign
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse()?);
    assert_eq!(
        send(&app, foreign).await?.status,
        StatusCode::FORBIDDEN,
        "foreign origin"
    );
    let mut cross = with_field(&csrf)?;
    cross
        .headers_mut()
        .insert("sec-fetch-site", "cross-site".parse()?);
    assert_eq!(
        send(&app, cross).await?.status,
        StatusCode::FORBIDDEN,
        "cross-site fetch"
    );
    assert_eq!(
        send(&app, with_field(&csrf)?).await?.status,
        StatusCode::FOUND,
        "the real form works"
    );
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn repeated_failures_are_throttled(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    user(&pool, "ada", Role::Contributor).await?;
    for attempt in 1..=5 {
        let (reply, _) = log_in(&app, "ada@example.org", "wrong password!").await?;
        assert_eq!(
            reply.status,
            StatusCode::FOUND,
            "attempt {attempt} is answered (back to the form)"
        );
        assert!(reply.header(header::LOCATION).contains("__err="));
    }
    // Now even the right password must wait.
    let (reply, _) = log_in(&app, "ada@example.org", "correct horse battery").await?;
    assert!(
        reply.cookie("__Host-ascent-session").is_none(),
        "no session while throttled"
    );
    let retry: i64 = reply.header(header::RETRY_AFTER).parse()?;
    assert!((1..=2).contains(&retry), "retry after {retry}");
    let failures: i64 = sqlx::query_scalar(
        "SELECT failures FROM login_failures WHERE key = 'account:ada@example.org'",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(
        failures, 5,
        "a throttled attempt does not count as a failure"
    );
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn organizer_pages_refuse_everyone_else(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    user(&pool, "ada", Role::Contributor).await?;
    user(&pool, "org", Role::Organizer).await?;

    let anonymous = send(&app, get("/organizer", "")?).await?;
    assert_eq!(anonymous.status, StatusCode::FOUND);
    assert_eq!(anonymous.header(header::LOCATION), "/login?next=/organizer");

    let (_, contributor) = log_in(&app, "ada@example.org", "correct horse battery").await?;
    let refused = send(&app, get("/organizer", &contributor)?).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("Organizers only"));

    let (_, organizer) = log_in(&app, "org@example.org", "correct horse battery").await?;
    let console = send(&app, get("/organizer", &organizer)?).await?;
    assert_eq!(console.status, StatusCode::OK);
    assert!(console.body.contains("Organizer console"));
    assert!(
        console.body.contains("loaded from preset demo"),
        "the transitions are listed"
    );
    Ok(())
}

#[sqlx::test(migrations = "../migrations")]
async fn a_draft_phase_is_seen_by_organizers_only(pool: SqlitePool) -> TestResult {
    let app = app(&pool).await?;
    sqlx::query("UPDATE phases SET state = 'draft' WHERE number = 7")
        .execute(&pool)
        .await?;
    user(&pool, "ada", Role::Contributor).await?;
    user(&pool, "org", Role::Organizer).await?;
    let (_, contributor) = log_in(&app, "ada@example.org", "correct horse battery").await?;
    let (_, organizer) = log_in(&app, "org@example.org", "correct horse battery").await?;

    for cookie in ["", contributor.as_str()] {
        let home = send(&app, get("/", cookie)?).await?;
        assert!(home.body.contains("href=\"/phases/6\""));
        assert!(!home.body.contains("href=\"/phases/7\""), "{}", home.body);
        let page = send(&app, get("/phases/7", cookie)?).await?;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
    // (A visitor is sent to log in first, as for any phase.)
    let submit = send(&app, get("/phases/7/submit", &contributor)?).await?;
    assert_eq!(submit.status, StatusCode::NOT_FOUND);
    for path in [
        "/api/phases/7",
        "/api/phases/7/leaderboard",
        "/api/phases/7/events",
    ] {
        let reply = send(&app, get(path, &organizer)?).await?;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: the API is public"
        );
    }
    let list: serde_json::Value =
        serde_json::from_str(&send(&app, get("/api/phases", "")?).await?.body)?;
    assert_eq!(list.as_array().map(Vec::len), Some(6));

    let home = send(&app, get("/", &organizer)?).await?;
    assert!(home.body.contains("href=\"/phases/7\""));
    let page = send(&app, get("/phases/7", &organizer)?).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("state-draft"),
        "the page says it is a draft"
    );
    Ok(())
}
