//! A built testbed: three namespaces (A, the link, B), the shaping in the link namespace, and
//! the ways into A and B. Dropping it undoes everything.

use std::ffi::OsStr;
use std::fmt;
use std::net::Ipv4Addr;
use std::process::Command;
use std::thread::JoinHandle;

use crate::forward::{Forwarder, Lane};
use crate::netns::{self, Namespaces};
use crate::tools::{Tool, run, run_command, tools};
use crate::{Link, NetbedError};

/// One end of the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The first end (`10.77.1.2`).
    A,
    /// The second end (`10.77.2.2`).
    B,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn letter(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::A => "A",
            Side::B => "B",
        })
    }
}

/// Per side: (endpoint address, the link namespace's address facing it).
/// The same in every testbed: each testbed's namespaces are a world of their own.
fn addresses(side: Side) -> (Ipv4Addr, Ipv4Addr) {
    match side {
        Side::A => (Ipv4Addr::new(10, 77, 1, 2), Ipv4Addr::new(10, 77, 1, 1)),
        Side::B => (Ipv4Addr::new(10, 77, 2, 2), Ipv4Addr::new(10, 77, 2, 1)),
    }
}

/// The /24 around a side's addresses.
fn subnet(side: Side) -> String {
    let [a, b, c, _] = addresses(side).0.octets();
    format!("{a}.{b}.{c}.0/24")
}

/// The endpoint's interface (in its own namespace).
fn endpoint_device(side: Side) -> String {
    format!("{}0", side.letter())
}

/// The link namespace's interface facing `side`: shaping toward `side` sits on its egress.
fn link_device(side: Side) -> String {
    format!("link-{}", side.letter())
}

/// The TUN device (in the link namespace) that delays packets toward `side`.
fn delay_device(side: Side) -> String {
    format!("delay-{}", side.letter())
}

/// The routing table that sends packets toward `side` through its delay device.
fn delay_table(side: Side) -> u32 {
    match side {
        Side::A => 101,
        Side::B => 102,
    }
}

/// One end of a testbed: its address and namespace.
#[derive(Clone, Debug)]
pub struct Endpoint {
    side: Side,
    addr: Ipv4Addr,
    netns: String,
}

impl Endpoint {
    /// Which end this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Its IPv4 address, reachable from the other end through the link.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The name of its network namespace (for `ip netns exec NAME ...`).
    pub fn netns(&self) -> &str {
        &self.netns
    }
}

/// Two network namespaces joined through a shaped link; see the crate documentation.
///
/// Dropping it (also while unwinding from a panic) stops the delay forwarder and deletes the
/// namespaces. Processes started with [`Testbed::command_in`] and threads started with
/// [`Testbed::spawn_in`] should end first: one still running keeps its namespace's network alive
/// without a name.
#[derive(Debug)]
pub struct Testbed {
    link: Link,
    a: Endpoint,
    b: Endpoint,
    link_netns: String,
    forwarder: Option<Forwarder>,
    namespaces: Namespaces,
}

impl Testbed {
    pub(crate) fn build(link: Link) -> Result<Testbed, NetbedError> {
        netns::remove_stale();
        let base = netns::unique_base();
        let endpoint = |side: Side| Endpoint {
            side,
            addr: addresses(side).0,
            netns: format!("{base}-{}", side.letter()),
        };
        let (a, b) = (endpoint(Side::A), endpoint(Side::B));
        let link_netns = format!("{base}-link");
        // From here on, an error drops what was made so far (the forwarder first).
        let mut namespaces = Namespaces::default();
        for name in [&a.netns, &link_netns, &b.netns] {
            namespaces.add(name.clone())?;
            netns::run_in(name, disable_ipv6)?;
        }
        netns::run_in(&link_netns, enable_forwarding)??;
        for end in [&a, &b] {
            connect(end, &link_netns)?;
        }
        let forwarder = delay(&link, &link_netns)?;
        shape(&link, &link_netns)?;
        for (from, to) in [(&a, &b), (&b, &a)] {
            refuse(link.toward(to.side).refused_percent, from, to.addr)?;
        }
        tracing::debug!(netns = %link_netns, %link, "testbed built");
        Ok(Testbed {
            link,
            a,
            b,
            link_netns,
            forwarder,
            namespaces,
        })
    }

    /// The link as built.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// End A.
    pub fn a(&self) -> &Endpoint {
        &self.a
    }

    /// End B.
    pub fn b(&self) -> &Endpoint {
        &self.b
    }

