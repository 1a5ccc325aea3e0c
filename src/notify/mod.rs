//! Notifications: people learn of their work without watching a page.
//!
//! A notification is an outbox message (`store::OutboxMessage`, kind `mail.*`) written by
//! `CaseService` in the same store append as the events that cause it, so a message exists
//! exactly when its act does: none is lost in a crash after the commit, none is sent for an act
//! that was refused or never written. This module is the pure part:
//! - `notices` turns one append's events (and who may act before and after it) into `Notice`s,
//!   one per recipient: a new task (each member of a group seat, and delegates, get their own),
//!   a reminder or an escalation at a step's deadline, a case returned for correction, a case
//!   decided (approved, rejected, withdrawn by someone else) to its submitter. A notice carries
//!   ids, the form's summary fields read through `visibility` (never a restricted field), and
//!   nothing that signs anyone in.
//! - `Preferences` and `plan`: what a person chose (which kinds, immediately or one daily digest
//!   at a time of day in Macau time on working days of the holiday calendar, quiet hours), and
//!   when a notice is therefore due.
//!
//! Delegations set and ended are announced from the delegation record instead
//! (`notify::mail`, `DATA/delegations.jsonl` is their commit).
//!
//! The shell is `notify::mail` (rendering in the recipient's language, SMTP through lettre, the
//! `MailDispatcher` thread that delivers at least once with back-off) and `notify::book` (the
//! preferences file, `DATA/notifications.json`). `docs/notifications.md` describes it all.

pub mod book;
pub mod mail;

use crate::forms::HolidayCalendar;
use crate::workflow::{Action, Assignment, Case, CaseEvent};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;

/// The prefix of every notification kind in the outbox; webhooks never receive these.
pub const MAIL_PREFIX: &str = "mail.";

/// What a notification is about; also what a person turns on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// A step waits for the recipient (on their seat, as group member or as delegate).
    Task,
    /// A step's deadline is near and the recipient has not acted.
    Reminder,
    /// A step's deadline passed and it was escalated to the recipient.
    Escalation,
    /// The recipient's case was returned for correction.
    Returned,
    /// The recipient's case was approved, rejected or withdrawn (by someone else).
    Decided,
    /// A delegation to or from the recipient was set or ended (by someone else).
    Delegation,
}

impl Topic {
    pub const ALL: [Topic; 6] = [Topic::Task, Topic::Reminder, Topic::Escalation, Topic::Returned, Topic::Decided, Topic::Delegation];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Task => "task",
            Topic::Reminder => "reminder",
            Topic::Escalation => "escalation",
            Topic::Returned => "returned",
            Topic::Decided => "decided",
            Topic::Delegation => "delegation",
        }
    }

    /// The outbox kind: `mail.task`, `mail.reminder` …
    pub fn kind(self) -> String {
        format!("{MAIL_PREFIX}{}", self.as_str())
    }

    /// The topic of an outbox kind, if it is a notification.
    pub fn of_kind(kind: &str) -> Option<Topic> {
        let name = kind.strip_prefix(MAIL_PREFIX)?;
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Whether an outbox kind is a notification (delivered by mail, not to webhooks).
pub fn is_notification(kind: &str) -> bool {
    kind.starts_with(MAIL_PREFIX)
}

/// One summary field's value as the notice carries it: the raw value of an unrestricted
/// summary field (`forms::summary`); labels are drawn in the recipient's language when sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryValue {
    pub field: String,
    pub value: Value,
}

/// A notification's payload, as committed in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// The person it is for (a directory id; the address is looked up when it is sent).
    pub recipient: String,
    pub case_id: String,
    pub form_id: String,
    /// The pinned form version, so labels are those the case was filled in with.
    pub form_hash: String,
    pub workflow_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// For a task held under delegation: the principal the recipient acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
    /// For `decided`: `approved`, `rejected` or `withdrawn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Who returned, rejected or withdrew the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The approver's comment on a return (what to correct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the act happened.
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub summary: Vec<SummaryValue>,
}

/// One notice and its topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub topic: Topic,
    pub notice: Notice,
}

/// What `notices` reads of one append.
pub struct AppendFacts<'a> {
    pub events: &'a [CaseEvent],
    /// Who could act before the append (empty for a new case).
    pub before: &'a [Assignment],
    /// Who can act after it.
    pub after: &'a [Assignment],
    pub case: &'a Case,
    /// The summary fields' values, restricted ones already left out (`visibility`).
    pub summary: Vec<SummaryValue>,
}

