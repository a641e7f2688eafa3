//! The real `ascent` binary as a test drives it: its own data directory and port,
//! admin commands, `serve` started and killed, the database opened beside it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ascent_evaluator::client::Client;
use ureq::http::Method;

use super::TestResult;

pub struct Server {
    data: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Server {
    pub fn ascent(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ascent"));
        command
            .env("ASCENT_DATA_DIR", &self.data)
            .env("ASCENT_ADDR", format!("127.0.0.1:{}", self.port))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    pub fn admin(&self, args: &[&str]) -> TestResult {
        let status = self.ascent().arg("admin").args(args).status()?;
        if !status.success() {
            return Err(format!("ascent admin {args:?} failed").into());
        }
        Ok(())
    }

    /// A migrated data directory with `preset` loaded and the demo's held-out data
    /// added to phase 1.
    pub fn new(data: &Path, preset: &Path) -> TestResult<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let server = Server {
            data: data.to_owned(),
            port,
            child: None,
        };
        server.admin(&["migrate"])?;
        server.admin(&["phases", "load", &preset.display().to_string()])?;
        let heldout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/data/heldout.bin");
        server.admin(&[
            "data",
            "add",
            "--phase",
            "1",
            &heldout.display().to_string(),
        ])?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self, workers: usize) -> TestResult {
        let child = self
            .ascent()
            .arg("serve")
            .env("ASCENT_WORKERS", workers.to_string())
            .spawn()?;
        self.child = Some(child);
        let client = Client::new(&self.url(), None)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = client.send(Method::GET, "/healthz", &[], ()) {
                if response.status() == 200 {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the server did not start".into())
    }

    /// SIGKILL: no shutdown, no flushing, no goodbye.
    pub fn kill(&mut self) -> TestResult {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Runs `work` on the server's database, directly.
    pub fn with_database<T>(
        &self,
        work: impl AsyncFnOnce(&ascent_store::SqlitePool) -> TestResult<T>,
    ) -> TestResult<T> {
        let url = format!("sqlite://{}", self.data.join("ascent.db").display());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let pool = ascent_store::connect(&url).await?;
            let result = work(&pool).await;
            pool.close().await;
            result
        })
    }

    /// A contributor with an API token, written straight into the database.
    pub fn contributor(&self, handle: &str) -> TestResult<String> {
        self.with_database(async |pool| Ok(super::contributor(pool, handle).await?.1))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
