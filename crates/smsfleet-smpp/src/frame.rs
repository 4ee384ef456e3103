//! Framing: splits the byte stream into PDUs by their length field and
//! decodes each with rusmpp.
//!
//! We frame ourselves (rather than using rusmpp's codec for reading) so that
//! a PDU whose body does not decode, or whose length exceeds the limit,
//! still yields its header: the session answers it with a generic_nack
//! carrying its sequence number and the stream stays in sync. The limit is
//! checked from the length field before any of the body is buffered; an
//! oversized body is skipped as it streams by.

use bytes::{Buf, BytesMut};
use rusmpp::{Command, decode::DecodeWithLength};
use tokio_util::codec::Decoder;

/// command_length + command_id + command_status + sequence_number.
pub const HEADER_LEN: usize = 16;

/// The default largest PDU accepted: a submit_sm with a full short_message
/// and generous TLVs fits many times over.
pub const DEFAULT_MAX_PDU_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub command_length: u32,
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

impl Header {
    fn read(buf: &[u8]) -> Self {
        let word = |i: usize| u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        Self { command_length: word(0), command_id: word(4), command_status: word(8), sequence_number: word(12) }
    }
}

/// One framed unit read from the peer.
#[derive(Debug)]
pub enum Frame {
    Pdu(Box<Command>),
    /// Framed correctly but the body did not decode.
    Undecodable {
        header: Header,
        reason: String,
    },
    /// Longer than the limit; its body was (or is being) skipped.
    TooLong {
        header: Header,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A length below the header size: the stream cannot be resynchronised.
    #[error("command_length {0} is shorter than a PDU header")]
    Garbled(u32),
}

#[derive(Debug)]
pub struct FrameCodec {
    max_pdu_len: usize,
    skipping: usize,
}

impl FrameCodec {
    pub fn new(max_pdu_len: usize) -> Self {
        Self { max_pdu_len: max_pdu_len.max(HEADER_LEN), skipping: 0 }
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if self.skipping > 0 {
            let n = self.skipping.min(src.len());
            src.advance(n);
            self.skipping -= n;
            if self.skipping > 0 {
                return Ok(None);
            }
        }
        if src.len() < HEADER_LEN {
            src.reserve(HEADER_LEN);
            return Ok(None);
        }
        let header = Header::read(&src[..HEADER_LEN]);
        let len = header.command_length as usize;
        if len < HEADER_LEN {
            return Err(FrameError::Garbled(header.command_length));
        }
        if len > self.max_pdu_len {
            let n = len.min(src.len());
            src.advance(n);
            self.skipping = len - n;
            return Ok(Some(Frame::TooLong { header }));
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let mut pdu = src.split_to(len);
        pdu.advance(4);
        Ok(Some(decode_body(header, pdu)))
    }
}

/// Decodes one PDU (without its length word). Never panics: this is the
/// path the fuzz target drives.
pub fn decode_body(header: Header, mut body: BytesMut) -> Frame {
    let len = body.len();
    match Command::decode(&mut body, len) {
        Ok((command, _)) => Frame::Pdu(Box::new(command)),
        Err(error) => Frame::Undecodable { header, reason: error.to_string() },
    }
}

/// Decodes a whole buffer of concatenated PDUs as the session would; used by
/// the fuzz target and tests.
pub fn decode_all(bytes: &[u8], max_pdu_len: usize) -> Vec<Frame> {
    let mut codec = FrameCodec::new(max_pdu_len);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        out.push(frame);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::{CommandStatus, Pdu, tokio_codec::CommandCodec};
    use tokio_util::codec::Encoder;

    fn encode(command: Command) -> BytesMut {
        let mut buf = BytesMut::new();
        CommandCodec::new().encode(command, &mut buf).unwrap();
        buf
    }

    #[test]
    fn decodes_back_to_back_pdus_split_anywhere() {
        let mut bytes = encode(Command::new(CommandStatus::EsmeRok, 7, Pdu::EnquireLink));
        bytes.extend_from_slice(&encode(Command::new(CommandStatus::EsmeRok, 8, Pdu::Unbind)));
        for cut in 0..bytes.len() {
            let mut codec = FrameCodec::new(1024);
            let mut buf = BytesMut::from(&bytes[..cut]);
            let mut seqs = Vec::new();
            while let Some(Frame::Pdu(c)) = codec.decode(&mut buf).unwrap() {
                seqs.push(c.sequence_number());
            }
            buf.extend_from_slice(&bytes[cut..]);
            while let Some(Frame::Pdu(c)) = codec.decode(&mut buf).unwrap() {
                seqs.push(c.sequence_number());
            }
            assert_eq!(seqs, vec![7, 8], "cut at {cut}");
        }
    }

    #[test]
    fn too_long_is_reported_with_its_header_and_skipped() {
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&100u32.to_be_bytes());
        bytes.extend_from_slice(&4u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&42u32.to_be_bytes());
        bytes.extend_from_slice(&[0u8; 84]);
        bytes.extend_from_slice(&encode(Command::new(CommandStatus::EsmeRok, 9, Pdu::EnquireLink)));
        let frames = decode_all(&bytes, 64);
        assert!(matches!(frames[0], Frame::TooLong { header } if header.sequence_number == 42));
        assert!(matches!(&frames[1], Frame::Pdu(c) if c.sequence_number() == 9));
    }

    #[test]
    fn undecodable_body_keeps_the_stream_in_sync() {
        // bind_transmitter whose system_id is not NUL-terminated within the PDU.
        let mut bytes = BytesMut::new();
        bytes.extend_from_slice(&20u32.to_be_bytes());
        bytes.extend_from_slice(&2u32.to_be_bytes());
        bytes.extend_from_slice(&0u32.to_be_bytes());
        bytes.extend_from_slice(&5u32.to_be_bytes());
        bytes.extend_from_slice(b"abcd");
        bytes.extend_from_slice(&encode(Command::new(CommandStatus::EsmeRok, 6, Pdu::EnquireLink)));
        let frames = decode_all(&bytes, 1024);
        assert!(matches!(frames[0], Frame::Undecodable { header, .. } if header.sequence_number == 5));
        assert!(matches!(&frames[1], Frame::Pdu(c) if c.sequence_number() == 6));
    }

    #[test]
    fn length_below_header_is_fatal() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FrameError::Garbled(3))));
    }
}
