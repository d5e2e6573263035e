//! A real-network test bed: two network namespaces, A and B, joined through a link with a rate
//! limit, random loss and delay, for the tests and benchmarks that loopback would flatter.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), `ip` and `tc` (iproute2), `nft` (nftables) and
//! `/dev/net/tun`. Tests call [`LinkBuilder::build_or_skip`] (or [`available_or_skip`]): without
//! those it prints `skipping: REASON` and the test returns, unless `FRAMEWIRE_REQUIRE_ALL=1`
//! (set by CI) makes that a failure.
//!
//! # Use
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::time::Duration;
//!
//! use framewire_netbed::{Link, Side};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let Some(bed) = Link::builder()
//!     .rate_kbit(8_000)
//!     .loss_percent(1)
//!     .rtt(Duration::from_millis(40))
//!     .build_or_skip()
//! else {
//!     return Ok(()); // printed "skipping: ..."
//! };
//! // A socket belongs to the namespace of the thread that made it: make it there
//! // (run_in), then use it from any thread.
//! let listener = bed.run_in(Side::B, || TcpListener::bind((bed.b().addr(), 0)))??;
//! let port = listener.local_addr()?.port();
//! let b_addr = bed.b().addr();
//! let mut client = bed.run_in(Side::A, || TcpStream::connect((b_addr, port)))??;
//! client.write_all(b"hello")?;
//! let (mut server, _) = listener.accept()?;
//! let mut got = [0; 5];
//! server.read_exact(&mut got)?;
//!
//! // A program runs inside a side through `ip netns exec`:
//! let status = bed
//!     .command_in(Side::A, "ip")
//!     .args(["-brief", "address"])
//!     .status()?;
//! assert!(status.success());
//! # Ok(())
//! # }
//! // Dropping `bed` (also during a panic) removes everything it made.
//! ```
//!
//! # Topology
//!
//! ```text
//!  namespace A           link namespace (a router)                   namespace B
//!  a0 10.77.1.2 --veth-- link-a 10.77.1.1       10.77.2.1 link-b --veth-- b0 10.77.2.2
//!
//!  A -> B:  a0 -> link-a -> delay-b (TUN, held by the forwarder) -> nft loss -> tbf on link-b -> b0
//!  B -> A:  the mirror image (delay-a, loss and tbf on link-a)
//! ```
//!
//! Every shaping step sits in the middle namespace, as in a router between two hosts: the
//! senders see no local queue, and a dropped packet is lost in transit, not refused to its
//! sender. This kernel has no netem, so the delay is user space: a thread of the test process
//! that entered the link namespace reads each packet from a TUN device, holds it for the
//! one-way delay and writes it back (FIFO, never reordered; a full queue drops, see
//! [`DEFAULT_QUEUE_LIMIT`]); policy routing sends packets from one end through the delay device
//! toward the other. A direction without delay has no TUN device: the kernel forwards it.
//! The rate limit is `tbf rate R burst 32kbit latency 50ms`; the loss is
//! `numgen random mod 100 < N drop` in an nftables forward chain. The one step outside the link
//! namespace is a sender's refusal ([`LinkBuilder::refused_percent`]): the same rule on the output
//! hook of the sending end's namespace, which makes its `sendto` fail with `EPERM`, as a host
//! firewall does.
//!
//! Every testbed's namespaces are named `fwnb-PID-TOKEN-N-{a,link,b}`, so parallel tests and
//! processes never collide; the addresses are the same in every testbed, each being a world of
//! its own with routes only to the other end. Namespaces left by a killed process (its pid
//! gone) are removed by the next build.

mod error;
mod forward;
mod link;
mod netns;
mod testbed;
mod tools;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

pub use error::NetbedError;
pub use link::{DEFAULT_QUEUE_LIMIT, Direction, Link, LinkBuilder, MAX_DELAY};
pub use testbed::{Endpoint, Side, Testbed};

