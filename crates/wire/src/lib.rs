//! framewire's protocols as state machines, with no sockets, no threads and no clock (the
//! quinn-proto and str0m shape): bytes and the time go in, bytes and events come out. The
//! stream messages, their reader and their framer, the datagram layout, reassembly, the seal,
//! pacing and the token's challenge and proof live here; framewire-net moves their bytes over
//! sockets. The fuzz targets depend on this crate alone.
//!
//! # Wire format, version 2
//!
//! All integers are little-endian. A connection goes:
//!
//! ```text
//! viewer -> server   hello            16 bytes, once
//! server -> viewer   stream handshake 24 bytes, once; or a refusal instead: an Error
//!                                     (or End) frame header and its reason, and nothing more
//! server -> viewer   frame header     32 bytes  } repeated; the last message is an
//!                    payload          N bytes   } End (or Error) header
//! ```
//!
//! Viewer hello (the server rejects a connection whose first 8 bytes are not this magic; it
//! reads those 8 first, and the other 8 once it knows the version):
//!
//! ```text
//! offset size field
//! 0      4    magic "FWVH"
//! 4      2    wire version (2)
//! 6      2    call: 0 = a one-way viewer; else a side of a two-way call (below), the
//!             call's number, the same on a redial
//! 8      1    codec wanted: 0 = the server's choice, else a codec id (below)
//! 9      1    rung pinned: 0xFF = none (follow the link), else stay on this rung
//! 10     1    bit 0: a push (below), with a call number; other bits reserved, ignored
//! 11     1    reserved, ignored
//! 12     4    width wanted in pixels, 1..=16384: 0 = the server's choice (the height
//!             follows the stream's aspect ratio)
//! ```
//!
//! Stream handshake (the viewer learns everything about the stream from it):
//!
//! ```text
//! offset size field
//! 0      4    magic "FWST"
//! 4      2    wire version (2)
//! 6      1    codec id: 1 raw, 2 bincode, 3 jpeg, 4 h264
//! 7      1    pixel format of decoded frames: 1 rgb8, 2 rgba8, 3 bgr8
//! 8      4    width in pixels, 1..=16384
//! 12     4    height in pixels, 1..=16384
//! 16     4    frames per second x 1000 (0 = unpaced), informational
//! 20     1    rung of the ladder the stream starts on, 0 = the top (best); 0xFF = a
//!             rendition off the ladder (the codec and width the viewer asked for)
//! 21     1    rungs on the ladder, >= 1
//! 22     1    codec quality, 1..=100; 0 = a codec without one. Informational
//! 23     1    reserved, zero
//! ```
//!
//! Frame header, before every payload:
//!
//! ```text
//! offset size field
//! 0      4    magic "FWFR"
//! 4      1    kind: 0 frame, 1 end of stream (no payload), 2 error (payload: UTF-8 reason,
//!             <= 1024 bytes), 3 switch (payload: 16 bytes, below), 4 report (payload: 16
//!             bytes, below; only between the two sides of a call), 5 challenge and 6 proof
//!             (payload: 32 bytes each; below), 7 name (payload: 1..=64 bytes of UTF-8,
//!             letters, digits and `-_.:@`; only after a push's hello)
//! 5      1    flags: bit 0 = a delta (an inter-frame codec's frame that needs the frames
//!             before it back to a keyframe; 0 for a keyframe and for intra-only codecs); the
//!             other bits zero
//! 6      2    reserved, zero
//! 8      8    sequence number (gaps = frames this viewer did not get); zero for a switch
//! 16     8    capture time, microseconds since the Unix epoch; zero for a switch
//! 24     4    payload length in bytes, checked against the reader's maximum (a switch's
//!             must be 16) before anything is allocated
//! 28     4    reserved, zero
//! ```
//!
//! The payload of a frame is the codec's (see the codec crate): packed pixel rows for raw, a
//! bincode record for bincode, a JPEG file for jpeg. A switch comes just before the first
//! frame of another rendition; the frames after it are that rendition:
//!
//! ```text
//! offset size field
//! 0      1    codec id
//! 1      1    pixel format
//! 2      1    rung, 0xFF = off the ladder
//! 3      1    codec quality, 0 = none
//! 4      4    width in pixels, 1..=16384
//! 8      4    height in pixels, 1..=16384
//! 12     1    rungs on the ladder, >= 1
//! 13     3    reserved, zero
//! ```
//!
//! A report says how the side that sends it shows the stream it receives, over about the
//! last second:
//!
//! ```text
//! offset size field
//! 0      4    frames per second shown x 1000
//! 4      4    mean latency, capture to decoded, in microseconds; 0 = no frame shown
//! 8      8    reserved, zero
//! ```
//!
//! A server with a shared token answers the hello with a challenge message (32 random bytes)
//! before anything else; the viewer answers with a proof message: HMAC-SHA256, keyed by the
//! token, of the ASCII label `framewire token proof v1` and the 32 bytes. The server sends the
//! handshake only after a right proof, and otherwise an Error ("wrong token"). A viewer that
//! has no token, asked for one, closes the connection and says so.
//!
//! A two-way call (`framewire chat`) is one connection carrying a stream each way. The caller
//! sends a hello whose call number is not 0; the listener (after a challenge, if it has a
//! token) answers with its own hello (the
//! same call number, and what it asks of the caller's ladder), or refuses with an Error
//! header and its reason ("busy: already in a call", or to a one-way viewer "this is a
//! two-way call"). Then each side writes a stream handshake, frames, switches and reports,
//! and reads the other's, as a server and a viewer do. A one-way server refuses a hello
//! with a call number. A caller that lost its connection dials again with the same number;
//! the listener takes it over the old call.
//!
//! In a call the token is proved both ways, and neither side sends a byte of its stream to a
//! peer that has not proved it:
//!
//! ```text
//! caller   -> listener  hello (call number)
//! listener -> caller    challenge                      (a listener with a token)
//! caller   -> listener  proof, then its own challenge  (one write)
//! listener -> caller    proof, then its hello          (only after a right proof)
//! ```
//!
//! The listener's proof is HMAC-SHA256 keyed by the token of the ASCII label
//! `framewire token proof v1 listener` and the caller's 32 bytes, so that one direction's
//! proof is never the other's. A listener refuses a wrong proof with an Error ("wrong
//! token"). A caller with a token that gets the listener's hello without a right proof (the
//! listener has no token, or another) sends an Error with the reason where its stream
//! handshake would be, and closes.
//!
//! A push (`serve --push` to `framewire hub --listen`) is a call that carries one stream, from
//! the caller to the hub: the caller's hello has a call number and the push bit, and a name
//! message follows it in the same write. The token is proved both ways as in a call; the hub
//! answers with its hello (the same call number, the push bit) and then only reads: the
//! caller writes a stream handshake and frames as a server does. A hub refuses a viewer and
//! a call; a one-way server and a call's listener refuse a push; a full hub's refusal starts
//! with "busy", and its sender dials again later. A name already pushing is taken over by its
//! new connection.
//!
//! The server refuses a hello it cannot serve (a rung the ladder does not have, a codec or
//! size it cannot make) with a reason instead of the handshake. Other versions: a server answers a hello of another version with a handshake that is only
//! "FWST" and its own version (the rest zero), then closes, so that the viewer names both
//! versions. A version 1 server closes the connection without a byte on this version's hello;
//! the viewer then says that the server may be older.
//!
//! # UDP datagrams, layout version 2
//!
//! `serve --transport udp` speaks datagrams ([`datagram`], framewire-net's `udp`). Every datagram starts with
//! the same 8 bytes; integers are little-endian; a datagram of the wrong length for its kind,
//! another magic or version, or impossible numbers is dropped and counted, never answered with
//! more than it carried:
//!
//! ```text
//! offset size field
//! 0      4    magic "FWUD"
//! 4      1    layout version (2)
//! 5      1    kind: 1 hello, 2 cookie, 3 start, 4 fragment, 5 report, 6 end, 7 rejoin,
//!             8 peer report
//! 6      1    fragment: data pieces per parity piece (0 = none); hello: see below; else zero
//! 7      1    fragment: bit 0 = a delta (as a frame header's flag); hello: see below; else
//!             zero
//! ```
//!
//! A session goes:
//!
//! ```text
//! viewer -> server  hello (no cookie)         64 bytes
//! server -> viewer  cookie                    64 bytes: never more than the hello
//! viewer -> server  hello (cookie, proof)     64 bytes
//! server -> viewer  start, or end (refusal)   56 bytes: handshake and session key; or the reason
//! viewer -> server  report, at once           56 bytes: its session id; only now do frames flow
//! server -> viewer  fragments ...             48 + at most --mtu (1200) bytes each
//! viewer -> server  report every 250 ms       56 bytes: the keepalive, with a receipt
//! either            end                       16 bytes (+ reason, <= 512)
//! ```
//!
//! Between the two sides of a call, a server also sends its viewer a peer report (32 bytes:
//! the head, the session id and a report message's 16 bytes, drawn above) before a frame: how
//! this side shows the stream the viewer's side sends it.
//!
//! A session is its key, not an address ([`session`]): the server draws 16 random bytes at
//! each join and sends them in the start, to the address that echoed its cookie. From the key
//! come (HMAC-SHA256 under it, cut to 8 bytes) the session id, which every later datagram
//! either way carries (fragments excepted), the start's check of the echoed cookie, and each
//! frame's tag of its number, which its fragments carry and a report echoes as its receipt.
//! The server sends no frame before a report with the session id, and keeps a viewer only
//! while its reports prove receipt of a frame newer than any proved before (or every frame
//! sent is proved); it forgets one that proves nothing for 5 s. Either end drops, and
//! counts, a datagram without the session's proof, and it changes nothing. So an address
//! that does not receive the stream cannot end, freeze, redirect or prolong it, and gets at
//! most as many bytes as it sent (a replayed join: a start, no frame).
//!
//! Hello (64 bytes): 6 the call's number (u16, 0 = a one-way viewer), 8 codec wanted (0 =
//! the server's choice), 9 rung pinned (0xFF = none), 10 a caller's stream port (u16, else 0),
//! 12 width wanted (u32, 0 = the server's choice), 16 the cookie (16 bytes, zero in the first
//! hello), 32 the token's proof (32 bytes, zero when none is asked for).
//!
//! With `--tls` every datagram here travels sealed, whole, under keys that a TLS control
//! connection on the TCP port of the same number exported: the [`seal`] module draws the
//! sealed layout and framewire-net's `udp::control` the control connection.
//!
//! A call over UDP (`chat --transport udp`, framewire-net's `udp::chat`) is a session each way: the
//! caller serves its stream on a port of its own and joins the listener's with a call number
//! and that port; the listener takes the call (or ends the hello with "busy: already in a
//! call", or to a one-way viewer "this is a two-way call") and joins the caller's stream at the
//! hello's source address and that port with the same number, which the caller's server alone
//! takes. A one-way server ends a hello with a call number ("this is a one-way stream").
//!
//! Cookie (64 bytes): 8 the cookie, 24 one byte: 1 when the server asks for the token, 25
//! seven reserved, 32 the challenge (32 bytes). The cookie is HMAC-SHA256, keyed by a secret
//! the server draws at start, of the viewer's address and port and the current 30-second
//! period, cut to 16 bytes; the challenge is the same HMAC under another label. So the
//! server keeps no state for a hello, a forged source address gets one 64-byte cookie it
//! never sees, and nothing larger goes to an address until it has echoed the cookie. The
//! proof is the TCP one (HMAC-SHA256 keyed by the token of `framewire token proof v1` and
//! the challenge); a wrong proof is refused with an end "wrong token".
//!
//! Start (56 bytes): 8 the stream handshake (24 bytes, as over TCP), 32 the session key (16),
//! 48 the start's check (8).
//!
//! Fragment: a frame is the 16-byte switch message of its rendition (as over TCP) followed
//! by the codec's payload; it is cut into pieces of --mtu bytes (the last shorter):
//!
//! ```text
//! offset size field
//! 8      8    sequence number (capture's)
//! 16     8    capture time, microseconds since the Unix epoch
//! 24     4    the frame's number among the frames sent to this viewer, from 1; a gap is a
//!             frame lost whole
//! 28     4    frame length (switch message and payload), checked against the viewer's
//!             maximum (--max-payload + 16) before anything is sized by it
//! 32     4    offset of this piece in the frame: index x piece size
//! 36     2    piece index: below the count for data; count + g for the parity of group g
//! 38     2    data pieces in the frame, >= 1 and <= the frame length
//! 40     8    the frame's tag
//! 48     ...  the piece
//! ```
//!
//! Parity (forward error correction): with N data pieces per group (byte 6, `serve --fec N`,
//! default 8), the piece after each group is the XOR of the group's pieces, each padded with
//! zeros to the full piece size. One piece lost in a group is rebuilt as soon as the rest of
//! the group is in, with no round trip. Cost: one datagram of --mtu bytes plus 48 of header
//! per N data datagrams, 12.5% more bytes at N = 8 (0 sends none). A frame is handed on only
//! complete and newer than the last handed on; the viewer rebuilds at most 4 frames at once
//! (a piece of a fifth evicts the oldest), a newer complete frame makes older incomplete
//! ones obsolete, and a frame number more than 1024 ahead of the last frame handed on (plus
//! 10,000 a second since) is dropped; when several frames complete among the datagrams already queued, only the
//! newest is handed on (the others count as dropped). Its `--stats json` says `lost` (frames sent that never arrived complete),
//! `fragments_lost` (missing pieces of incomplete frames), `fragments_recovered` and
//! `datagrams_dropped` (late, duplicated, inconsistent or out of the window) and
//! `datagrams_forged` (without the session's proof).
//!
//! Report (56 bytes): 8 the session id, 16 frames completed (u64), 24 bytes received (u64),
//! 32 bytes of the newest complete frame (u32), 36 microseconds from its first piece's
//! arrival to its last (u32: the link's rate, as a burst crosses it), 40 the number of the
//! newest frame a piece of which arrived (u32), 44 flags (u32: bit 0, it lost a frame of an
//! inter-frame codec and waits for a keyframe, which the server asks the encoder for), 48 that
//! frame's tag (its receipt; zero before any). The server moves the viewer along the ladder from these
//! (`adapt.rs`, as over TCP); a report from an address that is no viewer (a restarted
//! server) is answered with a rejoin (16 bytes: 8 the report's session id), and the viewer
//! joins again through the session's reconnect, with backoff.
//!
//! End (16 bytes and the reason): 8 whom it is for: the session id; in a refusal of a hello
//! with a cookie, that cookie's first 8 bytes; zero in the answer to a hello without one.
//!
//! # Pieces
//!
//! - [`message`]: the fixed stream messages, to and from bytes.
//! - [`reader`]: [`FrameReader`], bytes split anywhere in, events out.
//! - [`token`]: the shared token's challenge and proofs, the login cookie, failures counted
//!   per address.
//! - [`datagram`]: the UDP datagrams to and from bytes, a frame cut into them with parity.
//! - [`reassembly`]: frames rebuilt from datagrams, bounded, newest first.
//! - [`seal`]: datagrams sealed under exported keys, with a replay window.
//! - [`session`]: a UDP session's key, id, tags and receipts, and the server's liveness rule.
//! - [`pacing`]: how long each datagram waits to leave at a rate.
//! - [`rtsp`], [`rtp`]: what an RTSP RECORD publisher says and reads (RFC 2326), and H.264
//!   in RTP packets inside its interleaved framing (RFC 6184), for publishing to media servers.

pub mod datagram;
pub mod framer;
pub mod message;
pub mod pacing;
pub mod reader;
pub mod reassembly;
pub mod rtp;
pub mod rtsp;
pub mod seal;
pub mod session;
pub mod token;

pub use message::{
    DEFAULT_MAX_PAYLOAD, FrameHeader, HANDSHAKE_LEN, HEADER_LEN, HELLO_LEN, Handshake, Hello,
    MessageKind, REPORT_LEN, Report, SWITCH_LEN, Switch, VERSION, WireError, WireErrorKind,
};
pub use reader::{Event, FrameReader};