    /// The end on `side`.
    pub fn endpoint(&self, side: Side) -> &Endpoint {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// The namespace between the ends, where the shaping lives: look at it with
    /// `tc -n NAME -s qdisc` or `ip netns exec NAME nft list ruleset`.
    pub fn link_netns(&self) -> &str {
        &self.link_netns
    }

    /// A command that runs `program` inside `side`'s namespace (`ip netns exec NAME program`);
    /// add arguments and spawn it as usual.
    pub fn command_in(&self, side: Side, program: impl AsRef<OsStr>) -> Command {
        let mut command = tools().ip.command();
        command
            .args(["netns", "exec", self.endpoint(side).netns()])
            .arg(program);
        command
    }

    /// Runs `f` on a fresh thread inside `side`'s namespace and returns its result (a panic in
    /// `f` is resumed here). Sockets made in `f` belong to that namespace and keep working when
    /// used from any thread afterwards: bind or connect in here, do the I/O anywhere.
    pub fn run_in<T: Send>(
        &self,
        side: Side,
        f: impl FnOnce() -> T + Send,
    ) -> Result<T, NetbedError> {
        netns::run_in(self.endpoint(side).netns(), f)
    }

    /// Starts `f` on a new thread that lives inside `side`'s namespace (for code that opens its
    /// own sockets, such as a server loop). Join it before the testbed drops.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        side: Side,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<T>, NetbedError> {
        netns::spawn_in(self.endpoint(side).netns(), f)
    }

    /// Changes the rate limit of the packets travelling toward `side` while traffic flows
    /// (`None`: no limit), as a link that narrows or widens; [`Testbed::link`] says the new one.
    pub fn set_rate_toward(&mut self, side: Side, kbit: Option<u32>) -> Result<(), NetbedError> {
        let device = link_device(side);
        let netns = &self.link_netns;
        let had = self.link.toward(side).rate_kbit.is_some();
        match kbit {
            Some(0) => {
                return Err(NetbedError::InvalidLink(
                    "rate 0 kbit/s passes nothing".to_string(),
                ));
            }
            Some(kbit) => run_words(
                &tools().tc,
                &format!("-n {netns} qdisc replace dev {device} root {}", tbf(kbit)),
            )?,
            None if had => run_words(
                &tools().tc,
                &format!("-n {netns} qdisc del dev {device} root"),
            )?,
            None => {}
        }
        self.link.set_rate_toward(side, kbit);
        Ok(())
    }

    /// The names of all three namespaces: A, the link, B.
    pub fn netns_names(&self) -> [&str; 3] {
        [&self.a.netns, &self.link_netns, &self.b.netns]
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // The forwarder leaves the link namespace before the namespaces go.
        drop(self.forwarder.take());
        drop(std::mem::take(&mut self.namespaces));
        tracing::debug!(netns = %self.link_netns, "testbed dropped");
    }
}

/// Runs `tool` with the words of `args`: every name and number in them is ours, without spaces.
fn run_words(tool: &Tool, args: &str) -> Result<(), NetbedError> {
    run(tool, &args.split_whitespace().collect::<Vec<_>>(), None)
}

/// The veth pair between `end` and the link namespace, addressed, up, and a route on the end's
/// side to the other end (its only route: nothing else is reachable from inside).
fn connect(end: &Endpoint, link_netns: &str) -> Result<(), NetbedError> {
    let ip = &tools().ip;
    let (addr, gateway) = addresses(end.side);
    let (device, facing) = (endpoint_device(end.side), link_device(end.side));
    let netns = &end.netns;
    run_words(
        ip,
        &format!("-n {link_netns} link add {facing} type veth peer name {device} netns {netns}"),
    )?;
    let other = subnet(end.side.other());
    let batch = format!(
        "link set lo up\n\
         link set {device} up\n\
         addr add {addr}/24 dev {device}\n\
         route add {other} via {gateway}\n"
    );
    run(ip, &["-n", netns, "-batch", "-"], Some(&batch))?;
    let batch = format!(
        "link set lo up\n\
         link set {facing} up\n\
         addr add {gateway}/24 dev {facing}\n"
    );
    run(ip, &["-n", link_netns, "-batch", "-"], Some(&batch))
}

