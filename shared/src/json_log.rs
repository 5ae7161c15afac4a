//! `log style = json`: one event as one JSON object on one line, built
//! with serde_json from the event's typed fields, so the line is valid
//! JSON whatever a message or file name holds (serde_json escapes quotes,
//! backslashes and control characters; names that are not UTF-8 arrive
//! here already escaped, see [`crate::logging::escaped_name`]).
//!
//! Every object has `time` (RFC 3339, local offset, milliseconds),
//! `level`, `pid`, `event` (`log` unless the event names itself, e.g.
//! `transfer`, `connect`, `session_end`) and `message`; a session's
//! lines add `module`, `host` and `addr` from the thread's
//! [`LogContext`]. The field list per event is in docs/operations.md.

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};

use crate::logging::LogContext;

/// Whether the event carries its own `event` field: its other fields are
/// for JSON, and the text line is its message alone.
pub fn is_structured(event: &tracing::Event<'_>) -> bool {
    event.metadata().fields().field("event").is_some()
}

/// The event's message as text.
pub fn message_of(event: &tracing::Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    match fields.0.remove("message") {
        Some(Value::String(text)) => text,
        _ => String::new(),
    }
}

/// The event as one JSON line (no line end).
pub fn event_line(event: &tracing::Event<'_>, context: Option<&LogContext>) -> String {
    let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    let level = event.metadata().level().as_str().to_ascii_lowercase();
    let mut fields = Fields::default();
    event.record(&mut fields);
    object(now, level, std::process::id(), fields.0, context).to_string()
}

/// The object of one event: its fields over the common ones.
fn object(time: String, level: String, pid: u32, fields: Map<String, Value>, context: Option<&LogContext>) -> Value {
    let mut out = Map::new();
    out.insert("time".into(), Value::String(time));
    out.insert("level".into(), Value::String(level));
    out.insert("pid".into(), Value::from(pid));
    out.insert("event".into(), Value::String("log".into()));
    if let Some(c) = context {
        for (key, value) in [("module", &c.module), ("host", &c.host), ("addr", &c.addr)] {
            if let Some(value) = value {
                out.insert(key.into(), Value::String(value.clone()));
            }
        }
    }
    out.extend(fields);
    out.entry("message").or_insert_with(|| Value::String(String::new()));
    Value::Object(out)
}

/// An event's fields as JSON values, by their types.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `message` and `%value` fields arrive here, formatted as text.
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use crate::logging::{LineFormat, LogStyle};

    /// Lines written by a subscriber in `style`, with `context`.
    fn capture(style: LogStyle, context: Option<LogContext>, emit: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(data);
                Ok(data.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Buf {
            type Writer = Buf;
            fn make_writer(&'a self) -> Buf {
                self.clone()
            }
        }
        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(LineFormat { style })
            .with_writer(buf.clone())
            .finish();
        let previous = crate::logging::set_this_threads_context(context.map(Arc::new));
        tracing::subscriber::with_default(subscriber, emit);
        crate::logging::set_this_threads_context(previous);
        let out = buf.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    fn parse(line: &str) -> Map<String, Value> {
        match serde_json::from_str::<Value>(line).unwrap() {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_hostile_message_is_one_valid_json_line() {
        let hostile = "name\nwith \"quotes\" \\ and \u{1b}[31m escapes\r\u{0}";
        let out = capture(LogStyle::Json, None, || tracing::warn!("file {hostile} vanished"));
        assert_eq!(out.lines().count(), 1, "{out}");
        let map = parse(out.trim_end());
        assert_eq!(map["message"], Value::String(format!("file {hostile} vanished")));
        assert_eq!(map["level"], "warn");
        assert_eq!(map["event"], "log");
        assert_eq!(map["pid"], u64::from(std::process::id()));
        assert!(map["time"].as_str().unwrap().contains('T'));
        assert!(!map.contains_key("module"));
    }

    #[test]
    fn typed_fields_and_the_sessions_context() {
        let context = LogContext {
            module: Some("m".into()),
            host: Some("h".into()),
            addr: Some("127.0.0.1".into()),
        };
        let name = crate::logging::escaped_name(b"a\n\"b\xff");
        let out = capture(LogStyle::Json, Some(context), || {
            tracing::info!(
                event = "transfer",
                file = name.as_ref(),
                length = 7u64,
                mtime = -1i64,
                uid = None::<u32>,
                ok = true,
                "recv {}",
                name
            )
        });
        let map = parse(out.trim_end());
        assert_eq!(map["event"], "transfer");
        assert_eq!(map["module"], "m");
        assert_eq!(map["addr"], "127.0.0.1");
        assert_eq!(map["file"], "a\n\"b\\#377");
        assert_eq!(map["length"], 7);
        assert_eq!(map["mtime"], -1);
        assert_eq!(map["ok"], true);
        assert!(!map.contains_key("uid"), "an absent value is no field");
        assert_eq!(map["message"], "recv a\n\"b\\#377");
    }

    #[test]
    fn text_style_shows_a_structured_events_message_only() {
        let out = capture(LogStyle::Text, None, || {
            tracing::info!(event = "transfer", length = 7u64, "recv a\nb");
            tracing::info!(detail = 3u64, "plain");
        });
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("] recv a\\#012b"), "{out}");
        assert!(lines[1].ends_with("] plain detail=3"), "{out}");
    }
}
