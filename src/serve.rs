//! `framewire serve`: flags → a source, the codec registry, a framewire server (bound by
//! `assemble`) and HTTP → the session's send path (source → resize → encode once → every
//! viewer).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use framewire_core::{FrameSink, Publisher};
use framewire_kit::value;
use framewire_net::publish::{PushEvent, Target};
use framewire_net::{Board, CallConfig, ClientConfig, ServerConfig, ServerEvent};
use framewire_session::SendError;

use crate::args::{LinkArgs, TlsServerArgs, TokenArgs};
use crate::assemble::TransportArgs;
use crate::live::LiveLine;
use crate::sending::{SendArgs, print_send_event};

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    send: SendArgs,
    /// Also record the stream (its top rung, as sent) to this file, from the start
    #[arg(long, value_name = "PATH")]
    record: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one (printed). Use 0.0.0.0:9999 to serve a network
    #[arg(long, default_value = "127.0.0.1:9999", value_parser = value::addr, value_name = "ADDR")]
    listen: SocketAddr,
    /// Also serve HTTP here, for browsers and players: the page at / (H.264 from the WebSocket at
    /// /ws through WebCodecs, or MJPEG), MJPEG at /stream, /snapshot, /stats (JSON), /metrics
    /// (Prometheus). A port alone is on loopback; port 0 picks a free one (printed). Each protocol
    /// serves up to --max-viewers
    #[arg(long, value_parser = value::addr_or_port, value_name = "ADDR|PORT")]
    http: Option<SocketAddr>,
    /// A name browsers may reach --http by, besides its addresses and localhost (repeatable).
    /// Without a token, a request naming another host is refused (DNS rebinding)
    #[arg(long, value_name = "NAME", requires = "http")]
    http_host: Vec<String>,
    /// Also publish the stream to a media server, redialed with backoff while serving
    /// (repeatable): rtmp://HOST[:PORT]/APP/STREAM, rtmps://HOST[:PORT]/APP/STREAM, or
    /// rtsp://[USER:PASS@]HOST[:PORT]/PATH (RECORD, over the RTSP connection). It carries H.264
    /// at the top rung's size (encoded for it when the ladder is another codec; a build with
    /// the feature h264). Passwords and RTMP stream keys are printed as ****
    #[arg(long, value_name = "URL")]
    publish: Vec<String>,
    /// With an rtmps:// --publish: trust certificates this CA (a PEM file) signed for its host
    /// [default: trust on first use, kept in known_hosts in the config folder]
    #[arg(long, value_name = "PEM")]
    publish_tls_ca: Option<PathBuf>,
    /// Also push the stream to a hub (framewire hub --listen) as --name, dialing again with
    /// backoff whenever the connection is lost. Its stream starts on the top rung of the ladder
    /// and follows its link, as a viewer's does; the token applies as for viewers
    #[arg(long, value_parser = value::host_port, value_name = "HOST:PORT")]
    push: Option<value::HostPort>,
    /// With --push: the name this sender goes by at the hub (letters, digits and -_.:@, up to
    /// 64 bytes) [default: this machine's host name]
    #[arg(long, requires = "push", value_name = "NAME")]
    name: Option<String>,
    /// With --push: speak TLS to the hub (framewire hub --tls); its certificate is trusted on
    /// first use and kept in known_hosts, as view --tls
    #[arg(long, requires = "push")]
    push_tls: bool,
    /// Show what is being sent in a local window
    #[arg(long)]
    preview: bool,
    /// Stop after sending this many frames (frames are only captured while a viewer is connected)
    #[arg(long, value_name = "N")]
    frames: Option<u64>,
    /// Viewers served at once; one more is told the server is full
    #[arg(long, default_value = "64", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_viewers: u32,
    /// Time a new connection has to send its viewer hello
    #[arg(long, default_value = "5s", value_parser = value::duration, value_name = "DURATION")]
    handshake_timeout: Duration,
    #[command(flatten)]
    link: LinkArgs,
    #[command(flatten)]
    token: TokenArgs,
    #[command(flatten)]
    net: TransportArgs,
    /// With --transport udp: silence from a viewer (no report) after which it is gone
    /// [default: 5s]
    #[arg(long, value_parser = value::duration, value_name = "DURATION")]
    idle_timeout: Option<Duration>,
    /// Speak TLS on --listen (viewers need view --tls), and HTTPS on --http. With --transport
    /// udp, every datagram is sealed under keys from a TLS control connection on the TCP port
    /// of the same number. Without
    /// --tls-cert/--tls-key, a self-signed certificate is made once and kept in the config
    /// folder ($XDG_CONFIG_HOME/framewire or ~/.config/framewire: tls-cert.pem, tls-key.pem
    /// readable by you alone), so viewers that trusted it on first use still do after a
    /// restart. Prints `tls fingerprint sha256:HEX`
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    tls_server: TlsServerArgs,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let idle = args
        .idle_timeout
        .is_some()
        .then_some("--idle-timeout <DURATION>");
    args.net.check("serve", idle);
    if args.preview {
        framewire_display::window::display_available()
            .map_err(|e| anyhow::anyhow!("--preview: {e}; run without --preview"))?;
        let title = "framewire: transmitting video".to_string();
        let (_, served) = framewire_display::window::run_beside(title, move |window| {
            let stop = Arc::new(AtomicBool::new(false));
            let on_close = Arc::clone(&stop);
            window.on_close(move || on_close.store(true, Ordering::SeqCst));
            serve(args, stop, Some(Box::new(window)))
        })
        .context("--preview")?;
        return served;
    }
    serve(args, Arc::new(AtomicBool::new(false)), None)
}

