//! A private PostgreSQL cluster for one test, in a temporary directory on a free loopback
//! port, that the test may crash (`pg_ctl stop -m immediate`) and start again. The
//! shared PostgreSQL of the machine is never touched.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The user the cluster runs as when the test runs as root (initdb refuses root).
const UNPRIVILEGED: &str = "postgres";

/// The directory holding `initdb` and `pg_ctl`: `SWT_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` (Debian), else wherever `pg_ctl` is on the `PATH`.
pub fn find_bin() -> Option<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("SWT_PG_BIN") {
        return Some(PathBuf::from(dir)).filter(|d| has_tools(d));
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, d)| has_tools(d))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Some(dir);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| has_tools(d))
}

/// A running (or crashed) private cluster; dropped, it is stopped and deleted.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    run_as: Option<&'static str>,
}

impl Cluster {
    /// `initdb` into a new temporary directory, then start it.
    pub fn create(bin: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("swt-fault-pg.").tempdir()?;
        let root = std::fs::metadata("/proc/self")?.uid() == 0;
        let run_as = root.then_some(UNPRIVILEGED);
        if let Some(user) = run_as {
            run(Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path()))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let cluster = Self {
            dir,
            bin: bin.to_owned(),
            port,
            run_as,
        };
        let data = cluster.data();
        run(cluster
            .tool("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data))?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file (kept for failure messages).
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", user, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// The URL of a database in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the cluster and waits until it accepts connections (crash recovery
    /// included).
    pub fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.path().display()
        );
        run(self
            .tool("pg_ctl")
            .args(["start", "-w", "-t", "120", "-o", &options, "-l"])
            .arg(self.log())
            .arg("-D")
            .arg(self.data()))
    }

    /// Crashes the cluster: every PostgreSQL process quits at once, without a
    /// checkpoint; the next start recovers from the WAL.
    pub fn crash(&self) -> anyhow::Result<()> {
        run(self
            .tool("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Best effort: the cluster may already be down.
        let _ = self
            .tool("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data())
            .output();
    }
}

/// Runs a command, failing with its output if it fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
