//! init's books: who holds the quota of every session, and every quota
//! move init makes. Pure logic, tested on the host against a model of the
//! kernel's quota transfers.
//!
//! Every byte and capability of a session's donation is at exactly one of:
//! init, the server (a child, or init's parent for a forwarded session),
//! back with its client (`refunded`), or kept by init because its client is
//! gone (`reclaimed`: the client's Pd quota came to init when it was
//! destroyed). [`Ledger`] keeps that per session, and the balance of every
//! Pd the moves touch, so it can be compared with what the kernel reports.
//!
//! The ledger decides each move and makes it through a [`Mover`] (the
//! kernel, in init; a model, in the tests). A move the kernel refuses is
//! never assumed done: the quota stays where it was, the refusal is kept
//! in [`Ledger::take_refusals`] with who, how much and why, and init logs it.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use arbor::abi::Error;
use arbor_sessions::parent::PARENT_SESSION_CAPS;
use arbor_sessions::table::Quota;

/// A Pd quota can be at, as init sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    /// init's own Pd.
    Init,
    /// Child `index`'s Pd.
    Child(usize),
    /// init's parent (forwarded sessions: the parent took the quota from
    /// init's Pd in the same call).
    Parent,
}

/// Who serves a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// init's parent.
    Parent,
    /// Child `index`.
    Child(usize),
    /// init itself (a config ROM).
    Init,
}

impl Server {
    fn account(self) -> Account {
        match self {
            Server::Parent => Account::Parent,
            Server::Child(index) => Account::Child(index),
            Server::Init => Account::Init,
        }
    }
}

/// Moves quota between Pds: the kernel's `transfer_quota`.
pub trait Mover {
    /// Moves `quota` from `from` to `to`, or says why not (nothing moved).
    fn transfer(&mut self, from: Account, to: Account, quota: Quota) -> Result<(), Error>;
}

/// A move the kernel made already, in a call init made (the loader
/// starting a child): the books only record it.
pub struct AlreadyMoved;

impl Mover for AlreadyMoved {
    fn transfer(&mut self, _from: Account, _to: Account, _quota: Quota) -> Result<(), Error> {
        Ok(())
    }
}

/// Why a move was made (for the log line of a refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A client pays for a session (or an upgrade).
    Charge,
    /// A session's donation passes on to its server.
    PassOn,
    /// A closed or failed session's donation comes back from its server.
    TakeBack,
    /// A donation goes back to its client.
    Refund,
    /// A child's own quota, at its start.
    Start,
}

/// A move the kernel refused: who, how much, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The session it was for (0: none).
    pub session: u32,
    /// From and to.
    pub from: Account,
    pub to: Account,
    /// How much.
    pub quota: Quota,
    /// What the move was for.
    pub purpose: Purpose,
    /// What the kernel said.
    pub error: Error,
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "could not move {} bytes and {} caps from {:?} to {:?} ({:?}, session {}): {}",
            self.quota.ram,
            self.quota.caps,
            self.from,
            self.to,
            self.purpose,
            self.session,
            self.error
        )
    }
}

/// Where one session's donation is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Books {
    /// Everything its client paid, upgrades included.
    pub paid: Quota,
    /// At init.
    pub at_init: Quota,
    /// At its server.
    pub at_server: Quota,
    /// Back with its client.
    pub refunded: Quota,
    /// Kept by init, its client being gone.
    pub reclaimed: Quota,
}

impl Books {
    /// Whether every unit paid is at exactly one place.
    pub fn balanced(&self) -> bool {
        let sum = [self.at_init, self.at_server, self.refunded, self.reclaimed]
            .into_iter()
            .try_fold(Quota::default(), Quota::checked_add);
        sum == Some(self.paid)
    }
}

/// One session in the books.
#[derive(Clone, Copy, Debug)]
struct Entry {
    client: usize,
    server: Server,
    books: Books,
    /// Whether its client's Pd was destroyed (refunds are reclaimed).
    client_gone: bool,
}