/// Serves until `stop` is set or the source ends; with `preview`, shows it every frame sent
/// and stops when it closes.
fn serve(
    args: ServeArgs,
    stop: Arc<AtomicBool>,
    preview: Option<Box<dyn FrameSink>>,
) -> anyhow::Result<()> {
    // Read here, not by clap, whose error would repeat the URL with its password.
    let targets = args
        .publish
        .iter()
        .map(|url| Target::parse(url).map_err(|e| anyhow::anyhow!("--publish {e}")))
        .collect::<anyhow::Result<Vec<Target>>>()?;
    let mut prepared = args.send.prepare(preview.is_some())?;
    // Ctrl-C is handled before the address is announced, so that a script which reads the
    // address and then interrupts the server always gets a clean stop.
    let on_ctrlc = Arc::clone(&stop);
    ctrlc::set_handler(move || on_ctrlc.store(true, Ordering::SeqCst))
        .context("cannot install the Ctrl-C handler")?;
    let fps = prepared.fps;
    let config = config(&args)?;
    let tls = config.tls.clone();
    let board = Arc::new(Board::new(&prepared.source_name, fps));
    crate::args::warn_if_open(args.listen, config.token.is_some(), "--listen");
    let served = framewire_kit::server(
        args.listen,
        &args.net.options(),
        args.idle_timeout,
        (Arc::clone(&prepared.ladder), fps),
        config.clone(),
        &board,
        |e| print_event("viewer", e),
    )?;
    let http = args.http.map(|addr| {
        crate::args::warn_if_open(addr, config.token.is_some(), "--http");
        if config.token.is_some() && tls.is_none() && !addr.ip().is_loopback() {
            eprintln!(
                "framewire: warning: --http {addr} with a token and without --tls: browsers and \
                 curl send the token in clear (the login form, the Bearer header); add --tls"
            );
        }
        let ladder = Arc::clone(&prepared.ladder);
        let names = args.http_host.clone();
        framewire_kit::transport::http(addr, ladder, &board, config.clone(), names, |e| {
            print_event("http viewer", e)
        })
    });
    let http = http.transpose().context("--http")?;
    println!("listening on {}", served.at);
    if let Some(tls) = &tls {
        println!("tls fingerprint {}", tls.fingerprint());
    }
    if let Some(http) = &http {
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("http on {scheme}://{}/", http.at);
    }
    println!("{}", prepared.describe());
    let _ = std::io::stdout().flush();
    let source = prepared.source_name.clone();
    let mut publishers: Vec<Arc<dyn Publisher>> = vec![served.publisher];
    publishers.extend(http.map(|h| h.publisher));
    for target in targets {
        publishers.push(
            framewire_kit::transport::publish(
                target,
                Arc::clone(&prepared.ladder),
                args.publish_tls_ca.as_ref(),
                args.link.write_timeout,
                |e| print_push_event(&e),
            )
            .map_err(anyhow::Error::msg)?,
        );
    }
    if let Some(hub) = &args.push {
        publishers.push(push(&args, hub, &prepared, &config)?);
    }
    prepared.time_encodes(&board);
    let ladder = Arc::clone(&prepared.ladder);
    publishers.extend(
        args.record
            .and_then(|path| crate::files::recorder(&path, ladder, fps)),
    );
    let mut sender = prepared.sender(publishers, preview, args.frames)?;
    let mut live = LiveLine::on_stderr();
    let report = sender.run(&stop, &mut |e| print_send_event(e, &source, &mut live));
    live.end();
    let report = report.map_err(|e| match e {
        SendError::Preview(e) => anyhow::Error::new(e).context("--preview"),
        e => e.into(),
    })?;
    println!("stopped after sending {} frames", report.frames);
    if let Some(closing) = served.closing {
        println!("{}", closing());
    }
    if report.dropped_at_capture > 0 {
        println!(
            "{} captured frames dropped because the pipeline was busy (newest frame wins)",
            report.dropped_at_capture
        );
    }
    Ok(())
}

