//! A simulated world for pipeline tests: a virtual clock, a tiny executor that jumps the clock to the next
//! timer when every task is waiting, and a scripted upstream. No test sleeps; every run is deterministic.
#![allow(dead_code)]

use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use sturdy_llm::core::breaker::{BreakerConfig, Verdict};
use sturdy_llm::core::error::Failure;
use sturdy_llm::core::event::Event;
use sturdy_llm::core::platform::{Platform, ResponseMeta, SendError};
use sturdy_llm::core::policy_board::PolicyBoard;
use sturdy_llm::core::rate_limit::{RateLimitConfig, Reservation};
use sturdy_llm::core::state_store::StateStore;

/// A scripted response.
#[derive(Debug, Clone)]
pub struct SimResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl SimResponse {
    pub fn status(status: u16) -> Self {
        SimResponse {
            status,
            headers: Vec::new(),
        }
    }
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

impl ResponseMeta for SimResponse {
    fn status(&self) -> u16 {
        self.status
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// What the upstream does with one attempt: answer after `after_ms` (never, if `None`).
pub struct Reply {
    pub after_ms: Option<u64>,
    pub result: Result<SimResponse, SendError>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply::ok(SimResponse::status(status))
    }
    pub fn ok(response: SimResponse) -> Self {
        Reply {
            after_ms: Some(10),
            result: Ok(response),
        }
    }
    pub fn network() -> Self {
        Reply {
            after_ms: Some(10),
            result: Err(SendError::Network("connection reset".to_string())),
        }
    }
    /// The platform refuses the request itself (as fetch does a GET with a body).
    pub fn refused() -> Self {
        Reply {
            after_ms: Some(0),
            result: Err(SendError::Invalid(
                "Request with GET/HEAD method cannot have body.".into(),
            )),
        }
    }
    pub fn stall() -> Self {
        Reply {
            after_ms: None,
            result: Err(SendError::Network("never".to_string())),
        }
    }
    pub fn after(mut self, ms: u64) -> Self {
        self.after_ms = Some(ms);
        self
    }
}

type Script = Box<dyn FnMut(u64, &str) -> Reply>;

/// An event listener: called with the kind of each event as it is emitted.
pub type Listener = Rc<dyn Fn(&'static str)>;

/// The simulated platform: clock, timers, upstream and a log of what happened.
pub struct Sim {
    now: Cell<u64>,
    next_deadline: Cell<Option<u64>>,
    script: RefCell<Script>,
    /// (time sent, request label) for every attempt the upstream saw.
    pub sent: RefCell<Vec<(u64, String)>>,
    /// Every event, as (time, kind, debug text).
    pub events: RefCell<Vec<(u64, &'static str, String)>>,
    /// Responses discarded by the pipeline (retried attempts).
    pub discarded: Cell<u32>,
    /// Called with each event's kind as it is emitted (a listener, which may re-enter the engine).
    pub listener: RefCell<Option<Listener>>,
    /// How many copies each shared call was asked for, one entry per call.
    pub shared: RefCell<Vec<usize>>,
    /// Breaker and bucket state shared with other clients, when set ([`Sim::share_state`]).
    pub store: OnceCell<SimStore>,
}

impl Sim {
    /// A world whose upstream answers every attempt with `script(now, request)`.
    pub fn new(script: impl FnMut(u64, &str) -> Reply + 'static) -> Rc<Self> {
        Rc::new(Sim {
            now: Cell::new(0),
            next_deadline: Cell::new(None),
            script: RefCell::new(Box::new(script)),
            sent: RefCell::new(Vec::new()),
            events: RefCell::new(Vec::new()),
            discarded: Cell::new(0),
            listener: RefCell::new(None),
            shared: RefCell::new(Vec::new()),
            store: OnceCell::new(),
        })
    }

    /// From now on the pipeline asks `board`, `latency_ms` away, instead of its own breakers and
    /// buckets (as `sharedState` does with a Durable Object).
    pub fn share_state(self: &Rc<Self>, board: PolicyBoard, latency_ms: u64) {
        let store = SimStore {
            sim: Rc::downgrade(self),
            board: RefCell::new(board),
            latency_ms,
        };
        assert!(self.store.set(store).is_ok(), "state shared once");
    }

    pub fn now(&self) -> u64 {
        self.now.get()
    }

    pub fn advance_to(&self, t: u64) {
        assert!(t >= self.now.get());
        self.now.set(t);
    }

    pub fn events_of(&self, kind: &str) -> Vec<(u64, String)> {
        self.events
            .borrow()
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(t, _, text)| (*t, text.clone()))
            .collect()
    }

    pub fn send_times(&self) -> Vec<u64> {
        self.sent.borrow().iter().map(|(t, _)| *t).collect()
    }

    /// A timer future on the virtual clock.
    pub fn timer(self: &Rc<Self>, ms: u64) -> Timer {
        Timer {
            sim: self.clone(),
            deadline: self.now.get().saturating_add(ms),
        }
    }

    fn want_wakeup(&self, at: u64) {
        let next = self.next_deadline.get().map_or(at, |d| d.min(at));
        self.next_deadline.set(Some(next));
    }

    /// Runs all tasks to completion, jumping the clock from timer to timer. Panics if they deadlock.
    pub fn run(self: &Rc<Self>, mut tasks: Vec<Pin<Box<dyn Future<Output = ()>>>>) {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            self.next_deadline.set(None);
            tasks.retain_mut(|task| task.as_mut().poll(&mut cx).is_pending());
            if tasks.is_empty() {
                return;
            }
            match self.next_deadline.get() {
                Some(at) if at > self.now.get() => self.now.set(at),
                Some(_) => {}
                None => panic!("simulation stalled: {} tasks wait on nothing", tasks.len()),
            }
        }
    }

    /// Runs one future to completion and returns its output.
    pub fn block_on<T: 'static>(self: &Rc<Self>, future: impl Future<Output = T> + 'static) -> T {
        let slot = Rc::new(RefCell::new(None));
        let out = slot.clone();
        self.run(vec![Box::pin(async move {
            *out.borrow_mut() = Some(future.await);
        })]);
        let value = slot.borrow_mut().take();
        value.expect("task finished")
    }
}

/// Resolves when the virtual clock reaches its deadline.
pub struct Timer {
    sim: Rc<Sim>,
    deadline: u64,
}

impl Future for Timer {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.sim.now.get() >= self.deadline {
            Poll::Ready(())
        } else {
            self.sim.want_wakeup(self.deadline);
            Poll::Pending
        }
    }
}

