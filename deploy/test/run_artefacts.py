#!/usr/bin/env python3
"""End-to-end test of the artefacts in deploy/, without a cluster.

Runs every shard command of each artefact here, with the environment its
engine would set, then its merge command, and checks the merged results
are byte-identical to one unsharded `scx fuzz` of the same campaign:

- GitHub Actions: the plan step (with hand-given inputs), every matrix
  job's "Run shard" step in a checkout of its own, the merge job's steps;
- Kubernetes: the Indexed Job's container command for every completion
  index, then the merge Job's command;
- Slurm: the array script for every task of its `--array`, then the merge
  script; submit.sh against a stand-in `sbatch` that records its calls.

A further test kills a Kubernetes shard midway (SIGKILL, as a lost node),
retries the index as the Job controller would, and checks the same.

The commands are read out of the artefacts themselves, so a change to an
artefact is what gets tested. Usage: run_artefacts.py --scx target/release/scx
Exit 0 when every check held, 1 otherwise (a check that could not run is a
failure, not a pass).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Two quick scenarios of different shapes keep the test to seconds.
SCENARIOS = ["quickstart.toml", "partition-heal-mesh.toml"]
SEEDS = "0..24"
GITHUB_SHARDS = 3


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(args, env=None, cwd=None, expect=0):
    merged = dict(os.environ)
    merged.update(env or {})
    done = subprocess.run(args, env=merged, cwd=cwd, capture_output=True, text=True)
    if expect is not None and done.returncode != expect:
        raise Failure(
            f"{' '.join(map(str, args))} exited {done.returncode}, expected {expect}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def scenario_dir(work):
    """A directory holding the test's scenarios, as `scenarios/` of a checkout."""
    target = work / "scenarios"
    target.mkdir(parents=True)
    for name in SCENARIOS:
        shutil.copy(ROOT / "scenarios" / name, target / name)
    return target


def unsharded(scx, work, seeds=SEEDS):
    """The one-machine campaign every merge must equal, byte for byte."""
    scenarios = scenario_dir(work / f"whole-{seeds}")
    out = work / f"whole-{seeds}.jsonl"
    # Relative paths, as every artefact below runs: records name the path given.
    names = sorted(f"scenarios/{path.name}" for path in scenarios.glob("*.toml"))
    run([scx, "fuzz", *names, "--seeds", seeds, "--jobs", "2", "--out", out], cwd=scenarios.parent)
    return out.read_bytes()


def same_results(merged, whole, what):
    check(merged.exists(), f"{what}: the merge wrote no {merged}")
    got = merged.read_bytes()
    check(len(got) > 0, f"{what}: the merged results are empty")
    check(got == whole, f"{what}: merged results differ from the unsharded campaign "
          f"({len(got.splitlines())} vs {len(whole.splitlines())} lines)")


def shard_line(stderr, shard, source):
    """The campaign's first line names the shard and where it came from."""
    first = stderr.splitlines()[0] if stderr else ""
    check(f"shard {shard} (from {source}" in first, f"first line does not say shard {shard} from {source}: {first!r}")


# ---- GitHub Actions ---------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def evaluate(text, values):
    """Replaces each `${{ expr }}` with its value; an unknown one is a failure."""
    def one(match):
        expr = match.group(1)
        check(expr in values, f"the workflow uses `${{{{ {expr} }}}}`, which this test does not know")
        return str(values[expr])
    return EXPRESSION.sub(one, str(text))


def step(job, name=None, id=None):
    for candidate in job["steps"]:
        if (name and candidate.get("name") == name) or (id and candidate.get("id") == id):
            return candidate
    raise Failure(f"no step {name or id} in the workflow job")


def run_step(found, values, cwd, extra_env=None, expect=0):
    env = {key: evaluate(value, values) for key, value in (found.get("env") or {}).items()}
    env.update(extra_env or {})
    script = evaluate(found["run"], values)
    # GitHub's default shell for `run` on Linux.
    return run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], env=env, cwd=cwd, expect=expect)


