//! The real nodes' transport: the engine's datagrams as length-delimited
//! frames (tokio-util's codec) over TCP on loopback. Each node dials one
//! connection per peer (in real mode, to the proxy of that directed link)
//! and only sends on it; it receives on the connections its peers dialled.
//! A connection opens with a hello frame naming the sender.
//!
//! Invariant: sending never blocks the node. A datagram goes into a
//! bounded per-peer queue or is dropped (as a datagram network would drop
//! it); while a peer cannot be reached its queue is drained and dropped, so
//! a healed link does not replay stale sessions in a burst.

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use scx_engine::protocol::MAX_MESSAGE_BYTES;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// The largest frame: the protocol's largest message and some slack.
pub const MAX_FRAME_BYTES: usize = MAX_MESSAGE_BYTES + 1024;
/// Datagrams queued per peer before new ones are dropped.
const QUEUED_DATAGRAMS: usize = 1024;
/// Datagrams received and not yet handled, over all peers.
const RECEIVED_DATAGRAMS: usize = 4096;
/// Pause before dialling a peer again after a failure or a closed connection.
const REDIAL: Duration = Duration::from_millis(50);
/// A hello frame: this, then the sender's id (u32, little-endian).
const HELLO_MAGIC: &[u8; 4] = b"SCX1";

/// The frame codec both ends use.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder().max_frame_length(MAX_FRAME_BYTES).new_codec()
}

/// The hello frame of `node`.
pub fn hello(node: u32) -> Bytes {
    let mut frame = HELLO_MAGIC.to_vec();
    frame.extend_from_slice(&node.to_le_bytes());
    Bytes::from(frame)
}

/// The sender a hello frame names, if it is one.
pub fn parse_hello(frame: &[u8]) -> Option<u32> {
    let id = frame.strip_prefix(HELLO_MAGIC.as_slice())?;
    Some(u32::from_le_bytes(id.try_into().ok()?))
}

/// The sending side: one queue and one dialling task per peer.
#[derive(Debug)]
pub struct Outgoing {
    queues: BTreeMap<u32, mpsc::Sender<Vec<u8>>>,
}

impl Outgoing {
    /// Starts dialling every peer at its address (on the current runtime).
    pub fn start(me: u32, peers: &BTreeMap<u32, SocketAddr>) -> Self {
        let mut queues = BTreeMap::new();
        for (peer, address) in peers {
            let (sender, receiver) = mpsc::channel(QUEUED_DATAGRAMS);
            tokio::spawn(dial(me, *address, receiver));
            queues.insert(*peer, sender);
        }
        Self { queues }
    }

    /// Queues a datagram for `to`; `false` when it was dropped (no such
    /// peer, or its queue is full).
    pub fn send(&self, to: u32, bytes: Vec<u8>) -> bool {
        self.queues.get(&to).is_some_and(|queue| queue.try_send(bytes).is_ok())
    }
}

/// Keeps a connection to `address` and sends what the queue holds.
async fn dial(me: u32, address: SocketAddr, mut queue: mpsc::Receiver<Vec<u8>>) {
    loop {
        if let Ok(stream) = TcpStream::connect(address).await {
            // Small frames should leave at once: latency is the proxy's to add.
            let _ = stream.set_nodelay(true);
            let mut framed = FramedWrite::new(stream, codec());
            if framed.send(hello(me)).await.is_ok() {
                loop {
                    let Some(bytes) = queue.recv().await else { return };
                    if framed.send(Bytes::from(bytes)).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Unreachable: what waits now would arrive stale.
        loop {
            match queue.try_recv() {
                Ok(_) => {}
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
        tokio::time::sleep(REDIAL).await;
    }
}

/// The receiving side: accepts connections and hands each frame, with the
/// sender its hello named, to the returned queue.
pub fn listen(listener: TcpListener) -> mpsc::Receiver<(u32, Vec<u8>)> {
    let (sender, receiver) = mpsc::channel(RECEIVED_DATAGRAMS);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, say: wait rather than spin.
                tokio::time::sleep(REDIAL).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(receive(stream, sender.clone()));
        }
    });
    receiver
}

async fn receive(stream: TcpStream, sender: mpsc::Sender<(u32, Vec<u8>)>) {
    let mut framed = FramedRead::new(stream, codec());
    let Some(Ok(first)) = framed.next().await else { return };
    let Some(from) = parse_hello(&first) else { return };
    while let Some(Ok(frame)) = framed.next().await {
        if sender.send((from, frame.to_vec())).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_names_its_sender_and_nothing_else_is_one() {
        assert_eq!(parse_hello(&hello(7)), Some(7));
        assert_eq!(parse_hello(b"SCX1\x01\x00\x00"), None);
        assert_eq!(parse_hello(b"XXXX\x01\x00\x00\x00"), None);
    }

    #[test]
    fn datagrams_cross_a_real_socket_with_their_sender() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let mut received = listen(listener);
            let outgoing = Outgoing::start(3, &BTreeMap::from([(1, address)]));
            assert!(outgoing.send(1, b"one".to_vec()));
            assert!(!outgoing.send(2, b"to no one".to_vec()));
            let got = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.unwrap();
            assert_eq!(got, Some((3, b"one".to_vec())));
        });
    }
}