/// The notifications one append causes, at most one per (recipient, topic, step). Nobody is
/// told of their own act.
pub fn notices(facts: &AppendFacts<'_>) -> Vec<Notification> {
    let case = facts.case;
    let base = |recipient: &str, at: DateTime<Utc>| Notice {
        recipient: recipient.to_string(),
        case_id: case.id.clone(),
        form_id: case.form.id.clone(),
        form_hash: case.form.hash.clone(),
        workflow_hash: case.workflow.hash.clone(),
        step: None,
        on_behalf_of: None,
        outcome: None,
        by: None,
        comment: None,
        at,
        summary: facts.summary.clone(),
    };
    let mut out: Vec<Notification> = Vec::new();
    let mut push = |topic: Topic, notice: Notice| {
        let same = |n: &Notification| n.topic == topic && n.notice.recipient == notice.recipient && n.notice.step == notice.step;
        if !out.iter().any(same) {
            out.push(Notification { topic, notice });
        }
    };
    let mut escalated: BTreeSet<(String, String)> = BTreeSet::new();
    let mut actors: BTreeSet<&str> = BTreeSet::new();
    for e in facts.events {
        match e {
            CaseEvent::Acted { actor, .. } | CaseEvent::Resubmitted { by: actor, .. } => {
                actors.insert(actor);
            }
            CaseEvent::Submitted { submitter, .. } => {
                actors.insert(submitter);
            }
            _ => {}
        }
    }
    for e in facts.events {
        match e {
            CaseEvent::Reminded { at, step, people, .. } => {
                for p in people {
                    push(Topic::Reminder, Notice { step: Some(step.clone()), ..base(p, *at) });
                }
            }
            CaseEvent::Escalated { at, step, added, .. } => {
                for p in added {
                    escalated.insert((p.clone(), step.clone()));
                    push(Topic::Escalation, Notice { step: Some(step.clone()), ..base(p, *at) });
                }
            }
            CaseEvent::Acted { at, step, actor, action: Action::Return, comment, .. } if actor != &case.submitter => {
                push(Topic::Returned, Notice { step: Some(step.clone()), by: Some(actor.clone()), comment: comment.clone(), ..base(&case.submitter, *at) });
            }
            CaseEvent::Completed { at } => push(Topic::Decided, Notice { outcome: Some("approved".into()), ..base(&case.submitter, *at) }),
            CaseEvent::Rejected { at, by, step } if by != &case.submitter => {
                push(Topic::Decided, Notice { outcome: Some("rejected".into()), by: Some(by.clone()), step: Some(step.clone()), ..base(&case.submitter, *at) })
            }
            CaseEvent::Withdrawn { at, by, .. } if by != &case.submitter => {
                push(Topic::Decided, Notice { outcome: Some("withdrawn".into()), by: Some(by.clone()), ..base(&case.submitter, *at) })
            }
            _ => {}
        }
    }
    // New tasks: who may act now and could not before (a step opened, a delegate added). An
    // escalation target is told by the escalation instead.
    let at = facts.events.last().map(CaseEvent::at).unwrap_or(case.updated_at);
    for a in facts.after {
        let was = facts.before.iter().any(|b| b.person == a.person && b.step == a.step && b.seat == a.seat);
        if was || actors.contains(a.person.as_str()) || escalated.contains(&(a.person.clone(), a.step.clone())) {
            continue;
        }
        push(Topic::Task, Notice { step: Some(a.step.clone()), on_behalf_of: a.on_behalf_of.clone(), ..base(&a.person, at) });
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Preferences and when a notice is due

/// Immediately, or collected into one mail a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    #[default]
    Immediate,
    Digest,
}

/// A span of the day (Macau time) with no mail; `from` after `to` spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    #[serde(with = "hhmm")]
    pub from: NaiveTime,
    #[serde(with = "hhmm")]
    pub to: NaiveTime,
}

/// What one person chose. The default: every kind, immediately, no quiet hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    pub topics: BTreeSet<Topic>,
    pub delivery: Delivery,
    /// The time of the daily digest, Macau time.
    #[serde(with = "hhmm")]
    pub digest_at: NaiveTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<QuietHours>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            topics: Topic::ALL.into_iter().collect(),
            delivery: Delivery::Immediate,
            digest_at: NaiveTime::from_hms_opt(17, 0, 0).expect("17:00"),
            quiet: None,
        }
    }
}

/// `HH:MM`, as people type a time of day.
pub mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(text: &str) -> Option<NaiveTime> {
        let t = text.trim();
        (t.len() == 5).then(|| NaiveTime::parse_from_str(t, "%H:%M").ok()).flatten()
    }

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a time of day as HH:MM")))
    }
}

/// When a notice is to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The recipient turned this kind off.
    Off,
    Now,
    /// Held until the end of the recipient's quiet hours.
    At(DateTime<Utc>),
    /// In the daily digest sent at this time.
    Digest(DateTime<Utc>),
}

use crate::wording::macau;

