#!/usr/bin/env python3
"""Writes each `run:` script of the given workflows to OUT/<job>-<n>.sh, as
GitHub runs it (bash -e -o pipefail), with every `${{ ... }}` expression
replaced by a placeholder word, so shellcheck can read them.
Usage: workflow_scripts.py WORKFLOW... OUT"""
import re
import sys
from pathlib import Path

import yaml

*workflows, out = sys.argv[1:]
written = 0
for workflow in workflows:
    jobs = yaml.safe_load(Path(workflow).read_text())["jobs"]
    for job_name, job in jobs.items():
        for number, step in enumerate(job.get("steps", [])):
            if "run" not in step:
                continue
            script = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", step["run"])
            path = Path(out) / f"{Path(workflow).stem}-{job_name}-{number}.sh"
            path.write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{script}")
            written += 1
if written == 0:
    sys.exit("no run: scripts found: nothing was checked")