/// The delay forwarder and the policy routes through it, when either direction has a delay.
fn delay(link: &Link, link_netns: &str) -> Result<Option<Forwarder>, NetbedError> {
    let delayed: Vec<Side> = [Side::A, Side::B]
        .into_iter()
        .filter(|&side| !link.toward(side).delay.is_zero())
        .collect();
    if delayed.is_empty() {
        return Ok(None);
    }
    let lanes = delayed
        .iter()
        .map(|&side| Lane {
            device: delay_device(side),
            delay: link.toward(side).delay,
        })
        .collect();
    let forwarder = Forwarder::start(link_netns, lanes, link.queue_limit_packets())?;
    // Packets arriving from the far side and going toward `side` take the detour through the
    // delay device; written back, they arrive on it and the main table routes them on.
    let mut batch = String::new();
    for &side in &delayed {
        let table = delay_table(side);
        let (from, to, delay) = (link_device(side.other()), subnet(side), delay_device(side));
        batch += &format!(
            "rule add iif {from} lookup {table} pref {table}\n\
             route add {to} dev {delay} table {table}\n"
        );
        // A TUN device gets the default qdisc (pfifo_fast here), whose bands would let some
        // packets overtake others on their way to the forwarder: a plain FIFO instead.
        run_words(
            &tools().tc,
            &format!("-n {link_netns} qdisc replace dev {delay} root pfifo"),
        )?;
    }
    run(
        &tools().ip,
        &["-n", link_netns, "-batch", "-"],
        Some(&batch),
    )?;
    Ok(Some(forwarder))
}

/// The token bucket that limits a direction to `kbit`.
fn tbf(kbit: u32) -> String {
    format!("tbf rate {kbit}kbit burst 32kbit latency 50ms")
}

/// The rate limits (tbf on the egress toward each side) and the random loss (nftables).
fn shape(link: &Link, link_netns: &str) -> Result<(), NetbedError> {
    for side in [Side::A, Side::B] {
        if let Some(kbit) = link.toward(side).rate_kbit {
            let device = link_device(side);
            run_words(
                &tools().tc,
                &format!("-n {link_netns} qdisc add dev {device} root {}", tbf(kbit)),
            )?;
        }
    }
    let rules: String = [Side::A, Side::B]
        .into_iter()
        .filter(|&side| link.toward(side).loss_percent > 0)
        .map(|side| {
            // Matches once per packet: a delayed packet's first pass leaves by the delay device.
            format!(
                "    oifname \"{}\" numgen random mod 100 < {} drop\n",
                link_device(side),
                link.toward(side).loss_percent
            )
        })
        .collect();
    if rules.is_empty() {
        return Ok(());
    }
    let ruleset = format!(
        "table ip netbed {{\n  chain forward {{\n    \
         type filter hook forward priority 0; policy accept;\n{rules}  }}\n}}\n"
    );
    let mut nft = tools().ip.command();
    nft.args(["netns", "exec", link_netns])
        .arg(tools().nft.program())
        .args(["-f", "-"]);
    run_command(nft, Some(&ruleset))
}

/// In `from`'s namespace, a firewall on the output hook that refuses `percent` of the packets
/// sent to `to`: the sender's `sendto` fails with `EPERM` for each.
fn refuse(percent: u8, from: &Endpoint, to: Ipv4Addr) -> Result<(), NetbedError> {
    if percent == 0 {
        return Ok(());
    }
    let ruleset = format!(
        "table ip netbed {{\n  chain output {{\n    \
         type filter hook output priority 0; policy accept;\n    \
         ip daddr {to} numgen random mod 100 < {percent} drop\n  }}\n}}\n"
    );
    let mut nft = tools().ip.command();
    nft.args(["netns", "exec", &from.netns])
        .arg(tools().nft.program())
        .args(["-f", "-"]);
    run_command(nft, Some(&ruleset))
}

/// Inside a new namespace: no IPv6, so only the traffic a test sends crosses the link
/// (no router solicitations or duplicate-address probes). Kernels without IPv6 have nothing to do.
fn disable_ipv6() {
    for conf in ["all", "default", "lo"] {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6"), "1");
    }
}

/// Inside the link namespace: forward between the ends, and accept packets that come back from
/// a delay device although their source lies behind another interface.
fn enable_forwarding() -> Result<(), NetbedError> {
    for (key, value) in [
        ("ipv4/ip_forward", "1"),
        ("ipv4/conf/all/rp_filter", "0"),
        ("ipv4/conf/default/rp_filter", "0"),
    ] {
        let path = format!("/proc/sys/net/{key}");
        std::fs::write(&path, value)
            .map_err(|e| NetbedError::io(format!("write {value} to {path}"), e))?;
    }
    Ok(())
}
