//! The books against a model of the kernel's quota transfers: random
//! open/pass-on/upgrade/close/spend/fault/exit/restart sequences across
//! several children and servers.

extern crate std;

use super::*;
use std::collections::BTreeMap;
use std::vec::Vec;

const CHILDREN: usize = 4;
const CHILD_QUOTA: Quota = Quota {
    ram: 64 * 4096,
    caps: 40,
};
const INIT_QUOTA: Quota = Quota {
    ram: 1024 * 4096,
    caps: 1000,
};
const PARENT_QUOTA: Quota = Quota {
    ram: 4096 * 4096,
    caps: 4000,
};

/// The kernel's view: each Pd's limit and use; a transfer needs the
/// sender's free quota and both Pds alive, and some are refused at random
/// (a Pd destroyed in between, say) to make sure nothing assumes success.
struct Kernel {
    limit: BTreeMap<Account, Quota>,
    used: BTreeMap<Account, Quota>,
    alive: [bool; CHILDREN],
    refusals: usize,
    seed: u64,
}

impl Kernel {
    fn random(&mut self) -> u64 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    fn alive(&self, account: Account) -> bool {
        match account {
            Account::Child(index) => self.alive[index],
            _ => true,
        }
    }

    fn free(&self, account: Account) -> Quota {
        sub(
            self.limit.get(&account).copied().unwrap_or_default(),
            self.used.get(&account).copied().unwrap_or_default(),
        )
    }

    fn destroy(&mut self, index: usize) {
        let child = Account::Child(index);
        let all = self.limit.remove(&child).unwrap_or_default();
        self.used.remove(&child);
        let init = self.limit.entry(Account::Init).or_default();
        *init = add(*init, all);
        self.alive[index] = false;
    }

    fn total(&self) -> Quota {
        self.limit
            .values()
            .fold(Quota::default(), |sum, q| add(sum, *q))
    }
}

impl Mover for Kernel {
    fn transfer(&mut self, from: Account, to: Account, quota: Quota) -> Result<(), Error> {
        let refused = if !self.alive(from) || !self.alive(to) {
            Some(Error::InvalidCapability)
        } else if self.free(from).ram < quota.ram {
            Some(Error::RamQuotaExceeded)
        } else if self.free(from).caps < quota.caps {
            Some(Error::CapQuotaExceeded)
        } else if self.random().is_multiple_of(25) {
            Some(Error::ObjectDestroyed)
        } else {
            None
        };
        if let Some(error) = refused {
            self.refusals += 1;
            return Err(error);
        }
        let source = self.limit.entry(from).or_default();
        *source = sub(*source, quota);
        let sink = self.limit.entry(to).or_default();
        *sink = add(*sink, quota);
        Ok(())
    }
}

fn min(a: Quota, b: Quota) -> Quota {
    Quota {
        ram: a.ram.min(b.ram),
        caps: a.caps.min(b.caps),
    }
}

fn initial(account: Account) -> Quota {
    match account {
        Account::Init => INIT_QUOTA,
        Account::Parent => PARENT_QUOTA,
        Account::Child(_) => Quota::default(),
    }
}

/// The books and the kernel agree on every Pd's quota, every session's
/// donation is at exactly one place, nothing was made or lost, and every
/// refusal the kernel made is in the books.
fn check(ledger: &mut Ledger, kernel: &Kernel, total: Quota, refusals: &mut usize, step: usize) {
    let mut accounts: Vec<Account> = vec![Account::Init, Account::Parent];
    accounts.extend((0..CHILDREN).map(Account::Child));
    for account in accounts {
        let (ram, caps) = ledger.balance(account);
        let start = initial(account);
        let expected = (i128::from(start.ram) + ram, i128::from(start.caps) + caps);
        let actual = kernel.limit.get(&account).copied().unwrap_or_default();
        assert_eq!(
            expected,
            (i128::from(actual.ram), i128::from(actual.caps)),
            "step {step}: books and kernel disagree on {account:?}"
        );
    }
    assert!(
        ledger.balanced(),
        "step {step}: a session's books do not balance"
    );
    assert!(ledger.total().balanced(), "step {step}");
    assert_eq!(kernel.total(), total, "step {step}: quota made or lost");
    *refusals += ledger.take_refusals().len();
    assert_eq!(
        *refusals, kernel.refusals,
        "step {step}: a refusal went unrecorded"
    );
}

