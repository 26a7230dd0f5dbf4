"""The invoke collection: same operations as dodo.py, through the same functions."""
from invoke import Collection

from tasks.inv import day2, lab

ns = Collection()
for module in (lab, day2):
    for task in module.TASKS:
        ns.add_task(task)
