//! A real terminal for the end-to-end tests: the binary run in a tmux server of its own.

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A tmux server of its own (`tmux -L NAME`), so parallel tests and the user's tmux never
/// share a server.
pub struct Tmux {
    name: String,
}

impl Tmux {
    pub fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name]);
        cmd
    }

    pub fn start(name: &str) -> Tmux {
        Tmux::start_sized(name, 100, 30)
    }

    pub fn start_sized(name: &str, width: u16, height: u16) -> Tmux {
        let ok = Command::new("tmux").arg("-V").output().map(|o| o.status.success()).unwrap_or(false);
        assert!(ok, "these tests drive a real terminal through tmux: install it (apt-get install tmux)");
        let t = Tmux { name: format!("{name}-{}", std::process::id()) };
        let status = t
            .tmux()
            .args([
                "new-session",
                "-d",
                "-s",
                "main",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                "bash",
                "--norc",
                "--noprofile",
            ])
            .env("PS1", "$ ")
            .env_remove("MEMSCOPE_DEMO")
            .env_remove("NO_COLOR")
            .status()
            .unwrap();
        assert!(status.success());
        t
    }

    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            let status = self.tmux().args(["send-keys", "-t", "main", key]).status().unwrap();
            assert!(status.success());
            sleep(Duration::from_millis(60));
        }
    }

    pub fn line(&self, text: &str) {
        let status = self.tmux().args(["send-keys", "-t", "main", "-l", text]).status().unwrap();
        assert!(status.success());
        self.keys(&["Enter"]);
    }

    pub fn screen(&self) -> String {
        let out = self.tmux().args(["capture-pane", "-p", "-t", "main"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows every one of `texts`.
    pub fn wait_for(&self, texts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {texts:?}; screen:\n{screen}");
            sleep(Duration::from_millis(100));
        }
    }

    /// Whether the terminal shows its cursor (tmux's own record of DECTCEM, `ESC [ ? 25 h/l`).
    pub fn cursor_visible(&self) -> bool {
        let out =
            self.tmux().args(["display-message", "-p", "-t", "main", "#{cursor_flag}"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// The shell is back in cooked mode with echo, shows the cursor, and runs commands.
    pub fn assert_shell_usable(&self) {
        // Before anything else runs: a command's output could show the cursor again.
        assert!(self.cursor_visible(), "the cursor is still hidden:\n{}", self.screen());
        self.line("clear; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo; echo ok-$((40+2))");
        let screen = self.wait_for(&["ok-42"]);
        assert!(screen.contains("icanon echo"), "terminal modes not restored:\n{screen}");
        assert!(!screen.contains("?1049"), "{screen}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self.tmux().args(["display-message", "-p", "#{socket_path}"]).output();
        let _ = self.tmux().arg("kill-server").stderr(std::process::Stdio::null()).status();
        if let Ok(out) = socket {
            let _ = std::fs::remove_file(String::from_utf8_lossy(&out.stdout).trim());
        }
    }
}

impl Tmux {
    /// Waits until `ok` holds of the screen; `what` names it in the failure. Up to 5 minutes:
    /// the tour's series of 41 epochs takes 100 s on a busy 2-core machine.
    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{screen}");
            sleep(Duration::from_millis(100));
        }
    }
}
