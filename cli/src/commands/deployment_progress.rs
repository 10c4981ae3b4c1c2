//! How far a deployment has got, told in one line, and whether `job run` has seen
//! enough of it to stop following. Pure, so the rollout's wording and ending are tested
//! without a cluster.
//!
//! `job run` stops following a deployment when it is finished (successful, failed or
//! cancelled) or when it waits on an operator: its canaries all count as healthy and
//! nothing will happen until `gantry deployment promote`. It does not stop while the
//! canaries are still coming up (they may yet fail the deployment, which the operator
//! wants to hear from `job run`), nor when `auto_promote` will promote them by itself.

use gantry_api::{Deployment, DeploymentStatus, JobRegistered};

/// Why `job run` stops following a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every instance runs the new version and counts as healthy.
    Successful,
    /// It failed (see [`failure_message`]).
    Failed,
    /// A newer version (or the job's removal) took over.
    Cancelled,
    /// Its canaries are healthy and wait for `gantry deployment promote`.
    AwaitsPromotion,
}

impl Ending {
    /// `None` while the deployment goes on (running, or paused: it may resume).
    pub fn of(d: &Deployment) -> Option<Ending> {
        match d.status {
            DeploymentStatus::Successful => Some(Ending::Successful),
            DeploymentStatus::Failed => Some(Ending::Failed),
            DeploymentStatus::Cancelled => Some(Ending::Cancelled),
            DeploymentStatus::Paused => None,
            DeploymentStatus::Running => (d.awaits_promotion()
                && !d.strategy.auto_promote
                && d.healthy >= canaries_wanted(d))
            .then_some(Ending::AwaitsPromotion),
        }
    }
}

/// How many canaries the deployment starts: its strategy's, but never more than the
/// instances it wants.
fn canaries_wanted(d: &Deployment) -> u32 {
    d.strategy.canary.min(d.desired_total)
}

/// `2/4`: instances counted healthy of those wanted.
pub fn healthy_cell(d: &Deployment) -> String {
    format!("{}/{}", d.healthy, d.desired_total)
}

/// The CANARIES column: `-` without canaries, `promoted` once they were,
/// `1 (awaiting promotion)` while an active deployment waits, else just how many.
pub fn canaries_cell(d: &Deployment) -> String {
    if d.strategy.canary == 0 {
        "-".into()
    } else if d.promoted {
        "promoted".into()
    } else if d.status.is_active() {
        format!("{} (awaiting promotion)", d.strategy.canary)
    } else {
        d.strategy.canary.to_string()
    }
}

/// `deployment web-v2-12: 2/4 healthy, 3 placed, running` (+ `, 1 unhealthy` and
/// `, 1 canary awaiting promotion` when there are).
pub fn line(d: &Deployment) -> String {
    let mut line = format!(
        "deployment {}: {} healthy, {} placed",
        d.id,
        healthy_cell(d),
        d.placed
    );
    if d.unhealthy > 0 {
        line.push_str(&format!(", {} unhealthy", d.unhealthy));
    }
    if d.awaits_promotion() && d.status.is_active() {
        let n = d.strategy.canary;
        let what = if n == 1 { "canary" } else { "canaries" };
        line.push_str(&format!(", {n} {what} awaiting promotion"));
    }
    line.push_str(&format!(", {}", d.status.as_str()));
    line
}

/// The deployment in one line, as `job status` shows a job's latest:
/// `web-v2-12 running, 2/4 healthy: 2 of 4 instances healthy`.
pub fn summary(d: &Deployment) -> String {
    described(
        format!(
            "{} {}, {} healthy",
            d.id,
            d.status.as_str(),
            healthy_cell(d)
        ),
        d,
    )
}

/// `text`, then `: <description>` when the managers gave one.
fn described(mut text: String, d: &Deployment) -> String {
    if !d.description.is_empty() {
        text.push_str(": ");
        text.push_str(&d.description);
    }
    text
}

/// ``deployment web-v2-12 of job `web` version 2``: how `job run` names the deployment
/// it followed when it stops.
fn named(d: &Deployment) -> String {
    format!(
        "deployment {} of job `{}` version {}",
        d.id, d.job_id, d.job_version
    )
}

/// What `job run` says when the deployment succeeded.
pub fn success_message(d: &Deployment) -> String {
    format!(
        "{} successful: {} instances healthy",
        named(d),
        healthy_cell(d)
    )
}

/// What `job run` says (on stderr, exit 1) when the deployment failed: its description
/// (which says why, and whether `auto_revert` could go back), and the version the revert
/// registered.
pub fn failure_message(d: &Deployment) -> String {
    let mut text = described(format!("{} failed", named(d)), d);
    if let Some(version) = d.reverted_to {
        // The managers' description usually tells of the revert already.
        if !d.description.contains("reverted") {
            text.push_str(&format!("; {}", reverted_as(version)));
        }
        text.push_str(&format!(
            " — `gantry job status {}` follows version {version}",
            d.job_id
        ));
    }
    text
}

