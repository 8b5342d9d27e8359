//! Resuming a cut chat stream without handing anything out twice.
//!
//! A `chatStream()` cut after its first delta (a reset, a stall, an end without the end marker) is
//! sent again to the same target. The caller has already seen some text, and events cannot be
//! taken back, so the new answer is only usable if it starts with exactly that text (a
//! deterministic request does): its deltas are matched against the text already delivered, and
//! only what follows it is handed out. A delta that disagrees, or an answer that ends before it
//! caught up, means the new answer diverged: the stream then fails with the text the caller has.
//! Deltas may split anywhere, so the match is kept as a byte offset into the delivered text.
//!
//! Whether to try at all is [`Recoveries`]: a stream has a number of recoveries (the request's
//! `retry.maxRetries` resumptions for a chat stream, `resilience.reconnect` reconnections for a GET
//! event stream). A chat stream resumes only after a cut (an in-band error or a diverged answer
//! would come back the same); an event stream reconnects after any failure; a bound passed is final
//! for both. A resumption that could not even open uses up a recovery too.

/// A resumed stream's progress against the text already delivered.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    delivered: String,
    matched: usize,
    diverged: bool,
}

impl Resume {
    /// Resuming after `delivered` (empty for a fresh stream: every delta is new).
    pub fn after(delivered: String) -> Resume {
        Resume {
            delivered,
            matched: 0,
            diverged: false,
        }
    }

    /// The part of the new answer's `delta` not delivered yet (empty while catching up); `None`
    /// once the answer diverged from the text already delivered.
    pub fn fresh<'d>(&mut self, delta: &'d str) -> Option<&'d str> {
        if self.diverged {
            return None;
        }
        let expected = self.delivered.get(self.matched..).unwrap_or_default();
        let fresh = if delta.len() <= expected.len() {
            expected.starts_with(delta).then_some("")
        } else {
            delta.strip_prefix(expected)
        };
        match fresh {
            Some(fresh) => self.matched += delta.len() - fresh.len(),
            None => self.diverged = true,
        }
        fresh
    }

    /// The new answer completed: it diverged if it had not caught up with the text delivered.
    pub fn completed(&mut self) {
        self.diverged |= self.catching_up();
    }

    /// Not yet past the text already delivered.
    pub fn catching_up(&self) -> bool {
        self.matched < self.delivered.len()
    }

    /// Whether any of the new answer matched yet (a resumed stream is under way from then on).
    pub fn started(&self) -> bool {
        self.matched > 0
    }

    /// The new answer does not start with the text already delivered.
    pub fn diverged(&self) -> bool {
        self.diverged
    }

    /// The text the caller has received, given the new answer's `text` so far: all of it once the
    /// stream caught up, else the text delivered before the cut.
    pub fn partial<'a>(&'a self, text: &'a str) -> &'a str {
        match self.diverged || self.catching_up() {
            true => &self.delivered,
            false => text,
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
