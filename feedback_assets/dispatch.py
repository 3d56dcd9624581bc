"""The dispatch_alerts job: one run per velocity breach opens (or comments on) a ticket and posts to Slack."""

from datetime import date

import dagster as dg

from feedback_assets.alerts.dispatch import Dispatcher
from feedback_assets.alerts.evidence import AlertContext, VelocityRowMissing, build_alert
from feedback_assets.alerts.ledger import DispatchLedger
from resources.settings import ui_base_url
from resources.slack import SlackNotifierResource
from resources.table_store import TableStore
from resources.tickets import TicketsResource

DISPATCH_JOB_NAME = "dispatch_alerts"


class BreachConfig(dg.Config):
    series_key: str
    day: str
    velocity_run_id: str = ""


def alert_context(run_id: str) -> AlertContext:
    return AlertContext(run_id=run_id, ui_base_url=ui_base_url())


@dg.op(retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
       tags={"kind": "alerting"})
def dispatch_alert(context: dg.OpExecutionContext, config: BreachConfig, table_store: dg.ResourceParam[TableStore],
                   tickets: TicketsResource, slack: SlackNotifierResource) -> dg.Output:
    """Opens or updates the owner's ticket for one breach and posts it to the owner's Slack channel, once."""
    try:
        alert = build_alert(table_store, config.series_key, date.fromisoformat(config.day),
                            alert_context(config.velocity_run_id or context.run_id))
    except VelocityRowMissing as missing:
        # Retrying cannot make a missing velocity row appear; say what to do instead.
        raise dg.Failure(str(missing), allow_retries=False) from missing
    dispatcher = Dispatcher(DispatchLedger(table_store), tickets.sink(), slack.sink(), context.run_id, context.log.info)
    outcome = dispatcher.dispatch(alert)
    return dg.Output(None, metadata={
        "breach_key": alert.breach_key,
        "ticket_action": outcome.ticket_action,
        "ticket": dg.MetadataValue.url(outcome.ticket.url) if outcome.ticket and outcome.ticket.url.startswith("http")
        else dg.MetadataValue.text(outcome.ticket.key if outcome.ticket else "-"),
        "slack_channel": outcome.post.channel if outcome.post else "-",
        "owner": alert.owner.team,
        "priority_score": alert.priority_score,
    })


@dg.job(name=DISPATCH_JOB_NAME, tags={"layer": "alerting"},
        description="Turns one complaint-velocity breach into a ticket (or a comment on the open one) and a Slack post.")
def dispatch_alerts_job():
    dispatch_alert()
