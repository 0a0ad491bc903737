//! The lab report's scaling algorithm (its main program, listing 1.10), reproduced exactly, to compare with.
//!
//! - **Rounds every 60 s** (`sleeptime`). The lab report's loop was `measure; decide; act;
//!   sleep(60)`. Here the controller may tick more often (5 s by default) so that it reconciles
//!   promptly, as the lab report added a new server to HAProxy as soon as it had an address; the
//!   policy then runs a round only on the first tick at or after the next 60-s mark (the
//!   shared [`Rounds`] schedule) and holds on the ticks in between without reading the counter
//!   (`hold:round`). With ticks of 60 s or longer every tick is a round.
//! - **Two baseline rounds** (`initiate`): the first tick only records the counter; the second
//!   computes `diff = int((acu − last_acu) / sleeptime)` (truncated, over the configured
//!   interval, not the measured time) and `needed`, and does nothing.
//! - **Then each tick** (`new_metrics`): `seconds` = the whole seconds between the two
//!   readings (Python's `timedelta.seconds`: truncated, modulo one day),
//!   `diff = ceil((acu − last_acu) / seconds)`, `diffpt = diff × seconds` (no `diffpt` and
//!   `diff = 0` when `seconds` is 0), and `needed = ceil(diff / threshold)`, not clamped.
//!   After a reload the lab report counted from 0 over the seconds since its own reload; here the
//!   shared reload-safe meter ([`crate::rate::meter`]) does the same with the balancer's
//!   uptime (any reload, not only the scaler's own), and without an uptime counts from 0
//!   over the interval.
//! - **Scale up** when `needed > active`, `active` being the backends ACTIVE in the cloud:
//!   booting ones are not counted. `scale_up(needed − active)` does nothing when the number
//!   of backends (all states) equals the quota (13); with more than one stopped backend it
//!   starts up to that many of them, with exactly one it starts that one, and only with none
//!   it creates them all (the cloud refusing those beyond the quota). The listing's `for …
//!   else` would start the first stopped backend a second time (an API error); the evident
//!   intent, an `if … else`, is what is modelled.
//! - **Scale down** when `needed < active`: nothing if `active ≤ min_backends`; else stop
//!   `active − needed` if that leaves more than `min_backends`; else stop
//!   `active − (needed + min_backends)` (which can be zero: the lab report keeps `needed + min`
//!   running near the bottom). No stabilization, no tolerance.
//! - The lab report also deleted stopped backends but one or two (`passive[1:][:-1]`); that is the
//!   controller's warm pool, not part of the decision.

use std::time::Duration;

use super::rounds::Rounds;
use super::{Decision, NoRate, Observation, Policy, Reason};
use crate::rate::meter::RateMeters;
use crate::rate::{Rate, Threshold};

/// The lab report's constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedConfig {
    /// `server_threshold`: requests per second per server (10).
    pub threshold: Threshold,
    /// `min_backends` (2).
    pub min_backends: u32,
    /// `quota_limit` (13).
    pub quota: u32,
    /// `sleeptime` (60 s): the time between rounds, also used by the second baseline round.
    pub interval: Duration,
}

impl Default for SeedConfig {
    fn default() -> SeedConfig {
        SeedConfig {
            threshold: Threshold::SEED,
            min_backends: 2,
            quota: 13,
            interval: Duration::from_secs(60),
        }
    }
}

/// The lab report's policy (see the module documentation).
#[derive(Debug, Clone)]
pub struct SeedPolicy {
    config: SeedConfig,
    round: u32,
    meter: RateMeters<u32>,
    rounds: Rounds,
}

impl SeedPolicy {
    /// A lab-report policy before its first baseline round.
    pub fn new(config: SeedConfig) -> SeedPolicy {
        SeedPolicy {
            config,
            round: 0,
            meter: RateMeters::new(),
            rounds: Rounds::every(config.interval),
        }
    }

