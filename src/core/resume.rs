//! Resuming a cut chat stream without handing anything out twice.
//!
//! A `chatStream()` cut after its first delta (a reset, a stall, an end without the end marker) is
//! sent again to the same target. The caller has already seen some text, and events cannot be
//! taken back, so the new answer is only usable if it starts with exactly that text (a
//! deterministic request does): its deltas are matched against the text already delivered, and
//! only what follows it is handed out. A delta that disagrees, or an answer that ends before it
//! caught up, means the new answer diverged: the stream then fails with the text the caller has.
//! Deltas may split anywhere, so the match is kept as a byte offset into the delivered text.
//! Tool calls are held to the same rule: each delivered call's id, name and arguments must be
//! reproduced too (by byte offsets of their own), or the answer diverged. (Providers make up a new
//! call id per answer, so a resumption after a tool call was delivered only succeeds against a
//! server that answers deterministically, ids included; otherwise the stream fails as diverged
//! rather than handing out a call whose id the caller would answer in vain.)
//!
//! Whether to try at all is [`Recoveries`]: a stream has a number of recoveries (the request's
//! `retry.maxRetries` resumptions for a chat stream, `resilience.reconnect` reconnections for a GET
//! event stream). A chat stream resumes only after a cut (an in-band error or a diverged answer
//! would come back the same); an event stream reconnects after any failure; a bound passed is final
//! for both. A resumption that could not even open uses up a recovery too.

use crate::core::llm::request::{ToolCall, ToolCallDelta};
use crate::core::stream::Delta;

/// What the caller received of a stream: its text and tool calls (the last one possibly partial).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The text.
    pub text: String,
    /// The tool calls, by index.
    pub tool_calls: Vec<ToolCall>,
}

/// A resumed stream's progress against what was already delivered: the bytes of the text and of
/// each delivered tool call's id, name and arguments matched so far.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    delivered: Delivered,
    text: usize,
    calls: Vec<[usize; 3]>,
    diverged: bool,
}

/// The part of `piece` past the `delivered` bytes already matched (`at`), moving `at` on; `None`
/// when it disagrees with them.
fn past<'d>(delivered: &str, at: &mut usize, piece: &'d str) -> Option<&'d str> {
    let expected = delivered.get(*at..).unwrap_or_default();
    let fresh = if piece.len() <= expected.len() {
        expected.starts_with(piece).then_some("")
    } else {
        piece.strip_prefix(expected)
    }?;
    *at += piece.len() - fresh.len();
    Some(fresh)
}

impl Resume {
    /// Resuming after `delivered` (empty for a fresh stream: every delta is new).
    pub fn after(delivered: Delivered) -> Resume {
        Resume {
            calls: vec![[0; 3]; delivered.tool_calls.len()],
            delivered,
            text: 0,
            diverged: false,
        }
    }

    /// The part of the new answer's `delta` not delivered yet (empty while catching up); `None`
    /// once the answer diverged from what was already delivered. Text and each tool call's id,
    /// name and arguments are matched on their own, so a delta may split them anywhere.
    pub fn fresh(&mut self, delta: &Delta) -> Option<Delta> {
        if self.diverged {
            return None;
        }
        let fresh = self.match_delta(delta);
        self.diverged = fresh.is_none();
        fresh
    }

    fn match_delta(&mut self, delta: &Delta) -> Option<Delta> {
        let text = past(&self.delivered.text, &mut self.text, &delta.text)?.to_string();
        let mut tool_calls = Vec::new();
        for piece in &delta.tool_calls {
            let index = usize::try_from(piece.index).unwrap_or(usize::MAX);
            let (Some(call), Some(at)) = (
                self.delivered.tool_calls.get(index),
                self.calls.get_mut(index),
            ) else {
                tool_calls.push(piece.clone());
                continue;
            };
            let part = |delivered: &str, at: &mut usize, piece: Option<&str>| {
                let fresh = past(delivered, at, piece.unwrap_or_default())?;
                Some((!fresh.is_empty()).then(|| fresh.to_string()))
            };
            let [id_at, name_at, arguments_at] = at;
            let id = part(&call.id, id_at, piece.id.as_deref())?;
            let name = part(&call.name, name_at, piece.name.as_deref())?;
            let arguments = part(&call.arguments, arguments_at, Some(&piece.arguments_delta))?
                .unwrap_or_default();
            if id.is_some() || name.is_some() || !arguments.is_empty() {
                tool_calls.push(ToolCallDelta {
                    index: piece.index,
                    id,
                    name,
                    arguments_delta: arguments,
                });
            }
        }
        Some(Delta { text, tool_calls })
    }

    /// The new answer completed: it diverged if it had not caught up with what was delivered.
    pub fn completed(&mut self) {
        self.diverged |= self.catching_up();
    }

    /// Not yet past what was already delivered.
    pub fn catching_up(&self) -> bool {
        let calls = &self.delivered.tool_calls;
        self.text < self.delivered.text.len()
            || calls.iter().zip(&self.calls).any(|(call, at)| {
                at[0] < call.id.len() || at[1] < call.name.len() || at[2] < call.arguments.len()
            })
    }

    /// Whether any of the new answer matched yet (a resumed stream is under way from then on).
    pub fn started(&self) -> bool {
        self.text > 0 || self.calls.iter().flatten().any(|&at| at > 0)
    }

    /// The new answer does not start with what was already delivered.
    pub fn diverged(&self) -> bool {
        self.diverged
    }

