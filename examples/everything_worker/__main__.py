"""``python -m everything_worker [--subject everything]``: serve the example worker until SIGTERM, with
its owner's worker credential from ``SKILLRELAY_WORKER_CREDENTIAL`` (``python -m everything_worker.register``
prints one)."""

from __future__ import annotations

import argparse
import os

from everything_worker.modern import SkillsetEditor
from everything_worker.worker import DEFAULT_SUBJECT, build_worker
from skillrelay_worker.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="everything_worker", description=__doc__)
    parser.add_argument("--subject", default=os.environ.get("SKILLRELAY_WORKER_SUBJECT", DEFAULT_SUBJECT))
    parser.add_argument("--nats-url", default=os.environ.get("SKILLRELAY_NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--credential", default=os.environ.get("SKILLRELAY_WORKER_CREDENTIAL"))
    args = parser.parse_args()
    if not args.credential:
        parser.error("a worker credential is required: --credential or SKILLRELAY_WORKER_CREDENTIAL")
    configure_logging(os.environ.get("SKILLRELAY_LOG_LEVEL", "info"), None, service="everything-worker")
    editor = None
    registry_url = os.environ.get("SKILLRELAY_EVERYTHING_REGISTRY_URL")
    api_key = os.environ.get("SKILLRELAY_EVERYTHING_API_KEY")
    skillset_id = os.environ.get("SKILLRELAY_EVERYTHING_SKILLSET_ID")
    if registry_url and api_key and skillset_id:
        # The suite's trigger tools change the worker's own skillset through the REST API.
        editor = SkillsetEditor(registry_url, api_key, skillset_id)
    build_worker(args.subject, editor, credential=args.credential).run(args.nats_url)


main()