/// What `reverted_to` means: `auto_revert` registered the last stable version's spec
/// again, as this new version.
pub fn reverted_as(version: u64) -> String {
    format!("reverted to the last stable version's spec as version {version}")
}

/// What `job run` says (on stderr, exit 3) when its `--deadline` (`deadline`) passed
/// with the deployment `id` unfinished (`d`; `None` while not visible), followed by
/// `reasons` why instances do not run (see `job_progress::why_not`).
pub fn unfinished_message(
    id: &str,
    registered: &JobRegistered,
    d: Option<&Deployment>,
    deadline: &str,
    reasons: &[String],
) -> String {
    let now = match d {
        Some(d) if d.description.is_empty() => {
            format!("{} healthy, {}", healthy_cell(d), d.status.as_str())
        }
        Some(d) => format!(
            "{} healthy, {} ({})",
            healthy_cell(d),
            d.status.as_str(),
            d.description
        ),
        None => "not visible yet".to_string(),
    };
    let mut text = format!(
        "deployment {id} of job `{}` version {}: {now} after {deadline} (--deadline); it goes \
         on (`gantry deployment status {id}`)",
        registered.id, registered.version
    );
    if !reasons.is_empty() {
        text.push_str(":\n  ");
        text.push_str(&reasons.join("\n  "));
    }
    text
}

/// What `job run` says (on stderr, exit 1) when another version took over.
pub fn cancelled_message(d: &Deployment) -> String {
    let mut text = described(format!("{} was cancelled", named(d)), d);
    text.push_str(&format!(
        " — `gantry deployment list --job {}` shows the job's deployments",
        d.job_id
    ));
    text
}