    /// `needed_servers(diff)`: `int(ceil(int(diff) / float(server_threshold)))`.
    fn needed(&self, diff: u64) -> u64 {
        let n = Rate::per_second(diff).servers_needed(self.config.threshold);
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// How many `scale_up(number)` brings up, given the backends the cloud has.
    fn scale_up(&self, number: u32, obs: &Observation) -> (u32, Reason) {
        let total = obs.serving + obs.pending + obs.stopped;
        if total == self.config.quota {
            return (0, Reason::QuotaReached);
        }
        let n = match obs.stopped {
            0 => number,
            1 => 1,
            stopped => number.min(stopped),
        };
        (n, Reason::Demand)
    }

    /// How many `scale_down(needed)` stops.
    fn scale_down(&self, needed: u64, active: u32) -> u32 {
        let active = u64::from(active);
        let min = u64::from(self.config.min_backends);
        let toremove = active.saturating_sub(needed);
        let n = if toremove == 0 || active <= min {
            0
        } else if active - toremove > min {
            toremove
        } else {
            active.saturating_sub(needed.saturating_add(min))
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

impl Policy for SeedPolicy {
    fn decide(&mut self, now: Duration, obs: &Observation) -> Decision {
        let active = obs.serving;
        let hold = |reason, rate, diff, diffpt, needed| Decision {
            rate,
            diff,
            diffpt,
            needed,
            target: active,
            add: 0,
            remove: 0,
            reason,
        };
        if !obs.has_counter() {
            return hold(Reason::NoRate(NoRate::NoCounter), None, None, None, None);
        }
        if !self.rounds.due(now) {
            return hold(Reason::BetweenRounds, None, None, None, None);
        }
        // The one reload-safe meter: after a reload the increase is the new count, over the
        // time since the reload when the balancer's uptime is known (as the lab report divided by
        // the time since its own reload), else over the interval.
        let (delta, elapsed, rate) = match obs.reading(&mut self.meter, now) {
            Err(NoRate::FirstReading) => {
                // initiate(), first data: diff 0, diffpt 0, needed None.
                self.round = 1;
                return hold(Reason::Baseline, None, Some(0), Some(0), None);
            }
            Ok(r) => (r.increase, r.elapsed, Some(r.rate)),
            // No time passed: the lab report's ZeroDivisionError branch below.
            Err(_) => (0, Duration::ZERO, None),
        };
        let to_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);

        if self.round == 1 {
            // initiate(), second data: int((acu − last) / sleeptime), no action.
            self.round = 2;
            let interval = self.config.interval.as_nanos().max(1);
            let diff =
                u64::try_from(u128::from(delta) * 1_000_000_000 / interval).unwrap_or(u64::MAX);
            let diffpt = diff.saturating_mul(self.config.interval.as_secs());
            let needed = self.needed(diff);
            return hold(
                Reason::Baseline,
                rate,
                Some(diff),
                Some(diffpt),
                Some(to_u32(needed)),
            );
        }

        // new_metrics(): whole seconds as Python's timedelta.seconds gives them.
        let seconds = elapsed.as_secs() % 86_400;
        let (diff, diffpt) = if seconds == 0 {
            (0, None) // ZeroDivisionError: diff 0, diffpt never set
        } else {
            let diff = delta.div_ceil(seconds);
            (diff, Some(diff.saturating_mul(seconds)))
        };
        let needed = self.needed(diff);
        let (add, remove, reason) = if needed > u64::from(active) {
            let (add, reason) = self.scale_up(to_u32(needed) - active, obs);
            (add, 0, reason)
        } else if needed < u64::from(active) {
            let remove = self.scale_down(needed, active);
            let reason = if remove > 0 {
                Reason::ScaleDown {
                    allowed: active - remove,
                }
            } else {
                Reason::Floor
            };
            (0, remove, reason)
        } else {
            (0, 0, Reason::Steady)
        };
        Decision {
            rate,
            diff: Some(diff),
            diffpt,
            needed: Some(to_u32(needed)),
            target: active + add - remove,
            add,
            remove,
            reason,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rate::meter::Counter;

    /// The lab report's logged run (its listing 1.7): (diffpt, haactive, active, epoch, acu, date, diff, needed).
    pub(crate) const LISTING_1_7: &str = "\
0,2,2,0,0,2014-09-28 15:49:58.808737,0,
0,2,2,61,0,2014-09-28 15:50:59.071109,0,0
60,2,2,121,10,2014-09-28 15:51:59.330578,1,1
60,2,2,183,60,2014-09-28 15:53:01.526958,1,1
248,2,2,246,262,2014-09-28 15:54:03.836814,4,1
868,2,2,308,1113,2014-09-28 15:55:06.224331,14,2
1525,2,2,370,2593,2014-09-28 15:56:08.021714,25,3
2835,3,3,433,5411,2014-09-28 15:57:11.322713,45,5
4320,4,5,514,4266,2014-09-28 15:58:32.031523,72,8
7920,7,8,595,7867,2014-09-28 15:59:53.072102,132,14
5880,10,13,685,5861,2014-09-28 16:01:23.347892,98,10
4356,8,10,752,10210,2014-09-28 16:02:30.298435,66,7
1740,7,7,822,1684,2014-09-28 16:03:39.453189,29,3
1320,3,3,894,1262,2014-09-28 16:04:51.603086,22,3
1364,3,3,956,2570,2014-09-28 16:05:53.873466,22,3
1220,3,3,1018,3752,2014-09-28 16:06:55.722346,20,2
60,3,3,1086,60,2014-09-28 16:08:03.852704,1,1
60,3,3,1148,60,2014-09-28 16:09:06.335401,1,1
62,3,3,1211,122,2014-09-28 16:10:08.712067,1,1
124,3,3,1273,185,2014-09-28 16:11:11.296698,2,1
62,3,3,1336,223,2014-09-28 16:12:13.611447,1,1
0,3,3,1398,223,2014-09-28 16:13:16.051720,0,0
0,2,2,1462,223,2014-09-28 16:14:20.002880,0,0
0,2,2,1527,223,2014-09-28 16:15:24.452591,0,0
0,2,2,1589,0,2014-09-28 16:16:27.101334,0,0
";

    pub(crate) struct Row {
        pub diffpt: u64,
        pub active: u32,
        pub acu: u64,
        /// Microseconds since the first row, from the date column.
        pub micros: u64,
        pub diff: u64,
        pub needed: Option<u32>,
    }

    pub(crate) fn listing() -> Vec<Row> {
        let micros_of = |date: &str| -> u64 {
            // "2014-09-28 HH:MM:SS.ffffff" on one day.
            let time = &date[11..];
            let (hms, frac) = time.split_once('.').unwrap();
            let mut it = hms.split(':').map(|x| x.parse::<u64>().unwrap());
            let (h, m, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
            ((h * 60 + m) * 60 + s) * 1_000_000 + frac.parse::<u64>().unwrap()
        };
        let rows: Vec<Vec<&str>> = LISTING_1_7
            .lines()
            .map(|l| l.split(',').collect())
            .collect();
        let t0 = micros_of(rows[0][5]);
        rows.iter()
            .map(|f| Row {
                diffpt: f[0].parse().unwrap(),
                active: f[2].parse().unwrap(),
                acu: f[4].parse().unwrap(),
                micros: micros_of(f[5]) - t0,
                diff: f[6].parse().unwrap(),
                needed: f[7].parse().ok(),
            })
            .collect()
    }

    fn obs(acu: u64, serving: u32) -> Observation {
        Observation {
            counters: vec![Counter::new(acu)],
            serving,
            ..Observation::default()
        }
    }

    /// Whether the lab report's HAProxy had been reloaded before this row (its counter restarted
    /// from 0). The listing does not record reloads, but shows them: the counter went down,
    /// or `diffpt` is not `diff` times the whole seconds between the two dates (after a
    /// reload the lab report divided by the seconds since the reload instead).
    pub(crate) fn after_reload(rows: &[Row], i: usize) -> bool {
        if i < 2 {
            return false; // the baseline rounds
        }
        let (row, prev) = (&rows[i], &rows[i - 1]);
        let seconds = (row.micros - prev.micros) / 1_000_000;
        row.acu < prev.acu || row.diffpt != row.diff * seconds
    }

    /// Feeds the lab-report policy the listing's own readings (counter, time, active) and checks
    /// that it computes the listing's diff, diffpt and needed wherever those inputs determine
    /// them (every row but those after a reload, whose time the listing does not give), and
    /// that its decisions explain the next row's `active`.
    #[test]
    fn reproduces_listing_1_7_from_its_own_inputs() {
        let rows = listing();
        let mut p = SeedPolicy::new(SeedConfig::default());
        let mut checked = 0;
        let mut reloads = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let line = i + 2; // line numbers of the listing
            let now = Duration::from_micros(row.micros);
            let d = p.decide(now, &obs(row.acu, row.active));
            if i == 0 {
                assert_eq!((d.needed, d.diff, d.diffpt), (None, Some(0), Some(0)));
                assert_eq!(d.reason, Reason::Baseline);
                continue;
            }
            if after_reload(&rows, i) {
                // Explained by a restart 60 s before the reading: diff = ceil(acu / 60).
                assert_eq!(row.diff, row.acu.div_ceil(60), "line {line}");
                assert_eq!(row.diffpt, row.diff * 60, "line {line}");
                reloads.push(line);
            } else {
                assert_eq!(d.diff, Some(row.diff), "line {line}: diff");
                assert_eq!(d.diffpt, Some(row.diffpt), "line {line}: diffpt");
                assert_eq!(d.needed, row.needed, "line {line}: needed");
                checked += 1;
            }
            if i == 1 {
                assert_eq!(d.reason, Reason::Baseline);
                continue;
            }
            // Given the listing's diff, the lab-report policy gives the listing's needed, and its
            // decision explains the next row's active (the quota of 13 cut line 11's
            // request for 6 more to 5).
            let mut q = SeedPolicy::new(SeedConfig::default());
            q.decide(Duration::ZERO, &obs(0, row.active));
            q.decide(Duration::from_secs(60), &obs(0, row.active));
            let d = q.decide(Duration::from_secs(120), &obs(row.diff * 60, row.active));
            assert_eq!(d.needed, row.needed, "line {line}: needed from diff");
            if let Some(next) = rows.get(i + 1) {
                let expected = (row.active + d.add).min(13) - d.remove;
                assert_eq!(expected, next.active, "line {line} → {}: {d}", line + 1);
            }
        }
        assert_eq!(reloads, vec![5, 10, 11, 12, 14, 15, 18, 19, 26]);
        assert_eq!(checked, 15);
    }

    #[test]
    fn scale_down_keeps_the_seeds_floor() {
        let p = SeedPolicy::new(SeedConfig::default());
        // (needed, active) → stopped, from the listing and the code.
        for (needed, active, want) in [
            (10, 13, 3),
            (7, 10, 3),
            (3, 7, 4),
            (2, 3, 0), // 3 − 1 = 2 is not > 2; 3 − (2 + 2) < 0
            (1, 3, 0),
            (0, 3, 1), // keeps needed + min = 2
            (0, 2, 0), // active ≤ min
            (0, 9, 7),
            (1, 4, 1), // 4 − 3 = 1 ≤ 2 → 4 − (1 + 2) = 1
        ] {
            assert_eq!(
                p.scale_down(needed, active),
                want,
                "needed {needed}, active {active}"
            );
        }
    }

    #[test]
    fn scale_up_starts_stopped_ones_first_and_stops_at_the_quota() {
        let p = SeedPolicy::new(SeedConfig::default());
        let o = |serving, pending, stopped| Observation {
            counters: vec![Counter::new(0)],
            serving,
            pending,
            stopped,
            quota: None,
            ..Observation::default()
        };
        assert_eq!(p.scale_up(5, &o(3, 0, 0)).0, 5);
        assert_eq!(p.scale_up(5, &o(3, 0, 1)).0, 1); // starts the one, creates none
        assert_eq!(p.scale_up(5, &o(3, 0, 3)).0, 3);
        assert_eq!(p.scale_up(2, &o(3, 0, 3)).0, 2);
        assert_eq!(p.scale_up(4, &o(10, 3, 0)), (0, Reason::QuotaReached));
        // `==`, not `>=`: the lab report asks again above the quota (and the cloud refuses).
        assert_eq!(p.scale_up(4, &o(11, 3, 0)).0, 4);
    }

    #[test]
    fn pending_backends_are_not_counted_so_a_slow_boot_launches_a_second_wave() {
        let mut p = SeedPolicy::new(SeedConfig::default());
        let o = |acu, serving, pending| Observation {
            counters: vec![Counter::new(acu)],
            serving,
            pending,
            ..Observation::default()
        };
        p.decide(Duration::ZERO, &o(0, 2, 0));
        p.decide(Duration::from_secs(60), &o(3000, 2, 0));
        let d = p.decide(Duration::from_secs(120), &o(6000, 2, 0));
        assert_eq!((d.needed, d.add), (Some(5), 3));
        // 3 still booting a minute later: the lab report asks for 3 more.
        let d = p.decide(Duration::from_secs(180), &o(9000, 2, 3));
        assert_eq!(d.add, 3);
    }

    #[test]
    fn zero_whole_seconds_gives_diff_zero_and_no_diffpt() {
        // Rounds less than a second apart (a sleeptime of 0.5 s): the lab report's
        // ZeroDivisionError branch.
        let mut p = SeedPolicy::new(SeedConfig {
            interval: Duration::from_millis(500),
            ..SeedConfig::default()
        });
        p.decide(Duration::ZERO, &obs(0, 2));
        p.decide(Duration::from_secs(60), &obs(10, 2));
        let d = p.decide(Duration::from_millis(60_900), &obs(50, 2));
        assert_eq!((d.diff, d.diffpt, d.needed), (Some(0), None, Some(0)));
        assert_eq!(d.remove, 0); // active 2 ≤ min_backends
    }

    #[test]
    fn rounds_come_every_60_s_whatever_the_tick() {
        // Ticks every 5 s: a round at 0, 60, 120, ...; the ticks between hold without
        // reading the counter, so each round measures the whole minute.
        let mut p = SeedPolicy::new(SeedConfig::default());
        let mut rounds = Vec::new();
        for k in 0..=37u64 {
            let t = 5 * k;
            // 30 req/s from 0; the ticks between rounds would see other counters.
            let d = p.decide(Duration::from_secs(t), &obs(30 * t, 2));
            if d.reason == Reason::BetweenRounds {
                assert_eq!(
                    (d.rate, d.needed, d.add, d.action()),
                    (None, None, 0, "hold:round")
                );
            } else {
                rounds.push((t, d.diff, d.needed));
            }
        }
        assert_eq!(
            rounds,
            vec![
                (0, Some(0), None),
                (60, Some(30), Some(3)),
                (120, Some(30), Some(3)),
                (180, Some(30), Some(3))
            ]
        );
        // A tick a little early (a real clock) still rounds; a missed mark is skipped, and the
        // grid does not drift.
        let mut p = SeedPolicy::new(SeedConfig::default());
        let at = |ms: u64| Duration::from_millis(ms);
        assert!(p.rounds.due(at(0)));
        assert!(!p.rounds.due(at(55_000)));
        assert!(p.rounds.due(at(59_800)));
        assert!(!p.rounds.due(at(65_000)));
        assert!(p.rounds.due(at(190_000))); // 120 000 and 180 000 missed
        assert!(!p.rounds.due(at(200_000)));
        assert!(p.rounds.due(at(240_000)));
    }
}