    /// What the caller has received, given the new answer's `text` and `tool_calls` so far: all of
    /// them once the stream caught up, else what was delivered before the cut.
    pub fn partial<'a>(
        &'a self,
        text: &'a str,
        tool_calls: &'a [ToolCall],
    ) -> (&'a str, &'a [ToolCall]) {
        match self.diverged || self.catching_up() {
            true => (&self.delivered.text, &self.delivered.tool_calls),
            false => (text, tool_calls),
        }
    }
}

/// How a live stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection failed, went quiet, or the stream ended before its end marker.
    Cut,
    /// A byte bound was passed.
    TooLarge,
    /// Anything else: an in-band error, a resumed answer that diverged.
    Other,
}

/// The recoveries a stream has left (see the module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recoveries {
    left: u32,
    chat: bool,
}

impl Recoveries {
    /// An event stream's `max` reconnections.
    pub fn reconnects(max: u32) -> Recoveries {
        Recoveries {
            left: max,
            chat: false,
        }
    }

    /// A chat stream's `max` resumptions.
    pub fn resumes(max: u32) -> Recoveries {
        Recoveries {
            left: max,
            chat: true,
        }
    }

    /// Whether to recover after `failure`, using up a recovery if so.
    pub fn after(&mut self, failure: Failure) -> bool {
        let recoverable = match failure {
            Failure::Cut => true,
            Failure::TooLarge => false,
            Failure::Other => !self.chat,
        };
        recoverable && self.again()
    }

    /// Whether to try again after a recovery that could not open, using up a recovery if so.
    pub fn again(&mut self) -> bool {
        let left = self.left.checked_sub(1);
        self.left = left.unwrap_or(0);
        left.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Delta {
        Delta {
            text: t.into(),
            tool_calls: Vec::new(),
        }
    }

    fn piece(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Delta {
        Delta {
            text: String::new(),
            tool_calls: vec![ToolCallDelta {
                index,
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments_delta: arguments.into(),
            }],
        }
    }

    fn delivered() -> Delivered {
        Delivered {
            text: "Hello".into(),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "weather".into(),
                arguments: r#"{"city":"#.into(),
            }],
        }
    }

    #[test]
    fn text_split_anywhere_is_matched_then_handed_out() {
        let mut resume = Resume::after(Delivered {
            text: "Hello".into(),
            tool_calls: Vec::new(),
        });
        assert!(!resume.started());
        assert_eq!(resume.fresh(&text("He")), Some(text("")));
        assert!(resume.started() && resume.catching_up());
        assert_eq!(resume.fresh(&text("llo, w")), Some(text(", w")));
        assert!(!resume.catching_up());
        assert_eq!(resume.fresh(&text("orld")), Some(text("orld")));
        assert_eq!(resume.partial("Hello, world", &[]).0, "Hello, world");
    }

    #[test]
    fn delivered_tool_calls_must_be_reproduced_split_anywhere() {
        let mut resume = Resume::after(delivered());
        assert_eq!(resume.fresh(&text("Hello")), Some(text("")));
        assert!(resume.catching_up());
        assert_eq!(
            resume.fresh(&piece(0, Some("call_1"), Some("weather"), "{\"ci")),
            Some(text(""))
        );
        assert_eq!(
            resume.fresh(&piece(0, None, None, "ty\":\"Oslo\"}")),
            Some(piece(0, None, None, "\"Oslo\"}"))
        );
        assert!(!resume.catching_up());
        // A call past the delivered ones is all new.
        assert_eq!(
            resume.fresh(&piece(1, Some("call_2"), Some("now"), "{}")),
            Some(piece(1, Some("call_2"), Some("now"), "{}"))
        );
        resume.completed();
        assert!(!resume.diverged());
    }

    #[test]
    fn another_id_name_or_arguments_diverge() {
        for wrong in [
            piece(0, Some("call_9"), None, ""),
            piece(0, None, Some("news"), ""),
            piece(0, None, None, "{\"town"),
        ] {
            let mut resume = Resume::after(delivered());
            assert_eq!(resume.fresh(&text("Hello")), Some(text("")));
            assert_eq!(resume.fresh(&wrong), None, "{wrong:?}");
            assert!(resume.diverged());
            assert_eq!(resume.fresh(&text("x")), None);
            let calls = [ToolCall {
                id: "x".into(),
                name: "y".into(),
                arguments: String::new(),
            }];
            let (text, tool_calls) = resume.partial("new", &calls);
            assert_eq!(
                (text, tool_calls),
                ("Hello", delivered().tool_calls.as_slice())
            );
        }
    }

    #[test]
    fn an_answer_ending_before_the_delivered_tool_call_diverged() {
        let mut resume = Resume::after(delivered());
        assert_eq!(resume.fresh(&text("Hello")), Some(text("")));
        assert_eq!(
            resume.fresh(&piece(0, Some("call_1"), Some("weather"), "")),
            Some(text(""))
        );
        resume.completed();
        assert!(resume.diverged());
    }

    #[test]
    fn recoveries_follow_the_failure_and_the_bound() {
        let mut chat = Recoveries::resumes(1);
        assert!(!chat.after(Failure::Other));
        assert!(chat.after(Failure::Cut));
        assert!(!chat.after(Failure::Cut));
        let mut events = Recoveries::reconnects(2);
        assert!(events.after(Failure::Other));
        assert!(!events.after(Failure::TooLarge));
        assert!(events.again());
        assert!(!events.again());
    }
}
