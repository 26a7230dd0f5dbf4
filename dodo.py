"""gitops-lab: a local GitOps Kubernetes lab in one command.

    doit setup                 build everything (the default task)
    doit list                  every task with its doc
    doit config                every setting, its value and where it came from
    doit setup NAME=value      override a setting (see `doit config`)

Every task is one row of tasks/operations.py (its function, doc, inputs and reality checks);
`inv --list` and the README's Makefile table come from the same rows.
"""
from tasks.graph import doit_config, doit_tasks, load_config

CFG = load_config()
DOIT_CONFIG = doit_config(CFG)

# The build graph: what `doit setup` runs, in this order, each step skipped while up to date.
#
#   preflight ──┬── registry ── cluster ──┬── metrics_server
#               │                         └── flux ─────────────┐
#               └── image ── app_push (after registry) ─────────┴── sync ── verify
#
# registry, cluster, metrics_server, flux, image, app_push and sync are up to date from their input
# files, the results of the steps before them, their settings AND reality (the container, the
# cluster, the tag still exist); preflight and verify always run and change nothing.
GRAPH = ("preflight", "registry", "cluster", "metrics_server", "flux", "image", "app_push", "sync", "verify")


def task_lab():
    """(the tasks of tasks/operations.py)"""
    yield from doit_tasks(CFG, GRAPH)