/// The limits every protocol's server keeps, and the token each asks for.
fn config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    Ok(ServerConfig {
        max_viewers: args.max_viewers as usize,
        handshake_timeout: args.handshake_timeout,
        write_timeout: args.link.write_timeout,
        token: args.token.token()?,
        tls: args.tls_server.server(args.tls)?,
        ..ServerConfig::default()
    })
}

/// The stream pushed to `hub` (`--push`), as `--name`.
fn push(
    args: &ServeArgs,
    hub: &value::HostPort,
    prepared: &framewire_kit::Prepared,
    config: &ServerConfig,
) -> anyhow::Result<Arc<dyn Publisher>> {
    let name = args.name.clone().unwrap_or_else(value::host_name);
    let tls = args
        .push_tls
        .then(|| framewire_kit::tls::client(None, None, &hub.name))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--push-tls: {e}"))?;
    let call = CallConfig {
        client: ClientConfig {
            token: config.token.clone(),
            tls,
            ..ClientConfig::default()
        },
        server: ServerConfig {
            write_timeout: config.write_timeout,
            ..ServerConfig::default()
        },
    };
    let said = name.clone();
    let pusher = framewire_kit::transport::push(
        hub.addr,
        &name,
        (Arc::clone(&prepared.ladder), prepared.fps),
        call,
        move |e| {
            let line = framewire_kit::lines::hub_push_event(&said, &e);
            match e {
                framewire_net::hub::PushEvent::Connected { .. } => println!("{line}"),
                _ => eprintln!("{line}"),
            }
            let _ = std::io::stdout().flush();
        },
    )
    .map_err(anyhow::Error::msg)?;
    Ok(pusher)
}

/// A push's events: a lost connection on stderr, the rest on stdout.
fn print_push_event(event: &PushEvent) {
    let line = framewire_kit::lines::push_event(event);
    match event {
        PushEvent::Lost { .. } => eprintln!("{line}"),
        _ => println!("{line}"),
    }
    let _ = std::io::stdout().flush();
}

/// A server's events about its viewers, `who` naming them: `http viewer 127.0.0.1:5000 ...`.
fn print_event(who: &str, event: ServerEvent) {
    let line = framewire_kit::lines::server_event(who, &event);
    match event {
        ServerEvent::Rejected { .. } => eprintln!("{line}"),
        _ => println!("{line}"),
    }
    let _ = std::io::stdout().flush();
}