/// What `job run` says (exit 0) when the canaries wait for an operator.
pub fn awaiting_promotion_message(d: &Deployment) -> String {
    let n = d.strategy.canary;
    let what = if n == 1 {
        "its canary is healthy".to_string()
    } else {
        format!("its {n} canaries are healthy")
    };
    format!(
        "{}: {what} and awaits promotion — `gantry deployment promote {id}` rolls out the \
         rest, `gantry deployment fail {id}` gives up",
        named(d),
        id = d.id
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::Style;
    use gantry_api::UpdateStrategy;

    /// No terminal, no colour: tables as the command tests compare them.
    pub(crate) const PLAIN: Style = Style {
        tty: false,
        colour: false,
    };
    /// "Now" for the command tests' relative times (ms since the epoch).
    pub(crate) const NOW: u64 = 1_700_000_000_000;

    /// A running deployment of `web` version 2: 4 instances wanted, none placed yet.
    pub(crate) fn deployment(canary: u32) -> Deployment {
        Deployment {
            id: "web-v2-12".into(),
            job_id: "web".into(),
            job_version: 2,
            strategy: UpdateStrategy {
                canary,
                ..Default::default()
            },
            status: DeploymentStatus::Running,
            description: String::new(),
            desired_total: 4,
            placed: 0,
            healthy: 0,
            unhealthy: 0,
            promoted: false,
            reverted_to: None,
            created_at_ms: 1_000,
            modified_at_ms: 2_000,
            create_index: 12,
            modify_index: 15,
        }
    }

    /// Two deployments of `web`: version 2's (`web-v2-12`, created at index 12) and
    /// version 3's (`web-v3-40`, created at index 40).
    pub(crate) fn v2_and_v3() -> (Deployment, Deployment) {
        let mut v3 = deployment(0);
        v3.id = "web-v3-40".into();
        v3.job_version = 3;
        v3.create_index = 40;
        (deployment(0), v3)
    }

    #[test]
    fn a_rolling_deployment_is_followed_until_it_finishes() {
        let mut d = deployment(0);
        d.placed = 3;
        d.healthy = 2;
        assert_eq!(Ending::of(&d), None);
        assert_eq!(
            line(&d),
            "deployment web-v2-12: 2/4 healthy, 3 placed, running"
        );
        d.status = DeploymentStatus::Paused;
        assert_eq!(Ending::of(&d), None, "paused: it may resume");
        assert_eq!(
            line(&d),
            "deployment web-v2-12: 2/4 healthy, 3 placed, paused"
        );
        d.status = DeploymentStatus::Successful;
        d.healthy = 4;
        d.placed = 4;
        assert_eq!(Ending::of(&d), Some(Ending::Successful));
        assert_eq!(
            success_message(&d),
            "deployment web-v2-12 of job `web` version 2 successful: 4/4 instances healthy"
        );
    }

    #[test]
    fn canaries_end_the_wait_once_healthy_unless_promoted_automatically() {
        let mut d = deployment(1);
        d.placed = 1;
        assert_eq!(Ending::of(&d), None, "the canary is not healthy yet");
        assert_eq!(
            line(&d),
            "deployment web-v2-12: 0/4 healthy, 1 placed, 1 canary awaiting promotion, running"
        );
        d.healthy = 1;
        assert_eq!(Ending::of(&d), Some(Ending::AwaitsPromotion));
        assert_eq!(
            awaiting_promotion_message(&d),
            "deployment web-v2-12 of job `web` version 2: its canary is healthy and awaits \
             promotion — `gantry deployment promote web-v2-12` rolls out the rest, `gantry \
             deployment fail web-v2-12` gives up"
        );

        d.strategy.auto_promote = true;
        assert_eq!(Ending::of(&d), None, "auto_promote goes on by itself");
        d.strategy.auto_promote = false;
        d.promoted = true;
        d.placed = 2;
        assert_eq!(Ending::of(&d), None, "promoted: the rest rolls out");
        assert_eq!(
            line(&d),
            "deployment web-v2-12: 1/4 healthy, 2 placed, running"
        );
        d.status = DeploymentStatus::Paused;
        d.promoted = false;
        assert_eq!(Ending::of(&d), None, "a paused one may resume");
    }

    #[test]
    fn more_canaries_than_instances_wait_for_those_there_are() {
        let mut d = deployment(5);
        d.desired_total = 2;
        d.placed = 2;
        d.healthy = 2;
        assert_eq!(Ending::of(&d), Some(Ending::AwaitsPromotion));
        assert!(awaiting_promotion_message(&d).contains("its 5 canaries are healthy"));
    }

    #[test]
    fn a_failure_says_why_and_where_it_reverted() {
        let mut d = deployment(0);
        d.status = DeploymentStatus::Failed;
        d.unhealthy = 1;
        d.description = "allocation web-1-ab not healthy within 30s".into();
        assert_eq!(Ending::of(&d), Some(Ending::Failed));
        assert_eq!(
            line(&d),
            "deployment web-v2-12: 0/4 healthy, 0 placed, 1 unhealthy, failed"
        );
        assert_eq!(
            failure_message(&d),
            "deployment web-v2-12 of job `web` version 2 failed: allocation web-1-ab not \
             healthy within 30s"
        );
        d.strategy.auto_revert = true;
        d.reverted_to = Some(3);
        assert_eq!(
            failure_message(&d),
            "deployment web-v2-12 of job `web` version 2 failed: allocation web-1-ab not \
             healthy within 30s; reverted to the last stable version's spec as version 3 — \
             `gantry job status web` follows version 3"
        );
        d.description = "failed by an operator; reverted to version 1 as version 3".into();
        assert_eq!(
            failure_message(&d),
            "deployment web-v2-12 of job `web` version 2 failed: failed by an operator; \
             reverted to version 1 as version 3 — `gantry job status web` follows version 3",
            "the managers' description tells of the revert once"
        );
    }

    #[test]
    fn the_deadline_says_where_the_deployment_is() {
        let registered = JobRegistered {
            id: "web".into(),
            version: 2,
            index: 12,
            deployment_id: Some("web-v2-12".into()),
        };
        let mut d = deployment(0);
        d.healthy = 1;
        d.status = DeploymentStatus::Paused;
        d.description = "paused by an operator".into();
        assert_eq!(
            unfinished_message("web-v2-12", &registered, Some(&d), "2m", &[]),
            "deployment web-v2-12 of job `web` version 2: 1/4 healthy, paused (paused by an \
             operator) after 2m (--deadline); it goes on (`gantry deployment status \
             web-v2-12`)"
        );
        let reasons = ["slot 3 fits nowhere: 0 of 3 nodes fit: 3 exhausted cpu".to_string()];
        assert_eq!(
            unfinished_message("web-v2-12", &registered, None, "2m", &reasons),
            "deployment web-v2-12 of job `web` version 2: not visible yet after 2m \
             (--deadline); it goes on (`gantry deployment status web-v2-12`):\n  slot 3 fits \
             nowhere: 0 of 3 nodes fit: 3 exhausted cpu"
        );
    }

    #[test]
    fn a_cancelled_deployment_points_at_the_others() {
        let mut d = deployment(0);
        d.status = DeploymentStatus::Cancelled;
        d.description = "superseded by version 3".into();
        assert_eq!(Ending::of(&d), Some(Ending::Cancelled));
        assert_eq!(
            cancelled_message(&d),
            "deployment web-v2-12 of job `web` version 2 was cancelled: superseded by version \
             3 — `gantry deployment list --job web` shows the job's deployments"
        );
    }

    #[test]
    fn cells_and_summary() {
        let mut d = deployment(0);
        assert_eq!(canaries_cell(&d), "-");
        d.strategy.canary = 1;
        assert_eq!(canaries_cell(&d), "1 (awaiting promotion)");
        d.status = DeploymentStatus::Failed;
        assert_eq!(canaries_cell(&d), "1", "a finished one awaits nothing");
        d.promoted = true;
        assert_eq!(canaries_cell(&d), "promoted");
        d.healthy = 2;
        assert_eq!(healthy_cell(&d), "2/4");
        assert_eq!(summary(&d), "web-v2-12 failed, 2/4 healthy");
        d.description = "failed by an operator".into();
        assert_eq!(
            summary(&d),
            "web-v2-12 failed, 2/4 healthy: failed by an operator"
        );
    }
}
