"""``llmtrail demo``: realistic traffic for a new user's server, so every page has something
to show.

Built as a client of a running server, through the same doors real traffic uses — the gateway
routes of all three wire formats for the last hour, ``POST /api/records`` and ``/v1/traces``
for the days before it (the gateway stamps calls with the time they happen), and the
management API for profiles, prices, saved queries and budgets — so the demo also exercises
the paths a user's applications take, and needs nothing but llmtrail's ``server`` extra (no
provider SDK). What is sent is a plan (`plan`), data drawn from a seed before anything is sent;
the cast of applications is data too (`cast`). `wire` speaks each format, `live` sends now,
`history` and `backfill` render the past as the gateway would have recorded it, `spans` adds
the agent and tool steps, `control` the control-plane state, and `runner` ties them together.
"""

from llmtrail.demo.plan import Plan, make_plan
from llmtrail.demo.runner import Tally, run_demo

__all__ = ["Plan", "Tally", "make_plan", "run_demo"]
