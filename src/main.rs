//! The `framewire` command: `serve` streams a source to viewers, `view` receives and shows a
//! stream, `chat` is a two-way call, `devices` lists cameras. Each subcommand assembles plugin crates from its flags.

// The binary's job is to talk to the user on stdout and stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
mod assemble;
mod chat;
mod devices;
mod files;
mod hub;
mod live;
mod sending;
mod serve;
mod view;

/// Stream live video between machines: capture, resize, encode, send, receive, decode, show.
#[derive(Debug, Parser)]
#[command(name = "framewire", version, about, long_about = None)]
#[command(
    after_help = "Try it on one machine:\n  framewire serve --codec jpeg &\n  framewire view --headless --frames 100 --stats json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Capture frames and stream them to every viewer that connects
    Serve(serve::ServeArgs),
    /// Connect to a server and show (or measure) its stream
    View(view::ViewArgs),
    /// A two-way video call: one side listens, the other connects; each sends and shows
    Chat(chat::ChatArgs),
    /// Take the streams many senders push to it (serve --push), each by its name
    Hub(hub::HubArgs),
    /// List the cameras this machine has, or what an RTSP camera offers
    Devices(devices::DevicesArgs),
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        // A decoder's panic that framewire contains becomes an ordinary one-line error.
        if framewire_core::panic_is_contained() {
            tracing::debug!("contained panic: {info}");
            return;
        }
        // stdout's reader went away (`framewire serve | head`): end quietly, as a program
        // killed by SIGPIPE does (Rust ignores SIGPIPE, so printing panics instead).
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        eprintln!("framewire: internal error (a bug, please report it): {info}");
    }));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,winit=error")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::View(args) => view::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Hub(args) => hub::run(args),
        Command::Devices(args) => devices::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framewire: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