/// Whether this machine can make a testbed; `Err` says why not (not root, a missing tool or
/// `/dev/net/tun`, or the kernel refusing a step). The first call builds and drops a small
/// testbed to be sure; the answer is kept for the process.
pub fn available() -> Result<(), Unavailable> {
    static PROBE: OnceLock<Result<(), Unavailable>> = OnceLock::new();
    PROBE.get_or_init(|| probe().map_err(Unavailable)).clone()
}

/// Why this machine cannot make a testbed: one line, with the way out where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Whether tests must find a testbed instead of skipping: `FRAMEWIRE_REQUIRE_ALL` is set to
/// something other than empty or `0` (CI sets it to 1).
pub fn required() -> bool {
    std::env::var("FRAMEWIRE_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// For tests: `Some(())` when a testbed can be made; otherwise prints `skipping: REASON` and
/// returns `None`, or panics with the reason when [`required`].
#[allow(clippy::print_stderr)] // A skipped test tells the person running it why.
#[track_caller]
pub fn available_or_skip() -> Option<()> {
    match available() {
        Ok(()) => Some(()),
        Err(reason) if required() => {
            panic!("{reason} (FRAMEWIRE_REQUIRE_ALL=1 requires the network testbed)")
        }
        Err(reason) => {
            eprintln!("skipping: {reason}");
            None
        }
    }
}

fn probe() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    check_capabilities(&status)?;
    let missing: Vec<String> = tools::tools()
        .all()
        .iter()
        .filter(|tool| tool.path().is_none())
        .map(|tool| format!("`{}` (Debian: apt-get install {})", tool.name, tool.package))
        .collect();
    if !missing.is_empty() {
        return Err(format!("not found: {}", missing.join(", ")));
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("no /dev/net/tun (the TUN driver the delay needs)".into());
    }
    // Everything is there; the kernel may still refuse a step (veth, tbf, nftables, TUN).
    Link::builder()
        .rate_kbit(1000)
        .loss_percent(1)
        .rtt(Duration::from_millis(2))
        .build()
        .map(drop)
        .map_err(|e| format!("cannot build a testbed here: {e}"))
}

/// `Err` unless the effective capabilities in `status` (`/proc/self/status`) include
/// CAP_NET_ADMIN (links, qdiscs, nftables) and CAP_SYS_ADMIN (`ip netns add`, setns).
fn check_capabilities(status: &str) -> Result<(), String> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(str::trim)
    };
    let effective = field("CapEff:")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or("no CapEff line in /proc/self/status")?;
    let missing: Vec<&str> = [(12, "CAP_NET_ADMIN"), (21, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| effective & (1u64 << bit) == 0)
        .map(|(_, name)| name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    // Uid: real, effective, saved, filesystem.
    let euid = field("Uid:").and_then(|ids| ids.split_whitespace().nth(1));
    let who = if euid == Some("0") {
        "root without"
    } else {
        "not root: needs"
    };
    Err(format!("{who} {}", missing.join(" and ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_name_what_is_missing() {
        let check = |status: &str, expected: Result<(), &str>| {
            assert_eq!(check_capabilities(status), expected.map_err(String::from));
        };
        let root = "Uid:\t0\t0\t0\t0\n";
        let user = "Uid:\t1000\t1000\t1000\t1000\n";
        check(&format!("{root}CapEff:\t000001ffffffffff\n"), Ok(()));
        check(&format!("{root}CapEff:\t0000000000201000\n"), Ok(()));
        check(
            &format!("{user}CapEff:\t0000000000000000\n"),
            Err("not root: needs CAP_NET_ADMIN and CAP_SYS_ADMIN"),
        );
        check(
            &format!("{root}CapEff:\t0000000000001000\n"),
            Err("root without CAP_SYS_ADMIN"),
        );
        check(
            &format!("{root}CapEff:\t0000000000200000\n"),
            Err("root without CAP_NET_ADMIN"),
        );
        check(root, Err("no CapEff line in /proc/self/status"));
    }
}
