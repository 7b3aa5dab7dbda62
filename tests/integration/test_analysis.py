"""A physicist's analysis end to end on the facility testbed (conftest.py).

Alice, in a notebook-image container on the hub node (af-notebook, as the spawner will start it),
creates a CoffeaCasaCluster: Dask workers start as HTCondor Docker-universe jobs of the worker image
pulled from the site registry, and read NanoAOD over root:// with her own token. The histogram must
equal a single-process run of the same analysis. Then an execute node dies mid-run.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

pytestmark = pytest.mark.testbed

ZPEAK = "/opt/af/examples/zpeak.py"


def image(facility, name: str) -> str:
    env = facility.exec("services", "cat /etc/af/session.env").stdout
    worker = next(line.split("=", 1)[1] for line in env.splitlines() if line.startswith("AF_WORKER_IMAGE="))
    return worker.replace("/worker:", f"/{name}:")


def notebook(facility, user: str, command: str, timeout: float = 900):
    return facility.exec("services", f"af-notebook {user} {command}", timeout=timeout)


def read_json(facility, path: str) -> dict:
    out = facility.exec("services", f"cat {path}")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def user_jobs(facility, user: str) -> str:
    """The user's jobs still in the schedd's queue (ids and states), as root on the submit node."""
    out = facility.exec("submit1", f"condor_q {user} -af ClusterId ProcId JobStatus")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_notebook_image_has_the_analysis_stack_and_runs_as_a_non_root_user(facility):
    notebook_image = image(facility, "notebook")
    probe = (
        "import coffea, dask, distributed, dask_jobqueue, htcondor2, XRootD, fsspec_xrootd, uproot, coffea_casa, "
        "jupyterlab, dask_labextension, os; "
        "print(coffea.__version__, dask.__version__, distributed.__version__, os.getuid())"
    )
    out = facility.exec("services", f"docker run --rm {notebook_image} python -c '{probe}'")
    assert out.returncode == 0, out.stderr
    coffea_version, dask_version, distributed_version, uid = out.stdout.split()
    assert (coffea_version, dask_version, distributed_version, uid) == ("2026.9.0", "2026.8.0", "2026.8.0", "6440")
    tools = facility.exec(
        "services",
        f"docker run --rm {notebook_image} sh -c 'condor_version && xrdcp --version && jupyter lab --version'",
    )
    assert tools.returncode == 0, tools.stderr
    assert "$CondorVersion: 23." in tools.stdout, tools.stdout
    # The entrypoint is tini (reaps the notebook's children), then the command.
    entry = facility.exec("services", f"docker inspect -f '{{{{json .Config.Entrypoint}}}}' {notebook_image}")
    assert json.loads(entry.stdout) == ["/usr/bin/tini", "-g", "--"]


def test_worker_image_is_lean_and_its_launcher_starts_a_real_worker(facility):
    worker_image = image(facility, "worker")
    notebook_image = image(facility, "notebook")
    out = facility.exec("services", f"docker run --rm {worker_image} python -c 'import jupyterlab'")
    assert out.returncode != 0 and "No module named 'jupyterlab'" in out.stderr
    # A scheduler in the notebook image and a worker from the worker image's launcher, outside
    # HTCondor (the launcher passes its arguments through): the worker must connect and compute.
    script = (
        "import asyncio\n"
        "from distributed import Scheduler, Client\n"
        "async def main():\n"
        "    async with Scheduler(port=8799, dashboard_address=':0') as scheduler:\n"
        "        async with Client(scheduler.address, asynchronous=True) as client:\n"
        "            await client.wait_for_workers(1, timeout=60)\n"
        "            print('result', await client.submit(sum, [1, 2, 3]))\n"
        "asyncio.run(main())\n"
    )
    facility.exec("services", f"cat > /tmp/scheduler.py <<'EOF'\n{script}EOF")
    facility.exec(
        "services",
        f"docker run -d --name probe-scheduler --network host -v /tmp/scheduler.py:/tmp/scheduler.py:ro "
        f"{notebook_image} python /tmp/scheduler.py",
    )
    try:
        worker = facility.exec(
            "services",
            f"docker run -d --name probe-worker --network host {worker_image} "
            "af-dask-worker -m distributed.cli.dask_worker tcp://127.0.0.1:8799 --no-nanny --nthreads 1",
        )
        assert worker.returncode == 0, worker.stderr
        waited = facility.exec("services", "timeout 90 docker wait probe-scheduler")
        logs = facility.exec("services", "docker logs probe-scheduler 2>&1").stdout
        assert waited.stdout.strip() == "0" and "result 6" in logs, logs[-2000:]
    finally:
        facility.exec("services", "docker rm -f probe-scheduler probe-worker")


@pytest.fixture(scope="module")
def local_result(facility):
    """The reference: the same analysis in one process in Alice's notebook container."""
    run = notebook(facility, "alice", f"python {ZPEAK} --local --json /home/alice/local.json")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return read_json(facility, "/home/alice/local.json")


