//! What a tick asked of the cloud and the balancer, counted: the changes that were made, by
//! kind, and the calls that failed, by call and kind of error. `webscaler run --metrics`
//! adds them up into its counters.

use std::collections::BTreeMap;
use std::fmt;

/// A change the controller makes to the cloud or the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// A backend created in the cloud.
    Create,
    /// A stopped backend started.
    Start,
    /// A backend stopped (into the warm pool).
    Stop,
    /// A backend deleted.
    Delete,
    /// A server added to the balancer (in maintenance, checks on).
    Add,
    /// A joining server made ready.
    Ready,
    /// A server drained.
    Drain,
    /// A draining server made ready again.
    Undrain,
    /// A server removed from the balancer.
    Remove,
}

impl Change {
    /// Every change, in this order.
    pub const ALL: [Change; 9] = [
        Change::Create,
        Change::Start,
        Change::Stop,
        Change::Delete,
        Change::Add,
        Change::Ready,
        Change::Drain,
        Change::Undrain,
        Change::Remove,
    ];

    /// Its name (`create`, ..., `remove`).
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Start => "start",
            Change::Stop => "stop",
            Change::Delete => "delete",
            Change::Add => "add",
            Change::Ready => "ready",
            Change::Drain => "drain",
            Change::Undrain => "undrain",
            Change::Remove => "remove",
        }
    }

    /// Which side it is made to.
    pub fn side(self) -> Side {
        match self {
            Change::Create | Change::Start | Change::Stop | Change::Delete => Side::Cloud,
            _ => Side::Balancer,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cloud or the balancer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Cloud,
    Balancer,
}

/// One failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Failure {
    pub side: Side,
    /// The call: a [`Change`]'s name, or `list` and `quota` (the cloud), `observe` (the
    /// balancer).
    pub call: &'static str,
    /// The kind of error ([`crate::cloud::CloudError::kind`],
    /// [`crate::balancer::Balancer::error_kind`]).
    pub kind: &'static str,
}

/// What one tick did and what failed (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Changes the cloud or the balancer accepted, by kind (a create counts each backend
    /// created).
    pub changes: BTreeMap<Change, u64>,
    /// Calls that failed, in order.
    pub failures: Vec<Failure>,
}

impl Tally {
    /// `n` changes of kind `c` were made.
    pub fn changed(&mut self, c: Change, n: u64) {
        if n > 0 {
            *self.changes.entry(c).or_default() += n;
        }
    }

    /// A call failed.
    pub fn failed(&mut self, side: Side, call: &'static str, kind: &'static str) {
        self.failures.push(Failure { side, call, kind });
    }

    /// How many changes of kind `c` were made.
    pub fn count(&self, c: Change) -> u64 {
        self.changes.get(&c).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_add_up_and_zero_is_not_recorded() {
        let mut t = Tally::default();
        t.changed(Change::Create, 3);
        t.changed(Change::Create, 2);
        t.changed(Change::Drain, 0);
        assert_eq!(t.count(Change::Create), 5);
        assert_eq!(t.count(Change::Drain), 0);
        assert_eq!(t.changes.len(), 1);
        t.failed(Side::Cloud, "list", "transient");
        assert_eq!(
            t.failures,
            [Failure {
                side: Side::Cloud,
                call: "list",
                kind: "transient"
            }]
        );
    }

    #[test]
    fn names_are_distinct_and_sides_right() {
        let names: std::collections::BTreeSet<_> = Change::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Change::ALL.len());
        assert_eq!(Change::Start.side(), Side::Cloud);
        assert_eq!(Change::Undrain.side(), Side::Balancer);
    }
}
