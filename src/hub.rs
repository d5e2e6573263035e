//! `framewire hub`: flags → a hub that many senders push to (`serve --push HOST:PORT --name
//! NAME`), each sender's stream received on its own thread by the kit's hub; what each sender
//! does is printed, and with `--stats json` each one's figures at exit.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use clap::Args;
use framewire_core::{Flow, Frame};
use framewire_kit::hub::{Hub, Senders};
use framewire_kit::value;
use framewire_kit::watch::FrameInfo;
use framewire_net::ServerConfig;
use framewire_session::Outcome;

use crate::args::{StatsArgs, TlsServerArgs, TokenArgs};

#[derive(Debug, Args)]
pub struct HubArgs {
    /// Address to listen on for senders (serve --push HOST:PORT); port 0 picks a free one
    /// (printed). Use 0.0.0.0:9990 to take senders from a network
    #[arg(long, default_value = "127.0.0.1:9990", value_parser = value::addr, value_name = "ADDR")]
    listen: SocketAddr,
    /// Senders taken at once; one more is told the hub is busy, and dials again later
    #[arg(long, default_value = "64", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_senders: u32,
    /// Stop after receiving this many frames, from all senders together
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    #[command(flatten)]
    stats: StatsArgs,
    /// Time without data from a sender before its stream counts as lost (it dials again)
    #[arg(long, default_value = "15s", value_parser = value::duration, value_name = "DURATION")]
    idle_timeout: Duration,
    /// Time a new connection has to open its push
    #[arg(long, default_value = "5s", value_parser = value::duration, value_name = "DURATION")]
    handshake_timeout: Duration,
    /// Largest frame payload accepted, in bytes (K, M, G suffixes)
    #[arg(long, default_value = "64M", value_parser = value::bytes, value_name = "BYTES")]
    max_payload: u32,
    #[command(flatten)]
    token: TokenArgs,
    /// Speak TLS on --listen (senders need serve --push-tls). Without --tls-cert/--tls-key, the
    /// self-signed certificate kept in the config folder, as serve --tls. Prints `tls
    /// fingerprint sha256:HEX`
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    tls_server: TlsServerArgs,
}

pub fn run(args: HubArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        handshake_timeout: args.handshake_timeout,
        token: args.token.token()?,
        tls: args.tls_server.server(args.tls)?,
        ..ServerConfig::default()
    };
    crate::args::warn_if_open(args.listen, config.token.is_some(), "--listen");
    let printer = Arc::new(Printer {
        limit: args.frames,
        frames: AtomicU64::new(0),
        done: (Mutex::new(false), Condvar::new()),
        stats: Mutex::new(BTreeMap::new()),
    });
    let listening = framewire_kit::transport::hub(
        args.listen,
        args.max_senders as usize,
        (args.idle_timeout, args.max_payload),
        config,
        |e| eprintln!("{}", framewire_kit::lines::server_event("sender", &e)),
    )?;
    let stop = Arc::clone(&printer);
    crate::live::stop_on_ctrl_c_or_enter(move || stop.finish())?;
    let mut hub = Hub::start(listening, Arc::clone(&printer) as Arc<dyn Senders>)?;
    println!("listening on {}", hub.at());
    if let Some(fingerprint) = hub.fingerprint() {
        println!("tls fingerprint {fingerprint}");
    }
    let _ = std::io::stdout().flush();
    printer.wait();
    hub.stop();
    let received = printer.frames.load(Ordering::SeqCst);
    println!("stopped after receiving {received} frames");
    let stats = std::mem::take(&mut *printer.stats.lock().unwrap_or_else(PoisonError::into_inner));
    args.stats
        .print(&serde_json::json!({ "frames": received, "senders": stats }))
}

/// What the hub prints of its senders, and when it stops.
struct Printer {
    limit: Option<u64>,
    frames: AtomicU64,
    done: (Mutex<bool>, Condvar),
    /// Each sender's figures, by name, as its last stream left them.
    stats: Mutex<BTreeMap<String, serde_json::Value>>,
}

impl Printer {
    fn finish(&self) {
        *self.done.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.done.1.notify_all();
    }

    fn wait(&self) {
        let mut done = self.done.0.lock().unwrap_or_else(PoisonError::into_inner);
        while !*done {
            done = self
                .done
                .1
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Senders for Printer {
    fn joined(&self, name: &str, peer: &str) {
        println!("{name} joined: {peer}");
        let _ = std::io::stdout().flush();
    }

    fn frame(&self, _name: &str, _frame: &mut Frame, _info: &FrameInfo) -> Flow {
        let n = self.frames.fetch_add(1, Ordering::SeqCst) + 1;
        if self.limit.is_some_and(|limit| n >= limit) {
            self.finish();
        }
        Flow::Continue
    }

    fn left(&self, name: &str, outcome: &Outcome) {
        let frames = outcome.stats.frames();
        let why = match &outcome.result {
            Ok(()) => "its stream ended".to_string(),
            Err(e) => framewire_session::chain(e),
        };
        println!("{name} left after {frames} frames: {why}");
        let _ = std::io::stdout().flush();
        if let Some(stream) = &outcome.stream {
            let extra = framewire_kit::Extra::default();
            if let Ok(report) = crate::assemble::received_stats(&outcome.stats, stream, &extra) {
                let mut all = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
                all.insert(name.to_string(), report);
            }
        }
    }
}