/// init's books.
#[derive(Debug, Default)]
pub struct Ledger {
    sessions: BTreeMap<u32, Entry>,
    /// The net quota every account gained (or lost) through init's moves
    /// and through Pds the kernel destroyed.
    balances: BTreeMap<Account, (i128, i128)>,
    refusals: Vec<Refusal>,
    /// Closed sessions' books, summed (they stay balanced).
    closed: Books,
}

fn sub(a: Quota, b: Quota) -> Quota {
    Quota {
        ram: a.ram.saturating_sub(b.ram),
        caps: a.caps.saturating_sub(b.caps),
    }
}

fn add(a: Quota, b: Quota) -> Quota {
    a.checked_add(b).unwrap_or(a)
}

impl Ledger {
    /// Moves `quota` through `mover`, recording the balances, or the refusal.
    pub fn transfer(
        &mut self,
        mover: &mut impl Mover,
        session: u32,
        from: Account,
        to: Account,
        quota: Quota,
        purpose: Purpose,
    ) -> Result<(), Refusal> {
        if quota == Quota::default() || from == to {
            return Ok(());
        }
        match mover.transfer(from, to, quota) {
            Ok(()) => {
                self.shift(from, to, quota);
                Ok(())
            }
            Err(error) => {
                let refusal = Refusal {
                    session,
                    from,
                    to,
                    quota,
                    purpose,
                    error,
                };
                self.refusals.push(refusal);
                Err(refusal)
            }
        }
    }

    fn shift(&mut self, from: Account, to: Account, quota: Quota) {
        let (ram, caps) = (i128::from(quota.ram), i128::from(quota.caps));
        let source = self.balances.entry(from).or_default();
        *source = (source.0 - ram, source.1 - caps);
        let sink = self.balances.entry(to).or_default();
        *sink = (sink.0 + ram, sink.1 + caps);
    }

    /// A child starts with `quota` from init.
    pub fn start(
        &mut self,
        mover: &mut impl Mover,
        child: usize,
        quota: Quota,
    ) -> Result<(), Refusal> {
        self.transfer(
            mover,
            0,
            Account::Init,
            Account::Child(child),
            quota,
            Purpose::Start,
        )
    }

    /// Child `client` pays `quota` for session `id` served by `server`; the
    /// session is in the books once the charge went through.
    pub fn open(
        &mut self,
        mover: &mut impl Mover,
        id: u32,
        client: usize,
        server: Server,
        quota: Quota,
    ) -> Result<(), Refusal> {
        self.transfer(
            mover,
            id,
            Account::Child(client),
            Account::Init,
            quota,
            Purpose::Charge,
        )?;
        self.sessions.insert(
            id,
            Entry {
                client,
                server,
                books: Books {
                    paid: quota,
                    at_init: quota,
                    ..Books::default()
                },
                client_gone: false,
            },
        );
        Ok(())
    }