/// When a notice of `topic` noticed at `now` is due under `prefs`. Digests go out on working
/// days of `calendar` (Saturdays and Sundays off when there is none).
pub fn plan(prefs: &Preferences, topic: Topic, now: DateTime<Utc>, calendar: Option<&HolidayCalendar>) -> Plan {
    if !prefs.topics.contains(&topic) {
        return Plan::Off;
    }
    if prefs.delivery == Delivery::Digest {
        return Plan::Digest(next_digest(prefs.digest_at, now, calendar));
    }
    match prefs.quiet.and_then(|q| quiet_until(q, now)) {
        Some(end) => Plan::At(end),
        None => Plan::Now,
    }
}

/// The first working day's `at` (Macau time) strictly after `now`.
pub fn next_digest(at: NaiveTime, now: DateTime<Utc>, calendar: Option<&HolidayCalendar>) -> DateTime<Utc> {
    let local = now.with_timezone(&macau());
    let mut day = local.date_naive();
    for _ in 0..800 {
        let working = match calendar {
            Some(c) => c.is_working_day(day),
            None => !matches!(chrono::Datelike::weekday(&day), chrono::Weekday::Sat | chrono::Weekday::Sun),
        };
        if working
            && let Some(t) = macau().from_local_datetime(&day.and_time(at)).single()
            && t.with_timezone(&Utc) > now
        {
            return t.with_timezone(&Utc);
        }
        day = day.succ_opt().unwrap_or(day);
    }
    // A calendar without a working day in two years: send the next day rather than never.
    now + Duration::days(1)
}

/// The end of the quiet hours `now` falls in, if it falls in them.
pub fn quiet_until(q: QuietHours, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if q.from == q.to {
        return None;
    }
    let local = now.with_timezone(&macau());
    let t = local.time();
    let inside = if q.from < q.to { q.from <= t && t < q.to } else { t >= q.from || t < q.to };
    if !inside {
        return None;
    }
    let today = local.date_naive();
    let day = if t < q.to { today } else { today.succ_opt().unwrap_or(today) };
    macau().from_local_datetime(&day.and_time(q.to)).single().map(|x| x.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hm(s: &str) -> NaiveTime {
        hhmm::parse(s).unwrap()
    }

    #[test]
    fn a_digest_goes_out_at_the_chosen_time_on_the_next_working_day() {
        // Friday 2026-03-06 18:00 Macau: past 17:00, so Monday 17:00 Macau (09:00 UTC).
        assert_eq!(next_digest(hm("17:00"), at("2026-03-06T10:00:00Z"), None), at("2026-03-09T09:00:00Z"));
        // The same Friday at 08:00 Macau: that afternoon.
        assert_eq!(next_digest(hm("17:00"), at("2026-03-06T00:00:00Z"), None), at("2026-03-06T09:00:00Z"));
    }

    #[test]
    fn quiet_hours_hold_a_notice_until_they_end_also_across_midnight() {
        let q = QuietHours { from: hm("20:00"), to: hm("08:00") };
        // 23:00 Macau → 08:00 Macau next day (00:00 UTC).
        assert_eq!(quiet_until(q, at("2026-03-06T15:00:00Z")), Some(at("2026-03-07T00:00:00Z")));
        // 06:00 Macau → 08:00 the same day.
        assert_eq!(quiet_until(q, at("2026-03-05T22:00:00Z")), Some(at("2026-03-06T00:00:00Z")));
        // 12:00 Macau: not quiet.
        assert_eq!(quiet_until(q, at("2026-03-06T04:00:00Z")), None);
        let day = QuietHours { from: hm("12:00"), to: hm("14:00") };
        assert_eq!(quiet_until(day, at("2026-03-06T04:30:00Z")), Some(at("2026-03-06T06:00:00Z")));
    }

    #[test]
    fn a_kind_turned_off_is_never_planned_and_the_default_is_now() {
        let mut p = Preferences::default();
        assert_eq!(plan(&p, Topic::Task, at("2026-03-06T04:00:00Z"), None), Plan::Now);
        p.topics.remove(&Topic::Task);
        assert_eq!(plan(&p, Topic::Task, at("2026-03-06T04:00:00Z"), None), Plan::Off);
        assert_eq!(plan(&p, Topic::Decided, at("2026-03-06T04:00:00Z"), None), Plan::Now);
    }

    #[test]
    fn kinds_read_back_as_topics_and_others_are_not_notifications() {
        for t in Topic::ALL {
            assert_eq!(Topic::of_kind(&t.kind()), Some(t));
        }
        assert_eq!(Topic::of_kind("decision"), None);
        assert!(!is_notification("case.completed"));
        assert!(hhmm::parse("7:00").is_none() && hhmm::parse("24:00").is_none() && hhmm::parse("07:30").is_some());
    }
}