def test_github(scx, work):
    workflow = yaml.safe_load((DEPLOY / "github-actions/scx-campaign.yml").read_text())
    jobs = workflow["jobs"]
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    check("workflow_dispatch" in triggers, "the workflow cannot be started by hand")
    inputs = triggers["workflow_dispatch"]["inputs"]
    check({"seeds", "shards"} <= set(inputs), f"dispatch inputs are {sorted(inputs)}")
    # The plan job, with the inputs a user gives by hand.
    out = work / "github_output"
    out.write_text("")
    values = {"inputs.seeds || '0..2000'": SEEDS, f"inputs.shards || '{inputs['shards']['default']}'": GITHUB_SHARDS}
    run_step(step(jobs["plan"], id="plan"), values, work, {"GITHUB_OUTPUT": str(out)})
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines() if line)
    check(json.loads(outputs["shards"]) == list(range(1, GITHUB_SHARDS + 1)), f"plan made {outputs}")
    values = {f"needs.plan.outputs.{key}": value for key, value in outputs.items()}
    matrix = jobs["shard"]["strategy"]["matrix"]["shard"]
    check(evaluate(matrix, {"fromJSON(needs.plan.outputs.shards)": outputs["shards"]}) == outputs["shards"], matrix)
    check(jobs["shard"]["strategy"].get("fail-fast") is False, "one failing shard must not cancel the others")
    # Every matrix job on a runner of its own: a checkout and the binary.
    artifacts = work / "gh-merge" / "shards"
    artifacts.mkdir(parents=True)
    names = set()
    for shard in json.loads(outputs["shards"]):
        values["matrix.shard"] = shard
        runner = work / f"gh-shard-{shard}"
        scenario_dir(runner)
        (runner / "bin").mkdir()
        shutil.copy(scx, runner / "bin" / "scx")
        done = run_step(step(jobs["shard"], name="Run shard"), values, runner)
        shard_line(done.stderr, f"{shard}/{GITHUB_SHARDS}", f"SCX_SHARD={shard}/{GITHUB_SHARDS}")
        upload = [s for s in jobs["shard"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")][0]
        name, path = evaluate(upload["with"]["name"], values), evaluate(upload["with"]["path"], values)
        check(name not in names, f"artifact name {name} is used twice")
        names.add(name)
        shutil.copy(runner / path, artifacts / Path(path).name)
    # The merge job.
    merge = work / "gh-merge"
    (merge / "bin").mkdir()
    shutil.copy(scx, merge / "bin" / "scx")
    summary = work / "step_summary.md"
    summary.write_text("")
    run_step(step(jobs["merge"], name="Merge and report"), values, merge, {"GITHUB_STEP_SUMMARY": str(summary)})
    run_step(step(jobs["merge"], name="Fail if a seed did not pass"), values, merge)
    same_results(merge / "results.jsonl", unsharded(scx, work), "GitHub Actions")
    check((merge / "report" / "report.html").exists(), "the merge job wrote no report")
    text = summary.read_text()
    runs = len(SCENARIOS) * 24
    check(f"{runs} runs, 0 did not pass" in text, f"step summary says: {text!r}")
    check("Incomplete" not in text, f"a complete campaign is called incomplete: {text!r}")
    # A lost shard (its job died before uploading): the merge job still
    # reports what ran, names the missing shard, and fails.
    lost = work / "gh-merge-lost"
    shutil.copytree(merge / "bin", lost / "bin")
    shutil.copytree(artifacts, lost / "shards")
    (lost / "shards" / "shard-2.jsonl").unlink()
    summary.write_text("")
    done = run_step(step(jobs["merge"], name="Merge and report"), values, lost,
                    {"GITHUB_STEP_SUMMARY": str(summary)}, expect=1)
    text = summary.read_text()
    per_shard = runs // GITHUB_SHARDS
    check(f"{runs - per_shard} runs, 0 did not pass" in text and "**Incomplete:**" in text, f"summary: {text!r}")
    check(f"shard 2/{GITHUB_SHARDS}: no results file given ({per_shard} runs)" in text, f"summary: {text!r}")
    check("::error::the campaign is incomplete" in done.stdout, f"no error annotation: {done.stdout!r}")
    check((lost / "report" / "report.html").exists(), "a lost shard left no report of what ran")


# ---- Kubernetes ---------------------------------------------------------------

def container_command(manifest, mount_to, overrides):
    spec = manifest["spec"]["template"]["spec"]
    check(spec.get("restartPolicy") == "Never", "pods must not restart in place (the Job retries the index)")
    container = spec["containers"][0]
    env = {item["name"]: str(item["value"]) for item in container.get("env", [])}
    env.update(overrides)
    mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
    command = container["command"] + container.get("args", [])
    for mount in mounts:
        # The mount path where a path starts, not inside one (`/results/results.jsonl`).
        at = re.compile(rf"(?<![\w/.]){re.escape(mount)}(?=/|\b)")
        command = [at.sub(str(mount_to), part) for part in command]
    return command, env


def test_kubernetes(scx, work):
    job = yaml.safe_load((DEPLOY / "kubernetes/campaign-job.yaml").read_text())
    spec = job["spec"]
    check(spec.get("completionMode") == "Indexed", "the campaign is not an Indexed Job")
    check("backoffLimitPerIndex" in spec, "a lost pod must be retried per index")
    completions = spec["completions"]
    results = work / "k8s-results"
    results.mkdir()
    # The image's /scx/scenarios, as a path relative to the pod's directory.
    pod = scenario_dir(work / "k8s").parent
    overrides = {"SCX_SEEDS": SEEDS, "SCX_SCENARIOS": "scenarios/*.toml"}
    command, env = container_command(job, results, overrides)
    check(env.get("SCX_SHARD_COUNT") == str(completions), f"SCX_SHARD_COUNT {env.get('SCX_SHARD_COUNT')} "
          f"is not the Job's completions ({completions})")
    env["PATH"] = f"{Path(scx).parent}:{os.environ['PATH']}"
    for index in range(completions):
        done = run(command, env={**env, "JOB_COMPLETION_INDEX": str(index)}, cwd=pod)
        shard_line(done.stderr, f"{index + 1}/{completions}", f"JOB_COMPLETION_INDEX={index}")
    # A retried index that had finished changes nothing.
    before = (results / "shard-1.jsonl").read_bytes()
    run(command, env={**env, "JOB_COMPLETION_INDEX": "1"}, cwd=pod)
    check((results / "shard-1.jsonl").read_bytes() == before, "retrying a finished index changed its results")
    merge = yaml.safe_load((DEPLOY / "kubernetes/merge-job.yaml").read_text())
    merge_command, merge_env = container_command(merge, results, {})
    run(merge_command, env={**merge_env, "PATH": env["PATH"]})
    same_results(results / "results.jsonl", unsharded(scx, work), "Kubernetes")


def test_kubernetes_killed_shard(scx, work):
    """A pod killed midway (a lost node) is retried with its index and resumes."""
    job = yaml.safe_load((DEPLOY / "kubernetes/campaign-job.yaml").read_text())
    completions = job["spec"]["completions"]
    seeds = "0..100"
    results = work / "k8s-kill-results"
    results.mkdir()
    pod = scenario_dir(work / "k8s-kill").parent
    command, env = container_command(job, results, {"SCX_SEEDS": seeds, "SCX_SCENARIOS": "scenarios/*.toml"})
    env["PATH"] = f"{Path(scx).parent}:{os.environ['PATH']}"
    victim = results / "shard-0.jsonl"
    process = subprocess.Popen(command, env={**os.environ, **env, "JOB_COMPLETION_INDEX": "0"}, cwd=pod,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if victim.exists() and victim.read_bytes().count(b"\n") >= 5:
            break
        if process.poll() is not None:
            break
        time.sleep(0.01)
    check(process.poll() is None, "the shard finished (or died) before it could be killed: the test did not run")
    process.send_signal(signal.SIGKILL)
    process.wait()
    planned = len(SCENARIOS) * len(range(0, 100, completions))
    kept = victim.read_bytes().count(b"\n") - 1  # the first line is the campaign manifest
    check(0 < kept < planned, f"the killed shard left {kept} of {planned} records: not a midway kill")
    done = run(command, env={**env, "JOB_COMPLETION_INDEX": "0"}, cwd=pod)
    check(f"{kept} records kept" in done.stderr, f"the retry did not resume: {done.stderr}")
    for index in range(1, completions):
        run(command, env={**env, "JOB_COMPLETION_INDEX": str(index)}, cwd=pod)
    merge = yaml.safe_load((DEPLOY / "kubernetes/merge-job.yaml").read_text())
    merge_command, merge_env = container_command(merge, results, {})
    run(merge_command, env={**merge_env, "PATH": env["PATH"]})
    same_results(results / "results.jsonl", unsharded(scx, work, seeds), "Kubernetes with a killed shard")


# ---- Slurm ------------------------------------------------------------------

def sbatch_option(script, name):
    for line in script.read_text().splitlines():
        match = re.match(rf"#SBATCH --{name}=(\S+)", line)
        if match:
            return match.group(1)
    raise Failure(f"{script.name} has no #SBATCH --{name}")


def test_slurm(scx, work):
    script = DEPLOY / "slurm/scx-shard.sbatch"
    array = sbatch_option(script, "array")
    match = re.fullmatch(r"(\d+)-(\d+)(%\d+)?", array)
    check(match is not None, f"--array={array} is not a contiguous range (shards need MIN..MAX with no step)")
    low, high = int(match.group(1)), int(match.group(2))
    cpus = sbatch_option(script, "cpus-per-task")
    results = work / "slurm-results"
    submit_dir = scenario_dir(work / "slurm").parent
    env = {"SCX": str(scx), "SCX_SEEDS": SEEDS, "SCX_SCENARIOS": "scenarios", "SCX_RESULTS": str(results)}
    count = high - low + 1
    for task in range(low, high + 1):
        slurm = {
            "SLURM_ARRAY_JOB_ID": "4242", "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": str(low),
            "SLURM_ARRAY_TASK_MAX": str(high), "SLURM_ARRAY_TASK_COUNT": str(count), "SLURM_CPUS_PER_TASK": cpus,
        }
        done = run(["bash", script], env={**env, **slurm}, cwd=submit_dir)
        shard_line(done.stderr, f"{task - low + 1}/{count}", f"SLURM_ARRAY_TASK_ID={task}")
    run(["bash", DEPLOY / "slurm/scx-merge.sbatch"], env=env, cwd=submit_dir)
    same_results(results / "results.jsonl", unsharded(scx, work), "Slurm")
    # submit.sh: the merge waits for the whole array, failed tasks included.
    fake = work / "fake-bin"
    fake.mkdir()
    calls = work / "sbatch-calls"
    (fake / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> {calls}\necho "777;cluster"\n')
    (fake / "sbatch").chmod(0o755)
    run(["bash", DEPLOY / "slurm/submit.sh"], env={"PATH": f"{fake}:{os.environ['PATH']}"})
    lines = calls.read_text().splitlines()
    check(len(lines) == 2 and lines[0].endswith("scx-shard.sbatch"), f"sbatch calls: {lines}")
    check("--dependency=afterany:777" in lines[1] and lines[1].endswith("scx-merge.sbatch"), f"sbatch calls: {lines}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scx", required=True, help="the scx binary to test with")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    scx = Path(args.scx).resolve()
    if not os.access(scx, os.X_OK):
        print(f"error: {scx} is not an executable scx binary", file=sys.stderr)
        return 1
    tests = [test_github, test_kubernetes, test_kubernetes_killed_shard, test_slurm]
    failed = 0
    work_root = Path(tempfile.mkdtemp(prefix="scx-deploy-"))
    for test in tests:
        work = work_root / test.__name__
        work.mkdir()
        started = time.monotonic()
        try:
            test(scx, work)
            print(f"ok      {test.__name__} ({time.monotonic() - started:.1f} s)")
        except Failure as failure:
            failed += 1
            print(f"FAILED  {test.__name__}: {failure}")
    if args.keep:
        print(f"work directory kept: {work_root}")
    else:
        shutil.rmtree(work_root)
    print(f"{len(tests) - failed} of {len(tests)} artefact tests passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
