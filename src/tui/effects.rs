//! Runs what `update` asks for, against the store and the use-cases, and turns the outcome into
//! an [`Action`] for the event loop. Nothing here touches the screen.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tracing::instrument::WithSubscriber;

use super::action::{Action, Effect, LoadRequest, Loaded, Report, Verb};
use crate::actions::UseCases;
use crate::domain::MessageId;
use crate::store::ListQuery;

/// A read that takes longer than this counts as the database being unavailable (and is retried
/// at the next tick), so a hung connection never freezes the counts without saying so.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one effect to completion. `Effect::Quit` is the event loop's business: None.
pub async fn execute(actions: &UseCases, actor: &str, effect: Effect) -> Option<Action> {
    match effect {
        Effect::Load(request) => Some(load(actions, request).await),
        Effect::Details(id) => {
            let result = match tokio::time::timeout(READ_TIMEOUT, actions.details(id)).await {
                Ok(Ok(d)) => Ok(Box::new(d)),
                Ok(Err(e)) => Err(one_line(&e.to_string())),
                Err(_) => Err(timed_out()),
            };
            Some(Action::DetailsLoaded { id, result })
        }
        // Like a verb: not cut short.
        Effect::Redeliver { id, number } => {
            let result = match actions.redeliver(id, number, actor).await {
                Ok(queued) => Ok(queued.iter().map(|d| (d.number, d.destination)).collect()),
                Err(e) => Err(one_line(&e.to_string())),
            };
            Some(Action::Redelivered { id, result })
        }
        Effect::Run { verb, ids } => Some(Action::Done(run(actions, actor, verb, ids).await)),
        Effect::LoadSuppressed => {
            let result = match tokio::time::timeout(READ_TIMEOUT, actions.suppressed()).await {
                Ok(Ok(rows)) => Ok(rows),
                Ok(Err(e)) => Err(one_line(&e.to_string())),
                Err(_) => Err(timed_out()),
            };
            Some(Action::SuppressedLoaded(result))
        }
        // Like a verb: not cut short, the moderator learns whether it happened.
        Effect::Unsuppress(address) => {
            let result = actions
                .unsuppress(&address, actor)
                .await
                .map_err(|e| one_line(&e.to_string()));
            Some(Action::Unsuppressed { address, result })
        }
        Effect::Quit => None,
    }
}

/// Runs `effect` on its own task, sending the resulting action to `tx`. The task's logging is
/// muted: the terminal belongs to the dashboard, and every outcome reaches the status line.
pub fn spawn(actions: Arc<UseCases>, actor: Arc<str>, effect: Effect, tx: UnboundedSender<Action>) -> JoinHandle<()> {
    tokio::spawn(
        async move {
            if let Some(action) = execute(&actions, &actor, effect).await {
                // The loop has gone when this fails: nothing left to tell.
                let _ = tx.send(action);
            }
        }
        .with_subscriber(tracing::subscriber::NoSubscriber::default()),
    )
}

async fn load(actions: &UseCases, request: LoadRequest) -> Action {
    let store = actions.store();
    let query = ListQuery {
        status: Some(request.tab.status()),
        form: request.form.clone(),
        search: request.filter.clone(),
        after: request.after,
        limit: request.limit,
    };
    let read = async {
        let rows = store.list(&query).await?;
        let counts = store.counts_for(request.form.as_deref()).await?;
        Ok::<_, crate::store::StoreError>((rows, counts))
    };
    let (rows, counts) = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            return Action::LoadFailed {
                req: request.req,
                error: one_line(&e.to_string()),
            };
        }
        Err(_) => {
            return Action::LoadFailed {
                req: request.req,
                error: timed_out(),
            };
        }
    };
    let details = match request.detail {
        Some(id) => Some(match tokio::time::timeout(READ_TIMEOUT, actions.details(id)).await {
            Ok(Ok(d)) => Ok(d),
            Ok(Err(e)) => Err(one_line(&e.to_string())),
            Err(_) => Err(timed_out()),
        }),
        None => None,
    };
    Action::Loaded(Box::new(Loaded {
        request,
        rows,
        counts,
        details,
    }))
}

/// One message after another, so "3 released, 1 failed" reports each in order. A verb is not
/// cut short by a timeout: it is a transaction that either happens or not, and the moderator
/// must learn which.
async fn run(actions: &UseCases, actor: &str, verb: Verb, ids: Vec<MessageId>) -> Report {
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let result = actions.perform(verb, id, actor).await;
        results.push((id, result.map_err(|e| one_line(&e.to_string()))));
    }
    Report { verb, results }
}

fn timed_out() -> String {
    super::text::db_timeout(READ_TIMEOUT.as_secs())
}

/// Errors go on one status line.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
