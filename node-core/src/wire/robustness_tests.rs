//! Randomized robustness tests ("poor man's fuzzing", seeded and
//! deterministic): hostile bytes — random, or valid traffic with bit flips,
//! truncations, insertions and duplications — fed in random chunk sizes to
//! the frame decoders, the handshake and a whole kernel. Nothing may panic,
//! errors must stay errors, and a kernel must keep serving well-behaved
//! peers afterwards.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::value::{Msg, Value};
use crate::{msg, Node, Time, Transport};

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn below(r: &mut ChaCha8Rng, n: usize) -> usize {
    (r.next_u32() as usize) % n.max(1)
}

/// A random message: nested arrays, maps, strings, bytes, numbers.
fn random_value(r: &mut ChaCha8Rng, depth: usize) -> Value {
    match below(r, if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(r.next_u32().is_multiple_of(2)),
        2 => Value::Int(r.next_u64() as i64 as i128),
        3 => Value::Float(f64::from(r.next_u32()) / 7.0),
        4 => Value::from(format!("s{}é", r.next_u32())),
        5 => {
            let mut b = vec![0u8; below(r, 20)];
            r.fill_bytes(&mut b);
            Value::Bytes(b)
        }
        6 => Value::Array(
            (0..below(r, 4))
                .map(|_| random_value(r, depth + 1))
                .collect(),
        ),
        _ => Value::Map(
            (0..below(r, 4))
                .map(|i| (Value::from(format!("k{i}")), random_value(r, depth + 1)))
                .collect(),
        ),
    }
}

fn random_msg(r: &mut ChaCha8Rng) -> Msg {
    (0..below(r, 5)).map(|_| random_value(r, 0)).collect()
}

/// Damages `bytes` in one of several ways.
fn mutate(r: &mut ChaCha8Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(r.next_u32() as u8);
        return;
    }
    for _ in 0..1 + below(r, 3) {
        let i = below(r, bytes.len());
        match below(r, 5) {
            0 => bytes[i] ^= 1 << below(r, 8),
            1 => bytes[i] = r.next_u32() as u8,
            2 => bytes.truncate(i),
            3 => bytes.insert(i, r.next_u32() as u8),
            _ => {
                let end = (i + below(r, 16)).min(bytes.len());
                let piece = bytes[i..end].to_vec();
                bytes.splice(i..i, piece);
            }
        }
        if bytes.is_empty() {
            break;
        }
    }
}

/// Feeds `bytes` in random chunks, draining packets; returns how many
/// packets came out before an error (if any).
fn decode_in_chunks(r: &mut ChaCha8Rng, framing: Framing, bytes: &[u8]) -> (usize, bool) {
    let mut d = FrameDecoder::with_max_packet(framing, 4096);
    let (mut n, mut failed) = (0, false);
    let mut at = 0;
    while at < bytes.len() && !failed {
        let end = (at + 1 + below(r, 64)).min(bytes.len());
        d.feed(&bytes[at..end]);
        at = end;
        loop {
            match d.next_packet() {
                Ok(Some(_)) => n += 1,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    // Errors are sticky: the stream stays dead.
                    assert!(d.next_packet().is_err());
                    break;
                }
            }
        }
    }
    (n, failed)
}

#[test]
fn frame_decoders_survive_random_and_mutated_streams() {
    for framing in [Framing::Cbor, Framing::Json] {
        let mut r = rng(framing as u64 + 1);
        let mut errors = 0;
        for _ in 0..3000 {
            // A valid stream of several packets…
            let mut bytes = Vec::new();
            let count = 1 + below(&mut r, 5);
            for _ in 0..count {
                let m = random_msg(&mut r);
                encode_packet(framing, "port", &m, &mut bytes);
            }
            // …decodes completely in any chunking…
            assert_eq!(decode_in_chunks(&mut r, framing, &bytes), (count, false));
            // …and damaged, or replaced by noise, never panics.
            if below(&mut r, 4) == 0 {
                let mut noise = vec![0u8; below(&mut r, 200)];
                r.fill_bytes(&mut noise);
                bytes = noise;
            } else {
                mutate(&mut r, &mut bytes);
            }
            errors += usize::from(decode_in_chunks(&mut r, framing, &bytes).1);
        }
        assert!(
            errors > 100,
            "{framing}: the mutations must actually produce errors ({errors})"
        );
    }
}

