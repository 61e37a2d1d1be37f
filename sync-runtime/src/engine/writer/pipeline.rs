//! The round's pipeline, decided over plain data: which claimed step goes out next, when the
//! next batch is claimed, and which answers are settled together. [`Writer::round`] runs what
//! it says: a claim, one step's calls and a settle can all be under way at once, and each
//! starts as soon as what it needs is there, instead of waiting for the slowest of the three.
//!
//! The rules (each tested below):
//! - One step is in flight at a time. The steps of one claim go out in order, each once the
//!   step before is answered **and settled** (a child step only once its parents' outcomes are
//!   stored). A step of a later claim shares no record with the steps before it (their batch
//!   rows kept those records out of its claim), so it goes out as soon as the step before it is
//!   answered, while that step is settled.
//! - Answers are settled in the order they came, one settle at a time; the answers that arrived
//!   while a settle ran are settled together, as far as they may share a transaction (the
//!   round's rule: the same mapping). Settled one step at a time, a settle backlog only grew: at
//!   500 single-row writes a second each settle took 5–15 ms for 1–5 records while claims and
//!   calls took 3 ms, and commit → written reached p99 230–330 ms (`bench write`).
//! - The next batch is claimed once every step claimed so far has gone out (what the app wrote
//!   meanwhile), while the last one is in flight; the chain ends when a claim finds nothing, or
//!   after `max_claims` claims (so reconciliation and retries get their turn).
//! - Without a connection of its own for claims, a claim and a settle never run at once.
//!
//! [`Writer::round`]: super::Writer::round

use std::collections::VecDeque;

/// What is claimed, flying, answered and settling in one round. `S` is a claimed step, `A` the
/// answers of part of one (plain data in the tests).
#[derive(Debug)]
pub(super) struct Pipeline<S, A> {
    /// Claimed steps not sent yet, with the number of the claim that took them.
    queue: VecDeque<(usize, S)>,
    /// The step in flight: its claim and its number in the round.
    flying: Option<(usize, u64)>,
    /// Answers not settled yet: claim, step number, answers.
    answered: VecDeque<(usize, u64, A)>,
    /// The claims whose answers are being settled.
    settling: Option<Vec<usize>>,
    claiming: bool,
    /// Whether the last claim found something.
    more: bool,
    /// Claims so far (the round's first one included).
    claims: usize,
    max_claims: usize,
    /// Claims share the settle's connection.
    shared: bool,
    launched: u64,
}

impl<S, A> Pipeline<S, A> {
    /// A round whose first claim took `steps` (and found something if `more`).
    pub fn new(steps: Vec<S>, more: bool, max_claims: usize, shared: bool) -> Self {
        Pipeline {
            queue: steps.into_iter().map(|s| (0, s)).collect(),
            flying: None,
            answered: VecDeque::new(),
            settling: None,
            claiming: false,
            more,
            claims: 1,
            max_claims,
            shared,
            launched: 0,
        }
    }

    /// The next step to send, if one may go out now.
    pub fn launch(&mut self) -> Option<S> {
        if self.flying.is_some() {
            return None;
        }
        let &(claim, _) = self.queue.front()?;
        let earlier_unsettled = self.settling.as_ref().is_some_and(|c| c.contains(&claim))
            || self.answered.iter().any(|&(c, _, _)| c == claim);
        if earlier_unsettled {
            return None;
        }
        let (claim, step) = self.queue.pop_front()?;
        self.launched += 1;
        self.flying = Some((claim, self.launched));
        Some(step)
    }

    /// Answers of the step in flight arrived (some of its calls, or all).
    pub fn answered(&mut self, answers: A) {
        let Some((claim, step)) = self.flying else {
            unreachable!("answers arrive only for the step in flight");
        };
        self.answered.push_back((claim, step, answers));
    }

    /// Every call of the step in flight is answered.
    pub fn landed(&mut self) {
        self.flying = None;
    }

    /// Whether the step in flight, if any, has this number (the round's steps count from 1).
    #[cfg(test)]
    fn flying_step(&self) -> Option<u64> {
        self.flying.map(|(_, step)| step)
    }

    /// Whether the next batch is to be claimed now; if so, it counts as started.
    pub fn claim(&mut self) -> bool {
        let due = !self.claiming
            && self.more
            && self.claims < self.max_claims
            && self.queue.is_empty()
            && !(self.shared && self.settling.is_some());
        if due {
            self.claiming = true;
        }
        due
    }

    /// A claim ended, with these steps (none: it found nothing, or only entries it settled
    /// without a call) and whether it took any entry.
    pub fn claimed(&mut self, steps: Vec<S>, took_any: bool) {
        self.claiming = false;
        self.claims += 1;
        self.more = took_any;
        let claim = self.claims - 1;
        self.queue.extend(steps.into_iter().map(|s| (claim, s)));
    }

