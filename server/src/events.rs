//! Change notices inside one server process: whenever a submission or the standings
//! change here, the counter moves and every live event stream looks again. Streams
//! also look every few seconds anyway, so changes made by another process (a second
//! web server on the same database) reach them too.

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Changes {
    sender: watch::Sender<u64>,
}

impl Default for Changes {
    fn default() -> Changes {
        Changes {
            sender: watch::channel(0).0,
        }
    }
}

impl Changes {
    /// Tells every listener that something changed.
    pub fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}
