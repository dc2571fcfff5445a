//! A Server-Sent Events parser (the WHATWG `text/event-stream` rules): bytes in, events out.
//!
//! Pure: no I/O and no tokio, so it is tested with hand-written streams cut at every byte. It
//! owns line splitting (LF, CRLF or CR, also across chunk boundaries), fields, comments and the
//! last event id a reconnect sends back as `Last-Event-ID`; what an event means is the caller's.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when the server gave none.
    pub event: String,
    /// The last event id at dispatch (the stream's `id:` fields persist across events).
    pub id: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
}

/// Incremental parser; feed it the chunks of one connection in order.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting this one belongs to it.
    after_cr: bool,
    /// Nothing parsed yet: a leading byte-order mark is dropped.
    started: bool,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// A parser for a new connection that resumes after `last_id` (ids persist per the spec, and
    /// the caller needs the latest one for the next `Last-Event-ID`).
    pub fn resuming(last_id: Option<String>) -> Parser {
        Parser {
            last_id,
            ..Parser::default()
        }
    }

    /// The last id the stream set, to send as `Last-Event-ID` when reconnecting.
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Parses `chunk` and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => self.end_line(&mut events),
                b'\r' => {
                    self.end_line(&mut events);
                    match bytes.get(i + 1) {
                        Some(b'\n') => i += 1,
                        Some(_) => {}
                        None => self.after_cr = true,
                    }
                }
                b => self.line.push(b),
            }
            i += 1;
        }
        events
    }

    fn end_line(&mut self, events: &mut Vec<Event>) {
        let raw = std::mem::take(&mut self.line);
        let mut line = String::from_utf8_lossy(&raw).into_owned();
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_string();
            }
        }
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line.starts_with(':') {
            return; // a comment: keep-alives
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields
        }
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        let event = self.event.take();
        // An event without data is not dispatched (its id still counts).
        if let Some(data) = self.data.take() {
            events.push(Event {
                event: event
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "message".into()),
                id: self.last_id.clone(),
                data,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the agent sends: a keep-alive comment, a crash, a lagged notice.
    const STREAM: &str = ":keep-alive\n\n\
        event: crash\nid: 0a1b2c\ndata: {\"id\":\"0a1b2c\",\"cause\":\"oom_killed\"}\n\n\
        :keep-alive\n\n\
        event: lagged\ndata: {\"missed\":3}\n\n";

    fn parse_all(chunks: &[&[u8]]) -> (Vec<Event>, Option<String>) {
        let mut p = Parser::new();
        let events = chunks.iter().flat_map(|c| p.feed(c)).collect();
        (events, p.last_event_id().map(str::to_string))
    }

    #[test]
    fn agent_stream_yields_crash_and_lagged_events_and_skips_keep_alives() {
        let (events, last) = parse_all(&[STREAM.as_bytes()]);
        assert_eq!(
            events,
            [
                Event {
                    event: "crash".into(),
                    id: Some("0a1b2c".into()),
                    data: "{\"id\":\"0a1b2c\",\"cause\":\"oom_killed\"}".into(),
                },
                Event {
                    event: "lagged".into(),
                    // Ids persist until the server sets another.
                    id: Some("0a1b2c".into()),
                    data: "{\"missed\":3}".into(),
                },
            ]
        );
        assert_eq!(last.as_deref(), Some("0a1b2c"));
    }

    #[test]
    fn events_cut_at_any_byte_parse_the_same() {
        let whole = parse_all(&[STREAM.as_bytes()]);
        let bytes = STREAM.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(
                parse_all(&[&bytes[..cut], &bytes[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_all(&singles), whole);
    }

    #[test]
    fn crlf_and_cr_line_endings_even_split_between_chunks() {
        let lf = parse_all(&[b"event: crash\nid: 1\ndata: x\n\n"]);
        assert_eq!(
            parse_all(&[b"event: crash\r\nid: 1\r\ndata: x\r\n\r\n"]),
            lf
        );
        assert_eq!(parse_all(&[b"event: crash\rid: 1\rdata: x\r\r"]), lf);
        // CR at the end of one chunk, LF at the start of the next: one line end, not two.
        assert_eq!(
            parse_all(&[
                b"event: crash\r",
                b"\nid: 1\r",
                b"\ndata: x\r",
                b"\n\r",
                b"\n"
            ]),
            lf
        );
        assert_eq!(lf.0.len(), 1);
    }

    #[test]
    fn data_lines_join_with_newlines_and_only_one_space_is_stripped() {
        let (events, _) = parse_all(&[b"data:  two spaces\ndata:none\ndata\n\n"]);
        assert_eq!(events[0].data, " two spaces\nnone\n");
        assert_eq!(events[0].event, "message");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_but_its_id_counts() {
        let (events, last) = parse_all(&[b"event: crash\nid: 7\n\n"]);
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(last.as_deref(), Some("7"));
        // An id with a NUL is ignored, as the spec says.
        let (_, last) = parse_all(&[b"id: 7\n\nid: 8\0\ndata: x\n\n"]);
        assert_eq!(last.as_deref(), Some("7"));
    }

    #[test]
    fn multibyte_text_split_across_chunks_survives() {
        let text = "data: OOM \u{2014} 20 MiB\n\n".as_bytes();
        let dash = text.iter().position(|&b| b == 0xe2).unwrap();
        let (events, _) = parse_all(&[&text[..dash + 1], &text[dash + 1..]]);
        assert_eq!(events[0].data, "OOM \u{2014} 20 MiB");
    }

    #[test]
    fn a_leading_byte_order_mark_is_dropped() {
        let (events, _) = parse_all(&["\u{feff}event: crash\ndata: x\n\n".as_bytes()]);
        assert_eq!(events[0].event, "crash");
    }

    #[test]
    fn a_resumed_parser_keeps_the_id_until_the_stream_sets_another() {
        let mut p = Parser::resuming(Some("41".into()));
        assert_eq!(p.last_event_id(), Some("41"));
        let events = p.feed(b":keep-alive\n\nevent: crash\nid: 42\ndata: {}\n\n");
        assert_eq!(events[0].id.as_deref(), Some("42"));
        assert_eq!(p.last_event_id(), Some("42"));
    }

    #[test]
    fn an_unfinished_event_is_held_until_its_blank_line() {
        let mut p = Parser::new();
        assert!(p.feed(b"event: crash\ndata: x\n").is_empty());
        assert_eq!(p.feed(b"\n").len(), 1);
    }
}