    /// The part of session `id`'s donation that goes to its server: all of
    /// it at init, but for the capabilities init holds for the session.
    pub fn pass_on(&mut self, mover: &mut impl Mover, id: u32) -> Result<Quota, Refusal> {
        let Some(entry) = self.sessions.get(&id).copied() else {
            return Ok(Quota::default());
        };
        let kept = Quota {
            ram: 0,
            caps: PARENT_SESSION_CAPS.min(entry.books.at_init.caps),
        };
        let moves = sub(entry.books.at_init, kept);
        if entry.server == Server::Init {
            return Ok(Quota::default());
        }
        self.transfer(
            mover,
            id,
            Account::Init,
            entry.server.account(),
            moves,
            Purpose::PassOn,
        )?;
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.books.at_init = sub(entry.books.at_init, moves);
            entry.books.at_server = add(entry.books.at_server, moves);
        }
        Ok(moves)
    }

    /// Session `id`'s client pays `more`, which goes on to its server.
    pub fn upgrade(&mut self, mover: &mut impl Mover, id: u32, more: Quota) -> Result<(), Refusal> {
        let Some(entry) = self.sessions.get(&id).copied() else {
            return Ok(());
        };
        self.transfer(
            mover,
            id,
            Account::Child(entry.client),
            Account::Init,
            more,
            Purpose::Charge,
        )?;
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.books.paid = add(entry.books.paid, more);
            entry.books.at_init = add(entry.books.at_init, more);
        }
        if entry.server == Server::Init {
            return Ok(());
        }
        match self.transfer(
            mover,
            id,
            Account::Init,
            entry.server.account(),
            more,
            Purpose::PassOn,
        ) {
            Ok(()) => {
                if let Some(entry) = self.sessions.get_mut(&id) {
                    entry.books.at_init = sub(entry.books.at_init, more);
                    entry.books.at_server = add(entry.books.at_server, more);
                }
                Ok(())
            }
            Err(refusal) => Err(refusal),
        }
    }

    /// Whether session `id` is in the books.
    pub fn has(&self, id: u32) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Session `id`'s client pays `more` (an upgrade), held at init until
    /// [`Ledger::pass_on_part`] moves it on.
    pub fn charge_more(
        &mut self,
        mover: &mut impl Mover,
        id: u32,
        more: Quota,
    ) -> Result<(), Refusal> {
        let Some(entry) = self.sessions.get(&id).copied() else {
            return Ok(());
        };
        let client = Account::Child(entry.client);
        self.transfer(mover, id, client, Account::Init, more, Purpose::Charge)?;
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.books.paid = add(entry.books.paid, more);
            entry.books.at_init = add(entry.books.at_init, more);
        }
        Ok(())
    }

    /// Moves `quota` of what init holds for session `id` on to its server
    /// (a fetched upgrade), as far as init holds it.
    pub fn pass_on_part(
        &mut self,
        mover: &mut impl Mover,
        id: u32,
        quota: Quota,
    ) -> Result<(), Refusal> {
        let Some(entry) = self.sessions.get(&id).copied() else {
            return Ok(());
        };
        let moves = Quota {
            ram: quota.ram.min(entry.books.at_init.ram),
            caps: quota.caps.min(entry.books.at_init.caps),
        };
        let to = entry.server.account();
        self.transfer(mover, id, Account::Init, to, moves, Purpose::PassOn)?;
        if let Some(entry) = self.sessions.get_mut(&id) {
            entry.books.at_init = sub(entry.books.at_init, moves);
            entry.books.at_server = add(entry.books.at_server, moves);
        }
        Ok(())
    }

    /// Gives part of session `id`'s donation back to its client while the
    /// session stays (a refused upgrade, a failed create whose record
    /// remains): up to `from_server` is taken back from the server, then up
    /// to `refund` of what init holds goes to the client.
    pub fn give_back(
        &mut self,
        mover: &mut impl Mover,
        id: u32,
        from_server: Quota,
        refund: Quota,
    ) {
        let Some(entry) = self.sessions.get(&id).copied() else {
            return;
        };
        let quota = refund;
        let back = Quota {
            ram: from_server.ram.min(entry.books.at_server.ram),
            caps: from_server.caps.min(entry.books.at_server.caps),
        };
        let from = entry.server.account();
        if self
            .transfer(mover, id, from, Account::Init, back, Purpose::TakeBack)
            .is_ok()
            && let Some(entry) = self.sessions.get_mut(&id)
        {
            entry.books.at_server = sub(entry.books.at_server, back);
            entry.books.at_init = add(entry.books.at_init, back);
        }
        let Some(entry) = self.sessions.get(&id).copied() else {
            return;
        };
        let refund = Quota {
            ram: quota.ram.min(entry.books.at_init.ram),
            caps: quota.caps.min(entry.books.at_init.caps),
        };
        if entry.client_gone {
            return;
        }
        let to = Account::Child(entry.client);
        if self
            .transfer(mover, id, Account::Init, to, refund, Purpose::Refund)
            .is_ok()
            && let Some(entry) = self.sessions.get_mut(&id)
        {
            entry.books.at_init = sub(entry.books.at_init, refund);
            entry.books.refunded = add(entry.books.refunded, refund);
        }
    }

    /// Closes session `id` (or fails it): its donation comes back from the
    /// server and goes to its client (init keeps it if the client is gone).
    /// What a refused move leaves behind stays where it is, in the books.
    pub fn close(&mut self, mover: &mut impl Mover, id: u32) -> Vec<Refusal> {
        let Some(entry) = self.sessions.get(&id).copied() else {
            return Vec::new();
        };
        let mut refused = Vec::new();
        let mut books = entry.books;
        if books.at_server != Quota::default() {
            match self.transfer(
                mover,
                id,
                entry.server.account(),
                Account::Init,
                books.at_server,
                Purpose::TakeBack,
            ) {
                Ok(()) => {
                    books.at_init = add(books.at_init, books.at_server);
                    books.at_server = Quota::default();
                }
                Err(refusal) => refused.push(refusal),
            }
        }
        if entry.client_gone {
            books.reclaimed = add(books.reclaimed, books.at_init);
            books.at_init = Quota::default();
        } else {
            match self.transfer(
                mover,
                id,
                Account::Init,
                Account::Child(entry.client),
                books.at_init,
                Purpose::Refund,
            ) {
                Ok(()) => {
                    books.refunded = add(books.refunded, books.at_init);
                    books.at_init = Quota::default();
                }
                Err(refusal) => {
                    // The client cannot take it (it cannot fail to, unless its
                    // Pd is gone): init keeps it.
                    books.reclaimed = add(books.reclaimed, books.at_init);
                    books.at_init = Quota::default();
                    refused.push(refusal);
                }
            }
        }
        self.sessions.remove(&id);
        self.closed = Books {
            paid: add(self.closed.paid, books.paid),
            at_init: add(self.closed.at_init, books.at_init),
            at_server: add(self.closed.at_server, books.at_server),
            refunded: add(self.closed.refunded, books.refunded),
            reclaimed: add(self.closed.reclaimed, books.reclaimed),
        };
        refused
    }

    /// The kernel destroyed child `index`'s Pd: all its quota is init's.
    /// What it held as a server is at init now; what it paid for sessions
    /// will be reclaimed by init when they close.
    pub fn destroyed(&mut self, index: usize) {
        let child = Account::Child(index);
        let (ram, caps) = self.balances.remove(&child).unwrap_or_default();
        let init = self.balances.entry(Account::Init).or_default();
        *init = (init.0 + ram, init.1 + caps);
        for entry in self.sessions.values_mut() {
            if entry.server == Server::Child(index) {
                entry.books.at_init = add(entry.books.at_init, entry.books.at_server);
                entry.books.at_server = Quota::default();
            }
            if entry.client == index {
                entry.client_gone = true;
            }
        }
    }

    #[cfg(test)]
    /// Sessions child `index` holds as a client.
    pub fn held_by(&self, index: usize) -> Vec<u32> {
        self.sessions
            .iter()
            .filter(|(_, e)| e.client == index)
            .map(|(id, _)| *id)
            .collect()
    }

    #[cfg(test)]
    /// Sessions child `index` serves.
    pub fn served_by(&self, index: usize) -> Vec<u32> {
        self.sessions
            .iter()
            .filter(|(_, e)| e.server == Server::Child(index))
            .map(|(id, _)| *id)
            .collect()
    }

    #[cfg(test)]
    /// Session `id`'s books.
    pub fn books(&self, id: u32) -> Option<Books> {
        self.sessions.get(&id).map(|e| e.books)
    }

    #[cfg(test)]
    /// The net (RAM, caps) `account` gained through init's moves.
    pub fn balance(&self, account: Account) -> (i128, i128) {
        self.balances.get(&account).copied().unwrap_or_default()
    }

    /// Refusals not yet reported (init logs them).
    pub fn take_refusals(&mut self) -> Vec<Refusal> {
        core::mem::take(&mut self.refusals)
    }

    #[cfg(test)]
    /// Every session's books, open and closed, summed.
    pub fn total(&self) -> Books {
        self.sessions.values().fold(self.closed, |sum, e| Books {
            paid: add(sum.paid, e.books.paid),
            at_init: add(sum.at_init, e.books.at_init),
            at_server: add(sum.at_server, e.books.at_server),
            refunded: add(sum.refunded, e.books.refunded),
            reclaimed: add(sum.reclaimed, e.books.reclaimed),
        })
    }

    /// Whether every session's books balance.
    pub fn balanced(&self) -> bool {
        self.closed.balanced() && self.sessions.values().all(|e| e.books.balanced())
    }
}

#[cfg(test)]
mod tests;
