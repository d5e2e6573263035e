//! `framewire chat`: a two-way call over one TCP connection, or over UDP (a datagram stream
//! each way). Each side runs the session's send path (its source → its ladder → the call)
//! beside its receive path (the peer's stream → decode → the window), one window showing the
//! peer with this side's picture as an inset.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use clap::Args;
use framewire_core::{CallSide, FrameSink};
use framewire_display::window::TitleStatus;
use framewire_kit::value;
use framewire_net::{CallConfig, ClientConfig, ServerEvent};
use framewire_session::{Outcome, ReceiveEvent, StopSignal};
use serde_json::json;

use crate::args::{LinkArgs, ReceiveArgs, TlsClientArgs, TlsServerArgs, TokenArgs};
use crate::assemble::TransportArgs;
use crate::live::LiveLine;
use crate::sending::SendArgs;
use framewire_kit::call::{Sending, Sent};
use framewire_kit::sink::KeepLast;
use framewire_kit::{Extra, Place, Prepared};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("side").required(true).args(["listen", "connect"])))]
pub struct ChatArgs {
    /// Wait for a call on this address; port 0 picks a free one (printed)
    #[arg(long, value_parser = value::addr, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Call the side listening on this address
    #[arg(long, value_parser = value::host_port, value_name = "HOST:PORT")]
    connect: Option<value::HostPort>,
    /// With --listen: when the peer hangs up, wait for the next call instead of exiting
    #[arg(long, conflicts_with = "connect")]
    wait: bool,
    #[command(flatten)]
    send: SendArgs,
    #[command(flatten)]
    receive: ReceiveArgs,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    token: TokenArgs,
    #[command(flatten)]
    net: TransportArgs,
    /// Speak TLS. The listener presents --tls-cert/--tls-key, else the self-signed certificate
    /// kept in the config folder (as serve --tls); the caller trusts it as view --tls does (on
    /// first use through known_hosts, or --tls-pin, or --tls-ca). With --transport udp, both
    /// streams' datagrams are sealed under keys from the caller's TLS control connection
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    tls_server: TlsServerArgs,
    #[command(flatten)]
    tls_client: TlsClientArgs,
}

pub fn run(args: ChatArgs) -> anyhow::Result<()> {
    args.net.check("chat", None);
    let wrong_side = match (args.listen, &args.connect) {
        (Some(_), _) => args.tls_client.given().map(|f| (f, "--listen <ADDR>")),
        _ => args
            .tls_server
            .given()
            .map(|f| (f, "--connect <HOST:PORT>")),
    };
    if let Some((flag, side)) = wrong_side {
        let message = format!("the argument '{flag}' cannot be used with '{side}'");
        crate::args::exit_usage("chat", &message);
    }
    if !args.receive.headless {
        framewire_display::window::display_available()
            .map_err(|e| anyhow::anyhow!("{e}; add --headless to chat without a window"))?;
    }
    let prepared = args.send.prepare(!args.receive.headless)?;
    let sent = Arc::new(Mutex::new(Sent::default()));
    let (side, extra) = open_side(&args, &prepared, &sent)?;
    let side: Arc<dyn CallSide> = Arc::from(side);
    let signal = Arc::new(StopSignal::default());
    let hang_up = {
        let (signal, side) = (Arc::clone(&signal), Arc::clone(&side));
        move || {
            signal.stop();
            side.hang_up();
        }
    };
    crate::live::stop_on_ctrl_c_or_enter(hang_up.clone())?;
    if let Some((at, fingerprint)) = side.listening() {
        println!("listening on {at}");
        if let Some(fingerprint) = fingerprint {
            println!("tls fingerprint {fingerprint}");
        }
        let _ = std::io::stdout().flush();
    }
    // stdout holds only what scripts read: the address and the stats.
    eprintln!("{}", prepared.describe());

    let publisher = side.sending();
    let title = match &args.connect {
        Some(addr) => format!("framewire chat with {addr}"),
        None => "framewire chat".to_string(),
    };
    let headless = args.receive.headless;
    let (args, worker_side, worker_sent) = (Arc::new(args), Arc::clone(&side), Arc::clone(&sent));
    let worker_args = Arc::clone(&args);
    // The call: this side's send path beside the peer's stream into `sink`, until either ends.
    let call = move |sink: &mut dyn FrameSink, inset, status| {
        let sending = Sending::start(prepared, publisher, inset)?;
        let (side, sent) = (&*worker_side, &worker_sent);
        let outcome = calls(&worker_args, side, &signal, sink, status, sent);
        sending.end(side)?;
        Ok::<_, anyhow::Error>(outcome)
    };
    let outcome = if headless {
        call(&mut KeepLast::new(false, None), None, None)?
    } else {
        let on_closed = hang_up.clone();
        let (closed, out) = framewire_display::window::run_beside(title, move |window| {
            window.on_close(hang_up);
            let (inset, status) = (Box::new(window.inset()), window.status());
            let mut window = window;
            call(&mut window, Some(inset as Box<dyn FrameSink>), Some(status))
        })?;
        if closed {
            on_closed();
        }
        out?
    };
    finish(&args, outcome, &sent, &extra)
}