fn run(seed: u64, steps: usize) -> (usize, usize) {
    let mut kernel = Kernel {
        limit: BTreeMap::from([(Account::Init, INIT_QUOTA), (Account::Parent, PARENT_QUOTA)]),
        used: BTreeMap::new(),
        alive: [false; CHILDREN],
        refusals: 0,
        seed: seed | 1,
    };
    let total = kernel.total();
    let mut ledger = Ledger::default();
    let mut next = {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    };
    let mut refusals = 0;
    let mut next_id = 1;
    let mut open: Vec<u32> = Vec::new();
    let mut closes = 0;
    for index in 0..CHILDREN {
        kernel.alive[index] = true;
        ledger.start(&mut kernel, index, CHILD_QUOTA).unwrap_or(());
    }
    check(&mut ledger, &kernel, total, &mut refusals, 0);
    for step in 1..=steps {
        let child = (next() % CHILDREN as u64) as usize;
        let quota = Quota {
            ram: (next() % 6) * 4096,
            caps: next() % 6,
        };
        let pick = |open: &Vec<u32>, roll: u64| {
            (!open.is_empty()).then(|| open[(roll % open.len() as u64) as usize])
        };
        match next() % 10 {
            0..=2 if kernel.alive[child] => {
                let server = match next() % 4 {
                    0 => Server::Parent,
                    1 => Server::Init,
                    _ => Server::Child((next() % CHILDREN as u64) as usize),
                };
                let id = next_id;
                next_id += 1;
                if ledger.open(&mut kernel, id, child, server, quota).is_ok() {
                    open.push(id);
                }
            }
            3 => {
                if let Some(id) = pick(&open, next()) {
                    let _refused_or_moved = ledger.pass_on(&mut kernel, id);
                }
            }
            4 => {
                if let Some(id) = pick(&open, next()) {
                    // At once, or charged now and passed on when fetched.
                    if next().is_multiple_of(2) {
                        let _refused_or_moved = ledger.upgrade(&mut kernel, id, quota);
                    } else if ledger.charge_more(&mut kernel, id, quota).is_ok() {
                        let _refused_or_moved = ledger.pass_on_part(&mut kernel, id, quota);
                    }
                }
            }
            5 => {
                if let Some(id) = pick(&open, next()) {
                    ledger.close(&mut kernel, id);
                    open.retain(|s| *s != id);
                    closes += 1;
                }
            }
            6 => {
                // The child spends (or frees) quota on objects of its own:
                // a later take-back from it may be refused.
                let account = Account::Child(child);
                let used = kernel.used.get(&account).copied().unwrap_or_default();
                let spent = if next().is_multiple_of(2) {
                    add(used, min(kernel.free(account), quota))
                } else {
                    sub(used, quota)
                };
                kernel.used.insert(account, spent);
            }
            7 if kernel.alive[child] => {
                // A fault or an exit: init closes what the child holds and
                // serves (as tear_down does), around the kernel destroying
                // its Pd.
                for id in ledger.held_by(child) {
                    ledger.close(&mut kernel, id);
                    open.retain(|s| *s != id);
                    closes += 1;
                }
                kernel.destroy(child);
                ledger.destroyed(child);
                for id in ledger.served_by(child) {
                    ledger.close(&mut kernel, id);
                    open.retain(|s| *s != id);
                    closes += 1;
                }
            }
            9 => {
                if let Some(id) = pick(&open, next()) {
                    let from_server = Quota {
                        ram: (next() % 6) * 4096,
                        caps: next() % 6,
                    };
                    ledger.give_back(&mut kernel, id, from_server, quota);
                }
            }
            8 if !kernel.alive[child] => {
                kernel.alive[child] = true;
                let _refused_or_started = ledger.start(&mut kernel, child, CHILD_QUOTA);
            }
            _ => {}
        }
        check(&mut ledger, &kernel, total, &mut refusals, step);
    }
    // Close everything: every donation is back with its client or reclaimed.
    for id in open.drain(..) {
        ledger.close(&mut kernel, id);
    }
    check(&mut ledger, &kernel, total, &mut refusals, steps + 1);
    let all = ledger.total();
    assert_eq!(
        add(add(all.refunded, all.reclaimed), all.at_server),
        all.paid,
        "after the last close nothing is at init"
    );
    (closes, refusals)
}

#[test]
fn the_books_balance_and_match_the_kernel_on_random_sequences() {
    let (mut closes, mut refusals) = (0, 0);
    for seed in 1..=200 {
        let (c, r) = run(seed, 400);
        closes += c;
        refusals += r;
    }
    // The sequences exercised what they claim to.
    assert!(closes > 10_000, "{closes} closes");
    assert!(refusals > 1_000, "{refusals} refusals");
}

#[test]
fn a_refused_take_back_leaves_the_quota_at_the_server_in_the_books() {
    let mut kernel = Kernel {
        limit: BTreeMap::from([(Account::Init, INIT_QUOTA)]),
        used: BTreeMap::new(),
        alive: [true; CHILDREN],
        refusals: 0,
        seed: 2,
    };
    let mut ledger = Ledger::default();
    ledger.start(&mut kernel, 0, CHILD_QUOTA).unwrap();
    ledger.start(&mut kernel, 1, CHILD_QUOTA).unwrap();
    let paid = Quota { ram: 8192, caps: 4 };
    ledger
        .open(&mut kernel, 7, 0, Server::Child(1), paid)
        .unwrap();
    let moved = ledger.pass_on(&mut kernel, 7).unwrap();
    assert_eq!(
        moved,
        Quota {
            ram: 8192,
            caps: 4 - PARENT_SESSION_CAPS
        }
    );
    assert_eq!(ledger.books(7).map(|b| b.at_server), Some(moved));
    // The server spends everything it has.
    kernel
        .used
        .insert(Account::Child(1), kernel.limit[&Account::Child(1)]);
    let refused = ledger.close(&mut kernel, 7);
    assert_eq!(ledger.books(7), None);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].purpose, Purpose::TakeBack);
    assert_eq!(refused[0].from, Account::Child(1));
    assert_eq!(refused[0].quota, moved);
    let total = ledger.total();
    assert_eq!(total.at_server, moved);
    assert_eq!(total.refunded, sub(paid, moved));
    assert!(total.balanced());
}