    /// The answers to settle now, if a settle may start: the oldest unsettled ones, with those
    /// after them that `joins` lets share its transaction (`joins(oldest, next)`), in order.
    ///
    /// Answers of different claims never share a record (see the module's rules), and a step
    /// waiting for an earlier one of its claim is not sent before that one is settled, so the
    /// answers waiting here may be settled together.
    pub fn settle(&mut self, joins: impl Fn(&A, &A) -> bool) -> Option<Vec<A>> {
        if self.settling.is_some() || (self.shared && self.claiming) {
            return None;
        }
        let (claim, _, first) = self.answered.pop_front()?;
        let mut claims = vec![claim];
        let mut answers = vec![first];
        while self
            .answered
            .front()
            .is_some_and(|(_, _, next)| joins(&answers[0], next))
        {
            if let Some((claim, _, next)) = self.answered.pop_front() {
                if !claims.contains(&claim) {
                    claims.push(claim);
                }
                answers.push(next);
            }
        }
        self.settling = Some(claims);
        Some(answers)
    }

    /// The settle under way ended.
    pub fn settled(&mut self) {
        self.settling = None;
    }

    /// Whether the round is over: nothing to send, in flight, to settle or being claimed.
    pub fn finished(&self) -> bool {
        self.queue.is_empty()
            && self.flying.is_none()
            && self.answered.is_empty()
            && self.settling.is_none()
            && !self.claiming
            && !(self.more && self.claims < self.max_claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers may share a settle when they are of one mapping: the text before `:`, if any.
    fn same_mapping(a: &&str, b: &&str) -> bool {
        a.split_once(':').map(|(m, _)| m) == b.split_once(':').map(|(m, _)| m)
    }

    /// A pipeline of named steps whose answers are strings.
    fn round(steps: &[&'static str], shared: bool) -> Pipeline<&'static str, &'static str> {
        Pipeline::new(steps.to_vec(), !steps.is_empty(), 64, shared)
    }

    #[test]
    fn a_claims_next_step_waits_until_the_step_before_is_answered_and_settled() {
        let mut p = round(&["parents", "children"], false);
        assert_eq!(p.launch(), Some("parents"));
        assert_eq!(p.launch(), None, "one step in flight at a time");
        p.answered("parents answered");
        p.landed();
        assert_eq!(p.launch(), None, "the parents' outcomes are not stored yet");
        assert_eq!(p.settle(same_mapping), Some(vec!["parents answered"]));
        assert_eq!(p.launch(), None, "nor while they are being settled");
        p.settled();
        assert_eq!(p.launch(), Some("children"));
    }

    #[test]
    fn the_next_claims_step_goes_out_while_the_step_before_is_settled() {
        let mut p = round(&["batch 1"], false);
        assert_eq!(p.launch(), Some("batch 1"));
        assert!(
            p.claim(),
            "every claimed step is out: the next batch is claimed"
        );
        assert!(!p.claim(), "one claim at a time");
        p.claimed(vec!["batch 2"], true);
        assert_eq!(p.launch(), None, "batch 1 is still in flight");
        p.answered("batch 1 answered");
        p.landed();
        assert_eq!(p.settle(same_mapping), Some(vec!["batch 1 answered"]));
        assert_eq!(
            p.launch(),
            Some("batch 2"),
            "it shares no record with batch 1"
        );
        assert!(p.claim(), "and the batch after is claimed meanwhile");
    }

    #[test]
    fn a_claim_waits_until_every_claimed_step_has_gone_out() {
        let mut p = round(&["parents", "children"], false);
        assert_eq!(p.launch(), Some("parents"));
        assert!(!p.claim(), "the children are not sent yet");
        p.answered("parents answered");
        p.landed();
        p.settle(same_mapping);
        p.settled();
        assert_eq!(p.launch(), Some("children"));
        assert!(p.claim());
    }

    #[test]
    fn the_chain_of_claims_ends_when_one_finds_nothing_or_after_the_most_claims() {
        let mut p = round(&["batch 1"], false);
        p.launch();
        assert!(p.claim());
        p.claimed(Vec::new(), false);
        assert!(!p.claim(), "the last claim found nothing");
        p.answered("batch 1 answered");
        p.landed();
        assert!(!p.finished(), "batch 1 is not settled");
        p.settle(same_mapping);
        p.settled();
        assert!(p.finished());

        let mut p: Pipeline<u32, u32> = Pipeline::new(vec![1], true, 3, false);
        for batch in 2..=3 {
            p.launch();
            assert!(p.claim());
            p.claimed(vec![batch], true);
            p.answered(batch - 1);
            p.landed();
            p.settle(|_, _| true);
            p.settled();
        }
        assert_eq!(p.launch(), Some(3));
        assert!(
            !p.claim(),
            "three claims in the round: the rest waits for the next round"
        );
        p.answered(3);
        p.landed();
        p.settle(|_, _| true);
        p.settled();
        assert!(p.finished());
    }

    #[test]
    fn a_claim_that_took_only_entries_settled_without_a_call_lets_the_chain_go_on() {
        let mut p = round(&["batch 1"], false);
        p.launch();
        assert!(p.claim());
        p.claimed(Vec::new(), true);
        assert!(p.claim(), "it took entries: there may be more");
    }

    #[test]
    fn answers_that_arrive_during_a_settle_are_settled_together_and_in_order() {
        let mut p = round(&["batch 1"], false);
        p.launch();
        p.answered("chunk 1");
        assert_eq!(
            p.settle(same_mapping),
            Some(vec!["chunk 1"]),
            "settled while others fly"
        );
        p.answered("chunk 2");
        p.answered("chunk 3");
        assert_eq!(p.settle(same_mapping), None, "one settle at a time");
        p.landed();
        assert!(p.claim());
        p.claimed(vec!["batch 2"], true);
        assert_eq!(p.launch(), Some("batch 2"));
        p.answered("batch 2, chunk 1");
        p.landed();
        assert!(p.claim());
        p.claimed(vec!["batch 3"], true);
        assert_eq!(p.launch(), Some("batch 3"));
        p.answered("batch 3, chunk 1");
        p.settled();
        assert_eq!(
            p.settle(same_mapping),
            Some(vec![
                "chunk 2",
                "chunk 3",
                "batch 2, chunk 1",
                "batch 3, chunk 1"
            ]),
            "the steps of later claims that answered meanwhile join the settle"
        );
        assert!(p.claim(), "batch 3 is out: the next batch is claimed");
        p.claimed(vec!["batch 4"], true);
        p.landed();
        assert_eq!(p.launch(), Some("batch 4"), "batch 3 is being settled");
        p.settled();
        assert_eq!(p.flying_step(), Some(4));
    }

    #[test]
    fn answers_of_another_mapping_wait_for_a_settle_of_their_own() {
        let mut p = round(&["accounts"], false);
        p.launch();
        p.answered("account: 1");
        p.landed();
        assert!(p.claim());
        p.claimed(vec!["contacts"], true);
        p.launch();
        p.answered("contact: 1");
        p.landed();
        assert!(p.claim());
        p.claimed(vec!["more accounts"], true);
        p.launch();
        p.answered("account: 2");
        assert_eq!(p.settle(same_mapping), Some(vec!["account: 1"]));
        p.settled();
        assert_eq!(
            p.settle(same_mapping),
            Some(vec!["contact: 1"]),
            "one settle writes one mapping's table"
        );
        p.settled();
        assert_eq!(p.settle(same_mapping), Some(vec!["account: 2"]));
    }

    #[test]
    fn a_claims_next_step_waits_for_a_settle_its_parents_share_with_another_claim() {
        let mut p = round(&["batch 1"], false);
        p.launch();
        assert!(p.claim());
        p.claimed(vec!["parents 2", "children 2"], true);
        p.answered("batch 1 answered");
        p.landed();
        assert_eq!(p.launch(), Some("parents 2"));
        p.answered("parents 2 answered");
        p.landed();
        assert_eq!(
            p.settle(same_mapping),
            Some(vec!["batch 1 answered", "parents 2 answered"])
        );
        assert_eq!(p.launch(), None, "the parents are being settled");
        p.settled();
        assert_eq!(p.launch(), Some("children 2"));
    }

    #[test]
    fn without_a_claim_connection_a_claim_and_a_settle_never_run_at_once() {
        let mut p = round(&["batch 1"], true);
        p.launch();
        p.answered("chunk 1");
        assert!(p.settle(same_mapping).is_some());
        assert!(!p.claim(), "the settle has the connection");
        p.settled();
        assert!(p.claim());
        p.answered("chunk 2");
        assert_eq!(p.settle(same_mapping), None, "the claim has the connection");
        p.claimed(vec!["batch 2"], true);
        assert_eq!(p.settle(same_mapping), Some(vec!["chunk 2"]));
    }

    #[test]
    fn a_round_with_nothing_claimed_is_over_at_once() {
        let p: Pipeline<u32, u32> = Pipeline::new(Vec::new(), false, 64, false);
        assert!(p.finished());
    }
}
