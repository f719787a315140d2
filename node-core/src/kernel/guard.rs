//! Guards: values that undo a registration when dropped (Perl's guard objects).
//!
//! `mon`, `db_set`, `db_reg` and `db_mon` return a [`Guard`]. Dropping it
//! unregisters the monitor, deletes the entry, or ends the subscription.
//! The kernel is single-threaded and guards may be dropped anywhere (even
//! outside a callback), so a dropped guard only *posts* its undo action to a
//! queue shared with its node; the node applies it before it runs the next
//! job. Call [`Guard::forget`] to keep the registration for good (Perl's
//! "void context").

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use crate::value::Str;

/// What dropping a guard undoes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GuardAction {
    /// Remove a monitor.
    Unmon(u64),
    /// Cancel a timer.
    CancelTimer(u64),
    /// Remove a `mon_nodes` callback.
    MonNodes(u64),
    /// Delete a database entry (family, subkey).
    DbDel(Str, Str),
    /// End a `db_mon` subscription.
    DbUnmon(u64),
}

pub(crate) type GuardQueue = Rc<RefCell<Vec<GuardAction>>>;

/// Undoes a registration when dropped: dropping it unregisters the
/// monitor, deletes the database entry, ends the subscription or cancels
/// the timer. Dropping only posts the undo to the node, which applies it
/// before its next job. Call [`Guard::forget`] to keep the registration.
///
/// ```
/// use aemp_core::{Node, Time};
/// let mut node = Node::new([1; 32]);
/// let p = node.port();
/// let seen = std::rc::Rc::new(std::cell::Cell::new(false));
/// let s = seen.clone();
/// let guard = node.mon(&p, move |_, _| s.set(true));
/// drop(guard); // unregistered again
/// node.kil(&p, vec![]).unwrap();
/// node.poll(Time::ZERO);
/// assert!(!seen.get());
/// ```
#[must_use = "dropping a guard undoes the registration at once; call .forget() to keep it"]
pub struct Guard {
    action: Option<GuardAction>,
    queue: Weak<RefCell<Vec<GuardAction>>>,
}

impl Guard {
    pub(crate) fn new(queue: &GuardQueue, action: GuardAction) -> Guard {
        Guard {
            action: Some(action),
            queue: Rc::downgrade(queue),
        }
    }

    /// Keeps the registration for as long as the node lives.
    pub fn forget(mut self) {
        self.action = None;
    }

    /// The monitor id, when this guards a monitor (for `Node::unmon`).
    pub fn monitor_id(&self) -> Option<u64> {
        match self.action {
            Some(GuardAction::Unmon(id)) => Some(id),
            _ => None,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let (Some(a), Some(q)) = (self.action.take(), self.queue.upgrade()) {
            q.borrow_mut().push(a);
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Guard({:?})", self.action)
    }
}