def test_the_z_peak_computed_on_htcondor_workers_equals_the_single_process_result(facility, local_result):
    assert local_result["events"] == 1_000_000 and 85 < local_result["peak_gev"] < 95, local_result
    run = notebook(
        facility,
        "alice",
        f"python {ZPEAK} --workers 2 --png /home/alice/zpeak.png --json /home/alice/dask.json",
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    result = read_json(facility, "/home/alice/dask.json")
    assert result["counts"] == local_result["counts"]
    assert result["events"] == local_result["events"]
    # One worker on each execute node: the jobs went through the pool, not a local cluster.
    addresses = {
        facility.exec("services", f"getent hosts {node}.af.test").stdout.split()[0]: node for node in ("exec1", "exec2")
    }
    assert sorted(addresses.get(host, host) for host in result["worker_hosts"]) == ["exec1", "exec2"], addresses
    png = facility.exec("services", "head -c 8 /home/alice/zpeak.png | od -An -c")
    assert "P   N   G" in png.stdout, png
    # The file belongs to Alice (the container ran as her UID), not to root or the image's user.
    owner = facility.exec("services", "stat -c %U /home/alice/zpeak.png").stdout.strip()
    assert owner == "alice"
    # cluster.close() removed the worker jobs: nothing of Alice's is left in the queue.
    deadline = time.monotonic() + 60
    while user_jobs(facility, "alice") and time.monotonic() < deadline:
        time.sleep(2)
    assert user_jobs(facility, "alice") == ""


def test_workers_ran_as_the_user_under_her_accounting_group(facility):
    history = facility.exec(
        "submit1", "condor_history alice -limit 2 -af Owner AccountingGroup JobUniverse DockerImage"
    )
    assert history.returncode == 0, history.stderr
    lines = history.stdout.strip().splitlines()
    assert len(lines) == 2, history.stdout
    for line in lines:
        owner, group, universe, docker_image = line.split()
        assert (owner, group, universe) == ("alice", "group_af.alice", "5")
        assert docker_image == image(facility, "worker")


@pytest.mark.disruptive
def test_the_analysis_survives_losing_an_execute_node(facility, local_result):
    marker = "/home/alice/kill.marker"
    facility.exec("services", f"rm -f {marker} /home/alice/kill.json")
    started = facility.exec(
        "services",
        f"setsid nohup af-notebook alice python {ZPEAK} --workers 2 --repeat 4 --chunksize 25000 "
        f"--marker {marker} --json /home/alice/kill.json > /home/alice/kill.log 2>&1 &",
    )
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 180
        while facility.exec("services", f"test -e {marker}").returncode != 0:
            assert time.monotonic() < deadline, facility.exec("services", "cat /home/alice/kill.log").stdout
            time.sleep(1)
        time.sleep(2)
        subprocess.run(["docker", "kill", facility.container("exec2")], check=True, capture_output=True)
        deadline = time.monotonic() + 600
        while facility.exec("services", "test -s /home/alice/kill.json").returncode != 0:
            log = facility.exec("services", "cat /home/alice/kill.log").stdout
            assert time.monotonic() < deadline and "Traceback" not in log, log[-4000:]
            time.sleep(2)
        result = read_json(facility, "/home/alice/kill.json")
        assert result["events"] == 4 * local_result["events"]
        assert result["counts"] == [4 * count for count in local_result["counts"]]
    finally:
        subprocess.run(["docker", "start", facility.container("exec2")], check=False, capture_output=True)
        # The node comes back and rejoins the pool (later tests and the teardown expect it).
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            seen = facility.exec("head", "condor_status -af Machine").stdout
            if "exec2" in seen:
                break
            time.sleep(3)