/// Binds the listener or makes the dialer, sending `prepared`'s renditions and counting what
/// it sent in `sent`.
fn open_side(
    args: &ChatArgs,
    prepared: &Prepared,
    sent: &Arc<Mutex<Sent>>,
) -> anyhow::Result<(Box<dyn CallSide>, Extra)> {
    let token = args.token.token()?;
    if let Some(addr) = args.listen {
        crate::args::warn_if_open(addr, token.is_some(), "--listen");
    }
    let place = match (args.listen, &args.connect) {
        (Some(addr), _) => Place::Listen(addr),
        (None, Some(host)) => Place::Call(host.addr),
        (None, None) => anyhow::bail!("a call needs --listen or --connect"),
    };
    let (server_tls, client_tls) = match &args.connect {
        None => (args.tls_server.server(args.tls)?, None),
        Some(host) => (None, args.tls_client.client(args.tls, host)?),
    };
    let config = CallConfig {
        client: ClientConfig {
            read_timeout: args.receive.idle_timeout,
            token: token.clone(),
            tls: client_tls,
            ..ClientConfig::default()
        },
        server: framewire_net::ServerConfig {
            write_timeout: args.link.write_timeout,
            token,
            tls: server_tls,
            ..framewire_net::ServerConfig::default()
        },
    };
    let sent = Arc::clone(sent);
    let on_event = move |event: ServerEvent| sending_event(event, &sent);
    let ladder = (Arc::clone(&prepared.ladder), prepared.fps);
    let side = framewire_kit::call_side(place, &args.net.options(), ladder, config, on_event)?;
    Ok(side)
}

/// Counts what the sending half sent, and says when the peer's link moved it along the ladder
/// or a caller was refused.
fn sending_event(event: ServerEvent, sent: &Mutex<Sent>) {
    let mut sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
    sent.count(&event);
    if let Some(line) = framewire_kit::lines::call_sending_event(&event) {
        eprintln!("{line}");
    }
}

/// Receives calls into `sink`: one, or with `--wait` one after another until this side hangs
/// up. Returns the last call's outcome. The peer's word on how it shows this side's stream
/// goes to the window's title (`status`) and the stats.
fn calls(
    args: &ChatArgs,
    side: &dyn CallSide,
    signal: &StopSignal,
    sink: &mut dyn FrameSink,
    status: Option<TitleStatus>,
    sent: &Mutex<Sent>,
) -> Outcome {
    let config = args.receive.config();
    let mut live = LiveLine::on_stderr();
    let mut next_call = || {
        println!("waiting for the next call");
        let _ = std::io::stdout().flush();
    };
    let outcome = framewire_session::calls(
        side,
        &|s| framewire_codec::decoder(s),
        sink,
        signal,
        &config,
        args.wait.then_some(&mut next_call as &mut dyn FnMut()),
        &mut |event| {
            if let ReceiveEvent::PeerReport(report) = &event {
                if let Some(status) = &status {
                    status.set(framewire_kit::lines::peer_status(report));
                }
                sent.lock().unwrap_or_else(PoisonError::into_inner).at_peer = Some(*report);
            }
            let listening = args.listen.is_some();
            live.receive_event(event, |e| framewire_kit::lines::call_event(e, listening));
        },
    );
    live.end();
    outcome
}

/// Prints the stats and turns the outcome into the exit status.
fn finish(
    args: &ChatArgs,
    outcome: Outcome,
    sent: &Mutex<Sent>,
    extra: &Extra,
) -> anyhow::Result<()> {
    let Outcome {
        stats,
        stream,
        result,
    } = outcome;
    if args.receive.stats.asked() {
        let sent = sent.lock().unwrap_or_else(PoisonError::into_inner);
        let received = stream
            .map(|s| crate::assemble::received_stats(&stats, &s, extra))
            .transpose()
            .context("writing stats")?;
        // As the peer last said it shows this side's stream.
        let at_peer = sent.at_peer.map(|r| {
            json!({
                "fps": r.fps,
                "latency_ms": r.latency.map(|l| l.as_secs_f64() * 1000.0),
            })
        });
        let object = json!({
            "sent": {
                "frames": sent.frames,
                "fps": sent.fps(),
                "bytes": sent.bytes,
                "dropped": sent.dropped,
                "at_peer": at_peer,
            },
            "received": received,
        });
        args.receive.stats.print(&object)?;
    }
    result.map_err(anyhow::Error::new)
}