/// The platform handle the engine runs on.
#[derive(Clone)]
pub struct SimPlatform(pub Rc<Sim>);

/// Wall clock at simulated time 0: 2026-01-01T00:00:00Z.
pub const WALL_EPOCH_MS: u64 = 1_767_225_600_000;

/// A shared state store on the virtual clock: a [`PolicyBoard`] answering after `latency_ms`.
pub struct SimStore {
    sim: Weak<Sim>,
    pub board: RefCell<PolicyBoard>,
    pub latency_ms: u64,
}

impl SimStore {
    /// The round trip to the store; the time at the store.
    async fn trip(&self) -> u64 {
        let sim = self.sim.upgrade().expect("the sim outlives its store");
        sim.timer(self.latency_ms).await;
        sim.now()
    }
}

impl StateStore for SimStore {
    type Ticket = (BreakerConfig, Option<u32>);

    async fn admit(&self, key: &str, cfg: &BreakerConfig, _: u64) -> Result<Self::Ticket, Failure> {
        let now = self.trip().await;
        match self.board.borrow_mut().admit(key, Some(cfg), now).admitted {
            Ok(probe) => Ok((cfg.clone(), probe)),
            Err(retry_after_ms) => Err(Failure::CircuitOpen {
                key: key.to_string(),
                retry_after_ms,
            }),
        }
    }

    fn record(&self, key: &str, (cfg, probe): Self::Ticket, verdict: Verdict, now_ms: u64) {
        self.board
            .borrow_mut()
            .record(key, verdict, probe, Some(&cfg), now_ms);
    }

    async fn take(
        &self,
        key: &str,
        tokens: u64,
        cfg: &RateLimitConfig,
        _: u64,
    ) -> Result<Reservation, Failure> {
        let now = self.trip().await;
        let taken = self.board.borrow_mut().take(key, tokens, Some(cfg), now);
        taken
            .map(Reservation::remote)
            .map_err(|retry_after_ms| Failure::RateLimited {
                key: key.to_string(),
                retry_after_ms,
            })
    }
}

impl Platform for SimPlatform {
    type Request = String;
    type Response = SimResponse;
    type Store = SimStore;

    fn now_ms(&self) -> u64 {
        self.0.now()
    }
    fn wall_ms(&self) -> u64 {
        WALL_EPOCH_MS + self.0.now()
    }
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        self.0.timer(ms)
    }
    fn send(&self, request: &String) -> impl Future<Output = Result<SimResponse, SendError>> {
        let now = self.0.now();
        self.0.sent.borrow_mut().push((now, request.clone()));
        let reply = (self.0.script.borrow_mut())(now, request);
        let sim = self.0.clone();
        async move {
            match reply.after_ms {
                Some(ms) => sim.timer(ms).await,
                None => std::future::pending::<()>().await,
            }
            reply.result
        }
    }
    fn discard(&self, _: SimResponse) {
        self.0.discarded.set(self.0.discarded.get() + 1);
    }
    fn share(&self, response: &SimResponse, copies: usize, each: &mut dyn FnMut(SimResponse)) {
        self.0.shared.borrow_mut().push(copies);
        for _ in 0..copies {
            each(response.clone());
        }
    }
    fn emit(&self, event: Event) {
        let kind = event.kind();
        self.0
            .events
            .borrow_mut()
            .push((self.0.now(), kind, format!("{event:?}")));
        let listener = self.0.listener.borrow().clone();
        if let Some(listener) = listener {
            listener(kind);
        }
    }
    fn store(&self) -> Option<&SimStore> {
        self.0.store.get()
    }
}