#[test]
fn handshakes_survive_mutated_greetings_and_auth_lines() {
    let mut r = rng(7);
    let cfg_a = HandshakeConfig::new("a", Some(b"s"));
    let cfg_b = HandshakeConfig::new("b", Some(b"s"));
    let mut failures = 0;
    for i in 0..2000u32 {
        let mut nonce = [0u8; 66];
        r.fill_bytes(&mut nonce);
        let mut a = Handshake::new(&cfg_a, nonce, None);
        let b = Handshake::new(&cfg_b, [i as u8; 66], None);
        let mut bytes = b.greeting().to_vec();
        // Append a plausible auth line, then damage the lot.
        bytes.extend_from_slice(b"hmac_sha3_512;00ff;cbor\n");
        mutate(&mut r, &mut bytes);
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + 1 + below(&mut r, 40)).min(bytes.len());
            if a.receive(&bytes[at..end]).is_err() {
                failures += 1;
                assert!(a.receive(b"more\n").is_err(), "errors are sticky");
                break;
            }
            at = end;
        }
    }
    assert!(
        failures > 500,
        "mutations must make handshakes fail ({failures})"
    );
}

/// A configured node (secret "s").
fn node() -> Node {
    let mut args = crate::config::JsonMap::new();
    args.insert("nodeid".into(), "victim".into());
    args.insert("secret".into(), "s".into());
    let cfg = crate::config::effective_config(None, &args, None, "h").unwrap();
    let mut n = Node::new([3; 32]);
    n.configure(&cfg, "h").unwrap();
    n.set_listeners(vec!["10.0.0.9:4040".into()]);
    n
}

/// Drains what the node wants to do (nothing goes anywhere).
fn drain(n: &mut Node, now: Time) {
    while n.poll(now) {}
    while n.poll_action().is_some() {}
    while n.poll_transmit().is_some() {}
}

#[test]
fn kernel_survives_hostile_connections_and_keeps_serving() {
    let mut r = rng(11);
    let mut n = node();
    let now = Time::from_secs_f64(100.0);
    drain(&mut n, now);
    // A valid client conversation, captured once: greeting + auth + packets.
    let client_cfg = HandshakeConfig::new("client", Some(b"s"));
    for round in 0..400 {
        let c = n.handle_accept(now, Transport::Tcp, None);
        let server_greeting = n.poll_transmit().map(|t| t.data).unwrap_or_default();
        let mut hs = Handshake::new(&client_cfg, [round as u8; 66], None);
        let mut bytes = hs.greeting().to_vec();
        for ev in hs.receive(&server_greeting).unwrap_or_default() {
            if let HsEvent::Send(b) = ev {
                bytes.extend_from_slice(&b);
            }
        }
        for _ in 0..below(&mut r, 4) {
            let m = random_msg(&mut r);
            encode_packet(
                Framing::Cbor,
                "",
                &[&[Value::from("devnull")], m.as_slice()].concat(),
                &mut bytes,
            );
        }
        if round % 5 != 0 {
            mutate(&mut r, &mut bytes);
        }
        let mut at = 0;
        while at < bytes.len() {
            let end = (at + 1 + below(&mut r, 100)).min(bytes.len());
            n.handle_data(now, c, &bytes[at..end]);
            at = end;
        }
        drain(&mut n, now);
        n.handle_closed(now, c, "eof");
        drain(&mut n, now);
    }
    // Still serving: a local port works and a clean handshake succeeds.
    let got = std::rc::Rc::new(std::cell::Cell::new(false));
    let g = got.clone();
    let p = n.port_with(move |_, _| {
        g.set(true);
        Ok(())
    });
    n.snd(&p, msg!["still alive"]);
    drain(&mut n, now);
    assert!(got.get());
    let c = n.handle_accept(now, Transport::Tcp, None);
    let greeting = n.poll_transmit().unwrap().data;
    let mut hs = Handshake::new(&client_cfg, [200; 66], None);
    let mut to_node = hs.greeting().to_vec();
    for ev in hs.receive(&greeting).unwrap() {
        if let HsEvent::Send(b) = ev {
            to_node.extend_from_slice(&b);
        }
    }
    n.handle_data(now, c, &to_node);
    let reply = n.poll_transmit().unwrap().data;
    let done = hs.receive(&reply).unwrap();
    assert!(
        done.iter().any(|e| matches!(e, HsEvent::Established(_))),
        "clean peer accepted"
    );
    assert_eq!(n.node_is_up("client"), Some(true));
}
